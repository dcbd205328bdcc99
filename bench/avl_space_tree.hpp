// bench/avl_space_tree.hpp: the AVL space tree the engine used before the
// B+tree (impl/space_tree.hpp), kept unchanged except for its namespace so
// that ioas_bench can time both trees in one run. Not used by the engine.
//
// The original header follows: an augmented AVL tree of disjoint intervals,
// with a first-fit gap search in O(log n).
//
// What it holds. Every interval is either an *area* (a mapping: source id,
// offset, prot) or a *reserved piece* (one maximal range of the union of the
// IOAS's reserved ranges, whatever their owners; source == kReservedPiece).
// Areas never intersect reserved ranges (SPEC invariant 2), so the two kinds
// together are disjoint and the free holes of this tree are exactly the holes
// of "reserved ∪ areas" that automatic allocation searches.
//
// Invariants (checked by verify(), which returns the number of nodes):
//   - BST order: in-order, starts strictly increase.
//   - Disjoint: in-order, each last < the next start; start <= last.
//   - Gap: node.gap = start - pred.last - 1 (free bytes between the in-order
//     predecessor and the node), or start for the first node; so the hole
//     before a node is [start - gap, start - 1] when gap > 0.
//   - Augment: node.max_gap = max(gap over the node's subtree).
//   - Balance: height = 1 + max(child heights), |h(left) - h(right)| <= 1.
//   - Pool: live nodes + free slots = slots handed out.
//
// Memory: a node is 56 bytes (see static_assert below); children are 32-bit
// indices into a chunked pool (no parent pointers, no malloc header per node,
// no vector doubling), so the tree costs 56 bytes per interval plus one
// partially used chunk.
//
// API sketch:
//   insert(node)                  precondition: disjoint from every interval
//   erase(start) -> bool          removes the interval starting at start
//   set_last(start, last)         shrinks an interval (cut); keeps gaps right
//   find(x)                       the interval containing x, or nullptr
//   first_from(x)                 the lowest interval with last >= x
//   next(n)                       the in-order successor of n
//   lowest_fit(lo, hi, len, a, off) the lowest candidate of SPEC's formula
//   verify() -> count
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "ioas/range.hpp"

namespace ioas::bench_avl {

inline constexpr std::uint32_t kReservedPiece = ~std::uint32_t{0};

struct SpaceNode {
  u64 start = 0;
  u64 last = 0;
  u64 offset = 0;   // area: byte offset of the first byte in its source
  u64 gap = 0;      // free bytes before this interval (see invariants)
  u64 max_gap = 0;  // max gap in this subtree
  std::uint32_t left = 0, right = 0;  // pool indices; 0 is nil
  std::uint32_t source = kReservedPiece;  // interned memory source id
  std::uint8_t prot = 0;
  std::uint8_t height = 1;

  bool is_area() const { return source != kReservedPiece; }
  Range range() const { return Range{start, last}; }
};
static_assert(sizeof(SpaceNode) == 56, "an area costs one node: keep it compact");

// Payload of a new interval: everything but the tree fields.
struct SpaceEntry {
  u64 start = 0;
  u64 last = 0;
  std::uint32_t source = kReservedPiece;
  u64 offset = 0;
  std::uint8_t prot = 0;
};

class SpaceTree {
 public:
  // chunk_bits: log2 of nodes per pool chunk (tests use tiny chunks).
  explicit SpaceTree(unsigned chunk_bits = 12);
  SpaceTree(const SpaceTree&);
  SpaceTree& operator=(const SpaceTree&);
  SpaceTree(SpaceTree&&) noexcept = default;
  SpaceTree& operator=(SpaceTree&&) noexcept = default;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear();

  void insert(const SpaceEntry& e);
  bool erase(u64 start);
  // Erases the interval [start, last] only if it is exactly that and is an
  // area, in one descent; the erased node's fields go to *out. False (and
  // nothing changes) otherwise.
  bool erase_area(u64 start, u64 last, SpaceNode* out);
  // Shrinks the interval starting at `start` to end at `last` (start <= last
  // <= its old last).
  void set_last(u64 start, u64 last);

  const SpaceNode* find(u64 x) const;
  const SpaceNode* first_from(u64 x) const;
  const SpaceNode* next(const SpaceNode& n) const {
    return n.last == kMaxIova ? nullptr : first_from(n.last + 1);
  }
  const SpaceNode* first() const { return first_from(0); }
  const SpaceNode* last_node() const;

  // The lowest IOVA c in [lo, hi] such that, for the maximal free hole
  // H = [hs, hl] of this tree clipped to [lo, hi] that holds c,
  // c = align_up(hs, a) | off and [c, c+len-1] lies in H; holes are tried in
  // ascending order. nullopt when none fits.
  //
  // Cost: a subtree is skipped when its max_gap < len (no hole there can hold
  // len bytes) or when it lies outside [lo, hi]. A hole of size >= len + a - 1
  // + off always fits (align_up moves by at most a - 1, the OR adds at most
  // off), so the first such hole ends the search. Holes of size in
  // [len, len + a - 2 + off] may be unusable because of where alignment puts
  // the candidate; each one that lies before the answer is inspected. So the
  // bound is O((1 + k) log n), k = the number of such near-miss holes before
  // the answer (plus at most the two holes clipped by lo and hi). With
  // a = PAGE-multiple maps over PAGE-multiple holes, k = 0.
  std::optional<u64> lowest_fit(u64 lo, u64 hi, u64 len, u64 a, u64 off) const;

  // Checks every invariant above; aborts with a message on a breach. Returns
  // the number of nodes (== size()).
  std::size_t verify() const;

  // Bytes held by the node pool (for the memory benchmark and tests).
  std::size_t pool_bytes() const { return chunks_.size() * (std::size_t{1} << chunk_bits_) * sizeof(SpaceNode); }

 private:
  using Idx = std::uint32_t;
  SpaceNode& at(Idx i) { return chunks_[i >> chunk_bits_][i & chunk_mask_]; }
  const SpaceNode& at(Idx i) const { return chunks_[i >> chunk_bits_][i & chunk_mask_]; }
  Idx alloc();
  void release(Idx i);

  int height(Idx i) const { return i ? at(i).height : 0; }
  u64 max_gap(Idx i) const { return i ? at(i).max_gap : 0; }
  void pull(Idx i);           // recompute height and max_gap from children
  Idx rotate_left(Idx i);
  Idx rotate_right(Idx i);
  Idx rebalance(Idx i);
  // rebalance(i), and whether the subtree changed as its parent sees it
  // (new root, height or max_gap): if not, no ancestor needs a pull.
  Idx rebalance_changed(Idx i, bool& changed);

  // Recursive helpers; each returns the new subtree root.
  Idx insert_rec(Idx i, Idx n, const SpaceNode* pred);
  Idx erase_rec(Idx i, u64 start, bool& found, bool& pending, u64& delta);
  Idx erase_min(Idx i, Idx& min_out);
  Idx add_gap_to_min(Idx i, u64 delta);
  Idx add_gap_at(Idx i, u64 key, u64 delta);
  std::optional<u64> fit_rec(Idx i, u64 lo, u64 hi, u64 len, u64 a, u64 off) const;
  std::size_t verify_rec(Idx i, const SpaceNode*& prev, u64& max_gap_out, int& height_out) const;

  unsigned chunk_bits_;
  Idx chunk_mask_;
  std::vector<std::unique_ptr<SpaceNode[]>> chunks_;
  Idx next_slot_ = 1;  // slot 0 is nil
  Idx free_ = 0;       // free list threaded through `left`
  std::size_t free_count_ = 0;
  Idx root_ = 0;
  bool erase_changed_ = false;
  bool erase_only_area_ = false;
  u64 erase_last_ = 0;
  SpaceNode erased_;
  std::size_t size_ = 0;
};

}  // namespace ioas::bench_avl
