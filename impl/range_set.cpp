#include "range_set.hpp"

#include "ioas/core/check.hpp"

namespace ioas::impl {

// Cond1: start(node) <= r.last; Cond2: r.start <= last(node). Ranges are
// disjoint, so the only candidate with start < r.start is the one just
// before r.start; after it, the first range with start >= r.start touches r
// iff Cond1 holds.
std::optional<Range> RangeSet::first_overlapping(Range r) const {
  auto it = map_.upper_bound(r.start);
  if (it != map_.begin()) {
    auto p = std::prev(it);
    if (p->second >= r.start) return Range{p->first, p->second};  // Cond2; Cond1 by p->first <= r.start
  }
  if (it != map_.end() && it->first <= r.last) return Range{it->first, it->second};  // Cond1; Cond2 by it->first > r.start
  return std::nullopt;
}

void RangeSet::add(Range r) {
  IOAS_CHECK(r.start <= r.last, "range set add: start > last");
  if (!coalesce_) {
    IOAS_CHECK(!overlaps(r), "range set add: overlaps an existing range");
    map_.emplace(r.start, r.last);
    return;
  }
  // Widen the query by one byte each side so adjacent ranges merge too.
  const auto hull = arith::range_touch_hull(r.start, r.last);
  Range q{hull.start, hull.last};
  while (auto o = first_overlapping(q)) {
    r = r.hull(*o);
    map_.erase(o->start);
  }
  map_.emplace(r.start, r.last);
}

void RangeSet::subtract(Range r) {
  IOAS_CHECK(r.start <= r.last, "range set subtract: start > last");
  while (auto o = first_overlapping(r)) {
    map_.erase(o->start);
    // o overlaps r: at most its pieces below and above r are left.
    const auto pieces = arith::resv_exclude(o->start, o->last, r.start, r.last);
    if (pieces.below) map_.emplace(pieces.below_start, pieces.below_last);
    if (pieces.above) {
      map_.emplace(pieces.above_start, pieces.above_last);
      break;
    }
  }
}

std::vector<Range> RangeSet::clipped(Range r) const {
  std::vector<Range> out;
  auto it = map_.upper_bound(r.start);
  if (it != map_.begin()) --it;
  for (; it != map_.end() && it->first <= r.last; ++it) {
    if (it->second < r.start) continue;
    out.push_back(Range{it->first, it->second}.intersect(r));
  }
  return out;
}

std::vector<Range> RangeSet::ranges() const {
  std::vector<Range> out;
  out.reserve(map_.size());
  for (const auto& [s, l] : map_) out.push_back(Range{s, l});
  return out;
}

std::vector<Range> RangeSet::complement() const {
  // Sorted and disjoint (the invariants): the holes are the gaps between
  // neighbours, read in one pass, without the copy and sort of
  // ioas::complement. Adjacent ranges (an allowed list) leave no gap.
  std::vector<Range> out;
  out.reserve(map_.size() + 1);
  u64 next = 0;  // the first byte not yet accounted for
  for (const auto& [s, l] : map_) {
    if (s > next) out.push_back(Range{next, s - 1});
    if (l == kMaxIova) return out;  // the space is exhausted
    next = l + 1;
  }
  out.push_back(Range{next, kMaxIova});
  return out;
}

std::size_t RangeSet::verify() const {
  std::size_t n = 0;
  const std::pair<const u64, u64>* prev = nullptr;
  for (const auto& e : map_) {
    IOAS_CHECK(e.first <= e.second, "range set verify: start > last");
    if (prev) {
      IOAS_CHECK(prev->second < e.first, "range set verify: ranges overlap");
      if (coalesce_)
        IOAS_CHECK(arith::range_gap(prev->second, e.first).exists, "range set verify: adjacent ranges not merged");
    }
    prev = &e;
    ++n;
  }
  return n;
}

}  // namespace ioas::impl
