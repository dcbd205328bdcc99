// impl/areas.cpp: areas: adding and removing one, map, unmap, cut, copy.
#include "engine_impl.hpp"

namespace ioas::impl {

Status ImplEngine::add_area(Ioas& s, const AreaRef& a) {
  const u64 pa = source_pa(a.source, a.offset);
  const Range r{a.start, a.last};
  if (!alloc_ok(s)) return err(ENOMEM, "area " + to_string(r) + ": out of memory for its node");
  s.space.reserve_inserts(1);  // the node, before any change
  std::size_t done = 0;
  for (; done < s.domains.size(); ++done) {
    Domain* d = s.domains[done];
    // Made in place: a Status assigned over another moves its message string
    // and frees the old one, on every map through a domain.
    const Status st = [&]() -> Status {
      try {
        return d->pt->map(r, pa, source_uaddr(a.source, a.offset), static_cast<Prot>(a.prot), effective_pgsizes(s, *d));
      } catch (const std::bad_alloc&) {  // a back end's own allocation: it changed nothing
        return out_of_memory();
      }
    }();
    if (!st.ok()) {
      for (std::size_t i = 0; i < done; ++i) {
        s.domains[i]->pt->unmap(r);
        s.domains[i]->pt->flush_iotlb();
      }
      if (st.code() != EINVAL)  // ENOMEM, or a back end's own error (a kernel's errno): as it is
        return err(st.code(), "area " + to_string(r) + " in domain " + d->name + ": " + st.error().message);
      return err(EINVAL, "area " + to_string(r) + " at pa " + hex(pa) + " cannot be mapped by domain " + d->name +
                                " (" + to_string(d->fmt) + ", page sizes " + hex(effective_pgsizes(s, *d)) +
                                ", physical addresses up to " + hex(max_output_address(d->fmt)) + "): " +
                                st.error().message);
    }
  }
  for (Domain* d : s.domains) d->pt->flush_iotlb();
  s.space.insert(SpaceEntry{a.start, a.last, a.source, a.offset, a.prot, a.pages_writable});
  ++s.area_count;
  ++s.align_hist[granularity(a.start, arith::range_length(a.start, a.last), source_uaddr(a.source, a.offset))];
  use_source(s, a.source, 1);
  return ok_status();
}

void ImplEngine::remove_area(Ioas& s, const AreaRef& a) {
  bool erased = s.space.erase(a.start);
  IOAS_CHECK(erased, "remove_area: no such area");
  finish_remove_area(s, a);
}

// Everything but the tree: page tables, counts.
void ImplEngine::finish_remove_area(Ioas& s, const AreaRef& a) {
  const Range r{a.start, a.last};
  for (Domain* d : s.domains) d->pt->unmap(r);
  --s.area_count;
  --s.align_hist[granularity(a.start, arith::range_length(a.start, a.last), source_uaddr(a.source, a.offset))];
  use_source(s, a.source, -1);
}

[[gnu::always_inline]] inline Result<u64> ImplEngine::map_at(Ioas& io, const MapArgs& args) {
  Ioas* const s = &io;
  std::uint32_t sid;
  Source* src = source_for(*s, args.source, &sid);
  if (!src) return err(ENOENT, "map: no memory source " + args.source);
  auto what = [&] { return std::string("map " + (args.iova ? span(*args.iova, args.len) : "auto+" + hex(args.len))); };
  const ModeRules& rules = s->rules;
  if (refuses_ulong_max(rules, {args.iova.value_or(0), args.len})) return ulong_max_error(what());
  if (refuses_prot(rules, args.prot)) return prot_error(rules, args.prot, what());
  if (args.len == 0) return err(EINVAL, what() + ": length 0");
  // A fixed IOVA's overflow: with the arguments (SPEC), or after its
  // alignment (the kernel's iopt_check_iova).
  const bool overflows = args.iova && arith::range_last(*args.iova, args.len).overflow;
  const auto overflow_error = [&] { return err(EOVERFLOW, what() + ": iova+len passes 2^64-1"); };
  if (overflows && !rules.fixed_iova_alignment_before_overflow) return overflow_error();
  const auto src_end = arith::range_last(args.offset, args.len);
  if (src_end.overflow) return err(EOVERFLOW, what() + ": source offset+len passes 2^64-1");
  if (src_end.last > arith::range_last(u64{0}, src->info.len).last)
    return err(EINVAL, what() + ": offset+len beyond source " + args.source + " (" + hex(src->info.len) + " bytes)");
  if (prot_writes(args.prot) && !src->info.writable)
    return err(EPERM, what() + ": source " + args.source + " is read-only");
  const u64 uaddr = source_uaddr(sid, args.offset);
  const u64 A = s->iova_alignment;
  // The page offset with the other alignments (SPEC), or once the IOVA is
  // settled (the kernel's iopt_insert_area).
  const bool offset_later = rules.page_offset_after_iova;
  const auto offset_error = [&] {
    return err(EINVAL,
               what() + ": uaddr " + hex(uaddr) + " has a page offset not a multiple of iova_alignment " + hex(A));
  };
  if ((args.iova && !aligned(*args.iova, A)) || !aligned(args.len, A))
    return err(EINVAL, what() + ": iova or length not a multiple of iova_alignment " + hex(A));
  if (!offset_later && !aligned(page_offset(uaddr), A)) return offset_error();
  if (overflows) return overflow_error();
  auto placed = place(*s, args.iova, args.len, uaddr, what);
  if (!placed.ok()) return placed;
  const u64 iova = placed.value();
  if (offset_later && !aligned(page_offset(uaddr), A)) return offset_error();
  Status st = add_area(*s, AreaRef{iova, arith::range_last(iova, args.len).last, args.offset, sid, static_cast<std::uint8_t>(args.prot),
                                   prot_writes(args.prot)});
  if (!st.ok()) return st.error();
  return iova;
}

Result<u64> ImplEngine::map(std::string_view ioas, const MapArgs& args) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "map: no IOAS " + std::string(ioas));
  return map_at(*s, args);
}
Result<u64> ImplEngine::map_in(Ioas& s, const MapArgs& args) { return map_at(s, args); }

[[gnu::always_inline]] inline Result<u64> ImplEngine::unmap_at(Ioas& io, u64 iova, u64 len) {
  Ioas* const s = &io;
  const bool all = iova == 0 && len == kMaxIova;
  auto what = [&] { return std::string(all ? std::string("unmap all") : "unmap " + span(iova, len)); };
  Range r = Range::all();
  if (!all) {
    if (refuses_ulong_max(s->rules, {iova, len})) return ulong_max_error(what());
    if (len == 0) return err(EINVAL, what() + ": length 0");
    if (arith::range_last(iova, len).overflow) return err(EOVERFLOW, what() + ": iova+len passes 2^64-1");
    r = Range{iova, arith::range_last(iova, len).last};
  }
  // The common case in one tree descent: the range is exactly one unpinned
  // area (no other area can then touch it).
  if (!all && s->area_pins.empty()) {
    SpaceNode gone;
    if (s->space.erase_area(r.start, r.last, &gone)) {
      finish_remove_area(*s, AreaRef{gone.start, gone.last, gone.offset, gone.source, gone.prot});
      for (Domain* d : s->domains) d->pt->flush_iotlb();
      return arith::range_length(gone.start, gone.last);
    }
  }
  // The areas wholly inside, in IOVA order, up to the first one that is not.
  // With unmap_all_or_nothing (SPEC) any stop fails the whole unmap; without
  // it (the kernel's iopt_unmap_iova_range) the areas before the stop are
  // removed and the stop's error is returned.
  const ModeRules& rules = s->rules;
  absl::InlinedVector<AreaRef, 4> victims;
  std::optional<Range> bad;
  for_each_area(*s, r, [&](const SpaceNode& n) {
    if (bad) return;
    if (!r.contains(n.range()))
      bad = n.range();
    else
      victims.push_back(AreaRef{n.start, n.last, n.offset, n.source, n.prot});
  });
  std::optional<Error> stop;
  if (bad) {
    stop = err(ENOENT, what() + ": area " + to_string(*bad) + " is not wholly inside");
    if (rules.unmap_all_or_nothing) return *stop;
  }
  // Pinned areas: every pin touching them is told to release. A pin that
  // will not stops the unmap at its area: SPEC fails it all with every pin
  // left in place; the kernel keeps what it removed before and the pins of
  // that area that did release.
  std::optional<Range> notified;
  if (!s->area_pins.empty()) {
    for (std::size_t i = 0; i < victims.size() && !notified; ++i) {
      const Range v{victims[i].start, victims[i].last};
      for (const auto& [id, p] : s->pins) {
        if (p.release || !p.iova.overlaps(v)) continue;
        stop = err(rules.unmap_stuck_pin_errno,
                   what() + ": pin " + std::to_string(id) + " on " + to_string(p.iova) + " does not release");
        if (rules.unmap_all_or_nothing) return *stop;
        notified = v;
        victims.resize(i);
        break;
      }
    }
    std::vector<std::uint32_t> told;
    for (const auto& [id, p] : s->pins) {
      bool touches = notified && p.iova.overlaps(*notified);
      for (const AreaRef& v : victims) touches = touches || p.iova.overlaps(Range{v.start, v.last});
      if (touches && p.release) told.push_back(id);
    }
    for (std::uint32_t id : told) drop_pin(*s, s->pins.find(id));
  }
  if (stop && victims.empty()) return std::move(*stop);
  if (victims.empty() && !all) return err(ENOENT, what() + ": nothing mapped there");
  u64 total = 0;
  for (const AreaRef& v : victims) {
    remove_area(*s, v);
    total += arith::range_length(v.start, v.last);
  }
  for (Domain* d : s->domains) d->pt->flush_iotlb();
  if (stop) return std::move(*stop);  // a move: nothing allocates after the removals
  return total;
}

Result<u64> ImplEngine::unmap(std::string_view ioas, u64 iova, u64 len) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "unmap: no IOAS " + std::string(ioas));
  return unmap_at(*s, iova, len);
}
Result<u64> ImplEngine::unmap_in(Ioas& s, u64 iova, u64 len) { return unmap_at(s, iova, len); }

Status ImplEngine::cut(std::string_view ioas, u64 iova) {
  Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "cut: no IOAS " + std::string(ioas));
  const SpaceNode* n = s->space.find(iova);
  if (!n || !n->is_area() || iova == n->start || iova == n->last) return ok_status();
  const AreaRef a{n->start, n->last, n->offset, n->source, n->prot, n->pages_writable};
  auto what = [&] { return std::string("cut " + hex(iova) + " in area " + to_string(Range{a.start, a.last})); };
  if (s->area_pins.contains(a.start)) return err(EINVAL, what() + ": area is pinned");
  const u64 after = arith::range_after(iova).next;
  if (!aligned(after, s->iova_alignment))
    return err(EINVAL, what() + ": new boundary " + hex(after) + " not aligned to " + hex(s->iova_alignment));
  if (!s->rules.cut_splits_domain_areas && s->options.huge_pages && !s->domains.empty())
    return err(EINVAL, what() + ": held by domain " + s->domains.front()->name +
                           ", which may map it with large pages (kernel mode does not split them)");
  if (!alloc_ok(*s)) return err(ENOMEM, what() + ": out of memory for the new area's node");
  s->space.reserve_inserts(1);  // the right part's node, before any change
  // The page tables first: a split may need pages (ENOMEM undoes the
  // domains already split, and nothing else has changed yet).
  for (std::size_t done = 0; done < s->domains.size(); ++done) {
    Status st = ok_status();
    try {
      st = s->domains[done]->pt->split(iova);
    } catch (const std::bad_alloc&) {  // a back end's own allocation: it changed nothing
      st = out_of_memory();
    }
    if (!st.ok()) {
      for (std::size_t i = 0; i < done; ++i) {
        s->domains[i]->pt->unsplit(iova);
        s->domains[i]->pt->flush_iotlb();
      }
      return err(st.code(), what() + ": domain " + s->domains[done]->name + ": " + st.error().message);
    }
  }
  for (Domain* d : s->domains) d->pt->flush_iotlb();
  --s->align_hist[granularity(a.start, arith::range_length(a.start, a.last), source_uaddr(a.source, a.offset))];
  s->space.set_last(a.start, iova);
  const AreaRef right{after, a.last, arith::run_addr(a.offset, a.start, after), a.source, a.prot, a.pages_writable};
  s->space.insert(SpaceEntry{right.start, right.last, right.source, right.offset, right.prot, right.pages_writable});
  ++s->area_count;
  ++s->align_hist[granularity(a.start, arith::range_length(a.start, iova), source_uaddr(a.source, a.offset))];
  ++s->align_hist[granularity(right.start, arith::range_length(right.start, right.last),
                              source_uaddr(right.source, right.offset))];
  use_source(*s, a.source, 1);
  return ok_status();
}

Result<u64> ImplEngine::copy(std::string_view ioas, const CopyArgs& args) {
  Ioas* dst = find_ioas(ioas);
  if (!dst) return err(ENOENT, "copy: no IOAS " + std::string(ioas));
  Ioas* from = find_ioas(args.from);
  if (!from) return err(ENOENT, "copy: no source IOAS " + args.from);
  auto what = [&] { return std::string("copy " + args.from + ":" + span(args.src_iova, args.len)); };
  if (refuses_ulong_max(dst->rules, {args.src_iova, args.dst_iova.value_or(0), args.len}))
    return ulong_max_error(what());
  if (refuses_prot(dst->rules, args.prot)) return prot_error(dst->rules, args.prot, what());
  if (args.len == 0) return err(EINVAL, what() + ": length 0");
  if (arith::range_last(args.src_iova, args.len).overflow)
    return err(EOVERFLOW, what() + ": source range passes 2^64-1");
  // A fixed destination's overflow: with the arguments (SPEC), or once the
  // source is taken, before or after the destination's alignment (the
  // kernel's iommufd_ioas_copy, then iopt_check_iova).
  const ModeRules& rules = dst->rules;
  const bool dst_overflows = args.dst_iova && arith::range_last(*args.dst_iova, args.len).overflow;
  const auto dst_overflow_error = [&] { return err(EOVERFLOW, what() + ": destination range passes 2^64-1"); };
  if (dst_overflows && !rules.copy_source_before_destination) return dst_overflow_error();
  const Range src_r{args.src_iova, arith::range_last(args.src_iova, args.len).last};
  // The source must be covered by contiguous areas; one piece per area.
  std::vector<AreaRef> pieces;
  if (!covering_areas(*from, src_r, pieces))
    return err(ENOENT, what() + ": source range is not covered by contiguous areas");
  for (AreaRef& p : pieces) {
    const auto in = arith::range_intersect(p.start, p.last, src_r.start, src_r.last);
    p = AreaRef{in.start, in.last, arith::run_addr(p.offset, p.start, in.start), p.source, static_cast<std::uint8_t>(args.prot), p.pages_writable};
  }
  const u64 A = dst->iova_alignment;
  // Write permission: the memory source's here, or the pages' once the
  // destination is settled (copy_write_needs_writable_pages, below).
  for (const AreaRef& p : pieces) {
    const Source& src = sources_[p.source];
    if (prot_writes(args.prot) && !src.info.writable && !rules.copy_write_needs_writable_pages)
      return err(EPERM, what() + ": source " + src.info.name + " is read-only");
  }
  const u64 first_uaddr = source_uaddr(pieces.front().source, pieces.front().offset);
  if (dst_overflows && !rules.fixed_iova_alignment_before_overflow) return dst_overflow_error();
  for (const AreaRef& p : pieces) {
    const u64 dst_start = arith::run_addr(args.dst_iova.value_or(0), src_r.start, p.start);
    if ((args.dst_iova && !aligned(dst_start, A)) || !aligned(arith::range_length(p.start, p.last), A))
      return err(EINVAL, what() + ": a piece's iova or length is not a multiple of iova_alignment " + hex(A));
  }
  if (dst_overflows) return dst_overflow_error();
  // The pieces' page offsets with the other alignments (SPEC), or once the
  // IOVA is settled (the kernel's iopt_insert_area, piece by piece after
  // the pages' write permission).
  const bool offset_later = rules.page_offset_after_iova;
  const auto offset_error = [&](const AreaRef& p) -> std::optional<Result<u64>> {
    if (!aligned(page_offset(source_uaddr(p.source, p.offset)), A))
      return err(EINVAL, what() + ": a piece's uaddr%PAGE is not a multiple of iova_alignment " + hex(A));
    return std::nullopt;
  };
  if (!offset_later)
    for (const AreaRef& p : pieces)
      if (auto e = offset_error(p)) return *e;
  auto placed = place(*dst, args.dst_iova, args.len, first_uaddr, what);
  if (!placed.ok()) return placed;
  const u64 iova = placed.value();
  for (const AreaRef& p : pieces) {
    if (rules.copy_write_needs_writable_pages && prot_writes(args.prot) && !p.pages_writable)
      return err(EPERM, what() + ": write permission on pages mapped without it (" + sources_[p.source].info.name + ")");
    if (offset_later)
      if (auto e = offset_error(p)) return *e;
  }
  if (Status st = add_pieces(*dst, pieces, src_r.start, iova); !st.ok()) return st.error();
  return iova;
}

// Copy's new areas: each piece of the source run from src_start moved to the
// same place in the run from dst_start (mod 2^64), all of them or, on a
// domain's failure, none.
Status ImplEngine::add_pieces(Ioas& dst, const std::vector<AreaRef>& pieces, u64 src_start, u64 dst_start) {
  std::vector<AreaRef> added;
  added.reserve(pieces.size());
  dst.space.reserve_inserts(pieces.size());  // every piece's node, before any change
  for (const AreaRef& p : pieces) {
    const u64 ds = arith::run_addr(dst_start, src_start, p.start);
    AreaRef a{ds, arith::run_addr(ds, p.start, p.last), p.offset, p.source, p.prot, p.pages_writable};
    Status st = add_area(dst, a);
    if (!st.ok()) {
      for (const AreaRef& b : added) remove_area(dst, b);
      for (Domain* d : dst.domains) d->pt->flush_iotlb();
      return st;
    }
    added.push_back(a);
  }
  dst.space.trim_spares();
  return ok_status();
}

}  // namespace ioas::impl
