// impl/placement.cpp: where an area goes: the automatic-allocation search.
#include "engine_impl.hpp"

namespace ioas::impl {

// Holes are those of (reserved ∪ areas) inside the allowed spans (the whole
// window when there is no allowed range), clipped to the window
// [PAGE, 2^64-1-PAGE]; spans ascend, so the first fit is the lowest.
std::optional<u64> ImplEngine::alloc_iova(const Ioas& s, u64 len, u64 a, u64 off) {
  constexpr u64 kWinLo = kPage, kWinHi = kMaxIova - kPage;
  if (s.allowed.empty()) return s.space.lowest_fit(kWinLo, kWinHi, len, a, off);
  std::optional<Range> span;
  std::optional<u64> found;
  auto try_span = [&](Range sp) {
    u64 lo = std::max(sp.start, kWinLo), hi = std::min(sp.last, kWinHi);
    if (lo <= hi) found = s.space.lowest_fit(lo, hi, len, a, off);
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

}  // namespace ioas::impl
