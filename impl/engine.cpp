// impl/engine.cpp: the production engine's objects: clone, IOASes, memory
// sources. The layout and the other files: engine_impl.hpp.
#include "engine_impl.hpp"

namespace ioas::impl {

// A deep copy; the IOAS <-> domain <-> device pointers are re-aimed at the
// copies.
std::unique_ptr<Engine> ImplEngine::clone() const {
  auto e = std::make_unique<ImplEngine>(opts_);
  // The engine's memory and the IOASes' page memories first (sharing the
  // copy's injection): the tables are re-made over their copies.
  e->ptmem_ = std::make_unique<hw::HeapPageMemory>(*ptmem_);
  e->sources_ = sources_;
  e->free_source_ids_ = free_source_ids_;
  e->source_ids_ = source_ids_;
  HashMap<const Ioas*, Ioas*> imap;
  HashMap<const Domain*, Domain*> dmap;
  for (const auto& [name, s] : ioases_) {
    auto n = std::make_unique<Ioas>(*s);
    n->mem = std::make_shared<hw::HeapPageMemory>(*s->mem);
    n->mem->share_injection(*e->ptmem_);
    imap[s.get()] = n.get();
    e->ioases_.emplace(name, std::move(n));
  }
  for (const auto& [name, d] : domains_) {
    auto n = std::make_unique<Domain>();
    n->name = d->name;
    n->ioas = imap.at(d->ioas);
    n->fmt = d->fmt;
    n->aperture = d->aperture;
    n->pgsize_bitmap = d->pgsize_bitmap;
    n->devices = d->devices;
    n->dirty = d->dirty;
    // Only the built-in table can be copied (a back end's own table, a
    // kernel's say, cannot).
    const auto* builtin = dynamic_cast<const HwPageTable*>(d->pt.get());
    if (!builtin) return nullptr;
    n->pt = builtin->clone_onto(*n->ioas->mem);
    n->lock_free = lock_free_pages(*n);
    dmap[d.get()] = n.get();
    e->domains_.emplace(name, std::move(n));
  }
  for (auto& [name, s] : e->ioases_)
    for (Domain*& d : s->domains) d = dmap.at(d);
  for (const auto& [dev, rec] : devices_) e->devices_.emplace(dev, DeviceRec{imap.at(rec.ioas), dmap.at(rec.dom)});
  return e;
}

// ---------------------------------------------------------------- IOASes

Status ImplEngine::create_ioas(std::string_view name, const IoasOptions& options) {
  if (name.empty()) return err(EINVAL, "create ioas: empty name");
  if (find_ioas(name)) return err(EEXIST, "create ioas " + std::string(name) + ": exists");
  if (!alloc_ok()) return err(ENOMEM, "create ioas " + std::string(name) + ": out of memory");
  auto s = std::make_unique<Ioas>();
  s->mem = std::make_shared<hw::HeapPageMemory>();
  s->mem->share_injection(*ptmem_);
  s->source_uses.assign_zeros(sources_.size());
  s->name = std::string(name);
  s->options = options;
  s->rules = rules_for(options.mode);
  s->options.zero_page = s->rules.forced_zero_page.value_or(options.zero_page);
  recompute_alignment(*s);
  publish_alignment(*s);
  if (s->options.zero_page == ZeroPage::kReserved) {
    s->reserved.try_emplace(Owner{OwnerKind::kZeroPage, ""}, true)
        .first->second.add(Range{0, arith::range_last(u64{0}, kPage).last});
    resync_reserved(*s);
  }
  ioases_.emplace(s->name, std::move(s));
  return ok_status();
}

Result<IoasOptions> ImplEngine::ioas_options(std::string_view ioas) const {
  const Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "ioas " + std::string(ioas) + ": no such IOAS");
  return s->options;
}

// iopt_disable_large_pages / iopt_enable_large_pages (include/ioas/engine.hpp).
// Off never re-lays a leaf that exists (it is refused while a domain holds
// areas); on merges leaves, which needs no page (HwPageTable::relayout), so
// only another back end's table can fail it, and then the tables already
// re-laid are put back.
Status ImplEngine::set_huge_pages(std::string_view ioas, bool on) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "huge-pages: no IOAS " + std::string(ioas));
  if (s->options.huge_pages == on) return ok_status();
  const std::string what = std::string("huge-pages ") + (on ? "on" : "off") + " in " + s->name;
  if (!on && !s->domains.empty() && s->area_count)
    return err(EINVAL,
               what + ": domain " + s->domains.front()->name + " holds areas, which it may map with large pages");
  std::vector<u64> before;
  for (const Domain* d : s->domains) before.push_back(effective_pgsizes(*s, *d));
  const u64 old_alignment = s->iova_alignment;
  auto restore = [&] {
    s->options.huge_pages = !on;
    s->iova_alignment = old_alignment;
  };
  s->options.huge_pages = on;
  recompute_alignment(*s);
  if (s->iova_alignment > old_alignment && !all_areas_aligned(*s, s->iova_alignment)) {
    const std::optional<Range> bad = first_misaligned_area(*s, s->iova_alignment);
    const u64 a = s->iova_alignment;
    restore();
    return err(EADDRINUSE, what + ": area " + (bad ? to_string(*bad) : std::string("?")) +
                               " is not aligned to the new iova_alignment " + hex(a));
  }
  for (std::size_t i = 0; i < s->domains.size(); ++i) {
    Domain* d = s->domains[i];
    const u64 after = effective_pgsizes(*s, *d);
    if (after == before[i]) continue;
    if (Status st = d->pt->relayout(after); !st.ok()) {
      for (std::size_t j = 0; j < i; ++j) (void)s->domains[j]->pt->relayout(before[j]);
      for (std::size_t j = 0; j < i; ++j) s->domains[j]->pt->flush_iotlb();
      restore();
      return err(st.code(), what + ": re-laying the leaves of " + d->name + ": " + st.error().message);
    }
  }
  for (Domain* d : s->domains) d->pt->flush_iotlb();
  publish_alignment(*s);
  return ok_status();
}

std::vector<std::string> ImplEngine::ioas_names() const {
  std::vector<std::string> out;
  for (const auto& [n, s] : ioases_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------- memory

Status ImplEngine::add_memory(const MemorySource& m) {
  if (m.name.empty()) return err(EINVAL, "mem: the name is empty");
  if (source_ids_.contains(m.name)) return err(EEXIST, "mem " + m.name + ": name exists");
  if (m.len == 0) return err(EINVAL, "mem " + m.name + ": length 0");
  if (arith::range_last(m.va, m.len).overflow || arith::range_last(m.pa, m.len).overflow)
    return err(EOVERFLOW, "mem " + m.name + ": va+len or pa+len passes 2^64-1");
  if (page_offset(m.va) != page_offset(m.pa))
    return err(EINVAL, "mem " + m.name + ": va " + hex(m.va) + " and pa " + hex(m.pa) +
                           " have different offsets within a page");
  if (!alloc_ok()) return err(ENOMEM, "mem " + m.name + ": out of memory");
  // Everything allocated first (the record, room in sources_, the name's
  // entry: a strong insert); then nothing below allocates.
  Source fresh{m, true};
  const bool reuse = !free_source_ids_.empty();
  if (!reuse) {
    IOAS_CHECK(sources_.size() < kReservedPiece, "too many memory sources");
    room_for_one(sources_);
    // Every IOAS's use counts get a slot for the new id (room now, the
    // slot itself below): a throw here leaves only spare capacity.
    for (auto& [n, s] : ioases_) s->source_uses.room_for_one();
  }
  const std::uint32_t id = reuse ? free_source_ids_.back() : static_cast<std::uint32_t>(sources_.size());
  source_ids_.emplace(m.name, id);
  if (reuse) {
    free_source_ids_.pop_back();  // its use counts are 0: remove_memory saw their sum 0
  } else {
    sources_.emplace_back();
    for (auto& [n, s] : ioases_) s->source_uses.push_zero();
  }
  sources_[id] = std::move(fresh);
  return ok_status();
}

Status ImplEngine::remove_memory(std::string_view name) {
  std::uint32_t id;
  Source* src = find_source(name, &id);
  if (!src) return err(ENOENT, "unmem " + std::string(name) + ": no such memory source");
  if (const u64 uses = use_count(id))
    return err(EBUSY, "unmem " + std::string(name) + ": used by " + std::to_string(uses) + " areas and pins");
  room_for_one(free_source_ids_);
  *src = Source{};
  source_ids_.erase(source_ids_.find(key(name)));
  free_source_ids_.push_back(id);
  return ok_status();
}

std::vector<MemoryInfo> ImplEngine::memories() const {
  std::vector<MemoryInfo> out;
  for (std::uint32_t id = 0; id < sources_.size(); ++id)
    if (sources_[id].live) out.push_back(MemoryInfo{sources_[id].info, use_count(id)});
  std::sort(out.begin(), out.end(),
            [](const MemoryInfo& a, const MemoryInfo& b) { return a.source.name < b.source.name; });
  return out;
}

}  // namespace ioas::impl
