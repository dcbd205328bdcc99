// The executable spec of ioas (SPEC.md), as an ioas::Engine.
//
// This file is the reference every other part is checked against, so it is
// written to be obviously correct rather than fast:
//   - every list is a sorted std::vector and every search a linear scan;
//   - every mutating operation works on a copy of the whole world and installs
//     it only on success, so "an operation that fails changes nothing" holds
//     by construction (the vfio lesson: work on a copy, install on success);
//   - checks are made in the order SPEC.md writes them, one `if` each, and the
//     first failing one gives the errno;
//   - what the hardware must show (translations, leaves, dirty state, the
//     userspace view) is computed from the areas, never stored in a page table.
//
// Choices made where SPEC.md is silent (each has a test in model/tests):
//   - empty names (IOAS, memory source, device, domain, reserve owner): EINVAL.
//   - attach reads the device's regions in the order given; for each, start >
//     last is EINVAL (direct-relaxable included: malformed input is never
//     silently accepted), then a non-relaxable region touching an area or an
//     allowed range is EADDRINUSE.
//   - a new domain's checks run: page sizes valid for the format, aperture
//     start <= last, aperture addressable by the format, minimum page size <=
//     PAGE, alignment of existing areas, aperture reservation, mapping of
//     existing areas.
//   - "an aperture the format cannot address": x86-64 and arm-lpae, last >
//     2^48-1; tce (a flat table of whole IOMMU pages), a window whose start or
//     size is not a multiple of the page size.
//   - x86-64/arm-lpae page sizes must be a non-empty subset of {4K, 2M, 1G};
//     tce exactly one power of two.
//   - a pin references each memory source of the areas it covers once
//     (invariant 8 counts it that way).
//   - huge-pages=off restricts a domain's leaves to page sizes <= PAGE; split
//     dirty tracking restricts them to the domain's smallest page size.
//   - detach of an unknown device: ENOENT (a name that does not exist).
//   - kernel mode (SPEC "Kernel mode"): the differences are the fields of
//     ioas::ModeRules (ioas/rules.hpp), each consulted where its rule is
//     decided: create_ioas (zero page), unmap (partial unmap, the errno of a
//     pin that does not release), cut (no split of an area a domain holds
//     while large pages are on), pin (its areas checked in turn, page
//     alignment included), place (the pages' write permission, an allowed
//     span's start moved by the placement formula). A kernel-mode unmap
//     that stops part way returns its error with the areas before the stop
//     removed: the one failed operation that changes something.
//   - a write-only area (kernel mode, ModeRules::write_only_maps) records
//     prot w; a domain's leaves hold leaf_prot(format, w) (rw on x86-64 and
//     arm-lpae, w on tce and mock), which translate, dma and leaves report;
//     pins ask the area (a read pin of it: EPERM).
//   - the mock format: leaves as for any format (2K, and 1M blocks when the
//     domain has 1M); its physical addresses are unlimited (the xarray holds
//     pa / 2K in an unsigned long); any aperture.
#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ioas/arith.hpp"
#include "ioas/boundary.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/core/text.hpp"
#include "ioas/engine.hpp"
#include "ioas/rules.hpp"
#include "world.hpp"

// Installs a checked new world or returns the error (inside ModelEngine).
#define RETURN_IF_ERROR_INSTALL(next)              \
  do {                                             \
    Status st_ = install(std::move(next));         \
    if (!st_.ok()) return st_.error();             \
  } while (0)

namespace ioas::model {
namespace {

constexpr u64 kTwoTo63 = u64{1} << 63;

std::string str(const Range& r) { return to_string(r); }

Error err(int code, std::string msg) { return Error{code, std::move(msg)}; }

// The prots map and copy take (ModeRules::write_only_maps adds w).
bool prot_valid(const IoasRec& io, Prot p) {
  return prot_reads(p) || (p == Prot::kWrite && rules_for(io.options.mode).write_only_maps);
}
Error bad_prot(const std::string& what, const IoasRec& io, Prot p) {
  return err(EINVAL, what + ": prot " + to_string(p) +
                         (rules_for(io.options.mode).write_only_maps ? " (r, w or rw)"
                                                                      : " (only r and rw can be enforced)"));
}
bool is_pow2(u64 x) { return arith::is_pow2(x); }
u64 lowest_bit(u64 x) { return arith::lowest_bit(x); }

// ---------------------------------------------------------------------------
// Small helpers over the records, all linear.

template <typename Map>
auto* find(Map& m, std::string_view name) {
  auto it = m.find(name);
  return it == m.end() ? nullptr : &it->second;
}

const ResvRec* first_reserved_touching(const IoasRec& io, const Range& r) {
  const ResvRec* hit = nullptr;
  for (const auto& rv : io.reserved)
    if (rv.range.overlaps(r) && (!hit || rv.range.start < hit->range.start)) hit = &rv;
  return hit;
}

const AreaRec* first_area_touching(const IoasRec& io, const Range& r) {
  for (const auto& a : io.areas)
    if (a.iova.overlaps(r)) return &a;
  return nullptr;
}

const Range* first_allowed_touching(const IoasRec& io, const Range& r) {
  for (const auto& a : io.allowed)
    if (a.overlaps(r)) return &a;
  return nullptr;
}

const AreaRec* area_at(const IoasRec& io, u64 iova) {
  for (const auto& a : io.areas)
    if (a.iova.contains(iova)) return &a;
  return nullptr;
}

bool pin_touches(const PinRec& p, const AreaRec& a) { return p.iova.overlaps(a.iova); }

u64 area_uaddr(const World& w, const AreaRec& a) {
  return w.memories.at(a.source).src.va + a.offset;
}
u64 area_pa(const World& w, const AreaRec& a) {
  return w.memories.at(a.source).src.pa + a.offset;
}

void sort_areas(IoasRec& io) {
  std::sort(io.areas.begin(), io.areas.end(),
            [](const AreaRec& x, const AreaRec& y) { return x.iova.start < y.iova.start; });
}

// Adds `r` to the ranges of `owner`, merging overlapping and adjacent ranges
// of the same owner (SPEC "reserve").
void add_reserved(IoasRec& io, const Range& r, const Owner& owner) {
  std::vector<Range> mine{r};
  std::vector<ResvRec> rest;
  for (auto& rv : io.reserved) {
    if (rv.owner == owner) mine.push_back(rv.range);
    else rest.push_back(std::move(rv));
  }
  for (const auto& m : normalize(std::move(mine))) rest.push_back(ResvRec{m, owner});
  std::sort(rest.begin(), rest.end(), [](const ResvRec& x, const ResvRec& y) {
    if (x.owner != y.owner) return x.owner < y.owner;
    return x.range < y.range;
  });
  io.reserved = std::move(rest);
}

void remove_reserved(IoasRec& io, const Owner& owner) {
  std::erase_if(io.reserved, [&](const ResvRec& rv) { return rv.owner == owner; });
}

// The alignment SPEC defines: 1, or PAGE with huge pages off; at least the
// smallest page size of every attached domain; at least PAGE while pinned.
u64 computed_alignment(const World& w, const IoasRec& io) {
  u64 a = io.options.huge_pages ? 1 : kPage;
  for (const auto& [name, d] : w.domains)
    if (d.ioas == io.name) a = std::max(a, lowest_bit(d.pgsize_bitmap));
  if (!io.pins.empty()) a = std::max(a, kPage);
  return a;
}

// The first area of `io` whose iova, length or uaddr mod PAGE is not a
// multiple of `align` (invariant 5 at that alignment).
const AreaRec* first_misaligned_area(const World& w, const IoasRec& io, u64 align) {
  for (const auto& a : io.areas) {
    if (!arith::is_aligned(a.iova.start, align) || !arith::is_aligned(a.iova.length(), align) ||
        !arith::is_aligned(area_uaddr(w, a) % kPage, align))
      return &a;
  }
  return nullptr;
}

// The areas covering r contiguously from r.start (each starting right
// after the previous), up to the first byte of r in no area; `whole` when
// they cover all of r.
struct Cover {
  std::vector<const AreaRec*> areas;
  bool whole = false;
};
Cover cover_from(const IoasRec& io, const Range& r) {
  Cover out;
  u64 cur = r.start;
  for (;;) {
    const AreaRec* a = area_at(io, cur);
    if (!a) return out;
    out.areas.push_back(a);
    if (a->iova.last >= r.last) {
      out.whole = true;
      return out;
    }
    cur = a->iova.last + 1;
  }
}

// The areas covering r contiguously, or nullopt when some byte of r is in
// no area.
std::optional<std::vector<const AreaRec*>> contiguous_cover(const IoasRec& io, const Range& r) {
  Cover c = cover_from(io, r);
  if (!c.whole) return std::nullopt;
  return std::move(c.areas);
}

// ---------------------------------------------------------------------------
// Leaves: what a domain's page table holds for an area.
//
// The page table maps each area with the greedy iommu_pgsize rule: from the
// area's start, the largest page size in the bitmap that divides both the
// current iova and physical address and fits in what remains. A size p can
// divide both only when it divides pa - iova (constant over the area); call
// such sizes eligible.
//
// Claim: the leaf holding byte y is the p-aligned block around y for the
// largest eligible p whose block lies inside the area. Proof: all sizes are
// powers of two, so aligned blocks nest. Let B (size P) be that block and L
// the greedy leaf holding y; L is an eligible aligned block inside the area,
// so |L| <= P and L lies in B. No leaf crosses B's start from inside (it would
// be a larger block containing B and y, contradicting |L| <= P), so greedy
// stands at B's start (or starts there), where P fits and nothing larger
// inside the area does: greedy picks B. model_test cross-checks this against
// a literal greedy walk.

u64 leaf_bitmap(const World& w, const DomainRec& d) {
  u64 bm = d.pgsize_bitmap;
  if (!w.ioases.at(d.ioas).options.huge_pages) bm &= (kPage | (kPage - 1));
  if (d.dirty == DirtyMode::kOnSplit) bm = lowest_bit(d.pgsize_bitmap);
  return bm;
}

// The rule on one area: `bm` is the domain's leaf_bitmap, `delta` the
// area's physical address minus its IOVA (mod 2^64).
Range leaf_in_area(u64 bm, u64 delta, const Range& area, u64 y) {
  // The sizes of bm, largest first.
  for (u64 sizes = bm; sizes != 0;) {
    const u64 p = u64{1} << (63 - std::countl_zero(sizes));
    sizes &= ~p;
    if (!arith::is_aligned(delta, p)) continue;
    u64 start = arith::align_down(y, p);
    Range block{start, start + (p - 1)};
    if (area.contains(block)) return block;
  }
  // Unreachable while invariant 5 holds (the smallest size divides the area).
  return Range{y, y};
}

Range leaf_of_impl(const World& w, const DomainRec& d, const AreaRec& a, u64 y) {
  return leaf_in_area(leaf_bitmap(w, d), area_pa(w, a) - a.iova.start, a.iova, y);
}

// Whether `a` can be mapped by the domain at all: its iova, length and
// physical address must be multiples of the smallest page size, and its
// physical range must end within the format's output address size.
bool domain_can_map(const World& w, const DomainRec& d, const AreaRec& a) {
  u64 minp = lowest_bit(d.pgsize_bitmap);
  return arith::is_aligned(a.iova.start, minp) && arith::is_aligned(a.iova.length(), minp) &&
         arith::is_aligned(area_pa(w, a), minp) &&
         area_pa(w, a) + (a.iova.length() - 1) <= max_output_address(d.fmt);
}


// dirty_bytes is kept as normalize() leaves a list (sorted, disjoint, no two
// adjacent), so each of these is one search or one pass: a device marks one
// slot at a time, and a domain may hold tens of thousands of dirty ranges.

// r joins the dirty bytes, merged with the ranges it overlaps or touches.
void add_dirty(DomainRec& d, const Range& r) {
  auto& v = d.dirty_bytes;
  // [lo, hi): the ranges that overlap r or touch it; those before lo end
  // before r.start - 1, those from hi start after r.last + 1.
  auto lo = std::partition_point(v.begin(), v.end(),
                                 [&](const Range& x) { return x.last < r.start && !x.precedes_adjacent(r); });
  auto hi = std::partition_point(lo, v.end(), [&](const Range& x) { return x.start <= r.last || r.precedes_adjacent(x); });
  Range merged = r;
  if (lo != hi) merged = Range{std::min(r.start, lo->start), std::max(r.last, std::prev(hi)->last)};
  v.insert(v.erase(lo, hi), merged);
}

// The bytes of `clean` are dirty no more.
void remove_dirty(DomainRec& d, std::vector<Range> clean) {
  const std::vector<Range> keep = complement(clean);
  std::vector<Range> out;
  std::size_t k = 0;
  for (const auto& x : d.dirty_bytes) {
    while (k < keep.size() && keep[k].last < x.start) ++k;
    for (std::size_t j = k; j < keep.size() && keep[j].start <= x.last; ++j)
      out.push_back(Range{std::max(x.start, keep[j].start), std::min(x.last, keep[j].last)});
  }
  d.dirty_bytes = std::move(out);
}

// The first dirty range that ends at or after r.start.
std::vector<Range>::const_iterator first_dirty_from(const DomainRec& d, const Range& r) {
  return std::partition_point(d.dirty_bytes.begin(), d.dirty_bytes.end(),
                              [&](const Range& x) { return x.last < r.start; });
}

// Whether any byte of r is dirty.
bool dirty_in(const DomainRec& d, const Range& r) {
  auto it = first_dirty_from(d, r);
  return it != d.dirty_bytes.end() && it->start <= r.last;
}

// Whether every byte of r is dirty (no two dirty ranges are adjacent, so
// one holds them all).
bool dirty_throughout(const DomainRec& d, const Range& r) {
  auto it = first_dirty_from(d, r);
  return it != d.dirty_bytes.end() && it->contains(r);
}

// ---------------------------------------------------------------------------
// Formats (SPEC "attach").


std::string pgsizes_str(u64 bm) {
  std::string s;
  for (int bit = 0; bit < 64; ++bit) {
    if (!(bm & (u64{1} << bit))) continue;
    if (!s.empty()) s += ',';
    s += hex(u64{1} << bit);
  }
  return s.empty() ? "none" : s;
}

std::string why_unmappable(const DomainRec& d) {
  return "page sizes " + pgsizes_str(d.pgsize_bitmap) + ", physical addresses up to " +
         hex(max_output_address(d.fmt)) + " (" + to_string(d.fmt) + ")";
}

// ---------------------------------------------------------------------------
// Automatic allocation (SPEC "automatic"), literally: spans of the allowed
// list (or the whole window) clipped to [PAGE, 2^64-1-PAGE], holes of the
// union of reserved ranges and areas inside each span, the kernel's candidate
// formula, first fit in ascending order. With `align_span_start`
// (ModeRules::auto_aligns_span_start) each span first starts at the
// formula's candidate for its own start, and is skipped when none fits.

std::optional<u64> find_free(const IoasRec& io, u64 len, u64 align, u64 page_offset, bool align_span_start,
                             const std::vector<Range>& extra_blocked = {}) {
  const Range window{kPage, kMaxIova - kPage};
  std::vector<Range> spans;
  if (io.allowed.empty()) {
    spans.push_back(window);
  } else {
    for (const auto& s : normalize(io.allowed)) {
      if (!s.overlaps(window)) continue;
      spans.push_back(Range{std::max(s.start, window.start), std::min(s.last, window.last)});
    }
  }
  std::vector<Range> blocked = extra_blocked;
  for (const auto& r : io.reserved) blocked.push_back(r.range);
  for (const auto& a : io.areas) blocked.push_back(a.iova);
  const std::vector<Range> free = complement(blocked);
  for (auto span : spans) {
    if (align_span_start) {
      auto c = arith::hole_candidate(span.start, span.last, align, page_offset, len);
      if (!c.fits) continue;
      span.start = c.iova;
    }
    for (const auto& f : free) {
      if (!f.overlaps(span)) continue;
      Range hole{std::max(f.start, span.start), std::min(f.last, span.last)};
      auto c = arith::hole_candidate(hole.start, hole.last, align, page_offset, len);
      if (c.fits) return c.iova;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------

class ModelEngine final : public Engine {
 public:
  const char* kind() const override { return "model"; }
  std::unique_ptr<Engine> clone() const override { return std::make_unique<ModelEngine>(*this); }

  Status create_ioas(std::string_view name, const IoasOptions& options) override {
    if (name.empty()) return err(EINVAL, "create ioas: the name is empty");
    if (w_.ioases.count(name)) return err(EEXIST, "create ioas " + std::string(name) + ": exists");
    World next = w_;
    IoasRec io;
    io.name = std::string(name);
    io.options = options;
    io.options.zero_page = rules_for(options.mode).forced_zero_page.value_or(options.zero_page);
    io.iova_alignment = options.huge_pages ? 1 : kPage;
    if (io.options.zero_page == ZeroPage::kReserved)
      io.reserved.push_back(ResvRec{Range{0, kPage - 1}, Owner{OwnerKind::kZeroPage, ""}});
    next.ioases.emplace(io.name, std::move(io));
    return install(std::move(next));
  }

  Result<IoasOptions> ioas_options(std::string_view name) const override {
    const IoasRec* io = find(w_.ioases, name);
    if (!io) return no_ioas(name);
    return io->options;
  }

  // The kernel's iopt_disable_large_pages / iopt_enable_large_pages: off is
  // refused while a domain holds areas (EINVAL; their leaves may be large),
  // and when the raised alignment finds a misaligned area (EADDRINUSE). The
  // leaves follow (leaf_bitmap reads the option).
  Status set_huge_pages(std::string_view ioas, bool on) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    if (io->options.huge_pages == on) return ok_status();
    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    nio.options.huge_pages = on;
    const u64 align = computed_alignment(next, nio);
    if (!on) {
      const std::string what = "huge-pages off in " + io->name;
      bool has_domain = false;
      for (const auto& [dn, d] : w_.domains) has_domain = has_domain || d.ioas == io->name;
      if (has_domain && !io->areas.empty())
        return err(EINVAL, what + ": a domain holds areas, which it may map with large pages");
      if (align > io->iova_alignment)
        if (const AreaRec* a = first_misaligned_area(w_, *io, align))
          return err(EADDRINUSE, what + ": area " + str(a->iova) + " is not aligned to the new iova_alignment " +
                                     hex(align));
    }
    nio.iova_alignment = align;
    return install(std::move(next));
  }

  std::vector<std::string> ioas_names() const override {
    std::vector<std::string> out;
    for (const auto& [n, io] : w_.ioases) out.push_back(n);
    return out;
  }

  // ---- memory sources ----

  Status add_memory(const MemorySource& s) override {
    const std::string what = "mem " + s.name;
    if (s.name.empty()) return err(EINVAL, "mem: the name is empty");
    if (w_.memories.count(s.name)) return err(EEXIST, what + ": a memory source of that name exists");
    if (s.len == 0) return err(EINVAL, what + ": length 0");
    if (arith::range_last(s.va, s.len).overflow)
      return err(EOVERFLOW, what + ": va " + hex(s.va) + " + len " + hex(s.len) + " passes 2^64-1");
    if (arith::range_last(s.pa, s.len).overflow)
      return err(EOVERFLOW, what + ": pa " + hex(s.pa) + " + len " + hex(s.len) + " passes 2^64-1");
    if (s.va % kPage != s.pa % kPage)
      return err(EINVAL, what + ": va " + hex(s.va) + " and pa " + hex(s.pa) +
                             " have different offsets within a page");
    World next = w_;
    next.memories.emplace(s.name, MemRec{s, 0});
    return install(std::move(next));
  }

  Status remove_memory(std::string_view name) override {
    const MemRec* m = find(w_.memories, name);
    if (!m) return err(ENOENT, "unmem " + std::string(name) + ": no such memory source");
    if (m->use_count != 0)
      return err(EBUSY, "unmem " + std::string(name) + ": in use by " +
                            std::to_string(m->use_count) + " areas and pins");
    World next = w_;
    next.memories.erase(std::string(name));
    return install(std::move(next));
  }

  std::vector<MemoryInfo> memories() const override {
    std::vector<MemoryInfo> out;
    for (const auto& [n, m] : w_.memories) out.push_back(MemoryInfo{m.src, m.use_count});
    return out;
  }

  // ---- map ----

  Result<u64> map(std::string_view ioas, const MapArgs& a) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    const MemRec* m = find(w_.memories, a.source);
    if (!m) return err(ENOENT, "map: no memory source named " + a.source);
    const std::string what = "map " + (a.iova ? hex(*a.iova) : std::string("auto")) + "+" + hex(a.len);
    if (refuses_ulong_max(rules_for(io->options.mode), {a.iova.value_or(0), a.len})) return ulong_max_error(what);
    if (!prot_valid(*io, a.prot)) return bad_prot(what, *io, a.prot);
    if (a.len == 0) return err(EINVAL, what + ": length 0");
    if (a.iova && arith::range_last(*a.iova, a.len).overflow &&
        !rules_for(io->options.mode).fixed_iova_alignment_before_overflow)
      return err(EOVERFLOW, what + ": iova + len passes 2^64-1");
    const auto src_end = arith::range_last(a.offset, a.len);
    if (src_end.overflow)
      return err(EOVERFLOW, what + ": source offset " + hex(a.offset) + " + len passes 2^64-1");
    // The last byte must lie in the source (offset + len itself can be 2^64).
    if (src_end.last >= m->src.len)
      return err(EINVAL, what + ": source " + a.source + "+" + hex(a.offset) + " runs past its end (" +
                             hex(m->src.len) + " bytes)");
    if (prot_writes(a.prot) && !m->src.writable)
      return err(EPERM, what + ": write permission on read-only memory source " + a.source);

    Piece piece{a.source, a.offset, a.len, m->src.va + a.offset, m->src.writable, prot_writes(a.prot)};
    return place(ioas, what, a.iova, a.len, a.prot, {piece});
  }

  // ---- unmap ----

  // Removes the areas `gone` of nio (in next) and answers their bytes. The
  // accesses release: every releasing pin touching a removed area, or the
  // area `notified` (told to release when an unmap stopped), goes too.
  static u64 remove_areas(World& next, IoasRec& nio, const std::vector<Range>& gone,
                          const std::optional<Range>& notified) {
    std::vector<Range> told = gone;
    if (notified) told.push_back(*notified);
    std::vector<PinRec> keep;
    for (auto& p : nio.pins) {
      bool hit = p.release &&
                 std::any_of(told.begin(), told.end(), [&](const Range& g) { return p.iova.overlaps(g); });
      if (hit) {
        for (const auto& s : p.sources) next.memories.at(s).use_count--;
      } else {
        keep.push_back(std::move(p));
      }
    }
    nio.pins = std::move(keep);
    u64 unmapped = 0;
    std::vector<AreaRec> areas;
    for (auto& a : nio.areas) {
      bool hit = std::any_of(gone.begin(), gone.end(), [&](const Range& g) { return g == a.iova; });
      if (hit) {
        unmapped += a.iova.length();
        next.memories.at(a.source).use_count--;
        for (auto& [dn, d] : next.domains)
          if (d.ioas == nio.name) remove_dirty(d, {a.iova});
      } else {
        areas.push_back(std::move(a));
      }
    }
    nio.areas = std::move(areas);
    return unmapped;
  }

  Result<u64> unmap(std::string_view ioas, u64 iova, u64 len) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    const bool all = iova == 0 && len == kMaxIova;
    const std::string what = all ? std::string("unmap all") : "unmap " + hex(iova) + "+" + hex(len);
    Range r = Range::all();
    if (!all) {
      if (refuses_ulong_max(rules_for(io->options.mode), {iova, len})) return ulong_max_error(what);
      if (len == 0) return err(EINVAL, what + ": length 0");
      auto end = arith::range_last(iova, len);
      if (end.overflow) return err(EOVERFLOW, what + ": iova + len passes 2^64-1");
      r = Range{iova, end.last};
    }
    // The areas touched, in IOVA order. With unmap_all_or_nothing (SPEC)
    // every one is checked before anything goes; without it (the kernel's
    // iopt_unmap_iova_range) each is removed before the next is looked at, so
    // a failure keeps the areas before it removed.
    const ModeRules rules = rules_for(io->options.mode);
    auto stuck_pin = [&](const AreaRec& a) -> const PinRec* {
      for (const auto& p : io->pins)
        if (pin_touches(p, a) && !p.release) return &p;
      return nullptr;
    };
    auto stuck_error = [&](const PinRec& p) {
      return err(rules.unmap_stuck_pin_errno, what + ": pin " + std::to_string(p.id) + " on " + str(p.iova) +
                                                  " did not release when told to");
    };
    std::vector<const AreaRec*> touched;
    std::optional<Error> stop;
    std::optional<Range> notified;  // the area whose accesses were told to release when it stopped
    for (const auto& a : io->areas) {
      if (!a.iova.overlaps(r)) continue;
      if (!r.contains(a.iova)) {
        stop = err(ENOENT, what + ": area " + str(a.iova) +
                               " is only partly inside the range (areas are unmapped whole)");
        break;
      }
      if (!rules.unmap_all_or_nothing) {
        if (const PinRec* p = stuck_pin(a)) {
          stop = stuck_error(*p);
          notified = a.iova;
          break;
        }
      }
      touched.push_back(&a);
    }
    if (stop && (rules.unmap_all_or_nothing || (touched.empty() && !notified))) return *stop;
    if (!stop && touched.empty() && !all) return err(ENOENT, what + ": no area in the range");
    if (rules.unmap_all_or_nothing) {
      for (const AreaRec* a : touched)
        if (const PinRec* p = stuck_pin(*a)) return stuck_error(*p);
    }
    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    std::vector<Range> gone;
    for (const AreaRec* a : touched) gone.push_back(a->iova);
    const u64 unmapped = remove_areas(next, nio, gone, notified);
    nio.iova_alignment = computed_alignment(next, nio);
    RETURN_IF_ERROR_INSTALL(next);
    // The kernel's partial unmap: what was removed stays removed. A move: the
    // error was made before the install, and nothing may allocate after it.
    if (stop) return std::move(*stop);
    return unmapped;
  }

  // ---- cut ----

  Status cut(std::string_view ioas, u64 iova) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    const AreaRec* a = area_at(*io, iova);
    if (!a || iova == a->iova.start || iova == a->iova.last) return ok_status();
    const std::string what = "cut " + hex(iova);
    for (const auto& p : io->pins)
      if (pin_touches(p, *a))
        return err(EINVAL, what + ": area " + str(a->iova) + " is pinned by pin " + std::to_string(p.id));
    if (!arith::is_aligned(iova + 1, io->iova_alignment))
      return err(EINVAL, what + ": the new boundary " + hex(iova + 1) + " is not a multiple of iova_alignment " +
                             hex(io->iova_alignment));
    if (!rules_for(io->options.mode).cut_splits_domain_areas && io->options.huge_pages) {
      for (const auto& [dn, d] : w_.domains)
        if (d.ioas == io->name)
          return err(EINVAL, what + ": area " + str(a->iova) + " is held by domain " + dn +
                                 ", which may map it with large pages (kernel mode does not split them)");
    }
    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    for (std::size_t i = 0; i < nio.areas.size(); ++i) {
      if (!nio.areas[i].iova.contains(iova)) continue;
      AreaRec right = nio.areas[i];
      right.iova.start = iova + 1;
      right.offset += (iova + 1) - nio.areas[i].iova.start;
      nio.areas[i].iova.last = iova;
      next.memories.at(right.source).use_count++;
      nio.areas.insert(nio.areas.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::move(right));
      break;
    }
    // Dirty bytes are unchanged: the new leaves nest inside the old ones, so a
    // dirty leaf becomes dirty pieces.
    return install(std::move(next));
  }

  // ---- copy ----

  Result<u64> copy(std::string_view ioas, const CopyArgs& c) override {
    const IoasRec* dst = find(w_.ioases, ioas);
    if (!dst) return no_ioas(ioas);
    const IoasRec* src = find(w_.ioases, c.from);
    if (!src) return no_ioas(c.from);
    const std::string what = "copy from " + c.from + " " + hex(c.src_iova) + "+" + hex(c.len);
    if (refuses_ulong_max(rules_for(dst->options.mode), {c.src_iova, c.dst_iova.value_or(0), c.len}))
      return ulong_max_error(what);
    if (!prot_valid(*dst, c.prot)) return bad_prot(what, *dst, c.prot);
    if (c.len == 0) return err(EINVAL, what + ": length 0");
    auto send = arith::range_last(c.src_iova, c.len);
    if (send.overflow) return err(EOVERFLOW, what + ": source iova + len passes 2^64-1");
    if (c.dst_iova && arith::range_last(*c.dst_iova, c.len).overflow &&
        !rules_for(dst->options.mode).copy_source_before_destination)
      return err(EOVERFLOW, what + ": destination iova + len passes 2^64-1");
    const Range sr{c.src_iova, send.last};
    auto cover = contiguous_cover(*src, sr);
    if (!cover) return err(ENOENT, what + ": the source range is not covered by contiguous areas");
    std::vector<Piece> pieces;
    for (const AreaRec* a : *cover) {
      Range part{std::max(a->iova.start, sr.start), std::min(a->iova.last, sr.last)};
      const MemRec& m = w_.memories.at(a->source);
      u64 off = a->offset + (part.start - a->iova.start);
      pieces.push_back(Piece{a->source, off, part.length(), m.src.va + off, m.src.writable, a->pages_writable});
    }
    // The memory source decides here, or the pages once the destination is
    // settled (copy_write_needs_writable_pages, in place).
    if (!rules_for(dst->options.mode).copy_write_needs_writable_pages)
      for (const auto& p : pieces)
        if (prot_writes(c.prot) && !p.writable)
          return err(EPERM, what + ": write permission on read-only memory source " + p.source);
    return place(ioas, what, c.dst_iova, c.len, c.prot, pieces);
  }

  // ---- reserved and allowed ----

  Status reserve(std::string_view ioas, Range r, std::string_view owner) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    const std::string what = "reserve " + hex(r.start) + "-" + hex(r.last);
    if (owner.empty()) return err(EINVAL, what + ": the owner is empty");
    if (r.start > r.last) return err(EINVAL, what + ": start > last");
    if (const AreaRec* a = first_area_touching(*io, r))
      return err(EADDRINUSE, what + ": overlaps mapped area " + str(a->iova));
    if (const Range* al = first_allowed_touching(*io, r))
      return err(EADDRINUSE, what + ": overlaps allowed range " + str(*al));
    World next = w_;
    add_reserved(next.ioases.at(std::string(ioas)), r, Owner{OwnerKind::kUser, std::string(owner)});
    return install(std::move(next));
  }

  Status unreserve(std::string_view ioas, std::string_view owner) override {
    if (!find(w_.ioases, ioas)) return no_ioas(ioas);
    World next = w_;
    remove_reserved(next.ioases.at(std::string(ioas)), Owner{OwnerKind::kUser, std::string(owner)});
    return install(std::move(next));
  }

  Status allow(std::string_view ioas, std::span<const Range> ranges) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    for (const auto& r : ranges)
      if (r.start >= r.last) return err(EINVAL, "allow " + str(r) + ": start >= last");
    for (std::size_t i = 0; i < ranges.size(); ++i)
      for (std::size_t j = i + 1; j < ranges.size(); ++j)
        if (ranges[i].overlaps(ranges[j]))
          return err(EINVAL, "allow: " + str(ranges[i]) + " overlaps " + str(ranges[j]));
    for (const auto& r : ranges)
      if (const ResvRec* rv = first_reserved_touching(*io, r))
        return err(EADDRINUSE, "allow " + str(r) + ": overlaps reserved range " + str(rv->range) +
                                   " owned by " + to_string(rv->owner));
    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    nio.allowed.assign(ranges.begin(), ranges.end());
    std::sort(nio.allowed.begin(), nio.allowed.end());
    return install(std::move(next));
  }

  Result<IovaRanges> ranges(std::string_view ioas) const override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    std::vector<Range> resv;
    for (const auto& r : io->reserved) resv.push_back(r.range);
    return IovaRanges{complement(resv), io->iova_alignment};
  }

  // ---- attach / detach ----

  // A device joining an existing domain must ask for what the domain is.
  static Status joins_as_it_is(const DomainRec& existing, const IoasRec& io, const AttachArgs& a,
                               const std::string& what) {
    if (existing.ioas != io.name) return err(EINVAL, what + ": the domain belongs to IOAS " + existing.ioas);
    if (a.fmt && *a.fmt != existing.fmt)
      return err(EINVAL, what + ": format " + to_string(*a.fmt) + " differs from the domain's " +
                             to_string(existing.fmt));
    if (a.aperture && *a.aperture != existing.aperture)
      return err(EINVAL, what + ": aperture " + str(*a.aperture) + " differs from the domain's " +
                             str(existing.aperture));
    if (!a.pgsizes_not_pow2.empty())
      return err(EINVAL, what + ": page size " + hex(a.pgsizes_not_pow2.front()) +
                             " is not a power of two, not the domain's");
    if (a.pgsize_bitmap && *a.pgsize_bitmap != existing.pgsize_bitmap)
      return err(EINVAL, what + ": page sizes " + pgsizes_str(*a.pgsize_bitmap) + " differ from the domain's " +
                             pgsizes_str(existing.pgsize_bitmap));
    return ok_status();
  }

  // The device's reserved regions, into nio (the kernel adds them first).
  static Status reserve_device_regions(IoasRec& nio, const AttachArgs& a, const std::string& what) {
    const Owner dev_owner{OwnerKind::kDevice, a.dev};
    for (const auto& reg : a.resv) {
      const std::string rw = what + ": reserved region " + hex(reg.range.start) + "-" + hex(reg.range.last) + " " +
                             to_string(reg.type);
      if (reg.range.start > reg.range.last) return err(EINVAL, rw + ": start > last");
      if (reg.type == ResvType::kDirectRelaxable) continue;
      if (const AreaRec* ar = first_area_touching(nio, reg.range))
        return err(EADDRINUSE, rw + ": overlaps mapped area " + str(ar->iova));
      if (const Range* al = first_allowed_touching(nio, reg.range))
        return err(EADDRINUSE, rw + ": overlaps allowed range " + str(*al));
      add_reserved(nio, reg.range, dev_owner);
    }
    return ok_status();
  }

  // A new domain a.dom in nio (of next): its format, page sizes and
  // aperture, the IOVA outside the aperture reserved, every area mappable.
  static Status add_domain(World& next, IoasRec& nio, const AttachArgs& a, const std::string& what) {
    DomainRec d;
    d.name = a.dom;
    d.ioas = nio.name;
    d.fmt = a.fmt.value_or(Format::kX86_64);
    d.pgsize_bitmap = a.pgsize_bitmap.value_or(default_pgsizes(d.fmt));
    d.aperture = a.aperture.value_or(default_aperture(d.fmt));
    const std::string fw = what + ": " + to_string(d.fmt) + " domain";
    if (!a.pgsizes_not_pow2.empty())
      return err(EINVAL, fw + ": page size " + hex(a.pgsizes_not_pow2.front()) + " is not a power of two");
    if (!pgsizes_allowed(d.fmt, d.pgsize_bitmap))
      return err(EINVAL, fw + ": page sizes " + pgsizes_str(d.pgsize_bitmap) + " are not " + pgsizes_rule(d.fmt));
    if (d.aperture.start > d.aperture.last) return err(EINVAL, fw + ": aperture start > last");
    if (d.fmt == Format::kTce) {
      u64 p = d.pgsize_bitmap;
      if (!arith::is_aligned(d.aperture.start, p) || !arith::is_aligned(d.aperture.last + 1, p))
        return err(EINVAL, fw + ": window " + str(d.aperture) + " is not made of whole " + hex(p) + "-byte pages");
    } else if (d.aperture.last > formats::facts(d.fmt).input_last) {
      return err(EINVAL, fw + ": aperture " + str(d.aperture) + " passes the 48-bit input space");
    }
    const u64 minp = lowest_bit(d.pgsize_bitmap);
    if (minp > kPage) return err(EINVAL, fw + ": smallest page size " + hex(minp) + " is above PAGE");
    const u64 align = std::max(nio.iova_alignment, minp);
    if (const AreaRec* bad = first_misaligned_area(next, nio, align))
      return err(EADDRINUSE,
                 fw + ": area " + str(bad->iova) + " is not aligned to the new iova_alignment " + hex(align));
    const Owner dom_owner{OwnerKind::kDomain, a.dom};
    std::vector<Range> outside;
    if (d.aperture.start != 0) outside.push_back(Range{0, d.aperture.start - 1});
    if (d.aperture.last != kMaxIova) outside.push_back(Range{d.aperture.last + 1, kMaxIova});
    for (const auto& o : outside) {
      if (const AreaRec* ar = first_area_touching(nio, o))
        return err(EADDRINUSE,
                   fw + ": mapped area " + str(ar->iova) + " lies outside the aperture " + str(d.aperture));
      if (const Range* al = first_allowed_touching(nio, o))
        return err(EADDRINUSE,
                   fw + ": allowed range " + str(*al) + " lies outside the aperture " + str(d.aperture));
      add_reserved(nio, o, dom_owner);
    }
    for (const auto& ar : nio.areas)
      if (!domain_can_map(next, d, ar))
        return err(EINVAL, fw + ": area " + str(ar.iova) + " at pa " + hex(area_pa(next, ar)) +
                               " cannot be mapped by the domain: " + why_unmappable(d));
    nio.iova_alignment = align;
    next.domains.emplace(d.name, std::move(d));
    return ok_status();
  }

  Status attach(std::string_view ioas, const AttachArgs& a) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    const std::string what = "attach " + a.dev + " to " + a.dom;
    if (a.dev.empty()) return err(EINVAL, "attach: the device name is empty");
    if (a.dom.empty()) return err(EINVAL, "attach: the domain name is empty");
    if (const DeviceRec* d = find(w_.devices, a.dev))
      return err(EBUSY, what + ": the device is attached to domain " + d->domain);
    const DomainRec* existing = find(w_.domains, a.dom);
    if (existing)
      if (Status st = joins_as_it_is(*existing, *io, a, what); !st.ok()) return st;

    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    if (Status st = reserve_device_regions(nio, a, what); !st.ok()) return st;
    if (!existing)
      if (Status st = add_domain(next, nio, a, what); !st.ok()) return st;
    next.domains.at(a.dom).devices.insert(a.dev);
    next.devices.emplace(a.dev, DeviceRec{a.dev, a.dom});
    return install(std::move(next));
  }

  Status detach(std::string_view dev) override {
    const DeviceRec* d = find(w_.devices, dev);
    if (!d) return err(ENOENT, "detach " + std::string(dev) + ": no such device is attached");
    World next = w_;
    const std::string dom = d->domain;
    DomainRec& nd = next.domains.at(dom);
    IoasRec& nio = next.ioases.at(nd.ioas);
    remove_reserved(nio, Owner{OwnerKind::kDevice, std::string(dev)});
    nd.devices.erase(std::string(dev));
    next.devices.erase(std::string(dev));
    if (nd.devices.empty()) {
      remove_reserved(nio, Owner{OwnerKind::kDomain, dom});
      next.domains.erase(dom);
    }
    nio.iova_alignment = computed_alignment(next, nio);
    return install(std::move(next));
  }

  // ---- pins ----

  Result<std::uint32_t> pin(std::string_view ioas, const PinArgs& p) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    const std::string what = "pin " + hex(p.iova) + "+" + hex(p.len);
    // The first pin raises the alignment to PAGE: before the range
    // (pin_alignment_before_range) or after it.
    auto alignment_error = [&]() -> std::optional<Error> {
      if (!io->pins.empty()) return std::nullopt;
      const u64 align = std::max(io->iova_alignment, kPage);
      if (const AreaRec* bad = first_misaligned_area(w_, *io, align))
        return err(EADDRINUSE, what + ": the first pin needs iova_alignment " + hex(align) + " but area " +
                                   str(bad->iova) + " is not aligned to it");
      return std::nullopt;
    };
    const bool alignment_first = rules_for(io->options.mode).pin_alignment_before_range;
    if (alignment_first)
      if (auto e = alignment_error()) return *e;
    if (p.len == 0) return err(EINVAL, what + ": length 0");
    auto end = arith::range_last(p.iova, p.len);
    if (end.overflow) return err(EOVERFLOW, what + ": iova + len passes 2^64-1");
    const Range r{p.iova, end.last};
    // A byte in no area: before the areas' checks, or after them
    // (pin_checks_each_area_in_turn, which adds the pin's page alignment).
    const bool in_turn = rules_for(io->options.mode).pin_checks_each_area_in_turn;
    const Cover cover = cover_from(*io, r);
    const auto hole_error = [&] { return err(ENOENT, what + ": not wholly covered by contiguous areas"); };
    if (!cover.whole && !in_turn) return hole_error();
    // In turn, the first area's check is that the pin starts at a page
    // boundary of its user memory.
    if (in_turn && !cover.areas.empty()) {
      const AreaRec& first = *cover.areas.front();
      if (!arith::is_aligned(area_uaddr(w_, first) + (r.start - first.iova.start), kPage))
        return err(EINVAL, what + ": does not start at a page boundary of the user memory of area " +
                               str(first.iova));
    }
    for (const AreaRec* a : cover.areas) {
      // The area's own prot decides, not a domain's leaves (the kernel's
      // check_area_prot): a write pin needs w, a read pin r.
      if (p.write && !prot_writes(a->prot))
        return err(EPERM, what + ": write pin on read-only area " + str(a->iova));
      if (!p.write && !prot_reads(a->prot))
        return err(EPERM, what + ": read pin on write-only area " + str(a->iova));
    }
    if (!cover.whole) return hole_error();
    if (!alignment_first)
      if (auto e = alignment_error()) return *e;
    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    PinRec rec{nio.next_pin_id++, r, p.write, p.release, {}};
    for (const AreaRec* a : cover.areas)
      if (std::find(rec.sources.begin(), rec.sources.end(), a->source) == rec.sources.end())
        rec.sources.push_back(a->source);
    for (const auto& s : rec.sources) next.memories.at(s).use_count++;
    const std::uint32_t id = rec.id;
    nio.pins.push_back(std::move(rec));
    nio.iova_alignment = computed_alignment(next, nio);
    RETURN_IF_ERROR_INSTALL(next);
    return id;
  }

  Status unpin(std::string_view ioas, std::uint32_t id) override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    auto it = std::find_if(io->pins.begin(), io->pins.end(), [&](const PinRec& p) { return p.id == id; });
    if (it == io->pins.end()) return err(ENOENT, "unpin " + std::to_string(id) + ": no such pin");
    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    auto nit = nio.pins.begin() + (it - io->pins.begin());
    for (const auto& s : nit->sources) next.memories.at(s).use_count--;
    nio.pins.erase(nit);
    nio.iova_alignment = computed_alignment(next, nio);
    return install(std::move(next));
  }

  // ---- what the hardware sees ----

  Result<std::optional<Translation>> translate(std::string_view dom, u64 iova) const override {
    const DomainRec* d = find(w_.domains, dom);
    if (!d) return no_domain(dom);
    const AreaRec* a = area_at(w_.ioases.at(d->ioas), iova);
    if (!a) return std::optional<Translation>();
    return std::optional<Translation>(
        Translation{area_pa(w_, *a) + (iova - a->iova.start), leaf_prot(d->fmt, a->prot)});
  }

  Result<DmaOutcome> dma(std::string_view dom, DmaDir dir, u64 iova, u64 len) override {
    const DomainRec* d = find(w_.domains, dom);
    if (!d) return no_domain(dom);
    const std::string what = "dma " + hex(iova) + "+" + hex(len);
    if (len == 0) return err(EINVAL, what + ": length 0");
    auto end = arith::range_last(iova, len);
    if (end.overflow) return err(EOVERFLOW, what + ": iova + len passes 2^64-1");
    const IoasRec& io = w_.ioases.at(d->ioas);
    DmaOutcome out;
    std::vector<Range> written;  // the leaves it wrote, while tracking is on
    u64 cur = iova;
    for (;;) {
      const AreaRec* a = area_at(io, cur);
      const Prot leaf = a ? leaf_prot(d->fmt, a->prot) : Prot::kNone;
      if (dir == DmaDir::kWrite ? !prot_writes(leaf) : !prot_reads(leaf)) {
        out = DmaOutcome{true, cur};
        break;
      }
      const u64 upto = std::min(a->iova.last, end.last);
      if (dir == DmaDir::kWrite && d->dirty != DirtyMode::kOff)
        written.push_back(Range{leaf_of_impl(w_, *d, *a, cur).start, leaf_of_impl(w_, *d, *a, upto).last});
      if (upto == end.last) break;
      cur = upto + 1;
    }
    // A write changes only its domain's dirty bytes, and add_dirty keeps them
    // a normalized union of leaves of areas, so they change in place: a copy
    // of the world per write would make a device's writes to n slots cost n
    // copies of n dirty ranges. The next install verifies them with the rest.
    DomainRec& nd = w_.domains.at(std::string(dom));
    for (const Range& r : written)
      if (!dirty_throughout(nd, r)) add_dirty(nd, r);
    return out;
  }

  Status set_dirty_tracking(std::string_view dom, DirtyMode mode) override {
    if (!find(w_.domains, dom)) return no_domain(dom);
    World next = w_;
    DomainRec& nd = next.domains.at(std::string(dom));
    nd.dirty = mode;
    nd.dirty_bytes.clear();
    return install(std::move(next));
  }

  Result<std::vector<Range>> read_dirty(std::string_view dom, u64 iova, u64 len, u64 pgsize,
                                        bool keep) override {
    const DomainRec* d = find(w_.domains, dom);
    if (!d) return no_domain(dom);
    const std::string what = "read-dirty " + hex(iova) + "+" + hex(len);
    if (d->dirty == DirtyMode::kOff) return err(EINVAL, what + ": dirty tracking is off in " + d->name);
    if (len == 0) return err(EINVAL, what + ": length 0");
    if (!is_pow2(pgsize)) return err(EINVAL, what + ": page size " + hex(pgsize) + " is not a power of two");
    if (!arith::is_aligned(iova, pgsize) || !arith::is_aligned(len, pgsize))
      return err(EINVAL, what + ": iova and length must be multiples of the page size " + hex(pgsize));
    auto end = arith::range_last(iova, len);
    if (end.overflow) return err(EOVERFLOW, what + ": iova + len passes 2^64-1");
    const Range q{iova, end.last};
    std::vector<Range> report;
    std::vector<Range> clean;
    for (const auto& x : d->dirty_bytes) {
      if (!x.overlaps(q)) continue;
      const u64 lo = std::max(x.start, q.start);
      const u64 hi = std::min(x.last, q.last);
      report.push_back(Range{arith::align_down(lo, pgsize), arith::align_down(hi, pgsize) + (pgsize - 1)});
      const IoasRec& io = w_.ioases.at(d->ioas);
      clean.push_back(Range{leaf_of_impl(w_, *d, *area_at(io, lo), lo).start,
                            leaf_of_impl(w_, *d, *area_at(io, hi), hi).last});
    }
    report = normalize(std::move(report));
    if (!keep && !clean.empty()) {
      World next = w_;
      DomainRec& nd = next.domains.at(std::string(dom));
      remove_dirty(nd, std::move(clean));
      RETURN_IF_ERROR_INSTALL(next);
    }
    return report;
  }

  Result<u64> uva(std::string_view ioas, u64 iova) const override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    const AreaRec* a = area_at(*io, iova);
    if (!a) return err(ENOENT, hex_within("uva ", iova, ": not mapped"));
    return area_uaddr(w_, *a) + (iova - a->iova.start);
  }

  Result<std::vector<LeafInfo>> leaves(std::string_view dom, Range r) const override {
    std::vector<LeafInfo> out;
    if (Status st = leaves_into(dom, r, out); !st.ok()) return st.error();
    return out;
  }

  Status leaves_into(std::string_view dom, Range r, std::vector<LeafInfo>& out) const override {
    const DomainRec* d = find(w_.domains, dom);
    if (!d) return no_domain(dom);
    out.clear();
    const u64 bm = leaf_bitmap(w_, *d);
    for (const auto& a : w_.ioases.at(d->ioas).areas) {
      if (!a.iova.overlaps(r)) continue;
      // leaf_of_impl's inputs, the same for every leaf of the area.
      const u64 pa = area_pa(w_, a), uaddr = area_uaddr(w_, a);
      const Prot prot = leaf_prot(d->fmt, a.prot);
      for (u64 y = std::max(a.iova.start, r.start);;) {
        const Range leaf = leaf_in_area(bm, pa - a.iova.start, a.iova, y);
        const bool dirty = d->dirty != DirtyMode::kOff && dirty_in(*d, leaf);
        out.push_back(LeafInfo{leaf, pa + (leaf.start - a.iova.start), prot, dirty, uaddr + (leaf.start - a.iova.start)});
        if (leaf.last >= std::min(a.iova.last, r.last)) break;
        y = leaf.last + 1;
      }
    }
    return ok_status();
  }

  // ---- observation ----

  Result<IoasState> snapshot(std::string_view ioas) const override {
    IoasState s;
    if (Status st = snapshot_into(ioas, s); !st.ok()) return st.error();
    return s;
  }

  // Element k of v, made when v is that short (what v held before keeps
  // its memory); k moves past it.
  template <typename T>
  static T& next_slot(std::vector<T>& v, std::size_t& k) {
    if (k == v.size()) v.emplace_back();
    return v[k++];
  }

  // Every field of `s` written; its vectors (and the strings and device
  // lists inside them) keep their memory from the last call.
  Status snapshot_into(std::string_view ioas, IoasState& s) const override {
    const IoasRec* io = find(w_.ioases, ioas);
    if (!io) return no_ioas(ioas);
    s.name = io->name;
    s.options = io->options;
    s.iova_alignment = io->iova_alignment;
    std::size_t k = 0;
    for (const auto& a : io->areas) {
      u64 pins = 0;
      for (const auto& p : io->pins) pins += pin_touches(p, a) ? 1 : 0;
      AreaInfo& ai = next_slot(s.areas, k);
      ai.iova = a.iova;
      ai.prot = a.prot;
      ai.source = a.source;
      ai.offset = a.offset;
      ai.pins = pins;
    }
    s.areas.resize(k);
    k = 0;
    for (const auto& r : io->reserved) {
      ReservedInfo& ri = next_slot(s.reserved, k);
      ri.range = r.range;
      ri.owner = r.owner;
    }
    s.reserved.resize(k);
    s.allowed.assign(io->allowed.begin(), io->allowed.end());
    s.pins.clear();
    for (const auto& p : io->pins) s.pins.push_back(PinInfo{p.id, p.iova, p.write, p.release});
    k = 0;
    for (const auto& [n, d] : w_.domains) {
      if (d.ioas != io->name) continue;
      DomainInfo& di = next_slot(s.domains, k);
      di.name = d.name;
      di.fmt = d.fmt;
      di.aperture = d.aperture;
      di.pgsize_bitmap = d.pgsize_bitmap;
      di.devices.assign(d.devices.begin(), d.devices.end());
      di.dirty = d.dirty;
    }
    s.domains.resize(k);
    s.next_pin_id = io->next_pin_id;
    return ok_status();
  }

  std::vector<Violation> check() const override { return verify(w_); }

 private:
  // One piece of memory to place: a whole map, or one source area of a copy.
  struct Piece {
    std::string source;
    u64 offset;
    u64 len;
    u64 uaddr;
    bool writable;        // its memory source's
    bool pages_writable;  // its pages' (AreaRec::pages_writable)
  };

  // The destination half of map and copy (SPEC "map", from the alignment
  // bullet on): alignment of every piece, then the fixed or automatic rules,
  // then the new areas go into the IOAS and every attached domain.
  Result<u64> place(std::string_view ioas, const std::string& what, std::optional<u64> fixed, u64 len,
                    Prot prot, const std::vector<Piece>& pieces) {
    const IoasRec& io = *find(w_.ioases, ioas);
    const u64 A = io.iova_alignment;
    const ModeRules rules = rules_for(io.options.mode);
    // A fixed IOVA's overflow, before its alignment (SPEC; map and copy
    // checked it with their arguments) or after it (iopt_check_iova).
    const bool overflows = fixed && arith::range_last(*fixed, len).overflow;
    const auto overflow_error = [&] { return err(EOVERFLOW, what + ": iova + len passes 2^64-1"); };
    if (overflows && !rules.fixed_iova_alignment_before_overflow) return overflow_error();
    u64 at = fixed.value_or(0);
    for (const auto& p : pieces) {
      if (fixed && !arith::is_aligned(at, A))
        return err(EINVAL, what + ": iova " + hex(at) + " is not a multiple of iova_alignment " + hex(A));
      if (!arith::is_aligned(p.len, A))
        return err(EINVAL, what + ": length " + hex(p.len) + " is not a multiple of iova_alignment " + hex(A));
      at += p.len;
    }
    auto page_offset_error = [&](const Piece& p) -> std::optional<Error> {
      if (!arith::is_aligned(p.uaddr % kPage, A))
        return err(EINVAL, what + ": user address " + hex(p.uaddr) +
                               " has a page offset that is not a multiple of iova_alignment " + hex(A));
      return std::nullopt;
    };
    if (!rules.page_offset_after_iova)
      for (const auto& p : pieces)
        if (auto e = page_offset_error(p)) return *e;
    if (overflows) return overflow_error();
    u64 iova = 0;
    if (fixed) {
      const Range r{*fixed, *fixed + (len - 1)};
      if (const ResvRec* rv = first_reserved_touching(io, r))
        return err(EINVAL, what + ": overlaps reserved range " + str(rv->range) + " owned by " +
                               to_string(rv->owner));
      if (const AreaRec* a = first_area_touching(io, r))
        return err(EEXIST, what + ": overlaps mapped area " + str(a->iova));
      iova = *fixed;
    } else {
      if (len >= kTwoTo63) return err(EOVERFLOW, what + ": automatic length " + hex(len) + " is 2^63 or more");
      const u64 uaddr = pieces.front().uaddr;
      const u64 a = arith::auto_alignment(len, uaddr, kMaxAutoAlignment);
      if (a < A)
        return err(EINVAL, what + ": wanted alignment " + hex(a) + " (from length and user address " + hex(uaddr) +
                               ") is below iova_alignment " + hex(A));
      auto found = find_free(io, len, a, uaddr % kPage, rules.auto_aligns_span_start);
      if (!found) return err(ENOSPC, what + ": no free hole fits " + hex(len) + " bytes at alignment " + hex(a));
      iova = *found;
    }
    // Once the IOVA is settled, piece by piece (the kernel's
    // iopt_insert_area): its pages' write permission, then its page offset.
    for (const auto& p : pieces) {
      if (rules.copy_write_needs_writable_pages && prot_writes(prot) && !p.pages_writable)
        return err(EPERM, what + ": write permission on pages mapped without it (" + p.source + "+" +
                               hex(p.offset) + ")");
      if (rules.page_offset_after_iova)
        if (auto e = page_offset_error(p)) return *e;
    }
    World next = w_;
    IoasRec& nio = next.ioases.at(std::string(ioas));
    u64 cur = iova;
    for (const auto& p : pieces) {
      AreaRec ar{Range{cur, cur + (p.len - 1)}, prot, p.source, p.offset, p.pages_writable};
      for (const auto& [dn, d] : next.domains)
        if (d.ioas == nio.name && !domain_can_map(next, d, ar))
          return err(EINVAL, what + ": area " + str(ar.iova) + " at pa " + hex(area_pa(next, ar)) +
                                 " cannot be mapped by domain " + dn + ": " + why_unmappable(d));
      next.memories.at(p.source).use_count++;
      nio.areas.push_back(std::move(ar));
      cur += p.len;
    }
    sort_areas(nio);
    RETURN_IF_ERROR_INSTALL(next);
    return iova;
  }

  static Error ulong_max_error(const std::string& what) {
    return err(EOVERFLOW, what + ": an iova or length of 2^64-1 (ULONG_MAX; refused in kernel mode)");
  }
  static Error no_ioas(std::string_view name) {
    return err(ENOENT, "no IOAS named " + std::string(name));
  }
  static Error no_domain(std::string_view name) {
    return err(ENOENT, "no domain named " + std::string(name));
  }

  // Installs `next` after checking the invariants: a violation here is a bug
  // in the model itself, reported as EIO with the invariant named, and the
  // old state is kept.
  Status install(World next) {
    auto v = verify(next);
    if (!v.empty())
      return err(EIO, std::string("model bug: invariant ") + to_string(v.front().invariant) + " broken in " +
                          v.front().ioas + ": " + v.front().detail);
    w_ = std::move(next);
    return ok_status();
  }


  World w_;
};

}  // namespace

Range leaf_of(const World& w, const DomainRec& d, const AreaRec& a, u64 y) {
  return leaf_of_impl(w, d, a, y);
}

// The SPEC invariants over a whole world, in SPEC order.
std::vector<Violation> verify(const World& w) {
  std::vector<Violation> out;
  auto add = [&](Invariant inv, const std::string& io, std::string detail, std::optional<u64> witness) {
    out.push_back(Violation{inv, io, std::move(detail), witness});
  };
  auto sorted_disjoint = [](const std::vector<Range>& rs) -> std::optional<u64> {
    for (std::size_t i = 0; i < rs.size(); ++i) {
      if (!rs[i].valid()) return rs[i].start;
      if (i && rs[i - 1].last >= rs[i].start) return rs[i].start;
    }
    return std::nullopt;
  };
  for (const auto& [name, io] : w.ioases) {
    // 1. sorted
    std::vector<Range> areas;
    for (const auto& a : io.areas) areas.push_back(a.iova);
    if (auto bad = sorted_disjoint(areas)) add(Invariant::kSorted, name, "areas", bad);
    if (auto bad = sorted_disjoint(io.allowed)) add(Invariant::kSorted, name, "allowed", bad);
    std::map<Owner, std::vector<Range>> by_owner;
    for (const auto& r : io.reserved) by_owner[r.owner].push_back(r.range);
    for (const auto& [o, rs] : by_owner)
      if (auto bad = sorted_disjoint(rs)) add(Invariant::kSorted, name, "reserved of " + to_string(o), bad);
    // 2. area-reserved, 3. allowed-reserved
    for (const auto& a : io.areas)
      if (const ResvRec* rv = first_reserved_touching(io, a.iova))
        add(Invariant::kAreaReserved, name, "area " + str(a.iova) + " overlaps " + str(rv->range),
            std::max(a.iova.start, rv->range.start));
    for (const auto& al : io.allowed)
      if (const ResvRec* rv = first_reserved_touching(io, al))
        add(Invariant::kAllowedReserved, name, "allowed " + str(al) + " overlaps " + str(rv->range),
            std::max(al.start, rv->range.start));
    // 4. zero-iova
    if (io.options.zero_page == ZeroPage::kReserved)
      if (const AreaRec* a = area_at(io, 0)) add(Invariant::kZeroIova, name, "area " + str(a->iova), u64{0});
    // 5. alignment
    const u64 want = computed_alignment(w, io);
    if (io.iova_alignment != want)
      add(Invariant::kAlignment, name, "iova_alignment " + hex(io.iova_alignment) + " should be " + hex(want),
          std::nullopt);
    if (const AreaRec* a = first_misaligned_area(w, io, io.iova_alignment))
      add(Invariant::kAlignment, name, "area " + str(a->iova), a->iova.start);
    // 6. aperture, 7. translation (the model's translations are the areas
    // themselves; what can break is the domain bookkeeping and mappability)
    for (const auto& [dn, d] : w.domains) {
      if (d.ioas != name) continue;
      for (const auto& a : io.areas) {
        if (!d.aperture.contains(a.iova))
          add(Invariant::kAperture, name, "area " + str(a.iova) + " outside domain " + dn, a.iova.start);
        if (!domain_can_map(w, d, a))
          add(Invariant::kTranslation, name, "area " + str(a.iova) + " cannot be mapped in " + dn, a.iova.start);
      }
      // A dirty range outside the areas overlaps a hole between them: one
      // search per hole, each range named once.
      auto x = d.dirty_bytes.begin();
      for (const Range& hole : complement(areas)) {
        x = std::partition_point(x, d.dirty_bytes.end(), [&](const Range& r) { return r.last < hole.start; });
        for (; x != d.dirty_bytes.end() && x->start <= hole.last; ++x)
          add(Invariant::kTranslation, name, "dirty bytes " + str(*x) + " of " + dn + " outside areas", x->start);
      }
      if (d.devices.empty()) add(Invariant::kTranslation, name, "domain " + dn + " has no device", std::nullopt);
      for (const auto& dev : d.devices) {
        auto it = w.devices.find(dev);
        if (it == w.devices.end() || it->second.domain != dn)
          add(Invariant::kTranslation, name, "device " + dev + " of " + dn + " is not recorded", std::nullopt);
      }
    }
  }
  // 8. use-count
  std::map<std::string, u64> uses;
  for (const auto& [name, io] : w.ioases) {
    for (const auto& a : io.areas) uses[a.source]++;
    for (const auto& p : io.pins)
      for (const auto& s : p.sources) uses[s]++;
  }
  for (const auto& [n, m] : w.memories) {
    if (m.use_count != uses[n])
      add(Invariant::kUseCount, "", "memory source " + n + " counts " + std::to_string(m.use_count) +
                                        " uses, has " + std::to_string(uses[n]), std::nullopt);
    uses.erase(n);
  }
  for (const auto& [n, c] : uses)
    add(Invariant::kUseCount, "", "areas use unregistered memory source " + n, std::nullopt);
  return out;
}

}  // namespace ioas::model

namespace ioas {
// Every operation computes the next world on a copy and installs it with a
// move, so a std::bad_alloc anywhere leaves the world as it was; the guard
// turns it into ENOMEM at the boundary (ioas/boundary.hpp).
std::unique_ptr<Engine> make_model_engine() {
  return std::make_unique<GuardedEngine>(std::make_unique<model::ModelEngine>());
}
}  // namespace ioas
