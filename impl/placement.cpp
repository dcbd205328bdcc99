// impl/placement.cpp: where an area goes: a fixed IOVA's checks and the
// automatic-allocation search (map and copy share them).
#include "engine_impl.hpp"

namespace ioas::impl {
namespace {

// Where automatic placement searches an allowed span (the window when there
// is none): all of it, or with ModeRules::auto_aligns_span_start from the
// candidate formula's answer for its start (nullopt: nothing fits in it).
std::optional<Range> search_span(Range sp, u64 len, u64 a, u64 off, bool align_start) {
  if (!align_start) return sp;
  auto c = arith::hole_candidate(sp.start, sp.last, a, off, len);
  if (!c.fits) return std::nullopt;
  return Range{c.iova, sp.last};
}

}  // namespace

// Holes are those of (reserved ∪ areas) inside the allowed spans (the whole
// window when there is no allowed range), clipped to the window
// [PAGE, 2^64-1-PAGE]; spans ascend, so the first fit is the lowest.
std::optional<u64> ImplEngine::alloc_iova(const Ioas& s, u64 len, u64 a, u64 off) {
  constexpr u64 kWinLo = kPage, kWinHi = kMaxIova - kPage;
  if (s.allowed.empty()) return lowest_fit_in(s, Range{kWinLo, kWinHi}, len, a, off);
  std::optional<Range> span;
  std::optional<u64> found;
  auto try_span = [&](Range sp) {
    const Range in = sp.intersect(Range{kWinLo, kWinHi});
    if (in.valid()) found = lowest_fit_in(s, in, len, a, off);
  };
  s.allowed.for_each([&](Range r) {
    if (found) return;
    if (span && span->precedes_adjacent(r)) {
      span->last = r.last;
      return;
    }
    if (span) try_span(*span);
    span = r;
  });
  if (!found && span) try_span(*span);
  return found;
}

// The lowest fit in one span of the window, from where the mode starts it.
std::optional<u64> ImplEngine::lowest_fit_in(const Ioas& s, Range sp, u64 len, u64 a, u64 off) {
  auto from = search_span(sp, len, a, off, s.rules.auto_aligns_span_start);
  if (!from) return std::nullopt;
  return s.space.lowest_fit(from->start, from->last, len, a, off);
}

Result<u64> ImplEngine::place(const Ioas& s, std::optional<u64> fixed, u64 len, u64 uaddr, absl::FunctionRef<std::string()> what) {
  const u64 A = s.iova_alignment;
  if (fixed) {
    const Range r{*fixed, arith::range_last(*fixed, len).last};
    if (s.reserved_union.first_overlapping(r)) return err(EINVAL, what() + ": overlaps " + reserved_conflict(s, r));
    if (auto a = first_area(s, r)) return err(EEXIST, what() + ": overlaps mapped area " + to_string(*a));
    return *fixed;
  }
  if (len >= (u64{1} << 63)) return err(EOVERFLOW, what() + ": automatic length " + hex(len) + " is 2^63 or more");
  const u64 a = arith::auto_alignment(len, uaddr, kMaxAutoAlignment);
  if (a < A)
    return err(EINVAL, what() + ": wanted alignment " + hex(a) + " (from length and user address " + hex(uaddr) +
                           ") is below iova_alignment " + hex(A));
  auto found = alloc_iova(s, len, a, page_offset(uaddr));
  if (!found) return err(ENOSPC, what() + ": no free hole fits " + hex(len) + " bytes at alignment " + hex(a));
  return *found;
}

std::string ImplEngine::reserved_conflict(const Ioas& s, Range r) {
  std::optional<std::pair<Range, const Owner*>> first;
  for (const auto& [owner, rs] : s.reserved)
    if (auto hit = rs.first_overlapping(r); hit && (!first || hit->start < first->first.start))
      first.emplace(*hit, &owner);
  if (!first) return "a reserved range";
  return "reserved range " + to_string(first->first) + " owned by " + to_string(*first->second);
}

std::optional<Range> ImplEngine::first_misaligned_area(const Ioas& s, u64 a) const {
  if (all_areas_aligned(s, a)) return std::nullopt;
  std::optional<Range> bad;
  for_each_area(s, Range::all(), [&](const SpaceNode& n) {
    if (!bad && granularity(n.start, arith::range_length(n.start, n.last), area_uaddr(n)) <
                    static_cast<unsigned>(arith::log2_pow2(arith::lowest_bit(a))))
      bad = n.range();
  });
  return bad;
}

}  // namespace ioas::impl
