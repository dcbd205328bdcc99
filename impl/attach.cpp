// impl/attach.cpp: devices and domains: attach, detach.
#include "engine_impl.hpp"

namespace ioas::impl {

Status ImplEngine::attach(std::string_view ioas, const AttachArgs& args) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "attach: no IOAS " + std::string(ioas));
  auto what = [&] { return std::string("attach " + args.dev + " to " + args.dom); };
  if (args.dev.empty()) return err(EINVAL, "attach: the device name is empty");
  if (args.dom.empty()) return err(EINVAL, "attach: the domain name is empty");
  if (devices_.contains(args.dev)) return err(EBUSY, what() + ": device already attached");
  Domain* dom = find_domain(args.dom);
  if (dom) {
    if (dom->ioas != s) return err(EINVAL, what() + ": domain is in IOAS " + dom->ioas->name);
    if ((args.fmt && *args.fmt != dom->fmt) || (args.aperture && *args.aperture != dom->aperture) ||
        (args.pgsize_bitmap && *args.pgsize_bitmap != dom->pgsize_bitmap) || !args.pgsizes_not_pow2.empty())
      return err(EINVAL, what() + ": format, aperture or page sizes differ from the domain's");
  }
  RangeSet dev_resv(true);
  if (Status st = device_regions(*s, args, what(), dev_resv); !st.ok()) return st;
  std::unique_ptr<Domain> fresh;
  RangeSet dom_resv(true);
  u64 new_alignment = s->iova_alignment;
  if (!dom) {
    auto made = new_domain(*s, args, what(), dom_resv);
    if (!made.ok()) return made.error();
    fresh = std::move(made).value();
    new_alignment = arith::align_join(new_alignment, lowest_bit(fresh->pgsize_bitmap));
  }
  // Everything the commit needs, allocated first: the reserved plan, the
  // keys, room in the IOAS's domain list.
  const Owner dev_owner{OwnerKind::kDevice, args.dev}, dom_owner{OwnerKind::kDomain, args.dom};
  OwnerChange changes[2];
  std::size_t nchanges = 0;
  if (!dev_resv.empty()) changes[nchanges++] = OwnerChange{&dev_owner, &dev_resv};
  if (fresh && !dom_resv.empty()) changes[nchanges++] = OwnerChange{&dom_owner, &dom_resv};
  ReservedPlan plan = plan_reserved(*s, {changes, nchanges});
  if (fresh) room_for_one(s->domains);
  Owner dev_key = dev_owner, dom_key = dom_owner;
  std::string dev_name = args.dev, dev_name2 = args.dev, dom_name = args.dom;
  Domain* const target = dom ? dom : fresh.get();
  // The inserts: each one either happens or throws having changed nothing;
  // a throw takes back the ones before it (erases allocate nothing).
  int done = 0;
  try {
    target->devices.insert(std::move(dev_name));
    ++done;
    devices_.emplace(std::move(dev_name2), DeviceRec{s, target});
    ++done;
    if (fresh) domains_.emplace(std::move(dom_name), std::move(fresh));
    ++done;
    if (!dev_resv.empty()) s->reserved.try_emplace(std::move(dev_key), std::move(dev_resv));
    ++done;
    if (target != dom && !dom_resv.empty()) s->reserved.try_emplace(std::move(dom_key), std::move(dom_resv));
  } catch (const std::bad_alloc&) {
    if (done >= 4) s->reserved.erase(dev_owner);
    if (done >= 3 && target != dom) domains_.erase(domains_.find(args.dom));
    if (done >= 2) devices_.erase(devices_.find(args.dev));
    if (done >= 1 && target == dom) dom->devices.erase(args.dev);
    throw;
  }
  // Commit: nothing below allocates.
  if (target != dom) {
    dom = target;
    s->domains.insert(std::upper_bound(s->domains.begin(), s->domains.end(), dom,
                                       [](const Domain* a, const Domain* b) { return a->name < b->name; }),
                      dom);
    s->iova_alignment = new_alignment;
  }
  apply_reserved(*s, plan);
  return ok_status();
}

Status ImplEngine::detach(std::string_view dev) {
  auto it = devices_.find(key(dev));
  if (it == devices_.end()) return err(ENOENT, "detach: no attached device " + std::string(dev));
  Ioas* s = it->second.ioas;
  Domain* d = it->second.dom;
  // The keys and the new reserved union first; then nothing allocates.
  const bool last = d->devices.size() == 1;
  const Owner dev_owner{OwnerKind::kDevice, std::string(dev)}, dom_owner{OwnerKind::kDomain, d->name};
  const OwnerChange changes[2] = {OwnerChange{&dev_owner, nullptr}, OwnerChange{&dom_owner, nullptr}};
  ReservedPlan plan = plan_reserved(*s, {changes, last ? 2u : 1u});
  s->reserved.erase(dev_owner);
  d->devices.erase(dev_owner.name);
  devices_.erase(it);
  if (last) {
    s->reserved.erase(dom_owner);
    s->domains.erase(std::find(s->domains.begin(), s->domains.end(), d));
    domains_.erase(domains_.find(d->name));
    recompute_alignment(*s);
  }
  apply_reserved(*s, plan);
  return ok_status();
}

// The device's reserved regions (SPEC "attach"), into dev_resv.
Status ImplEngine::device_regions(const Ioas& s, const AttachArgs& args, const std::string& what, RangeSet& dev_resv) {
  for (const ResvRegion& rr : args.resv) {
    // Malformed input is rejected even for a region that would be skipped.
    if (rr.range.start > rr.range.last)
      return err(EINVAL, what + ": reserved region " + to_string(rr.range) + " has start > last");
    if (rr.type == ResvType::kDirectRelaxable) continue;
    if (auto a = first_area(s, rr.range))
      return err(EADDRINUSE, what + ": reserved region " + to_string(rr.range) + " overlaps mapped area " +
                                 to_string(*a));
    if (auto a = s.allowed.first_overlapping(rr.range))
      return err(EADDRINUSE,
                 what + ": reserved region " + to_string(rr.range) + " overlaps allowed range " + to_string(*a));
    dev_resv.add(rr.range);
  }
  return ok_status();
}

// A new domain for attach (SPEC "attach"): its format, aperture and page
// sizes checked against the IOAS, its table made and filled with every
// area. dom_resv gets the IOVA outside its aperture. Changes nothing.
Result<std::unique_ptr<Domain>> ImplEngine::new_domain(Ioas& s, const AttachArgs& args, const std::string& what,
                                                        RangeSet& dom_resv) {
  auto fresh = std::make_unique<Domain>();
  fresh->name = args.dom;
  fresh->ioas = &s;
  fresh->fmt = args.fmt.value_or(Format::kX86_64);
  fresh->aperture = args.aperture.value_or(default_aperture(fresh->fmt));
  fresh->pgsize_bitmap = args.pgsize_bitmap.value_or(default_pgsizes(fresh->fmt));
  if (Status st = check_new_domain(s, *fresh, args, what, dom_resv); !st.ok()) return st.error();
  if (!alloc_ok(s)) return err(ENOMEM, what + ": out of memory for the domain");
  // Fill the new page table with every area (work on the new table only;
  // it is installed on success).
  auto builtin = [&]() -> Result<std::unique_ptr<IoPageTable>> {
    auto t = HwPageTable::create(fresh->fmt, fresh->aperture, fresh->pgsize_bitmap, *s.mem);
    if (!t.ok()) return t.error();
    return std::unique_ptr<IoPageTable>(std::move(t).value());
  };
  auto table = opts_.tables ? opts_.tables(DomainConfig{fresh->name, s.name, args.dev, fresh->fmt,
                                                        fresh->aperture, fresh->pgsize_bitmap},
                                           builtin)
                            : builtin();
  if (!table.ok()) return err(table.code(), what + ": page table: " + table.error().message);
  if (!table.value()) return err(EINVAL, what + ": the table factory made no table");
  fresh->pt = std::move(table).value();
  fresh->lock_free = lock_free_pages(*fresh);
  const u64 pgsizes = effective_pgsizes(s, *fresh);
  for (const SpaceNode* n = s.space.first(); n; n = s.space.next(*n)) {
    if (!n->is_area()) continue;
    Status st = fresh->pt->map(n->range(), area_pa(*n), area_uaddr(*n), static_cast<Prot>(n->prot), pgsizes);
    if (st.code() != EINVAL && !st.ok())  // ENOMEM, or a back end's own error: as it is
      return err(st.code(), what + ": area " + to_string(n->range()) + ": " + st.error().message);
    if (!st.ok())
      return err(EINVAL, what + ": area " + to_string(n->range()) + " at pa " + hex(area_pa(*n)) +
                             " cannot be mapped by the domain (page sizes " + hex(pgsizes) +
                             ", physical addresses up to " + hex(max_output_address(fresh->fmt)) +
                             "): " + st.error().message);
  }
  fresh->pt->flush_iotlb();
  return fresh;
}

// The checks of a new domain d against the IOAS.
Status ImplEngine::check_new_domain(const Ioas& s, const Domain& d, const AttachArgs& args, const std::string& what,
                                    RangeSet& dom_resv) const {
  const bool tce = d.fmt == Format::kTce;
  const u64 pg = d.pgsize_bitmap;
  if (!args.pgsizes_not_pow2.empty())
    return err(EINVAL, what + ": page size " + hex(args.pgsizes_not_pow2.front()) + " is not a power of two");
  if (!pgsizes_allowed(d.fmt, pg))
    return err(EINVAL, what + ": page sizes " + hex(pg) + " not allowed by format " + to_string(d.fmt) + " (" +
                           pgsizes_rule(d.fmt) + ")");
  if (d.aperture.start > d.aperture.last)
    return err(EINVAL, what + ": aperture " + to_string(d.aperture) + " has start > last");
  // tce is a flat table of whole IOMMU pages; mock's xarray indexes any
  // 64-bit IOVA; the others translate 48 bits.
  if (tce ? (!aligned(d.aperture.start, pg) || !aligned(arith::range_after(d.aperture.last).next, pg))
          : d.aperture.last > formats::facts(d.fmt).input_last)
    return err(EINVAL, what + ": aperture " + to_string(d.aperture) + " cannot be addressed by format " +
                           to_string(d.fmt));
  const u64 minpg = lowest_bit(pg);
  if (minpg > kPage) return err(EINVAL, what + ": minimum page size " + hex(minpg) + " above PAGE");
  const u64 new_alignment = arith::align_join(s.iova_alignment, minpg);
  if (auto bad = first_misaligned_area(s, new_alignment))
    return err(EADDRINUSE, what + ": area " + to_string(*bad) + " is not aligned to the new iova_alignment " +
                               hex(new_alignment));
  const Range ap = d.aperture;
  if (ap.start > 0) dom_resv.add(Range{0, arith::range_last(u64{0}, ap.start).last});
  if (const auto after = arith::range_after(ap.last); !after.at_top) dom_resv.add(Range{after.next, kMaxIova});
  for (const Range& r : dom_resv.ranges()) {
    if (auto a = first_area(s, r))
      return err(EADDRINUSE, what + ": mapped area " + to_string(*a) + " lies outside the aperture " + to_string(ap));
    if (auto a = s.allowed.first_overlapping(r))
      return err(EADDRINUSE,
                 what + ": allowed range " + to_string(*a) + " lies outside the aperture " + to_string(ap));
  }
  return ok_status();
}

}  // namespace ioas::impl
