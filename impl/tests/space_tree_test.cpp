// The space tree against a brute-force oracle (a std::map of intervals and a
// literal hole walk), with a fixed seed, tiny pool chunks, and verify() after
// every mutation. Coordinates cluster at both ends of [0, 2^64-1] so the
// edge holes (before the first interval, after the last) and wrap-around
// are exercised; every gap query runs over the whole space as well as a
// random window.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "space_tree.hpp"

namespace ioas::impl {
namespace {

struct Oracle {
  std::map<u64, SpaceEntry> m;  // by start

  bool disjoint(u64 s, u64 l) const {
    for (const auto& [k, e] : m)
      if (e.start <= l && s <= e.last) return false;
    return true;
  }
  const SpaceEntry* find(u64 x) const {
    for (const auto& [k, e] : m)
      if (e.start <= x && x <= e.last) return &e;
    return nullptr;
  }
  const SpaceEntry* first_from(u64 x) const {
    for (const auto& [k, e] : m)
      if (e.last >= x) return &e;
    return nullptr;
  }
  std::optional<u64> lowest_fit(u64 lo, u64 hi, u64 len, u64 a, u64 off) const {
    std::vector<Range> used;
    for (const auto& [k, e] : m) used.push_back(Range{e.start, e.last});
    for (const Range& h : complement(used)) {
      u64 hs = std::max(h.start, lo), hl = std::min(h.last, hi);
      if (hs > hl) continue;
      auto c = arith::hole_candidate(hs, hl, a, off, len);
      if (c.fits) return c.iova;
    }
    return std::nullopt;
  }
};

class Walker {
 public:
  explicit Walker(std::uint64_t seed) : rng_(seed) {}
  u64 below(u64 n) { return std::uniform_int_distribution<u64>(0, n - 1)(rng_); }
  // A coordinate near 0 or near 2^64-1.
  u64 coord() {
    u64 x = below(400);
    return below(2) ? x : kMaxIova - x;
  }

 private:
  std::mt19937_64 rng_;
};

void expect_same(const SpaceNode* got, const SpaceEntry* want) {
  ASSERT_EQ(got == nullptr, want == nullptr);
  if (!got) return;
  EXPECT_EQ(got->start, want->start);
  EXPECT_EQ(got->last, want->last);
  EXPECT_EQ(got->offset, want->offset);
  EXPECT_EQ(got->source, want->source);
}

TEST(SpaceTree, RandomOpsMatchBruteForceOracle) {
  for (unsigned chunk_bits : {1u, 3u, 12u}) {
    SpaceTree t(chunk_bits);
    Oracle o;
    Walker w(42 + chunk_bits);
    for (int step = 0; step < 20000; ++step) {
      const u64 op = w.below(10);
      if (op < 4) {  // insert
        u64 s = w.coord(), len = 1 + w.below(24);
        u64 l = s + len - 1 < s ? kMaxIova : s + len - 1;
        if (o.disjoint(s, l)) {
          SpaceEntry e{s, l, static_cast<std::uint32_t>(w.below(3)), w.below(1000), 1};
          t.insert(e);
          o.m[s] = e;
        }
      } else if (op < 7) {  // erase an existing interval, or a missing key
        if (!o.m.empty() && w.below(8) != 0) {
          auto it = o.m.begin();
          std::advance(it, static_cast<long>(w.below(o.m.size())));
          EXPECT_TRUE(t.erase(it->first));
          o.m.erase(it);
        } else {
          u64 k = w.coord();
          EXPECT_EQ(t.erase(k), o.m.erase(k) == 1);
        }
      } else if (op < 8) {  // shrink
        if (!o.m.empty()) {
          auto it = o.m.begin();
          std::advance(it, static_cast<long>(w.below(o.m.size())));
          u64 nl = it->second.start + w.below(it->second.last - it->second.start + 1);
          t.set_last(it->first, nl);
          it->second.last = nl;
        }
      } else if (op < 9) {  // point queries
        u64 x = w.coord();
        expect_same(t.find(x), o.find(x));
        expect_same(t.first_from(x), o.first_from(x));
      } else {  // gap queries: whole space and a random window
        u64 len = 1 + w.below(20), a = u64{1} << w.below(5), off = w.below(2) ? 0 : w.below(8);
        EXPECT_EQ(t.lowest_fit(0, kMaxIova, len, a, off), o.lowest_fit(0, kMaxIova, len, a, off))
            << "len " << len << " a " << a << " off " << off;
        u64 lo = w.coord(), hi = w.coord();
        if (lo > hi) std::swap(lo, hi);
        EXPECT_EQ(t.lowest_fit(lo, hi, len, a, off), o.lowest_fit(lo, hi, len, a, off))
            << "lo " << lo << " hi " << hi << " len " << len << " a " << a << " off " << off;
      }
      ASSERT_EQ(t.verify(), o.m.size());
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(SpaceTree, EmptyTreeHasOneHoleCoveringEverything) {
  SpaceTree t;
  EXPECT_EQ(t.verify(), 0u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 1, 1, 0), u64{0});
  EXPECT_EQ(t.lowest_fit(kPage, kMaxIova - kPage, kPage, kPage, 0), kPage);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, u64{1} << 63, u64{1} << 63, 0), u64{0});
  EXPECT_EQ(t.first(), nullptr);
  EXPECT_EQ(t.last_node(), nullptr);
}

TEST(SpaceTree, IntervalEndingAtTopLeavesNoTailHole) {
  SpaceTree t;
  t.insert(SpaceEntry{kMaxIova - 9, kMaxIova, 0, 0, 0});
  t.insert(SpaceEntry{0, 9, 0, 0, 0});
  EXPECT_EQ(t.verify(), 2u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 1, 1, 0), u64{10});
  // The only hole is [10, 2^64-11]: exactly its size fits, one more does not.
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, kMaxIova - 19, 1, 0), u64{10});
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, kMaxIova - 18, 1, 0), std::nullopt);
  EXPECT_EQ(t.next(*t.last_node()), nullptr);
}

TEST(SpaceTree, AlignmentCanMakeABigEnoughHoleUnusable) {
  SpaceTree t;
  // Hole [1, 16] (16 bytes) before 17, then free from 40 on.
  t.insert(SpaceEntry{0, 0, 0, 0, 0});
  t.insert(SpaceEntry{17, 39, 0, 0, 0});
  // len 16 at alignment 16: align_up(1) = 16, 16+15 > 16: skip to 48.
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 16, 16, 0), u64{48});
  // len 8 at alignment 8: 8..15 fits in [1, 16].
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 8, 8, 0), u64{8});
  // The page-offset OR moves the candidate: align_up(1, 8) | 3 = 11, 11+7 > 16.
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 8, 8, 3), u64{43});
}

TEST(SpaceTree, EraseMergesHolesAroundTheRemovedInterval) {
  SpaceTree t;
  for (u64 i = 0; i < 64; ++i) t.insert(SpaceEntry{i * 10, i * 10 + 4, 0, 0, 0});
  EXPECT_EQ(t.verify(), 64u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 6, 1, 0), u64{635});
  ASSERT_TRUE(t.erase(300));
  EXPECT_EQ(t.verify(), 63u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 15, 1, 0), u64{295});
  EXPECT_FALSE(t.erase(300));
}

TEST(SpaceTree, SetLastGrowsTheFollowingHole) {
  SpaceTree t;
  t.insert(SpaceEntry{0, 99, 0, 0, 0});
  t.insert(SpaceEntry{100, 199, 0, 0, 0});
  t.set_last(0, 49);
  EXPECT_EQ(t.verify(), 2u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 50, 1, 0), u64{50});
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 51, 1, 0), u64{200});
}

TEST(SpaceTree, CopyIsIndependent) {
  SpaceTree t(2);
  for (u64 i = 0; i < 20; ++i) t.insert(SpaceEntry{i * 4, i * 4 + 1, 0, i, 0});
  SpaceTree c = t;
  ASSERT_TRUE(c.erase(8));
  EXPECT_EQ(t.verify(), 20u);
  EXPECT_EQ(c.verify(), 19u);
  EXPECT_NE(t.find(8), nullptr);
  EXPECT_EQ(c.find(8), nullptr);
}

TEST(SpaceTree, SequentialInsertStaysBalanced) {
  SpaceTree t;
  for (u64 i = 0; i < 100000; ++i) t.insert(SpaceEntry{i * 2, i * 2, 0, 0, 0});
  EXPECT_EQ(t.verify(), 100000u);  // verify() checks the AVL balance at every node
  for (u64 i = 0; i < 100000; i += 2) ASSERT_TRUE(t.erase(i * 2));
  EXPECT_EQ(t.verify(), 50000u);
}

TEST(SpaceTree, NodeIsCompact) { EXPECT_LE(sizeof(SpaceNode), 56u); }

}  // namespace
}  // namespace ioas::impl
