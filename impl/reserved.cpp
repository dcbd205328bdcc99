// impl/reserved.cpp: reserved and allowed ranges.
#include "engine_impl.hpp"

namespace ioas::impl {

ImplEngine::ReservedPlan ImplEngine::plan_reserved(Ioas& s, std::span<const OwnerChange> changes) {
  ReservedPlan plan;
  auto changed = [&](const Owner& o) {
    for (const OwnerChange& c : changes)
      if (*c.owner == o) return true;
    return false;
  };
  for (const auto& [owner, rs] : s.reserved)
    if (!changed(owner)) rs.for_each([&](Range r) { plan.u.add(r); });
  for (const OwnerChange& c : changes)
    if (c.ranges) c.ranges->for_each([&](Range r) { plan.u.add(r); });
  s.reserved_union.for_each([&](Range r) {
    if (plan.u.find(r.start) != std::optional<Range>(r)) plan.drop.push_back(r);
  });
  plan.u.for_each([&](Range r) {
    if (s.reserved_union.find(r.start) != std::optional<Range>(r)) plan.add.push_back(r);
  });
  s.space.reserve_inserts(plan.add.size());
  plan.ranges = PublishedRanges::make(plan.u.complement());
  return plan;
}

void ImplEngine::apply_reserved(Ioas& s, ReservedPlan& plan) {
  // Drop pieces that are no longer pieces, then add the new ones, so the
  // tree stays disjoint at every step.
  for (const Range& r : plan.drop) {
    bool erased = s.space.erase(r.start);
    IOAS_CHECK(erased, "apply_reserved: piece missing from the space tree");
  }
  for (const Range& r : plan.add) s.space.insert(SpaceEntry{r.start, r.last, kReservedPiece, 0, 0});
  s.space.trim_spares();
  s.reserved_union = std::move(plan.u);
  s.published.publish(std::move(plan.ranges), s.iova_alignment);
}

Status ImplEngine::reserve(std::string_view ioas, Range range, std::string_view owner) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "reserve: no IOAS " + std::string(ioas));
  auto what = [&] { return std::string("reserve " + to_string(range) + " owner " + std::string(owner)); };
  if (owner.empty()) return err(EINVAL, what() + ": the owner is empty");
  if (range.start > range.last) return err(EINVAL, what() + ": start > last");
  if (auto a = first_area(*s, range)) return err(EADDRINUSE, what() + ": overlaps mapped area " + to_string(*a));
  if (auto a = s->allowed.first_overlapping(range))
    return err(EADDRINUSE, what() + ": overlaps allowed range " + to_string(*a));
  if (!alloc_ok(*s)) return err(ENOMEM, what() + ": out of memory");
  // The owner's new ranges and the new union, allocated before any change.
  Owner o{OwnerKind::kUser, std::string(owner)};
  auto it = s->reserved.find(o);
  RangeSet mine = it == s->reserved.end() ? RangeSet(true) : it->second;
  mine.add(range);
  const OwnerChange change{&o, &mine};
  ReservedPlan plan = plan_reserved(*s, {&change, 1});
  if (it != s->reserved.end())
    it->second = std::move(mine);
  else
    s->reserved.try_emplace(std::move(o), std::move(mine));  // throws before it inserts, or inserts
  apply_reserved(*s, plan);
  return ok_status();
}

Status ImplEngine::unreserve(std::string_view ioas, std::string_view owner) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "unreserve: no IOAS " + std::string(ioas));
  const Owner o{OwnerKind::kUser, std::string(owner)};
  const OwnerChange change{&o, nullptr};
  ReservedPlan plan = plan_reserved(*s, {&change, 1});
  s->reserved.erase(o);
  apply_reserved(*s, plan);
  return ok_status();
}

Status ImplEngine::allow(std::string_view ioas, std::span<const Range> ranges) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "allow: no IOAS " + std::string(ioas));
  for (const Range& r : ranges)
    if (r.start >= r.last) return err(EINVAL, "allow " + to_string(r) + ": start >= last");
  std::vector<Range> sorted(ranges.begin(), ranges.end());
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i - 1].overlaps(sorted[i]))
      return err(EINVAL, "allow: " + to_string(sorted[i - 1]) + " and " + to_string(sorted[i]) + " overlap");
  for (const Range& r : ranges)
    if (s->reserved_union.first_overlapping(r))
      return err(EADDRINUSE, "allow " + to_string(r) + ": overlaps " + reserved_conflict(*s, r));
  if (!alloc_ok(*s)) return err(ENOMEM, "allow: out of memory");
  RangeSet allowed(false);
  for (const Range& r : sorted) allowed.add(r);
  s->allowed = std::move(allowed);
  return ok_status();
}

Result<IovaRanges> ImplEngine::ranges(std::string_view ioas) const {
  const Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "ranges: no IOAS " + std::string(ioas));
  return s->published.read();
}

}  // namespace ioas::impl
