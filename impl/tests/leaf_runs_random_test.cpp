// The leaves of a mapping by the iommu_pgsize rule (leaf_runs), checked
// against a literal leaf-by-leaf greedy walk on random ranges: a program of
// its own, compiled as the library is, since the walk does the heavy work.
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

}  // namespace
}  // namespace ioas::impl
