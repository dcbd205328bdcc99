// pgsize_count (ioas/arith.hpp) against the kernel's loop it shortcuts:
// call iommu_pgsize at every step and count how long it keeps choosing the
// same size. Random page-size sets, addresses and lengths, biased to the
// edge that decides the count: a mapping that, after the next larger size's
// boundary, holds exactly one page of that size, or one byte-granule less.
#include <gtest/gtest.h>

#include <random>

#include "ioas/arith.hpp"

namespace ioas::hw {
namespace {

using u64 = std::uint64_t;

// The number of consecutive leaves of `size` iommu_pgsize picks from iova.
u64 stepped_count(u64 pgsizes, u64 size, u64 iova, u64 pa, u64 remaining) {
  u64 n = 0;
  while (remaining >= size && ioas::arith::iommu_pgsize(pgsizes, iova, pa, remaining) == size) {
    ++n;
    iova += size;
    pa += size;
    remaining -= size;
  }
  return n;
}

// A random bit of `bits` (nonzero).
u64 random_bit(std::mt19937_64& rng, u64 bits) {
  const int n = __builtin_popcountll(bits);
  int k = static_cast<int>(rng() % n);
  for (u64 b = bits;; b &= b - 1)
    if (k-- == 0) return b & (~b + 1);
}

TEST(PtArith, PgsizeCountIsTheKernelsSteppingOfIommuPgsize) {
  std::mt19937_64 rng(20261206);
  int cases = 0, exact_fit = 0, one_short = 0;
  while (cases < 20000) {
    // Two to four sizes from 4K to 1G, at most 2^9 apart, so the stepping
    // oracle stays short.
    u64 pgsizes = 0;
    const int lowest = 12 + static_cast<int>(rng() % 19);
    const int count = 2 + static_cast<int>(rng() % 3);
    for (int i = 0; i < count; ++i) pgsizes |= u64{1} << std::min(30, lowest + static_cast<int>(rng() % 10));
    if (__builtin_popcountll(pgsizes) < 2) continue;
    const u64 small = random_bit(rng, pgsizes & ~ioas::arith::highest_bit(pgsizes));
    const u64 above = pgsizes & ~((small << 1) - 1);
    const u64 next = above & (~above + 1);
    // iova a few small pages below a boundary of `next`; pa at the same
    // offset within `next`, or (a quarter of the time) at another one.
    const u64 before = small * (1 + rng() % 4);
    const u64 iova = next * (1 + rng() % 64) - before;
    const u64 pa = rng() % 4 ? iova + next * (rng() % 64) : small * (rng() % (u64{1} << 20));
    // What is left after the boundary: exactly one `next` page, one small
    // page less, one more, two, or nothing.
    u64 after;
    switch (rng() % 5) {
      case 0: after = next; break;
      case 1: after = next - small; break;
      case 2: after = next + small; break;
      case 3: after = 2 * next; break;
      default: after = 0;
    }
    const u64 remaining = before + after;
    const u64 size = ioas::arith::iommu_pgsize(pgsizes, iova, pa, remaining);
    if (size == 0 || remaining / size > 4096) continue;
    ++cases;
    const bool same_offset = ((iova ^ pa) & (next - 1)) == 0;
    exact_fit += size == small && same_offset && after == next;
    one_short += size == small && same_offset && after == next - small;
    ASSERT_EQ(ioas::arith::pgsize_count(pgsizes, size, iova, pa, remaining),
              stepped_count(pgsizes, size, iova, pa, remaining))
        << std::hex << "pgsizes 0x" << pgsizes << " size 0x" << size << " iova 0x" << iova << " pa 0x" << pa
        << " remaining 0x" << remaining;
  }
  // The bias reaches the deciding edge from both sides.
  EXPECT_GT(exact_fit, 1000);
  EXPECT_GT(one_short, 1000);
}

}  // namespace
}  // namespace ioas::hw
