// impl/pins.cpp: pins.
#include "engine_impl.hpp"

namespace ioas::impl {

Result<std::uint32_t> ImplEngine::pin(std::string_view ioas, const PinArgs& args) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "pin: no IOAS " + std::string(ioas));
  auto what = [&] { return std::string("pin " + span(args.iova, args.len)); };
  // The first pin raises the alignment to PAGE: before the range
  // (pin_alignment_before_range) or after it.
  const std::optional<Range> misaligned =
      s->pins.empty() && s->iova_alignment < kPage ? first_misaligned_area(*s, kPage) : std::nullopt;
  const auto alignment_error = [&] {
    return err(EADDRINUSE, what() + ": the first pin needs iova_alignment " + hex(kPage) + " but area " +
                               to_string(*misaligned) + " is not aligned to it");
  };
  const bool alignment_first = s->rules.pin_alignment_before_range;
  if (misaligned && alignment_first) return alignment_error();
  if (args.len == 0) return err(EINVAL, what() + ": length 0");
  if (arith::range_last(args.iova, args.len).overflow) return err(EOVERFLOW, what() + ": iova+len passes 2^64-1");
  const Range r{args.iova, arith::range_last(args.iova, args.len).last};
  absl::InlinedVector<AreaRef, 4> areas;
  // A byte in no area: before the areas' checks, or after them
  // (pin_checks_each_area_in_turn, which adds the pin's page alignment).
  const bool in_turn = s->rules.pin_checks_each_area_in_turn;
  const bool hole = !covering_areas(*s, r, areas);
  const auto hole_error = [&] { return err(ENOENT, what() + ": not covered by contiguous areas"); };
  if (hole && !in_turn) return hole_error();
  // In turn, the first area's check is that the pin starts at a page
  // boundary of its user memory.
  if (in_turn && !areas.empty()) {
    const AreaRef& first = areas.front();
    if (!aligned(arith::run_addr(source_uaddr(first.source, first.offset), first.start, r.start), kPage))
      return err(EINVAL, what() + ": does not start at a page boundary of the user memory of area " +
                             to_string(Range{first.start, first.last}));
  }
  // Each area's own prot decides (the kernel's check_area_prot): a write
  // pin needs w, a read pin r.
  for (const AreaRef& a : areas) {
    const Prot ap = static_cast<Prot>(a.prot);
    if (args.write && !prot_writes(ap))
      return err(EPERM, what() + ": write pin on read-only area " + to_string(Range{a.start, a.last}));
    if (!args.write && !prot_reads(ap))
      return err(EPERM, what() + ": read pin on write-only area " + to_string(Range{a.start, a.last}));
  }
  if (hole) return hole_error();
  if (misaligned) return alignment_error();
  if (!alloc_ok(*s)) return err(ENOMEM, what() + ": out of memory");
  Pin p{r, args.write, args.release, {}};
  for (const AreaRef& a : areas)
    if (std::find(p.sources.begin(), p.sources.end(), a.source) == p.sources.end()) p.sources.push_back(a.source);
  const std::uint32_t id = s->next_pin_id;
  // The inserts (each happens or throws having changed nothing); a throw
  // takes back the ones before it.
  auto pin_it = s->pins.emplace(id, std::move(p)).first;
  std::size_t counted = 0;
  try {
    for (; counted < areas.size(); ++counted) ++s->area_pins[areas[counted].start];
  } catch (const std::bad_alloc&) {
    for (std::size_t i = 0; i < counted; ++i) {
      auto c = s->area_pins.find(areas[i].start);
      if (--c->second == 0) s->area_pins.erase(c);
    }
    s->pins.erase(pin_it);
    throw;
  }
  for (std::uint32_t src : pin_it->second.sources) use_source(*s, src, 1);
  ++s->next_pin_id;
  s->iova_alignment = arith::align_join(s->iova_alignment, kPage);
  publish_alignment(*s);
  return id;
}

Status ImplEngine::unpin(std::string_view ioas, std::uint32_t id) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "unpin: no IOAS " + std::string(ioas));
  auto it = s->pins.find(id);
  if (it == s->pins.end()) return err(ENOENT, "unpin " + std::to_string(id) + ": no such pin");
  drop_pin(*s, it);
  return ok_status();
}

void ImplEngine::drop_pin(Ioas& s, absl::btree_map<std::uint32_t, Pin>::iterator it) {
  const Pin& p = it->second;
  for_each_area(s, p.iova, [&](const SpaceNode& n) {
    auto c = s.area_pins.find(n.start);
    IOAS_CHECK(c != s.area_pins.end() && c->second > 0, "unpin: area pin count missing");
    if (--c->second == 0) s.area_pins.erase(c);
  });
  for (std::uint32_t src : p.sources) use_source(s, src, -1);
  s.pins.erase(it);
  if (s.pins.empty()) {
    recompute_alignment(s);
    publish_alignment(s);
  }
}

}  // namespace ioas::impl
