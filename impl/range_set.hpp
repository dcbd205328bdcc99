// impl/range_set.hpp: a sorted set of disjoint inclusive ranges over
// [0, 2^64-1], on absl::btree_map<start, last>.
//
// Used for the allowed list (kept exactly as given: adjacent ranges stay
// separate), the ranges of one reserved owner and the union of all reserved
// ranges (coalesced: overlapping or adjacent ranges merge), and a domain's
// dirty bytes (coalesced).
//
// Invariants (verify() returns the number of ranges):
//   - each range has start <= last;
//   - sorted by start, pairwise disjoint (last < next start);
//   - when coalescing: no two ranges are adjacent (last + 1 < next start).
// Every query is O(log n + k) for k ranges reported.
#pragma once

#include <absl/container/btree_map.h>

#include <optional>
#include <vector>

#include "ioas/range.hpp"

namespace ioas::impl {

class RangeSet {
 public:
  explicit RangeSet(bool coalesce) : coalesce_(coalesce) {}

  bool empty() const { return map_.empty(); }
  std::size_t size() const { return map_.size(); }
  void clear() { map_.clear(); }
  bool coalesce() const { return coalesce_; }

  // The lowest range touching r (sharing a byte), if any.
  std::optional<Range> first_overlapping(Range r) const;
  bool overlaps(Range r) const { return first_overlapping(r).has_value(); }
  // The range containing x, if any.
  std::optional<Range> find(u64 x) const { return first_overlapping(Range{x, x}); }

  // Adds r. Coalescing: merges with every range it touches or is adjacent
  // to. Not coalescing: precondition r touches nothing.
  void add(Range r);
  // Removes the bytes of r (splitting a range that straddles an end).
  void subtract(Range r);

  // Every range touching r, clipped to r.
  std::vector<Range> clipped(Range r) const;
  std::vector<Range> ranges() const;
  // [0, 2^64-1] minus this set.
  std::vector<Range> complement() const;

  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [s, l] : map_) f(Range{s, l});
  }

  std::size_t verify() const;

  friend bool operator==(const RangeSet& a, const RangeSet& b) { return a.map_ == b.map_; }

 private:
  bool coalesce_;
  absl::btree_map<u64, u64> map_;
};

}  // namespace ioas::impl
