// impl/invariants.cpp: the SPEC invariants (check) and the trees' own (verify_trees, verify_all).
#include "engine_impl.hpp"

namespace ioas::impl {

std::vector<Violation> ImplEngine::check() const {
  if (opts_.verify_on_check) verify_trees();
  std::vector<Violation> out;
  std::vector<std::string> names = ioas_names();
  for (const std::string& name : names) {
    const Ioas& s = *find_ioas(name);
    auto add = [&](Invariant inv, std::string detail, std::optional<u64> w = std::nullopt) {
      out.push_back(Violation{inv, name, std::move(detail), w});
    };
    HashMap<std::uint32_t, u64> uses;  // by source id: this IOAS's areas and pins that name it
    // 1. sorted, non-overlapping lists.
    const SpaceNode* prev = nullptr;
    for (const SpaceNode* n = s.space.first(); n; n = s.space.next(*n)) {
      if (!n->is_area()) continue;
      if (prev && prev->last >= n->start)
        add(Invariant::kSorted, "areas " + to_string(prev->range()) + " and " + to_string(n->range()) + " overlap", n->start);
      prev = n;
    }
    auto sorted_list = [&](const std::vector<Range>& rs, const std::string& what) {
      for (std::size_t i = 1; i < rs.size(); ++i)
        if (rs[i - 1].last >= rs[i].start) add(Invariant::kSorted, what + " not sorted/disjoint at " + to_string(rs[i]), rs[i].start);
    };
    sorted_list(s.allowed.ranges(), "allowed");
    for (const auto& [owner, rs] : s.reserved) sorted_list(rs.ranges(), "reserved of " + to_string(owner));
    // 2..6 per area.
    for (const SpaceNode* n = s.space.first(); n; n = s.space.next(*n)) {
      if (!n->is_area()) continue;
      const Range r = n->range();
      if (auto rr = s.reserved_union.first_overlapping(r))
        add(Invariant::kAreaReserved, "area " + to_string(r) + " intersects reserved " + to_string(*rr), std::max(r.start, rr->start));
      if (s.options.zero_page == ZeroPage::kReserved && r.start == 0)
        add(Invariant::kZeroIova, "area " + to_string(r) + " contains IOVA 0", 0);
      const u64 A = s.iova_alignment;
      if (!aligned(r.start, A) || !aligned(r.length(), A) || !aligned(page_offset(area_uaddr(*n)), A))
        add(Invariant::kAlignment, "area " + to_string(r) + " not aligned to " + hex(A), r.start);
      for (const Domain* d : s.domains)
        if (!d->aperture.contains(r))
          add(Invariant::kAperture, "area " + to_string(r) + " outside the aperture of domain " + d->name, r.start);
      ++uses[n->source];
    }
    // 3.
    s.allowed.for_each([&](Range a) {
      if (auto rr = s.reserved_union.first_overlapping(a))
        add(Invariant::kAllowedReserved, "allowed " + to_string(a) + " intersects reserved " + to_string(*rr), std::max(a.start, rr->start));
    });
    // 7. every domain maps exactly the areas.
    for (const Domain* d : s.domains)
      if (auto witness = translation_mismatch(s, *d))
        add(Invariant::kTranslation, "domain " + d->name + " does not map exactly the areas", witness);
    for (const auto& [id, p] : s.pins)
      for (std::uint32_t src : p.sources) ++uses[src];
    // 8. each source's use count, IOAS by IOAS (the engine's count is their
    // sum); a removed source's id has none left to count.
    if (s.source_uses.size() != sources_.size()) {
      add(Invariant::kUseCount, "use counts kept for " + std::to_string(s.source_uses.size()) +
                                    " memory sources, the engine has " + std::to_string(sources_.size()));
      continue;
    }
    for (std::uint32_t id = 0; id < sources_.size(); ++id) {
      const u64 want = uses.contains(id) ? uses[id] : 0;
      if (s.source_uses[id] != want)
        add(Invariant::kUseCount,
            (sources_[id].live ? "memory source " + sources_[id].info.name : "removed memory source #" + std::to_string(id)) +
                " use count " + std::to_string(s.source_uses[id]) + " here, references " + std::to_string(want));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Violation& a, const Violation& b) { return a.invariant < b.invariant; });
  return out;
}

// Where domain d's table first differs from the areas of s (SPEC invariant
// 7): the first area it does not map exactly, or the first mapping that is
// no area's; nullopt when it maps exactly the areas.
std::optional<u64> ImplEngine::translation_mismatch(const Ioas& s, const Domain& d) const {
  std::vector<PtMapping> maps;
  d.pt->for_each_mapping([&](const PtMapping& m) { maps.push_back(m); });
  std::size_t i = 0;
  for (const SpaceNode* n = s.space.first(); n; n = s.space.next(*n)) {
    if (!n->is_area()) continue;
    // The table's leaf at the area's start holds what the format makes
    // of the area's prot (leaf_prot: a write-only area is rw on x86-64).
    std::optional<Translation> first;
    if (i < maps.size() && maps[i].iova == n->range()) first = d.pt->translate(n->start);
    if (i >= maps.size() || maps[i].iova != n->range() || maps[i].pa != area_pa(*n) ||
        maps[i].prot != static_cast<Prot>(n->prot) || !first || first->pa != area_pa(*n) ||
        first->prot != leaf_prot(d.fmt, static_cast<Prot>(n->prot)))
      return n->start;
    ++i;
  }
  if (i != maps.size()) return maps[i].iova.start;
  return std::nullopt;
}

void ImplEngine::verify_trees() const {
  for (const auto& [name, sp] : ioases_) {
    const Ioas& s = *sp;
    IOAS_CHECK(s.space.verify() == s.area_count + s.reserved_union.size(),
               "verify: space tree holds something other than the areas and the reserved union");
    s.reserved_union.verify();
    s.allowed.verify();
    RangeSet u(true);
    for (const auto& [owner, rs] : s.reserved) {
      rs.verify();
      IOAS_CHECK(!rs.empty(), "verify: an owner with no reserved range");
      rs.for_each([&](Range r) { u.add(r); });
    }
    IOAS_CHECK(u == s.reserved_union, "verify: reserved_union is not the union of the owners' ranges");
    IOAS_CHECK(s.published.version().ranges == s.reserved_union.complement() &&
                   s.published.alignment() == s.iova_alignment,
               "verify: the published ranges are not reserved_union's complement with iova_alignment");
    s.reserved_union.for_each([&](Range r) {
      const SpaceNode* n = s.space.find(r.start);
      IOAS_CHECK(n && !n->is_area() && n->range() == r, "verify: reserved piece missing from the space tree");
    });
    std::array<u64, kPageShift + 1> hist{};
    HashMap<u64, std::uint32_t> pins;
    for (const SpaceNode* n = s.space.first(); n; n = s.space.next(*n)) {
      if (!n->is_area()) continue;
      IOAS_CHECK(n->source < sources_.size() && sources_[n->source].live, "verify: area refers to a dead source");
      ++hist[granularity(n->start, arith::range_length(n->start, n->last), area_uaddr(*n))];
    }
    IOAS_CHECK(hist == s.align_hist, "verify: alignment histogram out of date");
    for (const auto& [id, p] : s.pins)
      for_each_area(s, p.iova, [&](const SpaceNode& n) { ++pins[n.start]; });
    IOAS_CHECK(pins == s.area_pins, "verify: per-area pin counts out of date");
    IOAS_CHECK(s.pins.empty() || s.pins.rbegin()->first < s.next_pin_id, "verify: pin id at or past next_pin_id");
    u64 a = s.options.huge_pages ? 1 : kPage;
    for (const Domain* d : s.domains) {
      a = arith::align_join(a, lowest_bit(d->pgsize_bitmap));
      IOAS_CHECK(d->ioas == &s && !d->devices.empty(), "verify: domain bookkeeping");
      IOAS_CHECK(d->pt->verify() == s.area_count, "verify: page table mapping count");
    }
    if (!s.pins.empty()) a = arith::align_join(a, kPage);
    IOAS_CHECK(a == s.iova_alignment, "verify: iova_alignment is not what the domains, pins and options give");
  }
  for (const auto& [dev, rec] : devices_)
    IOAS_CHECK(rec.dom->devices.contains(dev), "verify: device not listed by its domain");
}

void ImplEngine::verify_all() const {
  verify_trees();
  auto v = check();
  if (!v.empty()) {
    for (const auto& x : v) std::fprintf(stderr, "violated %s in %s: %s\n", to_string(x.invariant), x.ioas.c_str(), x.detail.c_str());
    IOAS_CHECK(false, "verify: a SPEC invariant is violated");
  }
}

}  // namespace ioas::impl
