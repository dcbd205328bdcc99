// bench/avl_space_tree.cpp: the pre-B+tree AVL space tree (see the header).
#include "avl_space_tree.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "ioas/core/check.hpp"

namespace ioas::bench_avl {

SpaceTree::SpaceTree(unsigned chunk_bits)
    : chunk_bits_(chunk_bits), chunk_mask_((Idx{1} << chunk_bits) - 1) {
  IOAS_CHECK(chunk_bits >= 1 && chunk_bits <= 20, "pool chunk size out of range");
}

SpaceTree::SpaceTree(const SpaceTree& o)
    : chunk_bits_(o.chunk_bits_), chunk_mask_(o.chunk_mask_), next_slot_(o.next_slot_),
      free_(o.free_), free_count_(o.free_count_), root_(o.root_), size_(o.size_) {
  const std::size_t per = std::size_t{1} << chunk_bits_;
  for (const auto& c : o.chunks_) {
    chunks_.emplace_back(new SpaceNode[per]);
    std::copy(c.get(), c.get() + per, chunks_.back().get());
  }
}

SpaceTree& SpaceTree::operator=(const SpaceTree& o) {
  if (this != &o) {
    SpaceTree copy(o);
    *this = std::move(copy);
  }
  return *this;
}

void SpaceTree::clear() {
  chunks_.clear();
  next_slot_ = 1;
  free_ = 0;
  free_count_ = 0;
  root_ = 0;
  size_ = 0;
}

SpaceTree::Idx SpaceTree::alloc() {
  if (free_ != 0) {
    Idx i = free_;
    free_ = at(i).left;
    --free_count_;
    return i;
  }
  if ((next_slot_ >> chunk_bits_) >= chunks_.size()) {
    IOAS_CHECK(next_slot_ != 0, "space tree: more than 2^32 nodes");
    chunks_.emplace_back(new SpaceNode[std::size_t{1} << chunk_bits_]);
  }
  return next_slot_++;
}

void SpaceTree::release(Idx i) {
  at(i) = SpaceNode{};
  at(i).left = free_;
  free_ = i;
  ++free_count_;
}

void SpaceTree::pull(Idx i) {
  SpaceNode& n = at(i);
  n.height = static_cast<std::uint8_t>(1 + std::max(height(n.left), height(n.right)));
  n.max_gap = std::max({n.gap, max_gap(n.left), max_gap(n.right)});
}

SpaceTree::Idx SpaceTree::rotate_right(Idx i) {
  Idx l = at(i).left;
  at(i).left = at(l).right;
  at(l).right = i;
  pull(i);
  pull(l);
  return l;
}

SpaceTree::Idx SpaceTree::rotate_left(Idx i) {
  Idx r = at(i).right;
  at(i).right = at(r).left;
  at(r).left = i;
  pull(i);
  pull(r);
  return r;
}

// Gaps are properties of in-order neighbours, so rotations (which keep the
// in-order sequence) never change a node's gap, only the max_gap of the two
// rotated nodes, which pull() recomputes.
SpaceTree::Idx SpaceTree::rebalance(Idx i) {
  pull(i);
  const SpaceNode& n = at(i);
  int bal = height(n.left) - height(n.right);
  if (bal > 1) {
    Idx l = n.left;
    if (height(at(l).left) < height(at(l).right)) at(i).left = rotate_left(l);
    return rotate_right(i);
  }
  if (bal < -1) {
    Idx r = n.right;
    if (height(at(r).right) < height(at(r).left)) at(i).right = rotate_right(r);
    return rotate_left(i);
  }
  return i;
}

// A new interval always lands as a leaf, so its in-order neighbours are
// ancestors: the predecessor is the deepest ancestor where the descent went
// right (passed down as `pred`), the successor the deepest ancestor where it
// went left. The successor's gap shrinks to succ.start - new.last - 1; it is
// fixed on the way back up, at the first frame that went left, before that
// frame recomputes its max_gap.
namespace {
struct InsertState {
  bool succ_pending = false;
  u64 new_last = 0;
  // The subtree just returned from may differ from before (height, max_gap
  // or root). Once a subtree comes back unchanged and no gap was fixed in
  // the current frame, no ancestor can change: their pulls are skipped.
  bool changed = false;
};
thread_local InsertState g_ins;

}  // namespace

SpaceTree::Idx SpaceTree::insert_rec(Idx i, Idx n, const SpaceNode* pred) {
  if (i == 0) {
    SpaceNode& nn = at(n);
    nn.gap = pred ? nn.start - pred->last - 1 : nn.start;
    nn.max_gap = nn.gap;
    nn.height = 1;
    g_ins.succ_pending = true;
    g_ins.new_last = nn.last;
    g_ins.changed = true;
    return n;
  }
  SpaceNode& cur = at(i);
  bool need;
  if (at(n).start < cur.start) {
    IOAS_CHECK(at(n).last < cur.start, "space tree insert: overlaps an interval");
    Idx l = insert_rec(cur.left, n, pred);
    at(i).left = l;
    need = g_ins.changed;
    if (g_ins.succ_pending) {
      at(i).gap = at(i).start - g_ins.new_last - 1;
      g_ins.succ_pending = false;
      need = true;
    }
  } else {
    IOAS_CHECK(at(n).start > cur.last, "space tree insert: overlaps an interval");
    Idx r = insert_rec(cur.right, n, &at(i));
    at(i).right = r;
    need = g_ins.changed;
  }
  if (!need) return i;
  return rebalance_changed(i, g_ins.changed);
}

// The common case of the way back up after an insert or erase: no rotation,
// so read each child once and update height and max_gap in place.
SpaceTree::Idx SpaceTree::rebalance_changed(Idx i, bool& changed) {
  SpaceNode& n = at(i);
  const SpaceNode* l = n.left ? &at(n.left) : nullptr;
  const SpaceNode* r = n.right ? &at(n.right) : nullptr;
  const int lh = l ? l->height : 0, rh = r ? r->height : 0;
  if (lh - rh > 1 || rh - lh > 1) {
    changed = true;
    return rebalance(i);
  }
  const auto h = static_cast<std::uint8_t>(1 + std::max(lh, rh));
  const u64 mg = std::max({n.gap, l ? l->max_gap : 0, r ? r->max_gap : 0});
  changed = h != n.height || mg != n.max_gap;
  n.height = h;
  n.max_gap = mg;
  return i;
}

void SpaceTree::insert(const SpaceEntry& e) {
  IOAS_CHECK(e.start <= e.last, "space tree insert: start > last");
  Idx n = alloc();
  SpaceNode& nn = at(n);
  nn = SpaceNode{};
  nn.start = e.start;
  nn.last = e.last;
  nn.offset = e.offset;
  nn.source = e.source;
  nn.prot = e.prot;
  g_ins = InsertState{};
  root_ = insert_rec(root_, n, nullptr);
  ++size_;
}

SpaceTree::Idx SpaceTree::erase_min(Idx i, Idx& min_out) {
  if (at(i).left == 0) {
    min_out = i;
    return at(i).right;
  }
  Idx l = erase_min(at(i).left, min_out);
  at(i).left = l;
  return rebalance(i);
}

SpaceTree::Idx SpaceTree::add_gap_to_min(Idx i, u64 delta) {
  if (at(i).left == 0) {
    at(i).gap += delta;
  } else {
    Idx l = add_gap_to_min(at(i).left, delta);
    at(i).left = l;
  }
  pull(i);
  return i;
}

SpaceTree::Idx SpaceTree::add_gap_at(Idx i, u64 key, u64 delta) {
  IOAS_CHECK(i != 0, "space tree: add_gap_at of a missing key");
  SpaceNode& n = at(i);
  if (key < n.start) {
    Idx l = add_gap_at(n.left, key, delta);
    at(i).left = l;
  } else if (key > n.start) {
    Idx r = add_gap_at(n.right, key, delta);
    at(i).right = r;
  } else {
    n.gap += delta;
  }
  pull(i);
  return i;
}

// Removing x merges the hole before x, x itself and the hole after x into
// the successor's gap: succ.gap' = succ.gap + x.gap + len(x) (which is
// succ.start - pred.last - 1, or succ.start when x was first). The successor
// is the minimum of x's right subtree when there is one, else the deepest
// ancestor where the descent went left (`pending` until found).
SpaceTree::Idx SpaceTree::erase_rec(Idx i, u64 start, bool& found, bool& pending, u64& delta) {
  if (i == 0) {
    erase_changed_ = false;
    return 0;
  }
  SpaceNode& n = at(i);
  bool need;
  if (start < n.start) {
    Idx l = erase_rec(n.left, start, found, pending, delta);
    at(i).left = l;
    need = erase_changed_;
    if (pending) {
      at(i).gap += delta;
      pending = false;
      need = true;
    }
  } else if (start > n.start) {
    Idx r = erase_rec(n.right, start, found, pending, delta);
    at(i).right = r;
    need = erase_changed_;
  } else {
    if (erase_only_area_ && (!n.is_area() || n.last != erase_last_)) {
      erase_changed_ = false;  // not the interval asked for: change nothing
      return i;
    }
    erased_ = n;
    erase_changed_ = true;
    need = true;
    found = true;
    delta = n.gap + (n.last - n.start + 1);
    if (n.left == 0 || n.right == 0) {
      Idx child;
      if (n.right != 0) {
        child = add_gap_to_min(n.right, delta);
      } else {
        child = n.left;
        pending = true;
      }
      release(i);
      return child;
    }
    Idx m = 0;
    Idx r = erase_min(n.right, m);
    SpaceNode& nn = at(i);
    const SpaceNode& mm = at(m);
    nn.right = r;
    nn.start = mm.start;
    nn.last = mm.last;
    nn.offset = mm.offset;
    nn.source = mm.source;
    nn.prot = mm.prot;
    nn.gap = mm.gap + delta;
    release(m);
  }
  if (!need) return i;
  return rebalance_changed(i, erase_changed_);
}

bool SpaceTree::erase_area(u64 start, u64 last, SpaceNode* out) {
  erase_only_area_ = true;
  erase_last_ = last;
  bool found = false, pending = false;
  u64 delta = 0;
  root_ = erase_rec(root_, start, found, pending, delta);
  erase_only_area_ = false;
  if (found) {
    --size_;
    if (out) *out = erased_;
  }
  return found;
}

bool SpaceTree::erase(u64 start) {
  bool found = false, pending = false;
  u64 delta = 0;
  root_ = erase_rec(root_, start, found, pending, delta);
  if (found) --size_;
  return found;
}

void SpaceTree::set_last(u64 start, u64 last) {
  const SpaceNode* n = find(start);
  IOAS_CHECK(n && n->start == start && start <= last && last <= n->last,
             "space tree set_last: no such interval or it would grow");
  const u64 old_last = n->last;
  const SpaceNode* succ = next(*n);
  const_cast<SpaceNode*>(n)->last = last;  // no augment depends on last
  if (succ && old_last != last) root_ = add_gap_at(root_, succ->start, old_last - last);
}

const SpaceNode* SpaceTree::find(u64 x) const {
  Idx i = root_;
  while (i) {
    const SpaceNode& n = at(i);
    if (x < n.start) {
      i = n.left;
    } else if (x > n.last) {
      i = n.right;
    } else {
      return &n;
    }
  }
  return nullptr;
}

// Intervals are disjoint, so ordering by last equals ordering by start.
const SpaceNode* SpaceTree::first_from(u64 x) const {
  const SpaceNode* best = nullptr;
  Idx i = root_;
  while (i) {
    const SpaceNode& n = at(i);
    if (n.last >= x) {
      best = &n;
      i = n.left;
    } else {
      i = n.right;
    }
  }
  return best;
}

const SpaceNode* SpaceTree::last_node() const {
  if (!root_) return nullptr;
  Idx i = root_;
  while (at(i).right) i = at(i).right;
  return &at(i);
}

namespace {
// The candidate of SPEC's formula in the hole [hs, hl] clipped to [lo, hi].
std::optional<u64> try_hole(u64 hs, u64 hl, u64 lo, u64 hi, u64 len, u64 a, u64 off) {
  hs = std::max(hs, lo);
  hl = std::min(hl, hi);
  if (hs > hl) return std::nullopt;
  auto c = arith::hole_candidate(hs, hl, a, off, len);
  if (c.fits) return c.iova;
  return std::nullopt;
}
}  // namespace

std::optional<u64> SpaceTree::fit_rec(Idx i, u64 lo, u64 hi, u64 len, u64 a, u64 off) const {
  while (i) {
    const SpaceNode& n = at(i);
    // No hole in this subtree can hold len bytes.
    if (n.max_gap < len) return std::nullopt;
    // Holes of the left subtree end at or before n.start - 1; they can touch
    // [lo, hi] only if n.start - 1 >= lo, i.e. n.start > lo.
    if (n.start > lo && n.left && at(n.left).max_gap >= len) {
      if (auto r = fit_rec(n.left, lo, hi, len, a, off)) return r;
    }
    // The hole just before n: [n.start - gap, n.start - 1].
    if (n.gap >= len) {
      if (auto r = try_hole(n.start - n.gap, n.start - 1, lo, hi, len, a, off)) return r;
    }
    // Holes of the right subtree begin at n.last + 1 or later; they can
    // touch [lo, hi] only if n.last < hi.
    if (n.last >= hi) return std::nullopt;
    i = n.right;
  }
  return std::nullopt;
}

std::optional<u64> SpaceTree::lowest_fit(u64 lo, u64 hi, u64 len, u64 a, u64 off) const {
  if (lo > hi || len == 0) return std::nullopt;
  if (auto r = fit_rec(root_, lo, hi, len, a, off)) return r;
  // The hole after the last interval (the whole space when empty).
  const SpaceNode* tail = last_node();
  if (tail && tail->last == kMaxIova) return std::nullopt;
  u64 hs = tail ? tail->last + 1 : 0;
  return try_hole(hs, kMaxIova, lo, hi, len, a, off);
}

std::size_t SpaceTree::verify_rec(Idx i, const SpaceNode*& prev, u64& mg, int& h) const {
  if (i == 0) {
    mg = 0;
    h = 0;
    return 0;
  }
  const SpaceNode& n = at(i);
  u64 lmg, rmg;
  int lh, rh;
  std::size_t count = verify_rec(n.left, prev, lmg, lh);
  IOAS_CHECK(n.start <= n.last, "space tree verify: start > last");
  if (prev) {
    IOAS_CHECK(prev->start < n.start, "space tree verify: not sorted");
    IOAS_CHECK(prev->last < n.start, "space tree verify: intervals overlap");
    IOAS_CHECK(n.gap == n.start - prev->last - 1, "space tree verify: wrong gap");
  } else {
    IOAS_CHECK(n.gap == n.start, "space tree verify: wrong gap of the first interval");
  }
  prev = &n;
  count += 1 + verify_rec(n.right, prev, rmg, rh);
  IOAS_CHECK(n.max_gap == std::max({n.gap, lmg, rmg}), "space tree verify: wrong max_gap");
  IOAS_CHECK(n.height == 1 + std::max(lh, rh), "space tree verify: wrong height");
  IOAS_CHECK(lh - rh <= 1 && rh - lh <= 1, "space tree verify: unbalanced");
  mg = n.max_gap;
  h = n.height;
  return count;
}

std::size_t SpaceTree::verify() const {
  const SpaceNode* prev = nullptr;
  u64 mg;
  int h;
  std::size_t count = verify_rec(root_, prev, mg, h);
  IOAS_CHECK(count == size_, "space tree verify: size() disagrees with the nodes");
  IOAS_CHECK(count + free_count_ + 1 == next_slot_, "space tree verify: pool leaks slots");
  return count;
}

}  // namespace ioas::bench_avl
