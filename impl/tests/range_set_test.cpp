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

// The complement read in one pass equals the general one (sort, merge,
// gaps) over the same ranges: random sets of small ranges near both ends of
// the space, coalesced and kept as given (adjacent ranges leave no hole).
TEST(RangeSet, ComplementEqualsTheGeneralComplementOfItsRanges) {
  std::uint64_t x = 7;
  auto next = [&] {
    x = x * 6364136223846793005u + 1442695040888963407u;
    return x >> 33;
  };
  for (int round = 0; round < 400; ++round) {
    RangeSet c(true), n(false);
    for (int k = static_cast<int>(next() % 6); k > 0; --k) {
      const u64 base = next() % 2 ? 0 : kMaxIova - 40;
      const u64 s = base + next() % 30;
      const Range r{s, std::min<u64>(s + next() % 10, kMaxIova)};
      c.add(r);
      if (!n.overlaps(r)) n.add(r);
    }
    if (next() % 8 == 0) c.add(Range{0, next() % 3});
    if (next() % 8 == 0) c.add(Range{kMaxIova - next() % 3, kMaxIova});
    EXPECT_EQ(c.complement(), complement(c.ranges())) << "round " << round;
    EXPECT_EQ(n.complement(), complement(n.ranges())) << "round " << round;
  }
}

}  // namespace
}  // namespace ioas::impl
