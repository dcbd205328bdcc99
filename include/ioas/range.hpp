// ioas/range.hpp: the one inclusive range type every part of ioas uses.
//
// A Range is [start, last], both inclusive, over 64-bit IOVAs, as the kernel's
// interval trees store them; start <= last for a valid range (a Range with
// start > last can exist as an operation's argument; the operation rejects it).
// The whole space [0, 2^64-1] is a valid Range whose length (2^64) does not
// fit in 64 bits: length() returns 0 for it, and callers that can meet the
// whole space say so.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ioas/arith.hpp"

namespace ioas {

using u64 = std::uint64_t;
inline constexpr u64 kPage = 4096;
inline constexpr u64 kMaxIova = ~u64{0};

struct Range {
  u64 start = 0;
  u64 last = 0;

  // [start, start+len-1]; nullopt when len == 0 or the end passes 2^64-1.
  static std::optional<Range> from_len(u64 start, u64 len) {
    if (len == 0) return std::nullopt;
    auto end = arith::range_last(start, len);
    if (end.overflow) return std::nullopt;
    return Range{start, end.last};
  }
  static constexpr Range all() { return Range{0, kMaxIova}; }

  bool valid() const { return start <= last; }
  // last - start + 1; 0 for the whole space (2^64 does not fit).
  u64 length() const { return arith::range_length(start, last); }
  bool contains(u64 x) const { return start <= x && x <= last; }
  bool contains(const Range& o) const {
    return arith::contains(start, last, o.start, o.last);
  }
  bool overlaps(const Range& o) const {
    return arith::overlaps(start, last, o.start, o.last);
  }
  // o begins right after this one ends (no shared byte, no gap).
  bool precedes_adjacent(const Range& o) const {
    const auto after = arith::range_after(last);
    return !after.at_top && after.next == o.start;
  }
  // The bytes both hold: valid() exactly when they overlap.
  Range intersect(const Range& o) const {
    const auto c = arith::range_intersect(start, last, o.start, o.last);
    return Range{c.start, c.last};
  }
  // The smallest range holding both.
  Range hull(const Range& o) const {
    const auto h = arith::range_hull(start, last, o.start, o.last);
    return Range{h.start, h.last};
  }

  friend bool operator==(const Range&, const Range&) = default;
  friend auto operator<=>(const Range&, const Range&) = default;
};

// "0x1000-0x1fff".
std::string to_string(const Range& r);
// "0x1000-0x1fff 0x3000-0x3fff" (space separated).
std::string to_string(const std::vector<Range>& rs);

// The sorted, non-overlapping union of `rs` (adjacent ranges are merged).
std::vector<Range> normalize(std::vector<Range> rs);
// [0, 2^64-1] minus the union of `rs`, sorted.
std::vector<Range> complement(const std::vector<Range>& rs);

}  // namespace ioas
