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
  if (!n || !n->is_area()) return err(ENOENT, hex_within("uva ", iova, ": not mapped"));
  return arith::run_addr(area_uaddr(*n), n->start, iova);
}

Result<std::vector<LeafInfo>> ImplEngine::leaves(std::string_view dom, Range r) const {
  std::vector<LeafInfo> out;
  if (Status st = leaves_into(dom, r, out); !st.ok()) return st.error();
  return out;
}

Status ImplEngine::leaves_into(std::string_view dom, Range r, std::vector<LeafInfo>& out) const {
  const Domain* d = find_domain(dom);
  if (!d) return err(ENOENT, "leaves: no domain " + std::string(dom));
  d->pt->leaves_into(r, out);
  if (d->dirty == DirtyMode::kOff)  // dirty state is not recorded while off
    for (LeafInfo& l : out) l.dirty = false;
  return ok_status();
}

Result<IoasState> ImplEngine::snapshot(std::string_view ioas) const {
  IoasState st;
  if (Status r = snapshot_into(ioas, st); !r.ok()) return r.error();
  return st;
}

// Every field of `st` written; its vectors (and the strings and device
// lists inside them) keep their memory from the last call.
Status ImplEngine::snapshot_into(std::string_view ioas, IoasState& st) const {
  const Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "snapshot: no IOAS " + std::string(ioas));
  st.name = s->name;
  st.options = s->options;
  st.iova_alignment = s->iova_alignment;
  std::size_t k = 0;
  st.areas.reserve(s->area_count);
  for (const SpaceNode* n = s->space.first(); n; n = s->space.next(*n)) {
    if (!n->is_area()) continue;
    if (k == st.areas.size()) st.areas.emplace_back();
    AreaInfo& a = st.areas[k++];
    auto pc = s->area_pins.find(n->start);
    a.iova = n->range();
    a.prot = static_cast<Prot>(n->prot);
    a.source = sources_[n->source].info.name;
    a.offset = n->offset;
    a.pins = pc == s->area_pins.end() ? 0 : pc->second;
  }
  st.areas.resize(k);
  k = 0;
  // (A named pair, not a structured binding: clang before 16 cannot capture one.)
  for (const auto& entry : s->reserved)
    entry.second.for_each([&](Range r) {
      if (k == st.reserved.size()) st.reserved.emplace_back();
      ReservedInfo& ri = st.reserved[k++];
      ri.range = r;
      ri.owner = entry.first;
    });
  st.reserved.resize(k);
  st.allowed.clear();
  s->allowed.for_each([&](Range r) { st.allowed.push_back(r); });
  st.pins.clear();
  for (const auto& [id, p] : s->pins) st.pins.push_back(PinInfo{id, p.iova, p.write, p.release});
  k = 0;
  for (const Domain* d : s->domains) {
    if (k == st.domains.size()) st.domains.emplace_back();
    DomainInfo& di = st.domains[k++];
    di.name = d->name;
    di.fmt = d->fmt;
    di.aperture = d->aperture;
    di.pgsize_bitmap = d->pgsize_bitmap;
    di.devices.assign(d->devices.begin(), d->devices.end());
    di.dirty = d->dirty;
  }
  st.domains.resize(k);
  st.next_pin_id = s->next_pin_id;
  return ok_status();
}

}  // namespace ioas::impl
