// impl/space_tree.hpp: the occupied IOVA space of one IOAS, as a B+tree of
// disjoint intervals whose inner slots carry the largest free gap of their
// subtree, with a first-fit gap search in O(log n).
//
// What it holds. Every interval is either an *area* (a mapping: source id,
// offset, prot) or a *reserved piece* (one maximal range of the union of the
// IOAS's reserved ranges, whatever their owners; source == kReservedPiece).
// Areas never intersect reserved ranges (SPEC invariant 2), so the two kinds
// together are disjoint and the free holes of this tree are exactly the holes
// of "reserved ∪ areas" that automatic allocation searches.
//
// Shape. Leaves hold up to leaf_slots intervals (SpaceNode, 32 bytes each),
// inner nodes up to inner_slots children; every leaf is at the same depth.
// An inner slot describes its child's subtree: the start of its first
// interval (lo), the last of its last interval (hi), and the largest hole
// strictly inside it (max_gap). The hole between two neighbouring children
// is lo[i] - hi[i-1] - 1, so it is known to the parent without looking at
// either child, and a change in a leaf only touches the slots on its path to
// the root. The hole before the first interval and the one after the last
// belong to no subtree; lowest_fit() tries them itself.
//
// Invariants (checked by verify(), which returns the number of intervals):
//   - Order: in-order, start <= last, and each last < the next start
//     (sorted and disjoint).
//   - Fences: every inner slot's lo/hi equal the first start / last last of
//     its child's subtree.
//   - Augment: every inner slot's max_gap equals the largest
//     start - pred.last - 1 over neighbouring pairs inside its child's
//     subtree (0 when there is none), and its reach equals
//     max(max_gap, the hole between it and the previous slot's child).
//   - Counts (trees that track holes): each leaf's holes equals the number
//     of its neighbouring pairs with a hole between them, each inner node's
//     reaching the number of its non-zero reach slots; a fix-up trusts them
//     to skip a scan when the last hole below a node is filled.
//   - Fill: a node holds at most its capacity; the root holds at least 1
//     interval (leaf) or 2 children (inner); any other node holds at least
//     min = (capacity + 1) / 2, except nodes on the rightmost spine, which
//     hold at least 1 (appends split a full node into "full" + "1", so
//     ascending inserts leave full leaves behind).
//   - Depth: every leaf is at depth height().
//   - Pool: the nodes reachable from the root are all the nodes allocated.
//
// Heap exhaustion: insert() allocates the nodes it may need (a leaf, one
// inner node per level and a new root) before it changes anything, and keeps
// the unused ones for the next insert; reserve_inserts(k) does so for k
// inserts ahead; erase and set_last never allocate.
//
// Memory: a leaf is 8 + 16 x 32 = 520 bytes, an inner node 8 + 16 x 40 =
// 648 bytes (one malloc block each). Leaves filled by ascending inserts are
// full (32.5 B per interval), and an insert that would split a full leaf
// goes last in the previous leaf when that one has room; after random
// inserts and erases leaves are at least half full (<= 65 B per interval)
// except one per level. Inner nodes add about 1/16 of the leaves' bytes.
//
// Cost of a map + unmap (lowest_fit, insert, erase_area): O(F log_F n) slot
// reads, F = 16. The leaf and path of the last mutation are kept as a
// finger, so an insert or erase in the same leaf as the previous mutation
// skips the descent; the fix-up of fences and max gaps on the way up stops
// at the first ancestor whose slot does not change.
//
// Pointers returned by find/first_from/next/first/last_node point into a
// leaf: they stay valid until the next mutation of the tree (entries move
// inside and between leaves on insert and erase).
//
// API sketch:
//   insert(entry)                 precondition: disjoint from every interval
//   erase(start) -> bool          removes the interval starting at start
//   erase_area(start, last, out)  erase only if it is exactly that area
//   set_last(start, last)         shrinks an interval (cut) or grows it
//   find(x)                       the interval containing x, or nullptr
//   first_from(x)                 the lowest interval with last >= x
//   next(n)                       the in-order successor of n
//   lowest_fit(lo, hi, len, a, off) the lowest candidate of SPEC's formula
//   verify() -> count
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "ioas/range.hpp"

namespace ioas::impl {

inline constexpr std::uint32_t kReservedPiece = ~std::uint32_t{0};

// One interval, as stored in a leaf slot.
struct SpaceNode {
  u64 start = 0;
  u64 last = 0;
  u64 offset = 0;                         // area: byte offset of the first byte in its source
  std::uint32_t source = kReservedPiece;  // interned memory source id
  std::uint8_t prot = 0;
  bool pages_writable = false;            // area: its pages were mapped with write

  bool is_area() const { return source != kReservedPiece; }
  Range range() const { return Range{start, last}; }
};
static_assert(sizeof(SpaceNode) == 32, "an area costs one leaf slot: keep it compact");

// Payload of a new interval.
struct SpaceEntry {
  u64 start = 0;
  u64 last = 0;
  std::uint32_t source = kReservedPiece;
  u64 offset = 0;
  std::uint8_t prot = 0;
  bool pages_writable = false;
};

class SpaceTree {
 public:
  // Largest (and default) node capacities; tests use tiny ones (>= 3) so
  // that splits, merges and borrows happen with a handful of intervals.
  static constexpr unsigned kMaxSlots = 16;
  // Whether the inner slots keep the holes (max_gap, reach) up to date.
  // A tree that is never asked lowest_fit() (a domain's list of mappings)
  // need not: its fix-up then stops at the first ancestor whose fences
  // (lo, hi) stay as they are, mostly the leaf's parent, where a tree that
  // tracks holes climbs to the root whenever the largest hole of the path
  // changes. Untracked, the gap and reach columns are left as they fall
  // and nothing reads them; lowest_fit() aborts.
  enum class Holes { kTracked, kUntracked };

  explicit SpaceTree(unsigned leaf_slots = kMaxSlots, unsigned inner_slots = kMaxSlots,
                     Holes holes = Holes::kTracked);
  SpaceTree(const SpaceTree&);
  SpaceTree& operator=(const SpaceTree&);
  SpaceTree(SpaceTree&&) noexcept;
  SpaceTree& operator=(SpaceTree&&) noexcept;
  ~SpaceTree();

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear();

  void insert(const SpaceEntry& e);
  // Allocates ahead what the next k inserts need (std::bad_alloc: nothing
  // changed), so that they cannot fail; trim_spares() frees what is beyond
  // one insert's worth afterwards, or all of them and the lists' room after
  // a reservation for many (never allocates).
  // Inline when the spares already suffice (every map asks for one insert's
  // worth, which the last unmap mostly left behind).
  void reserve_inserts(std::size_t k) {
    if (spare_leaves_.size() >= k && spare_inners_.size() >= k * (height_ + 2)) return;
    reserve_more(k);
  }
  void trim_spares();
  bool erase(u64 start);
  // Erases the interval [start, last] only if it is exactly that and is an
  // area, in one descent; the erased interval goes to *out. False (and
  // nothing changes) otherwise.
  bool erase_area(u64 start, u64 last, SpaceNode* out);
  // Moves the end of the interval starting at `start` to `last`: shrinks it
  // (start <= last), or grows it up to the next interval's start.
  void set_last(u64 start, u64 last);

  const SpaceNode* find(u64 x) const;
  const SpaceNode* first_from(u64 x) const;
  const SpaceNode* next(const SpaceNode& n) const {
    const auto after = arith::range_after(n.last);
    return after.at_top ? nullptr : first_from(after.next);
  }
  const SpaceNode* first() const { return first_from(0); }
  const SpaceNode* last_node() const;

  // The lowest IOVA c in [lo, hi] such that, for the maximal free hole
  // H = [hs, hl] of this tree clipped to [lo, hi] that holds c,
  // c = align_up(hs, a) | off and [c, c+len-1] lies in H; holes are tried in
  // ascending order. nullopt when none fits.
  //
  // Cost: a child is skipped when its reach < len (no hole inside it or
  // just before it can hold len bytes) or when it lies outside [lo, hi]; a
  // node costs O(F) slot reads (F = node capacity). A hole of size >= len + a - 1 + off always
  // fits (align_up moves by at most a - 1, the OR adds at most off), so the
  // first such hole ends the search. Holes of size in [len, len + a - 2 +
  // off] may be unusable because of where alignment puts the candidate; each
  // one that lies before the answer is inspected, and each costs at most one
  // root-to-leaf descent. So the bound is O((1 + k) F log_F n), k = the
  // number of such near-miss holes before the answer (plus at most the two
  // holes clipped by lo and hi). With a = PAGE-multiple maps over
  // PAGE-multiple holes, k = 0.
  std::optional<u64> lowest_fit(u64 lo, u64 hi, u64 len, u64 a, u64 off) const;

  // Checks every invariant above; aborts with a message on a breach. Returns
  // the number of intervals (== size()).
  std::size_t verify() const;

  unsigned height() const { return height_; }  // inner levels above the leaves
  std::size_t node_count() const { return nodes_; }
  // Bytes held by the nodes (for the memory benchmark and tests).
  std::size_t pool_bytes() const;
  // The number of intervals in each leaf, in order (tests check node shapes).
  std::vector<unsigned> leaf_sizes() const;
  // The number of children of each inner node, level by level from the root
  // down, in order within a level (the last of a level is on the rightmost
  // spine).
  std::vector<std::vector<unsigned>> inner_sizes() const;

  struct Leaf;
  struct Inner;
  // What a parent slot says of its child's subtree (the lo, hi and gap
  // columns of Inner in the .cpp).
  struct Summary {
    u64 lo, hi, max_gap;
  };

 private:
  struct PathStep {
    Inner* node;
    unsigned slot;
  };
  static constexpr unsigned kMaxHeight = 48;
  struct Path {
    PathStep step[kMaxHeight];
  };

  unsigned leaf_min() const { return (leaf_slots_ + 1) / 2; }
  unsigned inner_min() const { return (inner_slots_ + 1) / 2; }

  void reserve_more(std::size_t k);
  Leaf* new_leaf();
  Inner* new_inner();
  void free_leaf(Leaf* l);
  void free_inner(Inner* n);
  void free_rec(void* n, unsigned depth);
  void* clone_rec(const void* n, unsigned depth);

  // The leaf where key x belongs (the first child whose hi >= x, else the
  // last one), recording the inner nodes and slots taken in *path.
  Leaf* descend(u64 x, Path* path) const;
  // descend(x, &finger_), or the finger itself when it leads to the same
  // leaf (see the .cpp); the finger is then that leaf and its path.
  Leaf* locate(u64 x);
  // insert()'s cases: the leaf has room; the leaf is full, v goes first
  // and the previous leaf takes it; the leaf splits, and full ancestors
  // with it; the root splits.
  void insert_with_room(Path& path, Leaf* l, unsigned j, const SpaceNode& v);
  bool insert_in_previous_leaf(const Path& path, const SpaceNode& v);
  void insert_with_split(Path& path, Leaf* l, unsigned j, const SpaceNode& v);
  void grow_root(const Summary& ls, const Summary& rs, void* right);
  // Writes `sum` into the slot of the node at `depth` and recomputes the
  // ancestors' slots, stopping at the first one that does not change
  // (untracked holes: only the fences, fix_fences).
  void fix_up(Path& path, unsigned depth, Summary sum) const;
  static void fix_fences(Path& path, unsigned depth, u64 lo, u64 hi);
  // The node at `depth` (reached through `path`) may hold fewer than min:
  // merge or borrow with siblings, up to the root, then collapse the root.
  void rebalance_after_erase(Path& path, void* node, unsigned count);
  void merge_or_borrow(Inner* p, unsigned s, unsigned depth);
  void erase_at(Path& path, Leaf* leaf, unsigned j);

  // The holes strictly between the first and the last interval, searched
  // as lowest_fit() says.
  std::optional<u64> fit_walk(u64 lo, u64 hi, u64 len, u64 a, u64 off) const;
  std::size_t verify_rec(const void* n, unsigned depth, bool rightmost, Summary& out, const SpaceNode*& prev,
                         std::size_t& nodes) const;

  unsigned leaf_slots_, inner_slots_;
  bool track_holes_;
  void* root_ = nullptr;  // a Leaf when height_ == 0, else an Inner
  unsigned height_ = 0;
  std::size_t size_ = 0;
  std::size_t nodes_ = 0;
  // The path and leaf of the last mutation (nullptr when stale): map and
  // unmap of neighbouring ranges reuse it instead of descending again.
  // Only mutations read or write it, so const methods stay thread-safe.
  Path finger_;
  Leaf* finger_leaf_ = nullptr;
  // Nodes allocated ahead for the next inserts (reserve_inserts), not in
  // the tree and not counted in nodes_.
  std::vector<Leaf*> spare_leaves_;
  std::vector<Inner*> spare_inners_;
};

}  // namespace ioas::impl
