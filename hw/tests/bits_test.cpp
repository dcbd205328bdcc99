// Whole encoded entries of every format against values written out by hand
// (the descriptor bits alone are pinned in core/tests/formats_test.cpp).
#include <gtest/gtest.h>

#include <cstring>

#include "formats.hpp"
#include "test_util.hpp"
#include "tce.hpp"

namespace ioas::hw {
namespace {

// Reads the raw descriptor the table wrote for iova at a given depth.
u64 raw_leaf(const PageTable& pt, u64 iova, int leaf_level) {
  u64 table = pt.root();
  for (int l = 3;; --l) {
    const u64 e = pt.memory().page(table)[(iova >> (12 + 9 * l)) & 511];
    if (l == leaf_level) return e;
    table = e & 0x000ffffffffff000u;
  }
}

TEST(Bits, X86EntriesAreExactlyTheCpuFormat) {
  testing::Fixture f(testing::radix_config(Format::kX86_64));
  ASSERT_TRUE(f.pt->map({0x1000, 0x12345000, 0x1000, Prot::kReadWrite}).ok());
  ASSERT_TRUE(f.pt->map({0x40000000, 0x80000000, 0x200000, Prot::kRead}).ok());
  ASSERT_TRUE(f.pt->map({0x80000000, 0xc0000000, 0x40000000, Prot::kReadWrite}).ok());
  // 4K rw leaf: addr | A | US | RW | P; D clear until written.
  EXPECT_EQ(raw_leaf(*f.pt, 0x1000, 0), 0x12345000u | 0x20 | 0x4 | 0x2 | 0x1);
  // 2M read-only leaf: addr | PS | A | US | P.
  EXPECT_EQ(raw_leaf(*f.pt, 0x40000000, 1), 0x80000000u | 0x80 | 0x20 | 0x4 | 0x1);
  // 1G rw leaf in the PDPT.
  EXPECT_EQ(raw_leaf(*f.pt, 0x80000000, 2), 0xc0000000u | 0x80 | 0x20 | 0x4 | 0x2 | 0x1);
  // Table entries: next table | A | US | RW | P.
  const u64 pml4e = f.pt->memory().page(f.pt->root())[0];
  EXPECT_EQ(pml4e & 0xfff, 0x27u);
  EXPECT_EQ(pml4e >> 52, 0u);
}

TEST(Bits, ArmEntriesAreExactlyStage1Descriptors) {
  testing::Fixture f(testing::radix_config(Format::kArmLpae));
  ASSERT_TRUE(f.pt->map({0x1000, 0x12345000, 0x1000, Prot::kReadWrite}).ok());
  ASSERT_TRUE(f.pt->map({0x40000000, 0x80000000, 0x200000, Prot::kRead}).ok());
  ASSERT_TRUE(f.pt->map({0x80000000, 0xc0000000, 0x40000000, Prot::kReadWrite}).ok());
  const u64 attrs = (u64{1} << 2) /*AttrIndx 1*/ | (u64{3} << 8) /*SH IS*/ | (u64{1} << 10) /*AF*/ |
                    (u64{1} << 11) /*nG*/ | (u64{1} << 6) /*AP[1]*/;
  // Page (type 3), writable-clean: DBM and AP[2].
  EXPECT_EQ(raw_leaf(*f.pt, 0x1000, 0), 0x12345000u | 3 | attrs | (u64{1} << 51) | (u64{1} << 7));
  // Block (type 1), read-only: AP[2], no DBM.
  EXPECT_EQ(raw_leaf(*f.pt, 0x40000000, 1), 0x80000000u | 1 | attrs | (u64{1} << 7));
  EXPECT_EQ(raw_leaf(*f.pt, 0x80000000, 2), 0xc0000000u | 1 | attrs | (u64{1} << 51) | (u64{1} << 7));
  // Table descriptor: next table | 3, nothing else.
  const u64 l0 = f.pt->memory().page(f.pt->root())[0];
  EXPECT_EQ(l0 & ~arm::kAddrMask, 3u);
}

TEST(Bits, TceEntryIsBigEndianAddressOrReadOrWrite) {
  testing::Fixture f(TableConfig{Format::kTce, k4K, Range{0, 0x7fffffff}});
  ASSERT_TRUE(f.pt->map({0x3000, 0x1234567000, 0x2000, Prot::kReadWrite, 0x7f0000001000}).ok());
  ASSERT_TRUE(f.pt->map({0x8000, 0xabc000, 0x1000, Prot::kRead}).ok());
  auto& t = static_cast<TceTable&>(*f.pt);
  const u64 raw = t.raw_entry(3);
  unsigned char bytes[8];
  std::memcpy(bytes, &raw, 8);
  // Big-endian in memory: most significant byte first.
  const unsigned char want[8] = {0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x70, 0x03};
  EXPECT_EQ(0, std::memcmp(bytes, want, 8));
  EXPECT_EQ(tce::from_be(t.raw_entry(4)), 0x1234568000u | 3);
  EXPECT_EQ(tce::from_be(t.raw_entry(8)), 0xabc000u | 1);
  EXPECT_EQ(tce::from_be(t.raw_entry(5)), 0u);
}

}  // namespace
}  // namespace ioas::hw
