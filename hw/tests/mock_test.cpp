// The selftest's mock domain as a page table: one entry per 2 KiB slot,
// 1 MiB leaves marked huge, dirty per slot and read per leaf.
#include <gtest/gtest.h>

#include "mock.hpp"
#include "test_util.hpp"
#include "walker.hpp"

namespace ioas::hw {
namespace {

using testing::Fixture;

constexpr u64 k2K = 0x800;
constexpr u64 k1M = 0x100000;

TableConfig mock_config(u64 pgsizes = k2K, Range aperture = Range{0x1000000, 0x7fffffff}) {
  return TableConfig{Format::kMock, pgsizes, aperture};
}

std::string leaf_sizes(const PageTable& pt, Range r) {
  std::string s;
  pt.for_each_leaf(r, [&](const Leaf& l) { s += (s.empty() ? "" : " ") + std::to_string(l.size / k2K); });
  return s;
}

TEST(Mock, CreateTakesOnlyTheMocksPageSizes) {
  HeapPageMemory mem;
  EXPECT_TRUE(make_page_table(mock_config(k2K), mem).ok());
  EXPECT_TRUE(make_page_table(mock_config(k2K | k1M), mem).ok());
  EXPECT_EQ(make_page_table(mock_config(k4K), mem).code(), EINVAL);
  EXPECT_EQ(make_page_table(mock_config(k1M), mem).code(), EINVAL);
}

TEST(Mock, EachTwoKilobyteSlotIsAnEntry) {
  Fixture f(mock_config());
  PageTable& pt = *f.pt;
  ASSERT_TRUE(pt.map({0x1000800, 0x40000800, 0x1800, Prot::kReadWrite}).ok());
  EXPECT_EQ(leaf_sizes(pt, Range{0x1000000, 0x1fffffff}), "1 1 1");
  EXPECT_EQ(pt.translate(0x1001fff)->pa, 0x40001fffu);
  EXPECT_FALSE(pt.translate(0x1000000));
  auto& m = static_cast<MockTable&>(pt);
  EXPECT_EQ(m.entry(0x1001000) & MockTable::kPfnMask, 0x40001000u / k2K);
  EXPECT_EQ(pt.map({0x1001000, 0, k2K, Prot::kRead}).code(), EEXIST);
  EXPECT_EQ(pt.map({0x1010400, 0, k2K, Prot::kRead}).code(), EINVAL);  // not on a slot
  EXPECT_EQ(pt.map({0x800000, 0, k2K, Prot::kRead}).code(), ERANGE);   // below the aperture
  EXPECT_EQ(*pt.unmap(0x1000800, 0x1800), 0x1800u);
  EXPECT_EQ(pt.verify(), 0u);
}

// table_pages() counts the xarray's leaf nodes in use: 64 slots each.
TEST(Mock, TablePagesCountsNodesOfSixtyFourSlots) {
  Fixture f(mock_config());
  PageTable& pt = *f.pt;
  EXPECT_EQ(pt.table_pages(), 0u);
  const u64 node = 64 * k2K;
  ASSERT_TRUE(pt.map({0x1000000, 0x40000000, 3 * k2K, Prot::kReadWrite}).ok());
  EXPECT_EQ(pt.table_pages(), 1u) << "three slots of one node";
  ASSERT_TRUE(pt.map({0x1000000 + node - k2K, 0x40100000, k2K, Prot::kReadWrite}).ok());
  EXPECT_EQ(pt.table_pages(), 1u) << "the node's last slot";
  ASSERT_TRUE(pt.map({0x1000000 + node, 0x40200000, 2 * k2K, Prot::kReadWrite}).ok());
  EXPECT_EQ(pt.table_pages(), 2u) << "the next node's first slots";
  ASSERT_TRUE(pt.map({0x1000000 + 5 * node, 0x40300000, k2K, Prot::kReadWrite}).ok());
  EXPECT_EQ(pt.table_pages(), 3u) << "a node further up";
  EXPECT_EQ(*pt.unmap(0x1000000, node), 4 * k2K);
  EXPECT_EQ(pt.table_pages(), 2u);
  EXPECT_EQ(*pt.unmap(0x1000000, 6 * node), 3 * k2K);
  EXPECT_EQ(pt.table_pages(), 0u);
}

TEST(Mock, HugeLeavesWhereIovaAndPaAllowAndSplitOnPartialUnmap) {
  Fixture f(mock_config(k2K | k1M));
  PageTable& pt = *f.pt;
  ASSERT_TRUE(pt.map({0x1100000, 0x40100000, k1M + k2K, Prot::kReadWrite}).ok());
  EXPECT_EQ(leaf_sizes(pt, Range{0x1100000, 0x12007ff}), "512 1");
  EXPECT_EQ(pt.verify(), 2u);
  // Unmapping one slot of the huge leaf splits it first.
  EXPECT_EQ(*pt.unmap(0x1100000, k2K), k2K);
  EXPECT_EQ(leaf_sizes(pt, Range{0x1100000, 0x1100fff}), "1");  // the slot after the hole
  EXPECT_EQ(pt.verify(), 512u);
  // pa not 1 MiB aligned: small leaves only.
  ASSERT_TRUE(pt.map({0x1300000, 0x40000800, k1M, Prot::kRead}).ok());
  EXPECT_EQ(leaf_sizes(pt, Range{0x1300000, 0x1300fff}), "1 1");
}

TEST(Mock, DirtyIsPerSlotAndReadPerLeaf) {
  Fixture f(mock_config(k2K | k1M));
  PageTable& pt = *f.pt;
  ASSERT_TRUE(pt.map({0x1100000, 0x40100000, k1M, Prot::kReadWrite}).ok());
  ASSERT_TRUE(pt.map({0x1200000, 0x40000800, 0x1000, Prot::kReadWrite}).ok());
  Walker w(pt);
  EXPECT_EQ(w.access(0x1100010, true).leaf_size, k1M);
  EXPECT_EQ(w.access(0x1200800, true).leaf_size, k2K);
  DirtyBitmap bm(0x1100000, 0x200000, k2K);
  EXPECT_EQ(pt.read_and_clear_dirty(Range{0x1100000, 0x12fffff}, &bm, false), 2u);
  ASSERT_EQ(bm.ranges().size(), 2u);
  EXPECT_EQ(bm.ranges()[0], (Range{0x1100000, 0x11fffff}));  // the whole huge leaf
  EXPECT_EQ(bm.ranges()[1], (Range{0x1200800, 0x1200fff}));  // one slot
  EXPECT_EQ(pt.read_and_clear_dirty(Range{0x1100000, 0x12fffff}, nullptr, false), 0u);
  // Read-only slots fault on write and never get dirty.
  ASSERT_TRUE(pt.map({0x1300000, 0x40000000, k2K, Prot::kRead}).ok());
  EXPECT_EQ(w.access(0x1300000, true).fault, Fault::kReadOnly);
  EXPECT_EQ(w.access(0x1400000, false).fault, Fault::kNotPresent);
  EXPECT_EQ(w.access(0x100, false).fault, Fault::kOutOfRange);
}

TEST(Mock, SplitAndMergeKeepDirtyState) {
  Fixture f(mock_config(k2K | k1M, Range{0, kMaxIova}));
  PageTable& pt = *f.pt;
  ASSERT_TRUE(pt.map({0x100000, 0x40100000, k1M, Prot::kReadWrite}).ok());
  Walker(pt).access(0x100010, true);
  ASSERT_TRUE(pt.split_blocks(Range{0, kMaxIova}).ok());
  EXPECT_EQ(pt.verify(), 512u);
  // A split dirty leaf is dirty pieces.
  DirtyBitmap bm(0x100000, k1M, k2K);
  EXPECT_EQ(pt.read_and_clear_dirty(Range{0x100000, 0x1fffff}, &bm, true), 512u);
  pt.merge_blocks(Range{0x100000, 0x1fffff}, k2K | k1M);
  EXPECT_EQ(pt.verify(), 1u);
  EXPECT_EQ(pt.read_and_clear_dirty(Range{0x100000, 0x1fffff}, nullptr, false), 1u);
  // The top of the 64-bit space: merge stops there.
  ASSERT_TRUE(pt.map({kMaxIova - k1M + 1, 0x40000000, k1M, Prot::kRead}).ok());
  ASSERT_TRUE(pt.split_blocks(Range{0, kMaxIova}).ok());
  pt.merge_blocks(Range{0, kMaxIova}, k2K | k1M);
  EXPECT_EQ(pt.verify(), 2u);
  EXPECT_EQ(pt.clone_onto(f.mem)->image(), pt.image());
}

}  // namespace
}  // namespace ioas::hw
