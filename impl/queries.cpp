// impl/queries.cpp: what a caller can read: translate, uva, leaves, snapshot.
#include "engine_impl.hpp"

namespace ioas::impl {

Result<std::optional<Translation>> ImplEngine::translate(std::string_view dom, u64 iova) const {
  const Domain* d = find_domain(dom);
  if (!d) return err(ENOENT, "translate: no domain " + std::string(dom));
  return d->pt->translate(iova);
}

Result<u64> ImplEngine::uva(std::string_view ioas, u64 iova) const {
  const Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "uva: no IOAS " + std::string(ioas));
  const SpaceNode* n = s->space.find(iova);
  if (!n || !n->is_area()) return err(ENOENT, "uva " + hex(iova) + ": not mapped");
  return arith::run_addr(area_uaddr(*n), n->start, iova);
}

Result<std::vector<LeafInfo>> ImplEngine::leaves(std::string_view dom, Range r) const {
  const Domain* d = find_domain(dom);
  if (!d) return err(ENOENT, "leaves: no domain " + std::string(dom));
  std::vector<LeafInfo> out;
  d->pt->leaves(r, [&](const LeafInfo& l) {
    out.push_back(l);
    if (d->dirty == DirtyMode::kOff) out.back().dirty = false;  // not recorded while off
  });
  return out;
}

Result<IoasState> ImplEngine::snapshot(std::string_view ioas) const {
  const Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "snapshot: no IOAS " + std::string(ioas));
  IoasState st;
  st.name = s->name;
  st.options = s->options;
  st.iova_alignment = s->iova_alignment;
  st.areas.reserve(s->area_count);
  for (const SpaceNode* n = s->space.first(); n; n = s->space.next(*n)) {
    if (!n->is_area()) continue;
    auto pc = s->area_pins.find(n->start);
    st.areas.push_back(AreaInfo{n->range(), static_cast<Prot>(n->prot), sources_[n->source].info.name, n->offset,
                                pc == s->area_pins.end() ? 0 : pc->second});
  }
  // (A named pair, not a structured binding: clang before 16 cannot capture one.)
  for (const auto& entry : s->reserved)
    entry.second.for_each([&](Range r) { st.reserved.push_back(ReservedInfo{r, entry.first}); });
  st.allowed = s->allowed.ranges();
  for (const auto& [id, p] : s->pins) st.pins.push_back(PinInfo{id, p.iova, p.write, p.release});
  for (const Domain* d : s->domains)
    st.domains.push_back(DomainInfo{d->name, d->fmt, d->aperture, d->pgsize_bitmap,
                                    std::vector<std::string>(d->devices.begin(), d->devices.end()), d->dirty});
  st.next_pin_id = s->next_pin_id;
  return st;
}

}  // namespace ioas::impl
