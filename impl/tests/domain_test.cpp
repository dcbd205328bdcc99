// The software page table: leaves by the iommu_pgsize rule (checked against
// a literal leaf-by-leaf greedy walk), translation, DMA faults and dirty
// bookkeeping.
#include <gtest/gtest.h>

#include <random>

#include "domain.hpp"

namespace ioas::impl {
namespace {

constexpr u64 kSizes = k4K | k2M | k1G;

// One leaf at a time, as SPEC writes the rule.
std::vector<LeafRun> greedy_walk(Range r, u64 pa, u64 sizes) {
  std::vector<LeafRun> out;
  u64 p = r.start, q = pa;
  while (true) {
    u64 rem = r.last - p + 1, pick = 0;
    for (int b = 63; b >= 0; --b) {
      u64 s = u64{1} << b;
      if ((sizes & s) && p % s == 0 && q % s == 0 && s <= rem) {
        pick = s;
        break;
      }
    }
    if (!pick) return {};
    if (!out.empty() && out.back().size == pick && out.back().iova.last + 1 == p) {
      out.back().iova.last += pick;
    } else {
      out.push_back(LeafRun{Range{p, p + pick - 1}, pick});
    }
    if (p + pick - 1 == r.last) return out;
    p += pick;
    q += pick;
  }
}

bool same(const std::vector<LeafRun>& a, const std::vector<LeafRun>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].iova != b[i].iova || a[i].size != b[i].size) return false;
  return true;
}

TEST(LeafRuns, MatchTheLeafByLeafGreedyRule) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 3000; ++i) {
    // Start and length in 4K units around 2M and 1G boundaries.
    u64 base = (rng() % 4) * k1G + (rng() % 3) * k2M;
    u64 start = base + (rng() % 1024) * k4K + (rng() % 2) * 511 * k4K;
    u64 len = (1 + rng() % 2048) * k4K + (rng() % 3 == 0 ? (rng() % 3) * k1G : 0);
    u64 pa = start + ((rng() % 4 == 0) ? (rng() % 600) * k4K : (rng() % 4) * k1G);
    u64 sizes = (rng() % 5 == 0) ? k4K | k2M : kSizes;
    Range r{start, start + len - 1};
    ASSERT_TRUE(same(leaf_runs(r, pa, sizes), greedy_walk(r, pa, sizes)))
        << "start " << start << " len " << len << " pa " << pa;
  }
}

TEST(LeafRuns, ImpossibleMappingHasNoLeaves) {
  EXPECT_TRUE(leaf_runs(Range{0x1000, 0x17ff}, 0x1000, k4K).empty());  // length not 4K multiple
  EXPECT_TRUE(leaf_runs(Range{0x1000, 0x1fff}, 0x1800, k4K).empty());  // pa offset differs
  EXPECT_FALSE(leaf_runs(Range{0x1000, 0x1fff}, 0x5000, k4K).empty());
}

TEST(LeafRuns, LargestPageThatDividesBothAddressesAndFits) {
  // 2M-aligned iova and pa, 4M+8K long: two 2M leaves then two 4K leaves.
  auto runs = leaf_runs(Range{k2M, k2M + 2 * k2M + 2 * k4K - 1}, 3 * k2M, kSizes);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].size, k2M);
  EXPECT_EQ(runs[0].iova, (Range{k2M, 3 * k2M - 1}));
  EXPECT_EQ(runs[1].size, k4K);
  // pa only 4K aligned: 4K leaves throughout.
  auto small = leaf_runs(Range{k2M, 3 * k2M - 1}, 3 * k2M + k4K, kSizes);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].size, k4K);
}

TEST(SoftPageTable, TranslatesMappedBytesAndFaultsElsewhere) {
  SoftPageTable pt;
  ASSERT_TRUE(pt.map(Range{0x10000, 0x1ffff}, 0x800000, Prot::kRead, kSizes).ok());
  EXPECT_EQ(pt.translate(0x10123), (Translation{0x800123, Prot::kRead}));
  EXPECT_EQ(pt.translate(0x20000), std::nullopt);
  EXPECT_EQ(pt.dma(DmaDir::kRead, Range{0x1f000, 0x20fff}, false), (DmaOutcome{true, 0x20000}));
  // A write to a read-only mapping faults at its first byte.
  EXPECT_EQ(pt.dma(DmaDir::kWrite, Range{0x10010, 0x10020}, true), (DmaOutcome{true, 0x10010}));
  EXPECT_EQ(pt.verify(), 1u);
}

TEST(SoftPageTable, WriteDirtiesWholeLeavesAndReadCleansThem) {
  SoftPageTable pt;
  ASSERT_TRUE(pt.map(Range{0, k2M + k4K - 1}, k2M * 8, Prot::kReadWrite, kSizes).ok());
  // One byte in the 2M leaf.
  EXPECT_FALSE(pt.dma(DmaDir::kWrite, Range{5, 5}, true).faulted);
  EXPECT_EQ(pt.read_dirty(Range{0, 2 * k4K - 1}, k4K, true), (std::vector<Range>{{0, 2 * k4K - 1}}));
  // Reading part of the leaf reports that part and cleans the whole leaf.
  EXPECT_EQ(pt.read_dirty(Range{k4K, 2 * k4K - 1}, k4K, false), (std::vector<Range>{{k4K, 2 * k4K - 1}}));
  EXPECT_TRUE(pt.read_dirty(Range{0, k2M + k4K - 1}, k4K, false).empty());
  EXPECT_EQ(pt.verify(), 1u);
}

TEST(SoftPageTable, SplitKeepsDirtyBytesAndRefinesLeaves) {
  SoftPageTable pt;
  ASSERT_TRUE(pt.map(Range{0, k2M - 1}, k2M * 4, Prot::kReadWrite, kSizes).ok());
  EXPECT_FALSE(pt.dma(DmaDir::kWrite, Range{0, 0}, true).faulted);
  pt.split(k4K - 1);
  EXPECT_EQ(pt.mapping_count(), 2u);
  EXPECT_EQ(pt.verify(), 2u);  // dirty bytes are still whole (smaller) leaves
  EXPECT_EQ(pt.read_dirty(Range{0, k2M - 1}, k2M, true), (std::vector<Range>{{0, k2M - 1}}));
  EXPECT_EQ(pt.read_dirty(Range{0, k2M - 1}, k4K, false), (std::vector<Range>{{0, k2M - 1}}));
  pt.unmap(Range{0, k4K - 1});
  EXPECT_EQ(pt.translate(0), std::nullopt);
  EXPECT_EQ(pt.translate(k4K), (Translation{k2M * 4 + k4K, Prot::kReadWrite}));
}

}  // namespace
}  // namespace ioas::impl
