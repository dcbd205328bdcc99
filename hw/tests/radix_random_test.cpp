// x86-64 and arm-lpae tables under random maps and unmaps, against the leaf
// rule and a map of the mapped pieces: a program of its own, compiled as the
// library is, since the oracle's checks do the heavy work.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "radix_fixture.hpp"
#include "test_util.hpp"

namespace ioas::hw {
namespace {

using testing::Fixture;
using testing::leaves;

// The leaf holding byte y of a mapping piece is the largest aligned block of
// an eligible size (one that divides pa - iova) lying inside the piece: the
// model's leaf_of rule. Random maps and unmaps against that oracle.
TEST_P(Radix, RandomMapsAndUnmapsMatchTheLeafRuleAndTranslations) {
  std::mt19937_64 rng(20240604);
  for (u64 sizes : {k4K | k2M | k1G, k4K | k2M, k4K | k1G, k2M | k1G}) {
    Fixture f = make(sizes);
    const u64 minp = sizes & (~sizes + 1);
    struct Piece {
      u64 last, pa;
      Prot prot;
    };
    std::map<u64, Piece> pieces;  // by start
    auto random_len = [&] {
      switch (rng() % 4) {
        case 0: return minp * (1 + rng() % 4);
        case 1: return k2M * (1 + rng() % 3) + minp * (rng() % 3);
        case 2: return k1G + k2M * (rng() % 3);
        default: return k1G * (1 + rng() % 2) + minp * (rng() % 600);
      }
    };
    const u64 space = 8 * k1G;
    for (int step = 0; step < 40; ++step) {
      if (rng() % 3 != 0) {
        // Mostly eligible for large leaves (pa - iova a multiple of 1G or
        // 2M); unaligned memory only for short maps, so leaves stay few.
        u64 len = random_len();
        const u64 iova = (rng() % (space / minp)) * minp;
        u64 pa;
        switch (rng() % 4) {
          case 0:
          case 1: pa = iova + k1G * (rng() % 8); break;
          case 2: pa = iova + k2M * (rng() % 512); break;
          default:
            pa = (rng() % (space / minp)) * minp;
            len = minp * (1 + rng() % 64);
        }
        const Prot prot = rng() % 2 ? Prot::kRead : Prot::kReadWrite;
        bool overlap = false;
        for (auto& [s, p] : pieces)
          if (s <= iova + len - 1 && iova <= p.last) overlap = true;
        auto st = f.pt->map({iova, pa, len, prot});
        ASSERT_EQ(st.code(), overlap ? EEXIST : 0);
        if (!overlap) pieces[iova] = Piece{iova + len - 1, pa, prot};
      } else {
        const u64 len = random_len();
        const u64 iova = (rng() % (space / minp)) * minp;
        const Range u{iova, iova + len - 1};
        u64 expect = 0;
        std::map<u64, Piece> next;
        for (auto& [s, p] : pieces) {
          const Range r{s, p.last};
          if (!r.overlaps(u)) {
            next[s] = p;
            continue;
          }
          expect += std::min(r.last, u.last) - std::max(r.start, u.start) + 1;
          if (r.start < u.start) next[r.start] = Piece{u.start - 1, p.pa, p.prot};
          if (r.last > u.last) next[u.last + 1] = Piece{r.last, p.pa + (u.last + 1 - r.start), p.prot};
        }
        auto got = f.pt->unmap(iova, len);
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(*got, expect);
        pieces = std::move(next);
      }
      f.pt->verify();
      // Every leaf is the oracle's leaf, and leaves cover the pieces exactly.
      u64 covered = 0, want = 0;
      for (auto& [s, p] : pieces) want += p.last - s + 1;
      for (const Leaf& l : leaves(*f.pt)) {
        auto it = pieces.upper_bound(l.iova);
        ASSERT_NE(it, pieces.begin());
        --it;
        const Range piece{it->first, it->second.last};
        ASSERT_TRUE(piece.contains(Range{l.iova, l.iova + l.size - 1}));
        ASSERT_EQ(l.pa, it->second.pa + (l.iova - piece.start));
        ASSERT_EQ(l.prot, it->second.prot);
        const u64 delta = it->second.pa - piece.start;
        u64 best = 0;
        for (u64 s : {k1G, k2M, k4K}) {
          if (!(sizes & s) || (delta & (s - 1))) continue;
          const u64 b = l.iova & ~(s - 1);
          if (piece.contains(Range{b, b + s - 1})) {
            best = s;
            break;
          }
        }
        ASSERT_EQ(l.size, best) << "leaf at 0x" << std::hex << l.iova;
        covered += l.size;
      }
      ASSERT_EQ(covered, want);
      for (int k = 0; k < 20; ++k) {
        const u64 x = rng() % space;
        auto t = f.pt->translate(x);
        auto it = pieces.upper_bound(x);
        const bool in = it != pieces.begin() && std::prev(it)->second.last >= x;
        ASSERT_EQ(t.has_value(), in);
        if (in) {
          EXPECT_EQ(t->pa, std::prev(it)->second.pa + (x - std::prev(it)->first));
        }
      }
    }
    ASSERT_TRUE(f.pt->unmap(0, u64{1} << 48).ok());
    EXPECT_EQ(f.mem.live_pages(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, Radix, ::testing::Values(Format::kX86_64, Format::kArmLpae),
                         testing::fmt_name);

}  // namespace
}  // namespace ioas::hw
