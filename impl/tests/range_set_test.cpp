// RangeSet against a brute-force byte-set oracle over a small universe, plus
// the edges of [0, 2^64-1].
#include <gtest/gtest.h>

#include <bitset>
#include <random>

#include "range_set.hpp"

namespace ioas::impl {
namespace {

constexpr u64 kN = 96;

std::vector<Range> runs(const std::bitset<kN>& b) {
  std::vector<Range> out;
  for (u64 i = 0; i < kN; ++i) {
    if (!b[i]) continue;
    if (!out.empty() && out.back().last + 1 == i) {
      out.back().last = i;
    } else {
      out.push_back(Range{i, i});
    }
  }
  return out;
}

TEST(RangeSet, CoalescingAddAndSubtractMatchAByteSet) {
  std::mt19937_64 rng(7);
  RangeSet s(true);
  std::bitset<kN> b;
  for (int step = 0; step < 5000; ++step) {
    u64 a = rng() % kN, l = std::min<u64>(kN - 1, a + rng() % 12);
    if (rng() % 3) {
      s.add(Range{a, l});
      for (u64 i = a; i <= l; ++i) b.set(i);
    } else {
      s.subtract(Range{a, l});
      for (u64 i = a; i <= l; ++i) b.reset(i);
    }
    ASSERT_EQ(s.verify(), runs(b).size());
    ASSERT_EQ(s.ranges(), runs(b));
    u64 q = rng() % kN, ql = std::min<u64>(kN - 1, q + rng() % 12);
    bool any = false;
    for (u64 i = q; i <= ql; ++i) any |= b[i];
    ASSERT_EQ(s.overlaps(Range{q, ql}), any);
    std::vector<Range> want;
    for (const Range& r : runs(b))
      if (r.overlaps(Range{q, ql})) want.push_back(Range{std::max(r.start, q), std::min(r.last, ql)});
    ASSERT_EQ(s.clipped(Range{q, ql}), want);
  }
}

TEST(RangeSet, AdjacentRangesMergeOnlyWhenCoalescing) {
  RangeSet c(true), n(false);
  c.add(Range{0, 9});
  c.add(Range{10, 19});
  n.add(Range{0, 9});
  n.add(Range{10, 19});
  EXPECT_EQ(c.ranges(), (std::vector<Range>{{0, 19}}));
  EXPECT_EQ(n.ranges(), (std::vector<Range>{{0, 9}, {10, 19}}));
  EXPECT_EQ(c.verify(), 1u);
  EXPECT_EQ(n.verify(), 2u);
}

TEST(RangeSet, EdgesOfTheSpace) {
  RangeSet s(true);
  s.add(Range{kMaxIova - 1, kMaxIova});
  s.add(Range{0, 0});
  EXPECT_EQ(s.complement(), (std::vector<Range>{{1, kMaxIova - 2}}));
  s.add(Range::all());
  EXPECT_EQ(s.ranges(), (std::vector<Range>{Range::all()}));
  EXPECT_TRUE(s.complement().empty());
  s.subtract(Range{5, 5});
  EXPECT_EQ(s.ranges(), (std::vector<Range>{{0, 4}, {6, kMaxIova}}));
  EXPECT_EQ(s.find(kMaxIova), (Range{6, kMaxIova}));
  EXPECT_EQ(s.find(5), std::nullopt);
}

}  // namespace
}  // namespace ioas::impl
