// The space tree against a brute-force oracle (a std::map of intervals and a
// literal hole walk), with a fixed seed, tiny nodes (3 to 5 slots, so splits,
// merges, borrows and root collapses happen every few operations) as well
// as the production 16, and verify() after every mutation. Coordinates
// cluster at both ends of [0, 2^64-1] so the edge holes (before the first
// interval, after the last) and wrap-around are exercised; every gap query
// runs over the whole space as well as a random window. The shape tests
// below pin each node transition with 4-slot nodes (min fill 2).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <span>
#include <vector>

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
  explicit Walker(std::uint64_t seed, bool local = false) : rng_(seed), local_(local) {}
  u64 below(u64 n) { return std::uniform_int_distribution<u64>(0, n - 1)(rng_); }
  // A coordinate near 0 or near 2^64-1; when `local`, mostly near the
  // previous one, so consecutive mutations land in the same or a
  // neighbouring leaf (the finger's reuse-or-not decisions).
  u64 coord() {
    if (local_ && below(8) != 0) {
      u64 x = prev_ + below(48) - 24;
      if (x > 400 && x < kMaxIova - 400) x = prev_;  // stay in the clusters
      return prev_ = x;
    }
    u64 x = below(400);
    return prev_ = below(2) ? x : kMaxIova - x;
  }

 private:
  std::mt19937_64 rng_;
  bool local_;
  u64 prev_ = 0;
};

void expect_same(const SpaceNode* got, const SpaceEntry* want) {
  ASSERT_EQ(got == nullptr, want == nullptr);
  if (!got) return;
  EXPECT_EQ(got->start, want->start);
  EXPECT_EQ(got->last, want->last);
  EXPECT_EQ(got->offset, want->offset);
  EXPECT_EQ(got->source, want->source);
}

struct Shape {
  unsigned leaf, inner;
};
constexpr Shape kShapes[] = {{3, 3}, {4, 4}, {5, 3}, {3, 5}, {16, 16}};

// With untracked holes the gap queries are left out (lowest_fit refuses
// them); everything else must answer as with tracked ones.
void random_ops_match_oracle(bool local, SpaceTree::Holes holes = SpaceTree::Holes::kTracked) {
  for (Shape sh : kShapes) {
    SCOPED_TRACE(::testing::Message() << "leaf " << sh.leaf << " inner " << sh.inner);
    SpaceTree t(sh.leaf, sh.inner, holes);
    Oracle o;
    Walker w(42 + sh.leaf * 7 + sh.inner + (local ? 1000 : 0), local);
    for (int step = 0; step < 20000; ++step) {
      const u64 op = w.below(10);
      if (op < 4) {  // insert
        u64 s = w.coord(), len = 1 + w.below(24);
        u64 l = s + len - 1 < s ? kMaxIova : s + len - 1;
        if (o.disjoint(s, l)) {
          const std::uint32_t src = w.below(4) == 0 ? kReservedPiece : static_cast<std::uint32_t>(w.below(3));
          SpaceEntry e{s, l, src, w.below(1000), 1};
          t.insert(e);
          o.m[s] = e;
        }
      } else if (op < 7) {  // erase an existing interval, or a missing key
        if (!o.m.empty() && w.below(8) != 0) {
          auto it = o.m.begin();
          std::advance(it, static_cast<long>(w.below(o.m.size())));
          if (w.below(2)) {
            EXPECT_TRUE(t.erase(it->first));
          } else {  // the unmap fast path: only an exact area goes
            SpaceNode gone;
            const bool area = it->second.source != kReservedPiece;
            if (it->second.last != kMaxIova) {  // not exactly that interval: nothing changes
              EXPECT_FALSE(t.erase_area(it->first, it->second.last + 1, &gone));
              ASSERT_EQ(t.verify(), o.m.size());
            }
            EXPECT_EQ(t.erase_area(it->first, it->second.last, &gone), area);
            if (!area) {
              ASSERT_EQ(t.verify(), o.m.size());
              EXPECT_TRUE(t.erase(it->first));
            } else {
              EXPECT_EQ(gone.start, it->second.start);
              EXPECT_EQ(gone.last, it->second.last);
              EXPECT_EQ(gone.offset, it->second.offset);
            }
          }
          o.m.erase(it);
        } else {
          u64 k = w.coord();
          EXPECT_EQ(t.erase(k), o.m.erase(k) == 1);
        }
      } else if (op < 8) {  // shrink, or grow up to the next interval
        if (!o.m.empty()) {
          auto it = o.m.begin();
          std::advance(it, static_cast<long>(w.below(o.m.size())));
          const u64 last = it->second.last;
          const auto after = std::next(it);
          const u64 room = after != o.m.end() ? after->first - 1 - last : std::min<u64>(kMaxIova - last, 64);
          u64 nl = w.below(2) ? it->second.start + w.below(last - it->second.start + 1) : last + w.below(room + 1);
          t.set_last(it->first, nl);
          it->second.last = nl;
        }
      } else if (op < 9) {  // point queries
        u64 x = w.coord();
        expect_same(t.find(x), o.find(x));
        expect_same(t.first_from(x), o.first_from(x));
      } else if (holes == SpaceTree::Holes::kUntracked) {
        EXPECT_EQ(t.size(), o.m.size());
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
    // Drain: every erase keeps the shape valid down to the empty tree.
    while (!o.m.empty()) {
      auto it = o.m.begin();
      std::advance(it, static_cast<long>(w.below(o.m.size())));
      ASSERT_TRUE(t.erase(it->first));
      o.m.erase(it);
      ASSERT_EQ(t.verify(), o.m.size());
    }
    EXPECT_EQ(t.node_count(), 0u);
    EXPECT_EQ(t.height(), 0u);
  }
}

TEST(SpaceTree, RandomOpsMatchBruteForceOracle) { random_ops_match_oracle(false); }

TEST(SpaceTree, NeighbouringOpsMatchBruteForceOracle) { random_ops_match_oracle(true); }

TEST(SpaceTree, UntrackedHolesRandomOpsMatchBruteForceOracle) {
  random_ops_match_oracle(false, SpaceTree::Holes::kUntracked);
}

TEST(SpaceTree, UntrackedHolesNeighbouringOpsMatchBruteForceOracle) {
  random_ops_match_oracle(true, SpaceTree::Holes::kUntracked);
}

// Untracked holes: the fences still follow every change of a leaf's ends
// (first and last interval of the tree, and inside it; verify() checks
// them), and lookups find what is there.
TEST(SpaceTree, UntrackedHolesKeepTheFencesOnly) {
  SpaceTree t(4, 4, SpaceTree::Holes::kUntracked);
  for (u64 i = 0; i < 64; ++i) t.insert(SpaceEntry{i * 16, i * 16 + 7, 0, i, 1});
  ASSERT_GT(t.height(), 1u);
  ASSERT_EQ(t.verify(), 64u);
  EXPECT_TRUE(t.erase(8 * 16));
  t.insert(SpaceEntry{8 * 16 + 2, 8 * 16 + 9, 0, 0, 1});
  t.set_last(0, 3);
  t.set_last(63 * 16, 63 * 16 + 15);
  EXPECT_TRUE(t.erase(0));
  ASSERT_EQ(t.verify(), 63u);
  EXPECT_EQ(t.first()->start, 16u);
  EXPECT_EQ(t.last_node()->last, 63u * 16 + 15);
  EXPECT_EQ(t.find(8 * 16 + 9)->start, 8u * 16 + 2);
  EXPECT_EQ(t.find(8 * 16 + 1), nullptr);
}

TEST(SpaceTreeDeathTest, UntrackedHolesRefuseAGapSearch) {
  SpaceTree t(4, 4, SpaceTree::Holes::kUntracked);
  t.insert(SpaceEntry{16, 31, 0, 0, 1});
  EXPECT_DEATH((void)t.lowest_fit(0, kMaxIova, 1, 1, 0), "does not track its holes");
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

TEST(SpaceTree, SetLastGrowsUpToTheNextInterval) {
  SpaceTree t(3, 3);
  for (u64 i = 0; i < 20; ++i) t.insert(SpaceEntry{i * 100, i * 100 + 9, 0, 0, 0});
  t.set_last(500, 599);  // up to the next start: the hole after it is gone
  EXPECT_EQ(t.verify(), 20u);
  EXPECT_EQ(t.find(599)->start, u64{500});
  EXPECT_EQ(t.lowest_fit(500, kMaxIova, 90, 1, 0), u64{610});
  EXPECT_DEATH(t.set_last(500, 600), "would overlap the next interval");
}

TEST(SpaceTree, CopyIsIndependent) {
  SpaceTree t(3, 3);
  for (u64 i = 0; i < 20; ++i) t.insert(SpaceEntry{i * 4, i * 4 + 1, 0, i, 0});
  SpaceTree c = t;
  ASSERT_TRUE(c.erase(8));
  EXPECT_EQ(t.verify(), 20u);
  EXPECT_EQ(c.verify(), 19u);
  EXPECT_NE(t.find(8), nullptr);
  EXPECT_EQ(c.find(8), nullptr);
}

TEST(SpaceTree, CopyAndMoveAssignmentKeepBothTreesValid) {
  SpaceTree t(3, 3), u(4, 4);
  for (u64 i = 0; i < 50; ++i) t.insert(SpaceEntry{i * 4, i * 4 + 1, 0, i, 0});
  u.insert(SpaceEntry{7, 7, 0, 0, 0});
  u = t;
  ASSERT_TRUE(u.erase(8));  // the copy's finger must not point into t
  ASSERT_TRUE(t.erase(12));
  EXPECT_EQ(t.verify(), 49u);
  EXPECT_EQ(u.verify(), 49u);
  EXPECT_NE(t.find(8), nullptr);
  EXPECT_NE(u.find(12), nullptr);
  SpaceTree m(std::move(u));
  EXPECT_EQ(u.verify(), 0u);
  EXPECT_EQ(m.verify(), 49u);
  u = std::move(m);
  EXPECT_EQ(m.verify(), 0u);
  ASSERT_TRUE(u.erase(16));
  EXPECT_EQ(u.verify(), 48u);
  u.insert(SpaceEntry{8, 9, 0, 0, 0});
  EXPECT_EQ(u.verify(), 49u);
}

TEST(SpaceTree, SequentialInsertStaysBalanced) {
  SpaceTree t;
  for (u64 i = 0; i < 100000; ++i) t.insert(SpaceEntry{i * 2, i * 2, 0, 0, 0});
  EXPECT_EQ(t.verify(), 100000u);  // verify() checks fill and depth of every node
  EXPECT_LE(t.height(), 4u);        // 6250 full leaves under 16-way inner nodes
  for (u64 i = 0; i < 100000; i += 2) ASSERT_TRUE(t.erase(i * 2));
  EXPECT_EQ(t.verify(), 50000u);
  for (u64 i = 100000; i-- > 0;) t.erase(i * 2);
  EXPECT_EQ(t.verify(), 0u);
  EXPECT_EQ(t.node_count(), 0u);
}

TEST(SpaceTree, DescendingInsertHalvesNodes) {
  SpaceTree t(4, 4);
  for (u64 i = 200; i-- > 0;) {
    t.insert(SpaceEntry{i * 3, i * 3 + 1, 0, 0, 0});
    ASSERT_EQ(t.verify(), 200 - i);
  }
  for (unsigned n : t.leaf_sizes()) EXPECT_GE(n, 2u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 1, 1, 0), u64{2});
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 2, 1, 0), u64{599});  // the tail
}

TEST(SpaceTree, NodeIsCompact) {
  EXPECT_EQ(sizeof(SpaceNode), 32u);
  // Full leaves and 16-way inner nodes: about 35 bytes per interval.
  SpaceTree t;
  for (u64 i = 0; i < 4096; ++i) t.insert(SpaceEntry{i * 2, i * 2, 0, 0, 0});
  EXPECT_EQ(t.verify(), 4096u);
  EXPECT_LE(t.pool_bytes(), 4096u * 36);
}

// ---- node shapes with 4-slot nodes (min fill 2) ----

u64 key(const SpaceNode* n) { return n ? n->start : ~u64{0}; }

std::vector<u64> starts(const SpaceTree& t) {
  std::vector<u64> out;
  for (const SpaceNode* n = t.first(); n; n = t.next(*n)) out.push_back(n->start);
  return out;
}

void add(SpaceTree& t, u64 s) { t.insert(SpaceEntry{s, s + 4, 0, 0, 0}); }

TEST(SpaceTree, AppendSplitKeepsTheLeftLeafFull) {
  SpaceTree t(4, 4);
  for (u64 i = 0; i < 5; ++i) add(t, i * 10);
  EXPECT_EQ(t.verify(), 5u);
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{4, 1}));
  EXPECT_EQ(t.height(), 1u);
  for (u64 i = 5; i < 17; ++i) add(t, i * 10);
  EXPECT_EQ(t.verify(), 17u);
  // The inner root split by an append too: 4 children + 1, under a new root.
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{4, 4, 4, 4, 1}));
  EXPECT_EQ(t.height(), 2u);
  EXPECT_EQ(t.node_count(), 5u + 2u + 1u);
}

TEST(SpaceTree, SplitInTheMiddleHalvesTheLeaf) {
  SpaceTree t(4, 4);
  for (u64 s : {0, 10, 20, 30}) add(t, s);
  add(t, 15);  // not an append: 5 slots become 2 + 3
  EXPECT_EQ(t.verify(), 5u);
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{2, 3}));
  EXPECT_EQ(starts(t), (std::vector<u64>{0, 10, 15, 20, 30}));
  EXPECT_EQ(key(t.find(17)), 15u);
  EXPECT_EQ(key(t.first_from(5)), 10u);
  EXPECT_EQ(key(t.first_from(25)), 30u);
  EXPECT_EQ(key(t.first_from(35)), ~u64{0});
}

TEST(SpaceTree, UnderfullLeafBorrowsFromItsRightSibling) {
  SpaceTree t(4, 4);
  for (u64 s : {0, 10, 20, 30}) add(t, s);
  add(t, 15);  // {0 10} {15 20 30}
  ASSERT_TRUE(t.erase(0));
  EXPECT_EQ(t.verify(), 4u);
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{2, 2}));
  EXPECT_EQ(starts(t), (std::vector<u64>{10, 15, 20, 30}));
  // The hole left by 0 is the head hole, outside every subtree.
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 10, 1, 0), u64{0});
}

TEST(SpaceTree, UnderfullLeafBorrowsFromItsLeftSibling) {
  SpaceTree t(4, 4);
  for (u64 s : {0, 10, 20, 30, 40}) add(t, s);  // {0 10 20 30} {40}
  add(t, 35);                                   // {0 10 20 30} {35 40}
  ASSERT_TRUE(t.erase(40));
  EXPECT_EQ(t.verify(), 5u);
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{2, 3}));
  EXPECT_EQ(starts(t), (std::vector<u64>{0, 10, 20, 30, 35}));
}

TEST(SpaceTree, SparseSiblingsMergeAndTheRootCollapses) {
  SpaceTree t(4, 4);
  for (u64 s : {0, 10, 20, 30}) add(t, s);
  add(t, 15);
  ASSERT_TRUE(t.erase(0));  // borrow: {10 15} {20 30}
  ASSERT_EQ(t.node_count(), 3u);
  ASSERT_TRUE(t.erase(10));  // 1 + 2 < 2 * min: merge, then the root has one child
  EXPECT_EQ(t.verify(), 3u);
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{3}));
  EXPECT_EQ(t.height(), 0u);
  EXPECT_EQ(t.node_count(), 1u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 15, 1, 0), u64{0});
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 16, 1, 0), u64{35});
}

TEST(SpaceTree, FirstOfAFullLeafGoesLastInThePreviousOne) {
  SpaceTree t(4, 4);
  for (u64 i = 0; i < 8; ++i) add(t, i * 10);  // {0 10 20 30} {40 50 60 70}
  ASSERT_TRUE(t.erase(30));                     // {0 10 20} {40 50 60 70}
  add(t, 26);                                   // first of the full right leaf
  EXPECT_EQ(t.verify(), 8u);
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{4, 4}));
  add(t, 33);  // both full now: split the right leaf
  EXPECT_EQ(t.verify(), 9u);
  EXPECT_EQ(t.leaf_sizes(), (std::vector<unsigned>{4, 2, 3}));
  EXPECT_EQ(starts(t), (std::vector<u64>{0, 10, 20, 26, 33, 40, 50, 60, 70}));
}

TEST(SpaceTree, InnerNodesMergeBorrowAndCollapse) {
  SpaceTree t(3, 3);
  for (u64 i = 0; i < 200; ++i) {
    add(t, i * 10);
    ASSERT_EQ(t.verify(), i + 1);
  }
  const unsigned tall = t.height();
  EXPECT_GE(tall, 4u);
  // Erase from the front: inner nodes underflow along the left spine.
  for (u64 i = 0; i < 199; ++i) {
    ASSERT_TRUE(t.erase(i * 10));
    ASSERT_EQ(t.verify(), 199 - i);
    EXPECT_EQ(t.lowest_fit(0, kMaxIova, (i + 1) * 10, 1, 0), u64{0});
  }
  EXPECT_EQ(t.height(), 0u);
  EXPECT_EQ(t.node_count(), 1u);
  ASSERT_TRUE(t.erase(1990));
  EXPECT_EQ(t.verify(), 0u);
  EXPECT_EQ(t.node_count(), 0u);
}

// Random erases from trees filled in random order bring inner nodes that
// are neither the root nor on the rightmost spine down to exactly their
// minimum fill, (capacity + 1) / 2, which verify() must accept (and one
// fewer is a merge or a borrow). The count of states reached is printed.
TEST(SpaceTree, EraseBringsInnerNodesToExactlyMinimumFill) {
  for (Shape sh : kShapes) {
    if (sh.inner == 16) continue;
    const unsigned min = (sh.inner + 1) / 2;
    std::mt19937_64 rng(7 + sh.leaf * 3 + sh.inner);
    std::uint64_t at_min = 0, states = 0;
    for (int round = 0; round < 4; ++round) {
      SpaceTree t(sh.leaf, sh.inner);
      std::vector<u64> keys(400);
      for (u64 i = 0; i < keys.size(); ++i) keys[i] = i * 10;
      std::shuffle(keys.begin(), keys.end(), rng);
      for (u64 k : keys) add(t, k);
      ASSERT_EQ(t.verify(), keys.size());
      std::shuffle(keys.begin(), keys.end(), rng);
      for (std::size_t i = 0; i < keys.size(); ++i) {
        ASSERT_TRUE(t.erase(keys[i]));
        ASSERT_EQ(t.verify(), keys.size() - i - 1);
        const auto levels = t.inner_sizes();
        bool hit = false;
        for (std::size_t d = 1; d < levels.size(); ++d)
          for (std::size_t j = 0; j + 1 < levels[d].size(); ++j) hit = hit || levels[d][j] == min;
        at_min += hit;
        ++states;
      }
    }
    std::printf("leaf %u inner %u: %llu of %llu states with an inner node (not root, not rightmost) at min fill %u\n",
                sh.leaf, sh.inner, static_cast<unsigned long long>(at_min), static_cast<unsigned long long>(states), min);
    EXPECT_GT(at_min, 0u) << "leaf " << sh.leaf << " inner " << sh.inner << ": never at exactly min fill";
  }
}

TEST(SpaceTree, GapsBetweenLeavesAndBetweenSubtreesAreFound) {
  SpaceTree t(3, 3);
  for (u64 i = 0; i < 60; ++i) add(t, i * 5);  // contiguous [0, 299]
  EXPECT_EQ(t.verify(), 60u);
  EXPECT_EQ(t.lowest_fit(0, kMaxIova, 1, 1, 0), u64{300});
  // Every single hole, wherever it lands in the shape, is the lowest fit.
  for (u64 i = 1; i < 59; ++i) {
    ASSERT_TRUE(t.erase(i * 5));
    ASSERT_EQ(t.verify(), 59u);
    EXPECT_EQ(t.lowest_fit(0, kMaxIova, 5, 1, 0), i * 5);
    EXPECT_EQ(t.lowest_fit(0, kMaxIova, 6, 1, 0), u64{300});
    EXPECT_EQ(t.lowest_fit(i * 5 + 1, kMaxIova, 4, 1, 0), i * 5 + 1);  // clipped by lo
    EXPECT_EQ(t.lowest_fit(0, i * 5 + 3, 4, 1, 0), i * 5);            // clipped by hi
    EXPECT_EQ(t.lowest_fit(0, i * 5 + 3, 5, 1, 0), std::nullopt);
    add(t, i * 5);
    ASSERT_EQ(t.verify(), 60u);
  }
}

TEST(SpaceTree, AHoleWhoseLastByteIsTheWindowsFirstHoldsAOneByteFit) {
  // Holes of one byte between intervals, in leaves and between subtrees
  // (3-slot nodes: several levels): a window starting at a hole's only byte
  // finds it there, not in the next hole.
  SpaceTree t(3, 3);
  for (u64 i = 0; i < 60; ++i) t.insert(SpaceEntry{i * 4, i * 4 + 2, 0, i, 0});
  ASSERT_EQ(t.verify(), 60u);
  for (u64 i = 0; i < 59; ++i) {
    const u64 hole = i * 4 + 3;
    EXPECT_EQ(t.lowest_fit(hole, kMaxIova, 1, 1, 0), hole) << "the hole at " << hole;
    EXPECT_EQ(t.lowest_fit(hole, kMaxIova, 2, 1, 0), u64{239}) << "the hole at " << hole;  // the tail
  }
}

TEST(SpaceTree, ClearLeavesAnEmptyTreeWithNoNodes) {
  SpaceTree t(3, 3);
  for (u64 i = 0; i < 40; ++i) t.insert(SpaceEntry{i * 4, i * 4 + 1, 0, i, 0});
  ASSERT_GT(t.node_count(), 1u);
  t.clear();
  EXPECT_EQ(t.node_count(), 0u);
  EXPECT_EQ(t.pool_bytes(), 0u);
  EXPECT_EQ(t.verify(), 0u);
  t.insert(SpaceEntry{8, 9, 0, 0, 0});
  EXPECT_EQ(t.verify(), 1u);
  EXPECT_EQ(t.node_count(), 1u);
}

TEST(SpaceTree, MapUnmapCycleDoesNotSplitOrMerge) {
  // The benchmark's loop: one hole in a run of full leaves, filled and
  // emptied again; the node count must not move, even when the hole is the
  // last slot of a leaf and the next leaf is full (80 * 5 starts a leaf).
  SpaceTree t;
  for (u64 i = 0; i < 1000; ++i) add(t, i * 5);
  for (u64 h : {u64{500}, u64{80 * 5}, u64{79 * 5}, u64{16 * 5}}) {
    ASSERT_TRUE(t.erase(h));
    const std::size_t nodes = t.node_count();
    for (int k = 0; k < 3; ++k) {
      ASSERT_EQ(t.lowest_fit(0, kMaxIova, 5, 1, 0), h);
      add(t, h);
      ASSERT_TRUE(t.erase(h));
      ASSERT_EQ(t.verify(), 999u);
      EXPECT_EQ(t.node_count(), nodes);
    }
    add(t, h);
  }
}

// t holds `count` contiguous 5-byte intervals but for the ones at `holes`
// (5 bytes each, in ascending order): fills the holes one at a time, in
// every rotation of their order, checking after each fill that the lowest
// 5-byte fit is the lowest hole still open and that the tree verifies,
// then reopens them all.
void FillAndReopenInEveryOrder(SpaceTree& t, std::span<const u64> holes, u64 count) {
  for (std::size_t order = 0; order < holes.size(); ++order) {
    std::vector<u64> open(holes.begin(), holes.end());
    std::rotate(open.begin(), open.begin() + static_cast<std::ptrdiff_t>(order), open.end());
    while (!open.empty()) {
      ASSERT_EQ(t.lowest_fit(0, kMaxIova, 5, 1, 0), *std::min_element(open.begin(), open.end()));
      add(t, open.back());
      open.pop_back();
      ASSERT_EQ(t.verify(), count - open.size());
    }
    EXPECT_EQ(t.lowest_fit(0, kMaxIova, 5, 1, 0), count * 5);  // only the tail is left
    for (u64 h : holes) ASSERT_TRUE(t.erase(h));
    ASSERT_EQ(t.verify(), count - holes.size());
  }
}

TEST(SpaceTree, FillingOneOfALeafsHolesKeepsTheOthersFindable) {
  // A leaf with several holes of one size: filling one of them must leave
  // the others' size in the leaf's max gap (an insert that fills a leaf's
  // largest hole rescans unless no other hole is left), and filling the
  // last one must bring it to 0. Holes at both ends of the leaf and inside
  // it, filled and reopened in every order.
  SpaceTree t;
  for (u64 i = 0; i < 64; ++i) add(t, i * 5);  // contiguous 5-byte intervals: 4 full leaves
  const u64 holes[] = {16 * 5, 18 * 5, 21 * 5, 31 * 5};  // first, inside, inside, last of the 2nd leaf
  for (u64 h : holes) ASSERT_TRUE(t.erase(h));
  ASSERT_EQ(t.verify(), 60u);
  FillAndReopenInEveryOrder(t, holes, 64);
}

TEST(SpaceTree, FillingOneOfASubtreesHolesKeepsTheOthersFindable) {
  // The same across inner nodes (4-slot nodes, three inner levels): holes
  // in different leaves and subtrees, filled and reopened in every order.
  // When the hole that was a node's largest is filled, the node's largest
  // is another child's, or 0 once none is left (an inner node counts its
  // non-zero reach slots to know that without a scan).
  SpaceTree t(4, 4);
  for (u64 i = 0; i < 200; ++i) add(t, i * 5);
  ASSERT_GE(t.height(), 3u);
  const u64 holes[] = {3 * 5, 41 * 5, 42 * 5, 120 * 5, 197 * 5};
  for (u64 h : holes) ASSERT_TRUE(t.erase(h));
  ASSERT_EQ(t.verify(), 195u);
  FillAndReopenInEveryOrder(t, holes, 200);
}

TEST(SpaceTree, HolesOfManySizesInsideLeavesGrowAndShrink) {
  // Holes strictly inside leaves (each leaf keeps its first and last
  // interval, so no fence moves and no leaf drops below min fill), of
  // sizes 5 to 20 bytes, in leaves under different subtrees of a tall
  // tree: intervals come and go one at a time, so a node's largest hole
  // grows, shrinks while another one is left, or goes away, at every
  // level. After each step every invariant holds and the gap search finds
  // the first hole of each size, as a scan of the intervals says.
  SpaceTree t(8, 3);
  constexpr u64 kCount = 400;
  for (u64 i = 0; i < kCount; ++i) add(t, i * 5);
  ASSERT_GE(t.height(), 3u);
  std::vector<u64> movable;
  for (u64 leaf : {u64{2}, u64{13}, u64{14}, u64{27}, u64{44}})
    for (u64 k = 2; k <= 5; ++k) movable.push_back((leaf * 8 + k) * 5);
  std::set<u64> present;
  for (u64 i = 0; i < kCount; ++i) present.insert(i * 5);
  std::uint64_t rng = 12345;
  for (int step = 0; step < 3000; ++step) {
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    const u64 s = movable[(rng >> 33) % movable.size()];
    if (present.erase(s)) {
      ASSERT_TRUE(t.erase(s));
    } else {
      add(t, s);
      present.insert(s);
    }
    ASSERT_EQ(t.verify(), present.size());
    for (u64 len : {u64{5}, u64{10}, u64{15}, u64{20}}) {
      u64 want = kCount * 5;  // the tail after the last interval
      u64 end = 0;            // one past the previous interval
      for (u64 p : present) {
        if (p - end >= len) {
          want = end;
          break;
        }
        end = p + 5;
      }
      ASSERT_EQ(t.lowest_fit(0, kMaxIova, len, 1, 0), want) << "step " << step << " len " << len;
    }
  }
}

}  // namespace
}  // namespace ioas::impl
