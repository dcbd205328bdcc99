#include "space_tree.hpp"

#include <utility>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "ioas/core/check.hpp"

namespace ioas::impl {

// A leaf: `count` intervals in slot[0, count), sorted by start and disjoint
// (each last < the next start). Non-empty except transiently inside erase;
// at least leaf_min() full unless it is the root or on the rightmost spine.
// `holes` (in the padding before the slots; kept in a tree that tracks its
// holes, left as it falls otherwise) is the number of neighbouring pairs
// j-1, j with a hole between them: an insert that fills the leaf's largest
// hole learns the new largest without a rescan when no other hole is left.
struct SpaceTree::Leaf {
  std::uint32_t count = 0;
  std::uint32_t holes = 0;
  SpaceNode slot[kMaxSlots];
};

// An inner node: `count` children, in key order, one column per field so
// that the scans of a descent (hi) and of a gap search (reach) read
// consecutive words. For child i:
//   lo[i]    = start of the first interval of its subtree
//   hi[i]    = last of the last interval of its subtree (the descent key)
//   gap[i]   = the largest hole between two neighbouring intervals both
//              inside its subtree (0 when there is none)
//   reach[i] = max(gap[i], lo[i] - hi[i-1] - 1), the largest hole inside
//              child i or just before it (reach[0] = gap[0])
// so [lo, hi] ascend and are disjoint, and the largest hole of the node is
// the max of reach. At least 2 children at the root; at least inner_min()
// elsewhere except on the rightmost spine. `reaching` (in the padding; kept
// in a tree that tracks its holes) is the number of non-zero reach[i]: a
// fix-up that takes the node's largest hole away learns that none is left
// without a scan of the column.
struct SpaceTree::Inner {
  std::uint32_t count = 0;
  std::uint32_t reaching = 0;
  u64 hi[kMaxSlots];
  u64 lo[kMaxSlots];
  u64 gap[kMaxSlots];
  u64 reach[kMaxSlots];
  void* child[kMaxSlots];
};

static_assert(sizeof(SpaceTree::Leaf) == 520 && sizeof(SpaceTree::Inner) == 648,
              "node sizes are part of the memory budget (<= 64 B per area)");
static_assert(std::is_trivially_copyable_v<SpaceNode>);

namespace {

using Leaf = SpaceTree::Leaf;
using Inner = SpaceTree::Inner;
using Sum = SpaceTree::Summary;

// One inner slot in transit (split, insert of a new child).
struct ChildSlot {
  Sum sum;
  void* child;
};

Leaf* as_leaf(void* n) { return static_cast<Leaf*>(n); }
Inner* as_inner(void* n) { return static_cast<Inner*>(n); }

// Slot moves (memmove semantics, so source and destination may overlap),
// and single-slot writes, for both node kinds.
void move_slots(Leaf* d, unsigned di, const Leaf* s, unsigned si, unsigned n) {
  std::memmove(&d->slot[di], &s->slot[si], n * sizeof(SpaceNode));
}
void move_slots(Inner* d, unsigned di, const Inner* s, unsigned si, unsigned n) {
  std::memmove(&d->hi[di], &s->hi[si], n * sizeof(u64));
  std::memmove(&d->lo[di], &s->lo[si], n * sizeof(u64));
  std::memmove(&d->gap[di], &s->gap[si], n * sizeof(u64));
  std::memmove(&d->reach[di], &s->reach[si], n * sizeof(u64));
  std::memmove(&d->child[di], &s->child[si], n * sizeof(void*));
}
void put(Leaf* n, unsigned i, const SpaceNode& v) { n->slot[i] = v; }
void put(Inner* n, unsigned i, const ChildSlot& v) {
  n->lo[i] = v.sum.lo;
  n->hi[i] = v.sum.hi;
  n->gap[i] = v.sum.max_gap;
  n->child[i] = v.child;
}

// Recomputes reach[i] (after lo[i], gap[i] or hi[i-1] changed).
void set_reach(Inner* n, unsigned i) {
  n->reach[i] = i == 0 ? n->gap[0] : std::max(n->gap[i], arith::gap_bytes(n->hi[i - 1], n->lo[i]));
}
// The holes between neighbouring slots of leaf l, counted.
unsigned count_holes(const Leaf* l) {
  unsigned k = 0;
  for (unsigned j = 1; j < l->count; ++j) k += l->slot[j - 1].last + 1 != l->slot[j].start;
  return k;
}
// Recomputes what a node derives from its own slots after they moved in
// bulk (split, merge, borrow): an inner node's reach column, a leaf's holes.
// set_reach(n, i) for a reach[i] that was up to date before its inputs
// changed, keeping `reaching`.
void update_reach(Inner* n, unsigned i) {
  const bool was = n->reach[i] != 0;
  set_reach(n, i);
  n->reaching = n->reaching + unsigned{n->reach[i] != 0} - unsigned{was};
}
unsigned count_reaching(const Inner* n) {
  unsigned k = 0;
  for (unsigned i = 0; i < n->count; ++i) k += n->reach[i] != 0;
  return k;
}
void set_reaches(Inner* n) {
  for (unsigned i = 0; i < n->count; ++i) set_reach(n, i);
  n->reaching = count_reaching(n);
}
void set_reaches(Leaf* l) { l->holes = count_holes(l); }
void set_slot(Inner* n, unsigned i, const Sum& s) {
  n->lo[i] = s.lo;
  n->hi[i] = s.hi;
  n->gap[i] = s.max_gap;
}

template <typename N, typename T>
void insert_slot(N* n, unsigned pos, const T& v) {
  move_slots(n, pos + 1, n, pos, n->count - pos);
  put(n, pos, v);
  ++n->count;
}

template <typename N>
void erase_slot(N* n, unsigned pos) {
  move_slots(n, pos, n, pos + 1, n->count - pos - 1);
  --n->count;
}

// The first slot of leaf l whose last >= x (l->count when none). The scans
// of a leaf step a pointer: an unsigned index times the 32-byte slot is
// widened and shifted again at every step.
unsigned lower(const Leaf* l, u64 x) {
  const SpaceNode* p = l->slot;
  const SpaceNode* const end = p + l->count;
  while (p != end && p->last < x) ++p;
  return static_cast<unsigned>(p - l->slot);
}

// The hole [hs, hl] clipped to [lo, hi], then SPEC's candidate in it.
std::optional<u64> try_hole(u64 hs, u64 hl, u64 lo, u64 hi, u64 len, u64 a, u64 off) {
  const auto in = arith::range_intersect(hs, hl, lo, hi);
  if (in.start > in.last) return std::nullopt;
  auto c = arith::hole_candidate(in.start, in.last, a, off, len);
  if (c.fits) return c.iova;
  return std::nullopt;
}

// What the parent slot of a node must say (precondition: count >= 1; for
// an inner node, its reach column is up to date). The maxima run as four
// independent chains: one chain of 16 dependent cmovs is the critical path
// of a fix-up otherwise.
Sum summarize(const Leaf* l) {
  u64 m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  const SpaceNode* const e = l->slot;
  const SpaceNode* const end = e + l->count;
  const SpaceNode* p = e + 1;
  for (; end - p > 3; p += 4) {
    m0 = std::max(m0, arith::gap_bytes(p[-1].last, p[0].start));
    m1 = std::max(m1, arith::gap_bytes(p[0].last, p[1].start));
    m2 = std::max(m2, arith::gap_bytes(p[1].last, p[2].start));
    m3 = std::max(m3, arith::gap_bytes(p[2].last, p[3].start));
  }
  for (; p < end; ++p) m0 = std::max(m0, arith::gap_bytes(p[-1].last, p[0].start));
  return Sum{e[0].start, end[-1].last, std::max(std::max(m0, m1), std::max(m2, m3))};
}
u64 max_reach(const Inner* in) {
  u64 m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  const u64* r = in->reach;
  const unsigned n = in->count;
  unsigned i = 0;
  for (; i + 3 < n; i += 4) {
    m0 = std::max(m0, r[i]);
    m1 = std::max(m1, r[i + 1]);
    m2 = std::max(m2, r[i + 2]);
    m3 = std::max(m3, r[i + 3]);
  }
  for (; i < n; ++i) m0 = std::max(m0, r[i]);
  return std::max(std::max(m0, m1), std::max(m2, m3));
}
Sum summarize(const Inner* n) { return Sum{n->lo[0], n->hi[n->count - 1], max_reach(n)}; }

}  // namespace

// ---------------------------------------------------------------- lifetime

SpaceTree::SpaceTree(unsigned leaf_slots, unsigned inner_slots, Holes holes)
    : leaf_slots_(leaf_slots), inner_slots_(inner_slots), track_holes_(holes == Holes::kTracked) {
  IOAS_CHECK(leaf_slots >= 3 && leaf_slots <= kMaxSlots && inner_slots >= 3 && inner_slots <= kMaxSlots,
             "space tree: node capacities must lie in [3, 16]");
}

// An insert takes its new nodes from the spares, which reserve_inserts()
// fills before anything changes: an insert that meets an exhausted heap
// throws std::bad_alloc with the tree as it was. One insert takes at most a
// leaf and one inner node per level plus a new root; k inserts in a row may
// raise the height by one each, hence k * (height + 2) inner nodes.
void SpaceTree::reserve_more(std::size_t k) {
  const std::size_t leaves = k, inners = k * (height_ + 2);
  spare_leaves_.reserve(leaves);
  spare_inners_.reserve(inners);
  while (spare_leaves_.size() < leaves) spare_leaves_.push_back(new Leaf());
  while (spare_inners_.size() < inners) spare_inners_.push_back(new Inner());
}
void SpaceTree::trim_spares() {
  while (spare_leaves_.size() > 1) {
    delete spare_leaves_.back();
    spare_leaves_.pop_back();
  }
  while (spare_inners_.size() > height_ + 2) {
    delete spare_inners_.back();
    spare_inners_.pop_back();
  }
  // After a reservation for many inserts, the lists' room goes too (8 bytes
  // per reserved node: a copy of a million areas would otherwise keep 28
  // bytes per area), and with it the spares left; the next insert reserves
  // again. Swapping with empty lists frees without allocating.
  constexpr std::size_t kRoomKept = 64;
  if (spare_leaves_.capacity() > kRoomKept || spare_inners_.capacity() > kRoomKept) {
    for (Leaf* l : spare_leaves_) delete l;
    for (Inner* n : spare_inners_) delete n;
    std::vector<Leaf*>().swap(spare_leaves_);
    std::vector<Inner*>().swap(spare_inners_);
  }
}
SpaceTree::Leaf* SpaceTree::new_leaf() {
  IOAS_CHECK(!spare_leaves_.empty(), "space tree: no spare leaf (reserve_inserts)");
  ++nodes_;
  Leaf* l = spare_leaves_.back();
  spare_leaves_.pop_back();
  return l;
}
SpaceTree::Inner* SpaceTree::new_inner() {
  IOAS_CHECK(!spare_inners_.empty(), "space tree: no spare inner node (reserve_inserts)");
  ++nodes_;
  Inner* n = spare_inners_.back();
  spare_inners_.pop_back();
  return n;
}
void SpaceTree::free_leaf(Leaf* l) {
  --nodes_;
  delete l;
}
void SpaceTree::free_inner(Inner* n) {
  --nodes_;
  delete n;
}

void SpaceTree::free_rec(void* n, unsigned depth) {
  if (depth == height_) {
    delete as_leaf(n);
    return;
  }
  Inner* in = as_inner(n);
  for (unsigned i = 0; i < in->count; ++i) free_rec(in->child[i], depth + 1);
  delete in;
}

void* SpaceTree::clone_rec(const void* n, unsigned depth) {
  if (depth == height_) return new Leaf(*static_cast<const Leaf*>(n));
  Inner* in = new Inner(*static_cast<const Inner*>(n));
  for (unsigned i = 0; i < in->count; ++i) in->child[i] = clone_rec(in->child[i], depth + 1);
  return in;
}

SpaceTree::SpaceTree(const SpaceTree& o)
    : leaf_slots_(o.leaf_slots_), inner_slots_(o.inner_slots_), track_holes_(o.track_holes_), height_(o.height_),
      size_(o.size_), nodes_(o.nodes_) {
  if (o.root_) root_ = clone_rec(o.root_, 0);
}

SpaceTree& SpaceTree::operator=(const SpaceTree& o) {
  if (this != &o) {
    SpaceTree copy(o);
    *this = std::move(copy);
  }
  return *this;
}

SpaceTree::SpaceTree(SpaceTree&& o) noexcept
    : leaf_slots_(o.leaf_slots_), inner_slots_(o.inner_slots_), track_holes_(o.track_holes_), root_(o.root_),
      height_(o.height_), size_(o.size_), nodes_(o.nodes_) {
  o.root_ = nullptr;
  o.height_ = 0;
  o.size_ = 0;
  o.nodes_ = 0;
  o.finger_leaf_ = nullptr;
}

SpaceTree& SpaceTree::operator=(SpaceTree&& o) noexcept {
  if (this != &o) {
    clear();
    leaf_slots_ = o.leaf_slots_;
    inner_slots_ = o.inner_slots_;
    track_holes_ = o.track_holes_;
    root_ = o.root_;
    height_ = o.height_;
    size_ = o.size_;
    nodes_ = o.nodes_;
    o.root_ = nullptr;
    o.height_ = 0;
    o.size_ = 0;
    o.nodes_ = 0;
    o.finger_leaf_ = nullptr;
  }
  return *this;
}

SpaceTree::~SpaceTree() {
  clear();
  for (Leaf* l : spare_leaves_) delete l;
  for (Inner* n : spare_inners_) delete n;
}

void SpaceTree::clear() {
  finger_leaf_ = nullptr;
  if (root_) free_rec(root_, 0);
  root_ = nullptr;
  height_ = 0;
  size_ = 0;
  nodes_ = 0;
}

std::size_t SpaceTree::pool_bytes() const { return nodes_ * sizeof(Leaf); }

std::vector<unsigned> SpaceTree::leaf_sizes() const {
  std::vector<unsigned> out;
  auto rec = [&](auto& self, void* n, unsigned depth) -> void {
    if (depth == height_) {
      out.push_back(as_leaf(n)->count);
      return;
    }
    for (unsigned i = 0; i < as_inner(n)->count; ++i) self(self, as_inner(n)->child[i], depth + 1);
  };
  if (root_) rec(rec, root_, 0);
  return out;
}

std::vector<std::vector<unsigned>> SpaceTree::inner_sizes() const {
  std::vector<std::vector<unsigned>> out(height_);
  auto rec = [&](auto& self, void* n, unsigned depth) -> void {
    if (depth == height_) return;
    out[depth].push_back(as_inner(n)->count);
    for (unsigned i = 0; i < as_inner(n)->count; ++i) self(self, as_inner(n)->child[i], depth + 1);
  };
  if (root_) rec(rec, root_, 0);
  return out;
}

// ---------------------------------------------------------------- descent

SpaceTree::Leaf* SpaceTree::descend(u64 x, Path* path) const {
  void* n = root_;
  for (unsigned d = 0; d < height_; ++d) {
    Inner* in = as_inner(n);
    // Every interval with last >= x that comes first in order lies in the
    // first child whose hi >= x; when none has, x is past everything and
    // the last child is where it would go.
    unsigned i = 0;
    while (i + 1 < in->count && in->hi[i] < x) ++i;
    if (path) path->step[d] = PathStep{in, i};
    n = in->child[i];
  }
  return as_leaf(n);
}

// The finger is the path of the last mutation's descent. It is reused when
// descend(x) would reach the same leaf, i.e. when the previous leaf ends
// below x (or there is none) and the leaf ends at or above x (or it is the
// last one): descend() takes the first leaf whose hi >= x, else the last.
// Slots and node pointers on the path stay put until a split, merge,
// borrow or collapse, which all clear the finger; fence values are re-read.
SpaceTree::Leaf* SpaceTree::locate(u64 x) {
  if (Leaf* l = finger_leaf_) {
    bool ok = true;
    if (x > l->slot[l->count - 1].last) {
      for (unsigned d = 0; d < height_ && ok; ++d) ok = finger_.step[d].slot + 1 == finger_.step[d].node->count;
    }
    if (ok) {
      for (unsigned d = height_; d > 0; --d) {
        const PathStep& st = finger_.step[d - 1];
        if (st.slot > 0) {
          ok = st.node->hi[st.slot - 1] < x;
          break;
        }
      }
    }
    if (ok) return l;
  }
  finger_leaf_ = descend(x, &finger_);
  return finger_leaf_;
}

void SpaceTree::fix_fences(Path& path, unsigned depth, u64 lo, u64 hi) {
  for (unsigned d = depth; d > 0; --d) {
    Inner* p = path.step[d - 1].node;
    const unsigned s = path.step[d - 1].slot;
    if (p->lo[s] == lo && p->hi[s] == hi) return;
    p->lo[s] = lo;
    p->hi[s] = hi;
    lo = p->lo[0];
    hi = p->hi[p->count - 1];
  }
}

void SpaceTree::fix_up(Path& path, unsigned depth, Summary sum) const {
  if (!track_holes_) {
    fix_fences(path, depth, sum.lo, sum.hi);
    return;
  }
  for (unsigned d = depth; d > 0; --d) {
    Inner* p = path.step[d - 1].node;
    const unsigned s = path.step[d - 1].slot;
    // The ancestors depend on this subtree only through (lo, hi, max_gap).
    if (p->lo[s] == sum.lo && p->hi[s] == sum.hi) {
      // Only the largest hole inside the child moved (a hole inside a leaf
      // made or filled): reach[s] alone changes, and p's largest hole
      // follows from reach[s]'s old and new values and the old largest,
      // with a scan of the column only when reach[s] held the largest and
      // went down while other holes are left.
      if (p->gap[s] == sum.max_gap) return;
      const u64 old = p->reach[s];
      const u64 now = s == 0 ? sum.max_gap : std::max(sum.max_gap, arith::gap_bytes(p->hi[s - 1], sum.lo));
      p->gap[s] = sum.max_gap;
      p->reach[s] = now;
      p->reaching = p->reaching + unsigned{now != 0} - unsigned{old != 0};
      if (d == 1) return;  // p is the root, which no slot describes
      const u64 before = path.step[d - 2].node->gap[path.step[d - 2].slot];
      const u64 mg = now >= before ? now : old < before ? before : p->reaching == 0 ? 0 : max_reach(p);
      sum = Summary{p->lo[0], p->hi[p->count - 1], mg};
      continue;
    }
    if (d == 1) {  // p is the root, which no slot describes
      const bool hi_moved = p->hi[s] != sum.hi;
      set_slot(p, s, sum);
      update_reach(p, s);
      if (hi_moved && s + 1 < p->count) update_reach(p, s + 1);
      return;
    }
    // p's largest hole before the change is what its own parent slot says.
    const u64 before = path.step[d - 2].node->gap[path.step[d - 2].slot];
    const unsigned t = s + 1 < p->count && p->hi[s] != sum.hi ? s + 1 : s;  // reach[t] may change too
    const u64 old_s = p->reach[s], old_t = p->reach[t];
    set_slot(p, s, sum);
    update_reach(p, s);
    if (t != s) update_reach(p, t);
    // The max of reach is still `before` or above unless a slot that held
    // it went down; only then scan the column, when any reach is left.
    const bool lost = (old_s == before && p->reach[s] < before) || (old_t == before && p->reach[t] < before);
    const u64 mg = !lost ? std::max({before, p->reach[s], p->reach[t]}) : p->reaching == 0 ? 0 : max_reach(p);
    sum = Summary{p->lo[0], p->hi[p->count - 1], mg};
  }
}

const SpaceNode* SpaceTree::find(u64 x) const {
  if (!root_) return nullptr;
  const Leaf* l = descend(x, nullptr);
  unsigned j = lower(l, x);
  if (j < l->count && l->slot[j].start <= x) return &l->slot[j];
  return nullptr;
}

// Intervals are disjoint, so ordering by last equals ordering by start.
const SpaceNode* SpaceTree::first_from(u64 x) const {
  if (!root_) return nullptr;
  const Leaf* l = descend(x, nullptr);
  unsigned j = lower(l, x);
  return j < l->count ? &l->slot[j] : nullptr;
}

const SpaceNode* SpaceTree::last_node() const {
  if (!root_) return nullptr;
  void* n = root_;
  for (unsigned d = 0; d < height_; ++d) n = as_inner(n)->child[as_inner(n)->count - 1];
  const Leaf* l = as_leaf(n);
  return &l->slot[l->count - 1];
}

// ---------------------------------------------------------------- insert

namespace {
// Splits the full node n (count == cap) while inserting v at pos: n keeps
// the lower part, r the upper part. An append at the end of the whole tree
// (`append`: pos == cap on the rightmost spine) keeps n full and starts r
// with v alone, so ascending inserts leave full nodes behind and only the
// rightmost spine holds fewer than min; otherwise the cap + 1 slots are
// halved, and both halves hold at least (cap + 1) / 2.
template <typename N, typename T>
N* split_insert(N* n, N* r, unsigned cap, unsigned pos, const T& v, bool append) {
  const unsigned left = append ? cap : (cap + 1) / 2;
  if (pos < left) {
    const unsigned moved = cap - (left - 1);
    move_slots(r, 0, n, left - 1, moved);
    r->count = moved;
    n->count = left - 1;
    insert_slot(n, pos, v);
  } else {
    const unsigned moved = cap - left;
    move_slots(r, 0, n, left, moved);
    r->count = moved;
    n->count = left;
    insert_slot(r, pos - left, v);
  }
  set_reaches(n);
  set_reaches(r);
  return r;
}
}  // namespace

void SpaceTree::insert(const SpaceEntry& e) {
  IOAS_CHECK(e.start <= e.last, "space tree insert: start > last");
  if (spare_leaves_.empty() || spare_inners_.size() < height_ + 1) reserve_inserts(1);
  SpaceNode v;
  v.start = e.start;
  v.last = e.last;
  v.offset = e.offset;
  v.source = e.source;
  v.prot = e.prot;
  v.pages_writable = e.pages_writable;
  if (!root_) {
    Leaf* l = new_leaf();
    l->slot[0] = v;
    l->count = 1;
    l->holes = 0;
    root_ = l;
    height_ = 0;
    size_ = 1;
    return;
  }
  Path& path = finger_;
  Leaf* l = locate(e.start);
  const unsigned j = lower(l, e.start);
  // Cond: the interval at j is the first with last >= start (the ones before
  // it, in this leaf or in earlier children, all end below start); the new
  // one fits iff it also ends before that one starts.
  IOAS_CHECK(j == l->count || e.last < l->slot[j].start, "space tree insert: overlaps an interval");
  ++size_;
  if (l->count < leaf_slots_) {
    insert_with_room(path, l, j, v);
    return;
  }
  // The leaf is full. If the new interval goes first in it, it may as well
  // go last in the previous leaf: do that when that leaf has room (a hole at
  // a leaf boundary filled and emptied again must not split and merge).
  if (j == 0 && insert_in_previous_leaf(path, v)) return;
  insert_with_split(path, l, j, v);
}

// v goes at j of the leaf l (on `path`), which has room.
void SpaceTree::insert_with_room(Path& path, Leaf* l, unsigned j, const SpaceNode& v) {
  insert_slot(l, j, v);
  if (!track_holes_) {
    if (height_ == 0) return;  // the root's summary is nobody's slot
    return fix_fences(path, height_, l->slot[0].start, l->slot[l->count - 1].last);
  }
  // v splits one hole (split) into the ones before and after it (a, b),
  // or, first or last in the leaf, brings the hole next to it inside.
  const unsigned c = l->count;
  const u64 a = j > 0 ? arith::gap_bytes(l->slot[j - 1].last, v.start) : 0;
  const u64 b = j + 1 < c ? arith::gap_bytes(v.last, l->slot[j + 1].start) : 0;
  const bool inside = j > 0 && j + 1 < c;
  const u64 split = inside ? arith::gap_bytes(l->slot[j - 1].last, l->slot[j + 1].start) : 0;
  const unsigned fresh = unsigned{a != 0} + unsigned{b != 0};
  l->holes = l->holes + fresh - unsigned{split != 0};
  if (height_ == 0) return;  // the root's summary is nobody's slot
  // The leaf's largest hole before the insert is what its parent slot
  // says. It is still there unless v split it; then, when a and b are the
  // only holes left, the largest is theirs, else a rescan finds it.
  const PathStep& up = path.step[height_ - 1];
  const u64 before = up.node->gap[up.slot];
  u64 mg;
  if (!inside || split < before)
    mg = std::max({before, a, b});
  else if (l->holes == fresh)
    mg = std::max(a, b);
  else
    mg = summarize(l).max_gap;
  fix_up(path, height_, Sum{l->slot[0].start, l->slot[c - 1].last, mg});
}

// v goes first in a full leaf (on `path`): it goes last in the previous
// leaf instead when that one has room. False when there is none or it is
// full (nothing changed then).
bool SpaceTree::insert_in_previous_leaf(const Path& path, const SpaceNode& v) {
  for (unsigned d = height_; d > 0; --d) {
    const PathStep& st = path.step[d - 1];
    if (st.slot == 0) continue;
    // The deepest point where the descent did not take the first child:
    // the previous leaf ends with that left sibling's hi.
    Path prev_path;
    Leaf* pl = descend(st.node->hi[st.slot - 1], &prev_path);
    if (pl->count < leaf_slots_) {
      insert_slot(pl, pl->count, v);
      set_reaches(pl);
      fix_up(prev_path, height_, summarize(pl));
      finger_ = prev_path;
      finger_leaf_ = pl;
      return true;
    }
    return false;
  }
  return false;
}

// v goes at j of the full leaf l (on `path`): split the leaf, then hand the
// new right node up, splitting full ancestors on the way, and the root
// last. The finger's path goes stale.
void SpaceTree::insert_with_split(Path& path, Leaf* l, unsigned j, const SpaceNode& v) {
  finger_leaf_ = nullptr;
  // j == count happens only in the last leaf of the tree: every other leaf
  // was chosen because its hi >= start.
  bool append = j == leaf_slots_;
  Leaf* r = split_insert(l, new_leaf(), leaf_slots_, j, v, append);
  Sum ls = summarize(l), rs = summarize(r);
  void* carry = r;
  for (unsigned d = height_; d > 0; --d) {
    Inner* p = path.step[d - 1].node;
    const unsigned s = path.step[d - 1].slot;
    set_slot(p, s, ls);
    const ChildSlot ns{rs, carry};
    if (p->count < inner_slots_) {
      insert_slot(p, s + 1, ns);
      set_reach(p, s);
      set_reach(p, s + 1);
      if (s + 2 < p->count) set_reach(p, s + 2);
      p->reaching = count_reaching(p);
      Sum ps = summarize(p);
      fix_up(path, d - 1, ps);
      return;
    }
    // Still on the rightmost spine iff the leaf split was an append and
    // the carried node lands at the end of p.
    append = append && s + 1 == inner_slots_;
    Inner* q = split_insert(p, new_inner(), inner_slots_, s + 1, ns, append);
    ls = summarize(p);
    rs = summarize(q);
    carry = q;
  }
  grow_root(ls, rs, carry);
}

// The root split into the old root (summarised by ls) and `right` (rs): a
// new root above the two.
void SpaceTree::grow_root(const Summary& ls, const Summary& rs, void* right) {
  IOAS_CHECK(height_ + 1 < kMaxHeight, "space tree: too tall");
  Inner* root = new_inner();
  put(root, 0, ChildSlot{ls, root_});
  put(root, 1, ChildSlot{rs, right});
  root->count = 2;
  set_reaches(root);
  root_ = root;
  ++height_;
}

// ---------------------------------------------------------------- erase

namespace {
// Children a and a + 1 of p, one of which holds fewer than min: merge them
// when together they hold fewer than 2 * min (then they fit in one node,
// since 2 * min - 1 <= cap), else share their slots evenly (then each holds
// at least min). Returns the node freed by a merge, or nullptr.
template <typename N>
N* merge_or_share(Inner* p, unsigned a, unsigned min) {
  N* A = static_cast<N*>(p->child[a]);
  N* B = static_cast<N*>(p->child[a + 1]);
  const unsigned total = A->count + B->count;
  if (total < 2 * min) {
    move_slots(A, A->count, B, 0, B->count);
    A->count = total;
    set_reaches(A);
    set_slot(p, a, summarize(A));
    erase_slot(p, a + 1);
    set_reaches(p);
    return B;
  }
  const unsigned want = total / 2;
  if (A->count < want) {  // borrow from the right
    const unsigned k = want - A->count;
    move_slots(A, A->count, B, 0, k);
    move_slots(B, 0, B, k, B->count - k);
    A->count += k;
    B->count -= k;
  } else if (A->count > want) {  // borrow from the left
    const unsigned k = A->count - want;
    move_slots(B, k, B, 0, B->count);
    move_slots(B, 0, A, want, k);
    A->count -= k;
    B->count += k;
  }
  set_reaches(A);
  set_reaches(B);
  set_slot(p, a, summarize(A));
  set_slot(p, a + 1, summarize(B));
  set_reaches(p);
  return nullptr;
}
}  // namespace

void SpaceTree::merge_or_borrow(Inner* p, unsigned s, unsigned depth) {
  const unsigned a = s > 0 ? s - 1 : s;  // the left one of the pair
  if (depth == height_) {
    if (Leaf* gone = merge_or_share<Leaf>(p, a, leaf_min())) free_leaf(gone);
  } else {
    if (Inner* gone = merge_or_share<Inner>(p, a, inner_min())) free_inner(gone);
  }
}

void SpaceTree::rebalance_after_erase(Path& path, void* node, unsigned count) {
  unsigned depth = height_;
  while (depth > 0) {
    Inner* p = path.step[depth - 1].node;
    const unsigned s = path.step[depth - 1].slot;
    const unsigned min = depth == height_ ? leaf_min() : inner_min();
    if (count >= min || (count > 0 && p->count == 1)) {
      // Full enough, or an only child (on the rightmost spine, where a
      // single slot is allowed): only the summaries above change.
      Sum sm = depth == height_ ? summarize(as_leaf(node)) : summarize(as_inner(node));
      fix_up(path, depth, sm);
      break;
    }
    if (p->count == 1) {  // the only child emptied: drop it, p empties too
      if (depth == height_) {
        free_leaf(as_leaf(node));
      } else {
        free_inner(as_inner(node));
      }
      p->count = 0;
    } else {
      merge_or_borrow(p, s, depth);
    }
    node = p;
    count = p->count;
    --depth;
  }
  // Root collapse: a root with one child hands the root over to it.
  while (height_ > 0 && as_inner(root_)->count == 1) {
    Inner* old = as_inner(root_);
    root_ = old->child[0];
    free_inner(old);
    --height_;
  }
  // A tree with inner nodes holds >= 2 intervals, so one erase cannot
  // empty it: the root keeps >= 2 children, or collapsed onto a non-empty
  // node.
  IOAS_CHECK(height_ == 0 ? as_leaf(root_)->count >= 1 : as_inner(root_)->count >= 2,
             "space tree erase: the root emptied");
}

void SpaceTree::erase_at(Path& path, Leaf* l, unsigned j) {
  const unsigned c = l->count;
  if (height_ > 0 && c - 1 >= leaf_min()) {
    // No rebalance. Erasing inside the leaf merges the holes on both sides
    // into one at least as large; erasing its first or last slot takes the
    // hole next to it out of the leaf (it becomes a hole between leaves).
    if (!track_holes_) {
      erase_slot(l, j);
      --size_;
      return fix_fences(path, height_, l->slot[0].start, l->slot[c - 2].last);
    }
    const PathStep& up = path.step[height_ - 1];
    const u64 before = up.node->gap[up.slot];
    u64 mg;
    if (j > 0 && j + 1 < c) {
      // The holes on both sides (a, b) become one, never empty: slot j
      // held at least a byte.
      const unsigned a = l->slot[j - 1].last + 1 != l->slot[j].start;
      const unsigned b = l->slot[j].last + 1 != l->slot[j + 1].start;
      l->holes = l->holes + 1 - a - b;
      mg = std::max(before, arith::gap_bytes(l->slot[j - 1].last, l->slot[j + 1].start));
      erase_slot(l, j);
    } else {
      const u64 lost = j == 0 ? arith::gap_bytes(l->slot[0].last, l->slot[1].start)
                              : arith::gap_bytes(l->slot[j - 1].last, l->slot[j].start);
      l->holes -= unsigned{lost != 0};
      erase_slot(l, j);
      mg = lost < before ? before : l->holes == 0 ? 0 : summarize(l).max_gap;
    }
    --size_;
    fix_up(path, height_, Sum{l->slot[0].start, l->slot[c - 2].last, mg});
    return;
  }
  finger_leaf_ = nullptr;  // nodes may merge, move slots or go away
  erase_slot(l, j);
  set_reaches(l);
  --size_;
  if (height_ == 0) {
    if (l->count == 0) {
      free_leaf(l);
      root_ = nullptr;
    }
    return;
  }
  rebalance_after_erase(path, l, l->count);
}

bool SpaceTree::erase(u64 start) {
  if (!root_) return false;
  Path& path = finger_;
  Leaf* l = locate(start);
  const unsigned j = lower(l, start);
  if (j == l->count || l->slot[j].start != start) return false;
  erase_at(path, l, j);
  return true;
}

bool SpaceTree::erase_area(u64 start, u64 last, SpaceNode* out) {
  if (!root_) return false;
  Path& path = finger_;
  Leaf* l = locate(start);
  const unsigned j = lower(l, start);
  if (j == l->count) return false;
  const SpaceNode& n = l->slot[j];
  if (n.start != start || n.last != last || !n.is_area()) return false;
  if (out) *out = n;
  erase_at(path, l, j);
  return true;
}

void SpaceTree::set_last(u64 start, u64 last) {
  IOAS_CHECK(root_ != nullptr, "space tree set_last: empty tree");
  Path& path = finger_;
  Leaf* l = locate(start);
  const unsigned j = lower(l, start);
  IOAS_CHECK(j < l->count && l->slot[j].start == start && start <= last, "space tree set_last: no such interval");
  if (last > l->slot[j].last) {
    // Growing: up to the next interval (find and next descend without the
    // finger, so l and the finger's path stay as they are).
    const SpaceNode* after = next(l->slot[j]);
    IOAS_CHECK(!after || last < after->start, "space tree set_last: would overlap the next interval");
  }
  l->slot[j].last = last;
  set_reaches(l);
  Sum s = summarize(l);
  fix_up(path, height_, s);
}

// ---------------------------------------------------------------- search

// Holes in ascending order: inside a leaf, between slots j-1 and j; inside
// an inner node, child i's inner holes come after the hole between children
// i-1 and i and before the one between i and i+1. Cond (window): a hole
// [hs, he] matters iff hs <= hi and he >= lo; once a hole starts above hi,
// every later one does too, so the whole search stops.
//
// One walk down from the root with a stack of the slots taken (no call per
// level): a subtree that holds no answer (a near miss) sends the walk back
// up to the slot after the one it came through.
std::optional<u64> SpaceTree::fit_walk(u64 lo, u64 hi, u64 len, u64 a, u64 off) const {
  struct Frame {
    const Inner* node;
    unsigned slot;
  };
  Frame up[kMaxHeight];
  const void* n = root_;
  unsigned depth = 0, from = 0;
  for (;;) {
    if (depth == height_) {
      // Holes shorter than len are passed over without a look at the window:
      // none can hold the range, and skipping one that starts above hi only
      // defers the stop to the next hole that is long enough (it starts
      // higher still) or to the end of the leaf, with the same answer.
      const Leaf* l = static_cast<const Leaf*>(n);
      const SpaceNode* const end = l->slot + l->count;
      for (const SpaceNode* q = l->slot + 1; q < end; ++q) {
        const u64 pl = q[-1].last, next = q->start;
        if (arith::gap_bytes(pl, next) < len) continue;
        const auto hole = arith::range_gap(pl, next);  // no wrap: last < the next start
        if (hole.start > hi) return std::nullopt;
        if (hole.last >= lo) {
          if (auto r = try_hole(hole.start, hole.last, lo, hi, len, a, off)) return r;
        }
      }
    } else {
      const Inner* in = static_cast<const Inner*>(n);
      unsigned i = from;
      for (; i < in->count; ++i) {
        // Nothing at or inside slot i can hold len bytes.
        if (in->reach[i] < len) continue;
        // Child i's holes end by hi[i] - 1, the one before it by lo[i] - 1:
        // all below lo when hi[i] <= lo.
        if (in->hi[i] <= lo) continue;
        const u64 clo = in->lo[i];
        if (i > 0) {  // the hole between children i-1 and i
          const auto hole = arith::range_gap(in->hi[i - 1], clo);
          if (hole.start > hi) return std::nullopt;
          if (arith::gap_bytes(in->hi[i - 1], clo) >= len && hole.last >= lo) {
            if (auto r = try_hole(hole.start, hole.last, lo, hi, len, a, off)) return r;
          }
        }
        // Holes inside child i lie in [lo[i] + 1, hi[i] - 1].
        if (clo >= hi) return std::nullopt;
        if (in->gap[i] >= len) break;
      }
      if (i < in->count) {  // down into child i
        up[depth] = Frame{in, i};
        n = in->child[i];
        ++depth;
        from = 0;
        continue;
      }
    }
    // Nothing in this subtree: on with the slot after it in its parent.
    if (depth == 0) return std::nullopt;
    --depth;
    n = up[depth].node;
    from = up[depth].slot + 1;
  }
}

std::optional<u64> SpaceTree::lowest_fit(u64 lo, u64 hi, u64 len, u64 a, u64 off) const {
  IOAS_CHECK(track_holes_, "space tree lowest_fit: the tree does not track its holes");
  if (lo > hi || len == 0) return std::nullopt;
  if (!root_) return try_hole(0, kMaxIova, lo, hi, len, a, off);  // the whole space
  // The hole before the first interval.
  const u64 first = height_ ? as_inner(root_)->lo[0] : as_leaf(root_)->slot[0].start;
  if (const u64 before_last = arith::range_last(u64{0}, first).last; first > 0 && before_last >= lo) {
    if (auto r = try_hole(0, before_last, lo, hi, len, a, off)) return r;
  }
  if (auto r = fit_walk(lo, hi, len, a, off)) return r;
  // The hole after the last interval.
  const u64 tail = last_node()->last;
  if (tail == kMaxIova) return std::nullopt;
  return try_hole(arith::range_after(tail).next, kMaxIova, lo, hi, len, a, off);
}

// ---------------------------------------------------------------- verify

std::size_t SpaceTree::verify_rec(const void* n, unsigned depth, bool rightmost, Summary& out,
                                  const SpaceNode*& prev, std::size_t& nodes) const {
  ++nodes;
  const bool root = depth == 0;
  if (depth == height_) {
    const Leaf* l = static_cast<const Leaf*>(n);
    IOAS_CHECK(l->count >= 1 && l->count <= leaf_slots_, "space tree verify: leaf count out of [1, cap]");
    IOAS_CHECK(root || rightmost || l->count >= leaf_min(), "space tree verify: leaf below min fill");
    for (unsigned j = 0; j < l->count; ++j) {
      const SpaceNode& e = l->slot[j];
      IOAS_CHECK(e.start <= e.last, "space tree verify: start > last");
      if (prev) {
        IOAS_CHECK(prev->start < e.start, "space tree verify: not sorted");
        IOAS_CHECK(prev->last < e.start, "space tree verify: intervals overlap");
      }
      prev = &e;
    }
    IOAS_CHECK(!track_holes_ || l->holes == count_holes(l), "space tree verify: wrong leaf hole count");
    Sum s = summarize(l);
    out = s;
    return l->count;
  }
  const Inner* in = static_cast<const Inner*>(n);
  IOAS_CHECK(in->count >= 1 && in->count <= inner_slots_, "space tree verify: inner count out of [1, cap]");
  IOAS_CHECK(!root || in->count >= 2, "space tree verify: inner root with one child");
  IOAS_CHECK(root || rightmost || in->count >= inner_min(), "space tree verify: inner node below min fill");
  std::size_t count = 0;
  for (unsigned i = 0; i < in->count; ++i) {
    IOAS_CHECK(in->child[i] != nullptr, "space tree verify: null child");
    Summary sub;
    count += verify_rec(in->child[i], depth + 1, rightmost && i + 1 == in->count, sub, prev, nodes);
    IOAS_CHECK(in->lo[i] == sub.lo && in->hi[i] == sub.hi, "space tree verify: wrong fence keys");
    if (!track_holes_) continue;
    IOAS_CHECK(in->gap[i] == sub.max_gap, "space tree verify: wrong max_gap");
    const u64 before = i == 0 ? 0 : arith::gap_bytes(in->hi[i - 1], in->lo[i]);
    IOAS_CHECK(in->reach[i] == std::max(in->gap[i], before), "space tree verify: wrong reach");
  }
  IOAS_CHECK(!track_holes_ || in->reaching == count_reaching(in), "space tree verify: wrong count of reaching slots");
  Sum s = summarize(in);
  out = s;
  return count;
}

std::size_t SpaceTree::verify() const {
  if (!root_) {
    IOAS_CHECK(size_ == 0 && nodes_ == 0 && height_ == 0, "space tree verify: empty tree with nodes");
    return 0;
  }
  const SpaceNode* prev = nullptr;
  Summary s;
  std::size_t nodes = 0;
  const std::size_t count = verify_rec(root_, 0, true, s, prev, nodes);
  IOAS_CHECK(count == size_, "space tree verify: size() disagrees with the leaves");
  IOAS_CHECK(nodes == nodes_, "space tree verify: nodes leak");
  return count;
}

}  // namespace ioas::impl
