// The lockstep state machine: see lockstep.hpp.
#include "lockstep.hpp"

#include <rapidcheck/state.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "checker.hpp"
#include "ioas/rules.hpp"
#include "replay.hpp"

namespace ioas::lockstep {

using trace::Operation;

// ---------------------------------------------------------------------------
// The spec as a value.

SpecModel::SpecModel() : engine(make_model_engine()) {
  (void)engine->create_ioas("default", IoasOptions{});
}
SpecModel::SpecModel(const SpecModel& o) : engine(o.engine->clone()), current(o.current), context(o.context) {}
SpecModel& SpecModel::operator=(const SpecModel& o) {
  if (this != &o) {
    engine = o.engine->clone();
    current = o.current;
    context = o.context;
  }
  return *this;
}

// ---------------------------------------------------------------------------
// What the generators draw from: names and boundaries present in the state.

namespace {

constexpr u64 P = kPage;
const std::vector<std::string> kIoasNames = {"default", "io1"};
const std::vector<std::string> kMemNames = {"m0", "m1", "m2"};
const std::vector<std::string> kDevNames = {"dv0", "dv1", "dv2", "dv3"};
const std::vector<std::string> kDomNames = {"D0", "D1", "D2"};
const std::vector<std::string> kOwners = {"u0", "u1"};

}  // namespace

struct GenContext {
  std::vector<u64> points;           // boundaries of areas, reserved, allowed
  std::vector<Range> areas;          // areas of every IOAS (current first)
  std::vector<Range> current_areas;  // areas of the current IOAS
  std::vector<std::string> ioases;
  std::vector<std::string> memories;
  std::vector<std::string> domains;  // of the current IOAS first, then others
  std::vector<std::string> devices;
  std::vector<std::string> tracking;  // domains of the current IOAS with dirty tracking on
  std::vector<std::uint32_t> pins;   // of the current IOAS
  // Adjacent page sizes {small, large} of the current IOAS's domains.
  std::vector<std::pair<u64, u64>> fits;
  bool kernel = false;               // the current IOAS is in kernel mode
};

namespace {

using Ctx = GenContext;

// Each pair of neighbouring sizes in a page-size bitmap: {small, large}
// with no size of the bitmap between them.
std::vector<std::pair<u64, u64>> adjacent_sizes(u64 pgsizes) {
  std::vector<std::pair<u64, u64>> out;
  for (u64 bits = pgsizes; bits & (bits - 1); bits &= bits - 1) {
    const u64 small = bits & (~bits + 1);
    const u64 rest = bits & (bits - 1);
    out.emplace_back(small, rest & (~rest + 1));
  }
  return out;
}

Ctx context_of(const SpecModel& m) {
  Ctx c;
  const Engine& e = *m.engine;
  c.ioases = e.ioas_names();
  for (const auto& mi : e.memories()) c.memories.push_back(mi.source.name);
  std::vector<std::string> names = c.ioases;
  std::stable_partition(names.begin(), names.end(), [&](const std::string& n) { return n == m.current; });
  for (const auto& name : names) {
    auto s = e.snapshot(name);
    if (!s.ok()) continue;
    const bool cur = name == m.current;
    if (cur) c.kernel = s->options.mode == IoasMode::kKernel;
    for (const auto& a : s->areas) {
      c.areas.push_back(a.iova);
      if (cur) c.current_areas.push_back(a.iova);
      c.points.push_back(a.iova.start);
      c.points.push_back(a.iova.last);
      c.points.push_back(a.iova.last + 1);
    }
    for (const auto& r : s->reserved) {
      c.points.push_back(r.range.start);
      c.points.push_back(r.range.last);
      c.points.push_back(r.range.last + 1);
    }
    for (const auto& r : s->allowed) {
      c.points.push_back(r.start);
      c.points.push_back(r.last + 1);
    }
    for (const auto& d : s->domains) {
      c.domains.push_back(d.name);
      if (cur && d.dirty != DirtyMode::kOff) c.tracking.push_back(d.name);
      if (cur)
        for (const auto& f : adjacent_sizes(d.pgsize_bitmap))
          if (std::find(c.fits.begin(), c.fits.end(), f) == c.fits.end()) c.fits.push_back(f);
      for (const auto& dev : d.devices) c.devices.push_back(dev);
    }
    if (cur)
      for (const auto& p : s->pins) c.pins.push_back(p.id);
  }
  return c;
}

template <typename T>
rc::Gen<T> pick_or(const std::vector<T>& xs, rc::Gen<T> fallback) {
  if (xs.empty()) return fallback;
  return rc::gen::weightedOneOf<T>({{8, rc::gen::elementOf(xs)}, {1, fallback}});
}

// Up to `most` elements from g (rc::gen::container wants a fixed count).
template <typename T>
rc::Gen<std::vector<T>> few(std::size_t most, rc::Gen<T> g) {
  return rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, most + 1),
                         [g](std::size_t n) { return rc::gen::container<std::vector<T>>(n, g); });
}

rc::Gen<std::string> name_from(const std::vector<std::string>& present, const std::vector<std::string>& all) {
  return pick_or(present, rc::gen::elementOf(all));
}

// An IOVA: mostly near something that exists, else small page multiples, now
// and then an extreme of the 64-bit space.
rc::Gen<u64> gen_iova(const Ctx& c) {
  static const std::vector<u64> extremes = {0,       1,        P - 1,       P,           kMaxIova - P,
                                            kMaxIova - P + 1, kMaxIova, (u64{1} << 48) - 1, u64{1} << 48,
                                            u64{1} << 63,     0xfee00000, 0x200000,    0x80000000};
  auto pages = rc::gen::map(rc::gen::inRange<u64>(0, 40), [](u64 k) { return k * P; });
  auto huge = rc::gen::map(rc::gen::inRange<u64>(0, 8), [](u64 k) { return k * 0x200000; });
  if (c.points.empty())
    return rc::gen::weightedOneOf<u64>({{6, pages}, {1, huge}, {1, rc::gen::elementOf(extremes)},
                                        {1, rc::gen::arbitrary<u64>()}});
  static const std::vector<std::int64_t> deltas = {0, 0, 0, 1, -1, static_cast<std::int64_t>(P),
                                                   -static_cast<std::int64_t>(P)};
  auto near = rc::gen::apply([](u64 p, std::int64_t d) { return p + static_cast<u64>(d); },
                             rc::gen::elementOf(c.points), rc::gen::elementOf(deltas));
  return rc::gen::weightedOneOf<u64>({{8, near}, {6, pages}, {1, huge}, {1, rc::gen::elementOf(extremes)},
                                      {1, rc::gen::arbitrary<u64>()}});
}

rc::Gen<u64> gen_len() {
  static const std::vector<u64> odd = {1, P / 2, P + 0x800, 0x200000, 0x400000, 0x200000 + P};
  static const std::vector<u64> huge = {0, u64{1} << 63, kMaxIova, kMaxIova - P + 1, u64{1} << 40};
  return rc::gen::weightedOneOf<u64>({
      {10, rc::gen::map(rc::gen::inRange<u64>(1, 9), [](u64 k) { return k * P; })},
      {2, rc::gen::elementOf(odd)},
      {1, rc::gen::elementOf(huge)},
  });
}

// Map and copy go to the current IOAS: in kernel mode write-only is a valid
// prot (ModeRules::write_only_maps), so it is drawn as often as a real one.
rc::Gen<Prot> gen_prot(const Ctx& c) {
  if (c.kernel)
    return rc::gen::weightedOneOf<Prot>({{10, rc::gen::just(Prot::kReadWrite)},
                                         {8, rc::gen::just(Prot::kRead)},
                                         {6, rc::gen::just(Prot::kWrite)},
                                         {1, rc::gen::just(Prot::kNone)}});
  return rc::gen::weightedOneOf<Prot>({{10, rc::gen::just(Prot::kReadWrite)},
                                       {8, rc::gen::just(Prot::kRead)},
                                       {1, rc::gen::element(Prot::kWrite, Prot::kNone)}});
}

// A range over existing areas: exact, a sub-range, or spanning neighbours.
rc::Gen<Range> gen_area_range(const Ctx& c, const std::vector<Range>& areas) {
  auto any = rc::gen::apply(
      [](u64 s, u64 l) { return Range{s, s + l - 1}; }, gen_iova(c), gen_len());
  if (areas.empty()) return any;
  return rc::gen::weightedOneOf<Range>({
      {4, rc::gen::elementOf(areas)},
      {2, rc::gen::map(rc::gen::elementOf(areas),
                       [](Range a) {
                         // the area's first page only
                         return Range{a.start, std::min(a.last, a.start + P - 1)};
                       })},
      {2, rc::gen::map(rc::gen::pair(rc::gen::elementOf(areas), rc::gen::elementOf(areas)),
                       [](std::pair<Range, Range> ab) {
                         return Range{std::min(ab.first.start, ab.second.start),
                                      std::max(ab.first.last, ab.second.last)};
                       })},
      {2, any},
  });
}

rc::Gen<Range> gen_small_range(const Ctx& c) {
  return rc::gen::weightedOneOf<Range>({
      {6, rc::gen::apply([](u64 s, u64 k) { return Range{s, s + k * P - 1}; }, gen_iova(c),
                         rc::gen::inRange<u64>(1, 6))},
      {1, rc::gen::apply([](u64 s, u64 l) { return Range{s, l}; }, gen_iova(c), gen_iova(c))},
      {1, rc::gen::element(Range{0xfee00000, 0xfeefffff}, Range{0, 0xfff}, Range{P, P},
                           Range{kMaxIova - P + 1, kMaxIova})},
  });
}

Operation make_mem(std::string name, u64 va, u64 len, std::optional<u64> pa, bool ro) {
  return trace::MemOp{std::move(name), va, len, pa, ro};
}

rc::Gen<Operation> gen_mem(const Ctx& c) {
  static const std::vector<u64> vas = {0x7f0000000000, 0x7f0000201000, 0x7f0000000800, 0x40000000,
                                       kMaxIova - P + 1};
  static const std::vector<u64> lens = {0x1000000, 0x10000, 0x201000, 0, 0x80000000};
  return rc::gen::apply(
      [](std::string n, u64 va, u64 len, int pa_kind, bool ro) {
        std::optional<u64> pa;
        if (pa_kind == 1) pa = 0x80000000 + (va % P);  // 2M aligned + same page offset
        if (pa_kind == 2) pa = 0x80001000 + (va % P);  // 4K aligned only
        if (pa_kind == 3) pa = 0x80000000 + ((va + 0x10) % P);  // offset mismatch
        return make_mem(std::move(n), va, len, pa, ro);
      },
      name_from({}, kMemNames), rc::gen::weightedElement<u64>({{8, vas[0]}, {2, vas[1]}, {2, vas[2]}, {2, vas[3]}, {1, vas[4]}}),
      rc::gen::weightedElement<u64>({{8, lens[0]}, {2, lens[1]}, {2, lens[2]}, {1, lens[3]}, {2, lens[4]}}),
      rc::gen::weightedElement<int>({{6, 0}, {4, 1}, {2, 2}, {1, 3}}),
      rc::gen::weightedElement<bool>({{3, false}, {1, true}}));
}

// An exact fit of a larger page right after a boundary: `small` bytes short
// of a multiple of `large`, `small + large` long, at an offset with the same
// residue mod `large`, so the leaf rule maps small pages up to the boundary
// and then exactly one large page. The pairs are the neighbouring sizes of
// the current IOAS's domains, else every format's: 4K|2M|1G and its subsets
// (x86-64, arm-lpae), 2K|1M (a huge mock). The multiple of `large` lies
// above the mock's aperture start (16M) and below 4G.
const std::vector<std::pair<u64, u64>>& every_format_fit() {
  static const std::vector<std::pair<u64, u64>> fits = {
      {k4K, k2M}, {k2M, k1G}, {k4K, k1G}, {kMockPage, kMockHugePage}};
  return fits;
}

rc::Gen<Operation> gen_exact_fit_map(const Ctx& c) {
  auto fit = c.fits.empty() ? rc::gen::elementOf(every_format_fit())
                            : rc::gen::weightedOneOf<std::pair<u64, u64>>(
                                  {{4, rc::gen::elementOf(c.fits)}, {1, rc::gen::elementOf(every_format_fit())}});
  return rc::gen::apply(
      [](std::pair<u64, u64> f, u64 k, std::string src, Prot prot) -> Operation {
        const auto [small, large] = f;
        const u64 first = std::max<u64>(1, 0x1000000 / large + 1);
        return trace::MapOp{(first + k) * large - small, small + large, std::move(src), large - small, prot};
      },
      fit, rc::gen::inRange<u64>(0, 3), name_from(c.memories, kMemNames), gen_prot(c));
}

rc::Gen<Operation> gen_map(const Ctx& c) {
  // Odd offsets give odd user addresses: with no domain the alignment is 1
  // and an automatic map starts at a hole's first byte (| the offset).
  static const std::vector<u64> offsets = {0, 0, P, 2 * P, 0x200000, 0x800, 0xfff000, 1, 0x801};
  auto fixed = rc::gen::weightedOneOf<std::optional<u64>>(
      {{1, rc::gen::just(std::optional<u64>())}, {1, rc::gen::map(gen_iova(c), [](u64 v) { return std::optional<u64>(v); })}});
  auto any = rc::gen::apply(
      [](std::optional<u64> iova, u64 len, std::string src, u64 off, Prot prot) -> Operation {
        return trace::MapOp{iova, len, std::move(src), off, prot};
      },
      fixed, gen_len(), name_from(c.memories, kMemNames),
      rc::gen::weightedOneOf<u64>({{6, rc::gen::elementOf(offsets)},
                                   {2, rc::gen::map(rc::gen::inRange<u64>(0, 64), [](u64 k) { return k * P; })},
                                   {1, rc::gen::just(kMaxIova)}}),
      gen_prot(c));
  return rc::gen::weightedOneOf<Operation>({{8, any}, {2, gen_exact_fit_map(c)}});
}

rc::Gen<Operation> gen_unmap(const Ctx& c) {
  return rc::gen::weightedOneOf<Operation>({
      {8, rc::gen::map(gen_area_range(c, c.current_areas),
                       [](Range r) -> Operation { return trace::UnmapOp{false, r.start, r.last - r.start + 1}; })},
      {2, rc::gen::apply([](u64 i, u64 l) -> Operation { return trace::UnmapOp{false, i, l}; }, gen_iova(c),
                         gen_len())},
      {1, rc::gen::just<Operation>(trace::UnmapOp{true, 0, 0})},
  });
}

rc::Gen<u64> gen_inner_point(const Ctx& c) {
  if (c.current_areas.empty()) return gen_iova(c);
  return rc::gen::weightedOneOf<u64>({
      {4, rc::gen::apply(
              [](Range a, u64 k) {
                u64 len = a.last - a.start;  // length - 1
                return a.start + (len == 0 ? 0 : ((k * P - 1) % (len + 1)));
              },
              rc::gen::elementOf(c.current_areas), rc::gen::inRange<u64>(1, 9))},
      {2, gen_iova(c)},
  });
}

rc::Gen<Operation> gen_attach(const Ctx& c) {
  static const std::vector<Range> apertures = {{0, 0xffffffffffff}, {0x1000, 0x7fffffff}, {0, 0x3fffff},
                                               {0x100000, 0xffffffff}, {0, kMaxIova}, {0x2000, 0x1fff},
                                               default_aperture(Format::kMock)};
  // 0x800 and 0x800|1M are the mock's (2K slots, 1M huge leaves).
  static const std::vector<u64> pgsizes = {k4K,   k4K | k2M,           k4K | k2M | k1G, k2M,       k4K | k1G,
                                           0x800, kMockPage | kMockHugePage, 0x400 | k4K, k2M | k1G};
  auto resv_region = rc::gen::apply(
      [](Range r, int t) { return ResvRegion{r, static_cast<ResvType>(t)}; },
      rc::gen::weightedOneOf<Range>({{2, rc::gen::just(Range{0xfee00000, 0xfeefffff})}, {3, gen_small_range(c)}}),
      rc::gen::weightedElement<int>({{1, 0}, {1, 1}, {1, 2}, {3, 3}}));
  // A mock domain asks for its huge size often: the huge mock's 2K/1M
  // leaves are its only pair of neighbouring sizes.
  auto fmt_and_pgsizes = rc::gen::mapcat(
      rc::gen::weightedOneOf<std::optional<Format>>(
          {{7, rc::gen::just(std::optional<Format>())},
           {1, rc::gen::just(std::optional<Format>(Format::kX86_64))},
           {1, rc::gen::just(std::optional<Format>(Format::kArmLpae))},
           {2, rc::gen::just(std::optional<Format>(Format::kTce))},
           {2, rc::gen::just(std::optional<Format>(Format::kMock))}}),
      [](std::optional<Format> fmt) {
        const bool mock = fmt == Format::kMock;
        return rc::gen::pair(
            rc::gen::just(fmt),
            rc::gen::weightedOneOf<std::optional<u64>>(
                {{6, rc::gen::just(std::optional<u64>())},
                 {mock ? 6u : 0u, rc::gen::just(std::optional<u64>(kMockPage | kMockHugePage))},
                 {2, rc::gen::map(rc::gen::elementOf(pgsizes), [](u64 v) { return std::optional<u64>(v); })}}));
      });
  return rc::gen::apply(
      [](std::string dev, std::string dom, std::pair<std::optional<Format>, std::optional<u64>> fp,
         std::optional<Range> ap, std::vector<ResvRegion> resv) -> Operation {
        return trace::AttachOp{std::move(dev), std::move(dom), fp.first, ap, fp.second, std::move(resv), {}};
      },
      name_from(c.devices, kDevNames), name_from(c.domains, kDomNames), fmt_and_pgsizes,
      rc::gen::weightedOneOf<std::optional<Range>>(
          {{6, rc::gen::just(std::optional<Range>())},
           {2, rc::gen::map(rc::gen::elementOf(apertures), [](Range r) { return std::optional<Range>(r); })}}),
      few<ResvRegion>(2, resv_region));
}

rc::Gen<Operation> gen_pin(const Ctx& c) {
  return rc::gen::apply(
      [](Range r, bool write, bool release) -> Operation {
        return trace::PinOp{r.start, r.last - r.start + 1, write, release};
      },
      gen_area_range(c, c.current_areas), rc::gen::arbitrary<bool>(),
      rc::gen::weightedElement<bool>({{3, true}, {1, false}}));
}

rc::Gen<Operation> gen_copy(const Ctx& c) {
  return rc::gen::apply(
      [](std::string from, Range r, std::optional<u64> to, Prot prot) -> Operation {
        return trace::CopyOp{std::move(from), r.start, r.last - r.start + 1, to, prot};
      },
      name_from(c.ioases, kIoasNames), gen_area_range(c, c.areas),
      rc::gen::weightedOneOf<std::optional<u64>>(
          {{1, rc::gen::just(std::optional<u64>())},
           {1, rc::gen::map(gen_iova(c), [](u64 v) { return std::optional<u64>(v); })}}),
      gen_prot(c));
}

rc::Gen<Operation> gen_ioas() {
  return rc::gen::apply(
      [](std::string name, int opt) -> Operation {
        trace::IoasOp op{std::move(name), std::nullopt, std::nullopt, std::nullopt};
        if (opt == 1) op.zero_page = ZeroPage::kAllowed;
        if (opt == 2) op.huge_pages = false;
        if (opt == 3) op.zero_page = ZeroPage::kReserved;
        // Kernel mode (SPEC "Kernel mode"), with and without large pages.
        if (opt == 4 || opt == 5) op.mode = IoasMode::kKernel;
        if (opt == 5) op.huge_pages = false;
        return op;
      },
      rc::gen::elementOf(kIoasNames),
      rc::gen::weightedElement<int>({{6, 0}, {2, 1}, {2, 2}, {1, 3}, {4, 4}, {1, 5}}));
}

rc::Gen<Operation> gen_dirty_ops(const Ctx& c) {
  auto dom = name_from(c.domains, kDomNames);
  // DMA and read-dirty go mostly to a domain that is tracking, so that
  // writes are recorded and read back.
  auto tdom = pick_or(c.tracking, dom);
  // Mostly over existing areas; now and then a range whose end passes 2^64-1
  // while its start and length stay page aligned (the EOVERFLOW paths).
  auto area = rc::gen::weightedOneOf<Range>(
      {{12, gen_area_range(c, c.current_areas)},
       {1, rc::gen::just(Range{kMaxIova - P + 1, P - 1})}});  // [2^64-P, 2^64+P-1]: iova+len overflows
  static const std::vector<u64> pgs = {P, P, P, 0x200000, 0x800, 0, 3 * P};
  return rc::gen::weightedOneOf<Operation>({
      {3, rc::gen::apply([](std::string d, int m) -> Operation { return trace::DirtyOp{std::move(d), static_cast<DirtyMode>(m)}; },
                         dom, rc::gen::weightedElement<int>({{1, 0}, {2, 1}, {2, 2}}))},
      {4, rc::gen::apply([](std::string d, bool w, Range r) -> Operation {
                           return trace::DmaOp{std::move(d), w ? DmaDir::kWrite : DmaDir::kRead, r.start,
                                               r.last - r.start + 1};
                         },
                         tdom, rc::gen::weightedElement<bool>({{1, false}, {3, true}}),
                         rc::gen::weightedOneOf<Range>(
                             {{3, area},
                              {2, rc::gen::map(gen_inner_point(c), [](u64 x) { return Range{x, x}; })}}))},
      {1, rc::gen::map(tdom, [](std::string d) -> Operation { return trace::DmaOp{std::move(d), DmaDir::kWrite, P, 0}; })},
      {6, rc::gen::apply([](std::string d, Range r, u64 pg, bool keep) -> Operation {
                           return trace::ReadDirtyOp{std::move(d), r.start, r.last - r.start + 1, pg, keep};
                         },
                         tdom, area, rc::gen::elementOf(pgs), rc::gen::arbitrary<bool>())},
      {2, rc::gen::apply([](std::string d, u64 i) -> Operation { return trace::TranslateOp{std::move(d), i}; }, dom,
                         gen_inner_point(c))},
  });
}

// The operation kinds and their weights. The kind is drawn first and only its
// generator is built: building every alternative's combinators for every
// step cost more than running the step.
enum Kind : int {
  kMem, kUnmem, kMap, kUnmap, kCut, kCopy, kPin, kUnpin, kReserve, kUnreserve,
  kAllow, kRanges, kAttach, kDetach, kDirtyOps, kUva, kIoas, kCheck,
};

rc::Gen<Operation> gen_kind(int kind, const Ctx& c) {
  switch (kind) {
    case kMem: return gen_mem(c);
    case kUnmem:
      return rc::gen::map(name_from(c.memories, kMemNames), [](std::string n) -> Operation { return trace::UnmemOp{n}; });
    case kMap: return gen_map(c);
    case kUnmap: return gen_unmap(c);
    case kCut: return rc::gen::map(gen_inner_point(c), [](u64 x) -> Operation { return trace::CutOp{x}; });
    case kCopy: return gen_copy(c);
    case kPin: return gen_pin(c);
    case kUnpin:
      return rc::gen::map(pick_or<std::uint32_t>(c.pins, rc::gen::inRange<std::uint32_t>(1, 6)),
                          [](std::uint32_t id) -> Operation { return trace::UnpinOp{id}; });
    case kReserve:
      return rc::gen::apply([](Range r, std::string o) -> Operation { return trace::ReserveOp{r, std::move(o)}; },
                            gen_small_range(c), rc::gen::elementOf(kOwners));
    case kUnreserve:
      return rc::gen::map(rc::gen::elementOf(kOwners), [](std::string o) -> Operation { return trace::UnreserveOp{o}; });
    case kAllow:
      return rc::gen::map(few<Range>(2, gen_small_range(c)),
                          [](std::vector<Range> rs) -> Operation { return trace::AllowOp{std::move(rs)}; });
    case kRanges: return rc::gen::just<Operation>(trace::RangesOp{});
    case kAttach: return gen_attach(c);
    case kDetach:
      return rc::gen::map(name_from(c.devices, kDevNames), [](std::string d) -> Operation { return trace::DetachOp{d}; });
    case kDirtyOps: return gen_dirty_ops(c);
    case kUva: return rc::gen::map(gen_inner_point(c), [](u64 x) -> Operation { return trace::UvaOp{x}; });
    case kIoas: return gen_ioas();
    default: return rc::gen::just<Operation>(trace::CheckOp{});
  }
}

}  // namespace

namespace {

const std::shared_ptr<const Ctx>& context_for(const SpecModel& m) {
  if (!m.context) m.context = std::make_shared<const Ctx>(context_of(m));
  return m.context;
}

rc::Gen<Operation> gen_operation(std::shared_ptr<const Ctx> c) {
  const bool no_mem = c->memories.empty();
  const bool have_dom = !c->domains.empty();
  auto kind = rc::gen::weightedElement<int>({
      {no_mem ? 40u : 3u, kMem}, {1, kUnmem}, {20, kMap}, {8, kUnmap}, {4, kCut}, {4, kCopy},
      {4, kPin}, {2, kUnpin}, {3, kReserve}, {1, kUnreserve}, {2, kAllow}, {1, kRanges},
      {6, kAttach}, {have_dom ? 3u : 1u, kDetach}, {have_dom ? 16u : 2u, kDirtyOps}, {2, kUva},
      {2, kIoas}, {1, kCheck},
  });
  return rc::gen::mapcat(kind, [c](int k) { return gen_kind(k, *c); });
}

}  // namespace

rc::Gen<Operation> gen_operation(const SpecModel& m) { return gen_operation(context_for(m)); }

// ---------------------------------------------------------------------------
// Comparing two engines.

namespace {

std::string show(const IoasState& s) {
  std::ostringstream os;
  os << "align " << hex(s.iova_alignment) << "; areas:";
  for (const auto& a : s.areas)
    os << ' ' << to_string(a.iova) << '/' << to_string(a.prot) << '/' << a.source << '+' << hex(a.offset)
       << "/pins=" << a.pins;
  os << "; reserved:";
  for (const auto& r : s.reserved) os << ' ' << to_string(r.range) << '(' << to_string(r.owner) << ')';
  os << "; allowed: " << to_string(s.allowed) << "; pins:";
  for (const auto& p : s.pins) os << ' ' << p.id << '@' << to_string(p.iova);
  os << "; domains:";
  for (const auto& d : s.domains)
    os << ' ' << d.name << '[' << to_string(d.fmt) << ' ' << to_string(d.aperture) << " pg=" << hex(d.pgsize_bitmap)
       << " dirty=" << static_cast<int>(d.dirty) << ']';
  os << "; next pin " << s.next_pin_id;
  return os.str();
}

std::string show_tr(const Result<std::optional<Translation>>& t) {
  if (!t.ok()) return std::string("error ") + errno_name(t.code());
  if (!t->has_value()) return "fault";
  return "pa " + hex((*t)->pa) + " " + to_string((*t)->prot);
}

// Bytes of an area worth translating: both ends, the second and second-last
// pages, the middle, and the bytes just outside.
std::vector<u64> sample_points(const Range& a) {
  std::vector<u64> v = {a.start, a.last, a.start + (a.last - a.start) / 2};
  if (a.last - a.start >= P) {
    v.push_back(a.start + P);
    v.push_back(a.last - P);
  }
  if (a.start != 0) v.push_back(a.start - 1);
  if (a.last != kMaxIova) v.push_back(a.last + 1);
  return v;
}

}  // namespace

// One diff_states in this many also runs the Z3 invariant checker (0: never).
namespace {
std::uint64_t g_z3_check_every = 64;
}
void set_z3_check_every(std::uint64_t n) { g_z3_check_every = n; }

std::optional<Range> Focus::clip(const std::string& ioas, const IoasState& s, const Range& area) const {
  if (whole) return area;
  std::optional<Range> hull;
  for (const Part& p : parts) {
    const bool mine = p.dom.empty() ? p.ioas == ioas
                                    : std::any_of(s.domains.begin(), s.domains.end(),
                                                  [&](const DomainInfo& d) { return d.name == p.dom; });
    if (!mine || !p.range.overlaps(area)) continue;
    const Range in{std::max(p.range.start, area.start), std::min(p.range.last, area.last)};
    hull = hull ? Range{std::min(hull->start, in.start), std::max(hull->last, in.last)} : in;
  }
  return hull;
}

namespace {

// The comparison behind diff_states and diff_focused: the whole-state part
// (names, memory sources, every IOAS's snapshot and ranges) always; the
// per-area part (translations, the userspace view, page-table leaves,
// dirty state) on the areas `focus` covers; both engines' check() and the
// sampled Z3 checker only when the focus is whole.
std::string compare(Engine& spec, Engine& sut, const Focus& focus) {
  const auto names = spec.ioas_names();
  if (names != sut.ioas_names()) return "the IOAS names differ";
  const auto ms = spec.memories(), mu = sut.memories();
  if (ms != mu) {
    std::ostringstream os;
    os << "memory sources differ:";
    for (const auto& m : ms) os << " spec " << m.source.name << " uses=" << m.use_count;
    for (const auto& m : mu) os << " sut " << m.source.name << " uses=" << m.use_count;
    return os.str();
  }
  for (const auto& name : names) {
    auto s1 = spec.snapshot(name), s2 = sut.snapshot(name);
    if (!s1.ok() || !s2.ok()) return "snapshot of " + name + " failed";
    if (*s1 != *s2) return "IOAS " + name + " differs:\n  spec: " + show(*s1) + "\n  sut:  " + show(*s2);
    auto r1 = spec.ranges(name), r2 = sut.ranges(name);
    if (!r1.ok() || !r2.ok() || *r1 != *r2)
      return "ranges of " + name + " differ: spec " + (r1.ok() ? to_string(r1->ranges) : "error") + " / sut " +
             (r2.ok() ? to_string(r2->ranges) : "error");
    // The areas the focus covers, each with the part of it to compare.
    struct Deep {
      const AreaInfo* area;
      Range clip;
    };
    std::vector<Deep> deep;
    for (const auto& a : s1->areas)
      if (auto c = focus.clip(name, *s1, a.iova)) deep.push_back(Deep{&a, *c});
    if (deep.empty()) continue;
    // The clip widened to whole leaves of `d` (a leaf is aligned to its size,
    // at most the largest size of the domain, and lies inside its area).
    auto leaf_span = [](const DomainInfo& d, const Deep& x) {
      const Range& a = x.area->iova;
      if (x.clip == a) return a;
      const u64 maxpg = u64{1} << (63 - std::countl_zero(d.pgsize_bitmap | 1));
      const u64 start = x.clip.start & ~(maxpg - 1);
      const u64 last = x.clip.last | (maxpg - 1);
      return Range{std::max(start, a.start), std::min(last, a.last)};
    };
    for (const Deep& dp : deep) {
      for (u64 x : sample_points(dp.clip)) {
        auto v1 = spec.uva(name, x), v2 = sut.uva(name, x);
        if (v1.code() != v2.code() || (v1.ok() && *v1 != *v2))
          return "uva " + hex(x) + " in " + name + " differs";
        for (const auto& d : s1->domains) {
          auto t1 = spec.translate(d.name, x), t2 = sut.translate(d.name, x);
          if (show_tr(t1) != show_tr(t2))
            return "translate " + d.name + " " + hex(x) + ": spec " + show_tr(t1) + ", sut " + show_tr(t2);
        }
      }
    }
    // Every domain's page table, leaf by leaf, as the software walker sees
    // it (impl) against the leaves the spec's rule gives: addresses, sizes,
    // permissions, dirty state and the userspace view. Very large areas are
    // compared at both ends (64K leaves each; a focused comparison, 512).
    const unsigned window_shift = focus.whole ? 16 : 9;
    for (const auto& d : s1->domains) {
      const u64 minpg = d.pgsize_bitmap & (~d.pgsize_bitmap + 1);
      const u64 window = minpg << window_shift;
      for (const Deep& x : deep) {
        const AreaInfo& a = *x.area;
        const Range span = leaf_span(d, x);
        std::vector<Range> parts{span};
        if (span.length() / minpg > 2 * (u64{1} << window_shift))
          parts = {Range{span.start, span.start + (window - 1)}, Range{span.last - (window - 1), span.last}};
        for (const Range& part : parts) {
          auto l1 = spec.leaves(d.name, part), l2 = sut.leaves(d.name, part);
          if (l1.code() != l2.code()) return "leaves of " + d.name + " over " + to_string(part) + ": answers differ";
          if (!l1.ok()) continue;
          // Security: nothing the hardware walks lies in a reserved range
          // (MSI windows, outside an aperture, page 0 by default).
          for (const LeafInfo& l : *l2)
            for (const ReservedInfo& rr : s1->reserved)
              if (l.iova.overlaps(rr.range))
                return "page table of " + d.name + " maps " + to_string(l.iova) + " inside reserved " +
                       to_string(rr.range) + " of " + to_string(rr.owner);
          for (std::size_t i = 0; i < std::max(l1->size(), l2->size()); ++i) {
            auto show_leaf = [](const std::vector<LeafInfo>& v, std::size_t k) {
              if (k >= v.size()) return std::string("none");
              const LeafInfo& l = v[k];
              return to_string(l.iova) + " pa " + hex(l.pa) + " " + to_string(l.prot) +
                     (l.dirty ? " dirty" : "") + " uaddr " + hex(l.uaddr);
            };
            if (i >= l1->size() || i >= l2->size() || (*l1)[i] != (*l2)[i])
              return "page table of " + d.name + " in area " + to_string(a.iova) + ", leaf " + std::to_string(i) +
                     ": spec " + show_leaf(*l1, i) + ", sut " + show_leaf(*l2, i);
          }
        }
      }
    }
    for (const auto& d : s1->domains) {
      if (d.dirty == DirtyMode::kOff) continue;
      const u64 pg = d.pgsize_bitmap & (~d.pgsize_bitmap + 1);
      for (const Deep& x : deep) {
        const Range span = leaf_span(d, x);
        auto g1 = spec.read_dirty(d.name, span.start, span.length(), pg, true);
        auto g2 = sut.read_dirty(d.name, span.start, span.length(), pg, true);
        if (g1.code() != g2.code() || (g1.ok() && *g1 != *g2))
          return "dirty state of " + d.name + " over " + to_string(span) + ": spec " +
                 (g1.ok() ? to_string(*g1) : errno_name(g1.code())) + ", sut " +
                 (g2.ok() ? to_string(*g2) : errno_name(g2.code()));
      }
    }
  }
  if (!focus.whole) return "";
  for (Engine* e : {&spec, &sut}) {
    auto v = e->check();
    if (!v.empty())
      return std::string(e == &spec ? "spec" : "sut") + " breaks invariant " + to_string(v.front().invariant) + ": " +
             v.front().detail;
  }
  // The Z3 invariant checker (proofs/), independent of both engines' own
  // check(), on one comparison in g_z3_check_every so the harness stays fast.
  static std::uint64_t comparisons = 0;
  if (g_z3_check_every && ++comparisons % g_z3_check_every == 0) {
    for (Engine* e : {&spec, &sut}) {
      auto v = checker::check_engine(*e);
      if (!v.empty())
        return std::string(e == &spec ? "spec" : "sut") + " breaks invariant " + to_string(v.front().invariant) +
               " (Z3 checker): " + v.front().detail;
    }
  }
  return "";
}

}  // namespace

std::string diff_states(Engine& spec, Engine& sut) { return compare(spec, sut, Focus::everything()); }

std::string diff_focused(Engine& spec, Engine& sut, const Focus& focus) { return compare(spec, sut, focus); }

namespace {

// [start, start + len - 1], the end held at 2^64-1; none for an empty length.
std::optional<Range> span(u64 start, u64 len) {
  if (len == 0) return std::nullopt;
  const u64 last = start + (len - 1);
  return Range{start, last < start ? kMaxIova : last};
}

constexpr Range kEverywhere{0, kMaxIova};

}  // namespace

Focus focus_of(const Operation& op, const std::string& ioas, const trace::Outcome& outcome) {
  Focus f;
  auto on_ioas = [&](std::optional<Range> r) {
    if (r) f.parts.push_back(Focus::Part{ioas, "", *r});
  };
  auto on_dom = [&](const std::string& dom, std::optional<Range> r) {
    if (r) f.parts.push_back(Focus::Part{"", dom, *r});
  };
  // Where a map or copy placed its area: the fixed IOVA, or the answer.
  auto placed = [&](const std::optional<u64>& fixed, u64 len) -> std::optional<Range> {
    if (fixed) return span(*fixed, len);
    if (outcome.kind == trace::OutcomeKind::kIova) return span(outcome.value, len);
    return std::nullopt;
  };
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, trace::MapOp>) on_ioas(placed(o.iova, o.len));
        else if constexpr (std::is_same_v<T, trace::CopyOp>) on_ioas(placed(o.to, o.len));
        else if constexpr (std::is_same_v<T, trace::UnmapOp>) on_ioas(o.all ? kEverywhere : span(o.iova, o.len));
        else if constexpr (std::is_same_v<T, trace::CutOp>) on_ioas(Range{o.iova ? o.iova - 1 : 0, o.iova});
        else if constexpr (std::is_same_v<T, trace::PinOp>) on_ioas(span(o.iova, o.len));
        else if constexpr (std::is_same_v<T, trace::ReserveOp>) {
          if (o.range.start <= o.range.last) on_ioas(o.range);
        } else if constexpr (std::is_same_v<T, trace::AttachOp>) on_ioas(kEverywhere);  // a new table filled
        else if constexpr (std::is_same_v<T, trace::DirtyOp>) on_dom(o.dom, kEverywhere);  // splits, clears
        else if constexpr (std::is_same_v<T, trace::DmaOp>) on_dom(o.dom, span(o.iova, o.len));
        else if constexpr (std::is_same_v<T, trace::ReadDirtyOp>) on_dom(o.dom, span(o.iova, o.len));
        // The rest change no area nor table (ioas, mem, unmem, unreserve,
        // allow, detach, unpin) or nothing (ranges, translate, uva, check):
        // the whole-state part of the comparison covers them.
      },
      op);
  return f;
}

StepResult lockstep_step(Engine& spec, std::string& spec_current, Engine& sut, std::string& sut_current,
                         const Operation& op, Compare how) {
  const std::string ioas = spec_current;
  const auto a = trace::execute(spec, spec_current, op);
  const auto b = trace::execute(sut, sut_current, op);
  StepResult r{a.outcome, ""};
  if (a.outcome != b.outcome) {
    r.failure = "`" + trace::to_string(op) + "`: spec => " + trace::to_string(a.outcome) + " (" + a.note +
                "), sut => " + trace::to_string(b.outcome) + " (" + b.note + ")";
  } else if (spec_current != sut_current) {
    r.failure = "current IOAS differs after `" + trace::to_string(op) + "`";
  } else if (std::string d = how == Compare::kWhole ? diff_states(spec, sut)
                                                    : diff_focused(spec, sut, focus_of(op, ioas, a.outcome));
             !d.empty()) {
    r.failure = "after `" + trace::to_string(op) + "` => " + trace::to_string(a.outcome) + ": " + d;
  }
  return r;
}

std::string outcome_class(const Operation& op, const trace::Outcome& o) {
  std::string name = trace::op_name(op);
  switch (o.kind) {
    case trace::OutcomeKind::kError: return name + " " + errno_name(o.error);
    case trace::OutcomeKind::kFault:
    case trace::OutcomeKind::kFaultAt: return name + " fault";
    case trace::OutcomeKind::kDirty: return name + (o.ranges.empty() ? " none" : " ok");
    default: return name + " ok";
  }
}

const std::vector<std::string>& required_coverage() {
  static const std::vector<std::string> req = {
      "mem ok", "mem EEXIST", "mem EINVAL", "mem EOVERFLOW",
      "unmem ok", "unmem EBUSY", "unmem ENOENT",
      "map ok", "map ENOENT", "map EINVAL", "map EOVERFLOW", "map EPERM", "map EEXIST", "map ENOSPC",
      "unmap ok", "unmap ENOENT", "unmap EINVAL", "unmap EOVERFLOW", "unmap EBUSY",
      "cut ok", "cut EINVAL",
      "copy ok", "copy EINVAL", "copy EOVERFLOW", "copy ENOENT", "copy EPERM", "copy EEXIST",
      "reserve ok", "reserve EINVAL", "reserve EADDRINUSE",
      "unreserve ok",
      "allow ok", "allow EINVAL", "allow EADDRINUSE",
      "ranges ok",
      "attach ok", "attach EBUSY", "attach EINVAL", "attach EADDRINUSE",
      "detach ok", "detach ENOENT",
      "pin ok", "pin EINVAL", "pin EOVERFLOW", "pin ENOENT", "pin EPERM", "pin EADDRINUSE",
      "unpin ok", "unpin ENOENT",
      "translate ok", "translate fault", "translate ENOENT",
      "dma ok", "dma fault", "dma EINVAL", "dma EOVERFLOW",
      "dirty ok",
      "read-dirty ok", "read-dirty none", "read-dirty EINVAL", "read-dirty EOVERFLOW",
      "uva ok", "uva ENOENT",
      "ioas ok", "ioas EINVAL",
      "check ok",
      "kernel map ok", "kernel map EINVAL", "kernel unmap ok", "kernel unmap ENOENT", "kernel unmap EDEADLK",
      "kernel cut ok", "kernel cut EINVAL", "kernel attach ok", "kernel pin ok",
      "kernel write-only map ok", "kernel write-only copy ok",
      "mock attach ok", "mock attach EINVAL",
  };
  return req;
}

namespace {
std::string exact_fit_class(u64 small, u64 large) {
  return "bias: " + hex(small) + " pages, then one " + hex(large) + " page that fits exactly";
}
}  // namespace

std::vector<std::string> bias_classes(const Engine& spec, const std::string& ioas, const Operation& op,
                                      const trace::Outcome& o) {
  std::vector<std::string> out;
  const auto* m = std::get_if<trace::MapOp>(&op);
  const bool mapped = o.kind == trace::OutcomeKind::kIova || (o.kind == trace::OutcomeKind::kOk && m && m->iova);
  if (!m || !mapped) return out;
  auto s = spec.snapshot(ioas);
  if (!s.ok()) return out;
  const u64 iova = m->iova ? *m->iova : o.value;
  if (!m->iova && s->iova_alignment == 1 && (iova & 1)) {
    auto just_below = [&](const Range& r) { return r.last < iova && iova - r.last <= P; };
    bool hit = std::any_of(s->areas.begin(), s->areas.end(), [&](const AreaInfo& a) { return just_below(a.iova); }) ||
               std::any_of(s->reserved.begin(), s->reserved.end(), [&](const ReservedInfo& r) { return just_below(r.range); });
    if (hit) out.push_back("bias: byte-granular automatic map right after an interval");
  }
  for (const auto& d : s->domains) {
    if (!s->options.huge_pages || d.dirty == DirtyMode::kOnSplit) continue;
    auto t = spec.translate(d.name, iova);
    if (!t.ok() || !t->has_value()) continue;
    const u64 pa = (*t)->pa;
    for (const auto& [small, large] : adjacent_sizes(d.pgsize_bitmap)) {
      const u64 in = iova & (large - 1);
      if (in && in % small == 0 && ((iova ^ pa) & (large - 1)) == 0 && m->len == (large - in) + large)
        out.push_back(exact_fit_class(small, large));
    }
  }
  return out;
}

const std::vector<std::string>& required_biases() {
  static const std::vector<std::string> req = [] {
    std::vector<std::string> r;
    for (const auto& [small, large] : every_format_fit()) r.push_back(exact_fit_class(small, large));
    r.push_back("bias: byte-granular automatic map right after an interval");
    return r;
  }();
  return req;
}

// ---------------------------------------------------------------------------
// The rc::state machine.

namespace {

// The two engines in lockstep, each run in place: the spec (a model engine)
// and the engine under test.
struct Sut {
  std::unique_ptr<Engine> spec;
  std::string spec_current = "default";
  std::unique_ptr<Engine> engine;
  std::string current = "default";
  std::vector<Operation> history;
};

struct CampaignState {
  std::function<bool(Engine&, std::uint64_t)> inject;
  std::map<std::string, std::uint64_t> coverage;
  std::uint64_t operations = 0;
  std::vector<Operation> last_failure;
};
thread_local CampaignState* g_campaign = nullptr;

// A map or copy asking for write-only (Prot::kWrite).
bool write_only(const Operation& op) {
  if (const auto* m = std::get_if<trace::MapOp>(&op)) return m->prot == Prot::kWrite;
  if (const auto* c = std::get_if<trace::CopyOp>(&op)) return c->prot == Prot::kWrite;
  return false;
}

struct Step final : rc::state::Command<SpecModel, Sut> {
  Operation op;
  std::uint64_t fail_nth = 0;  // 0: no injection
  explicit Step(std::shared_ptr<const Ctx> c) : op(*gen_operation(std::move(c))) {
    if (g_campaign && g_campaign->inject && *rc::gen::inRange(0, 16) == 0)
      fail_nth = *rc::gen::inRange<std::uint64_t>(1, 7);
  }

  // Generation: the model that the next steps' arguments are drawn from
  // follows the sequence.
  void apply(SpecModel& m) const override {
    (void)trace::execute(*m.engine, m.current, op);
    m.context.reset();
  }

  // run_campaign runs the steps itself (check below); as an rc::state command
  // a step compares whole states.
  void run(const SpecModel&, Sut& s) const override { check(s, Compare::kWhole); }

  // Runs the step on both engines of `s` and compares them (`how`); RC_FAIL
  // on a difference.
  void check(Sut& s, Compare how) const {
    s.history.push_back(op);
    const std::string ioas = s.spec_current;  // before the step
    const auto options = s.spec->ioas_options(ioas);
    StepResult r;
    bool injected_enomem = false;
    if (fail_nth) {
      // The engine under test alone, with its nth table allocation failing.
      g_campaign->inject(*s.engine, fail_nth);
      std::string cur = s.current;
      const auto b = trace::execute(*s.engine, cur, op);
      g_campaign->inject(*s.engine, 0);
      if (b.outcome.kind == trace::OutcomeKind::kError && b.outcome.error == ENOMEM) {
        // Nothing may have changed: the model did not run the operation.
        // Where an automatic placement would have gone is not known, so the
        // focus is every area of the IOAS, and the domains the step names.
        injected_enomem = true;
        r.outcome = b.outcome;
        Focus focus = how == Compare::kWhole ? Focus::everything() : focus_of(op, ioas, b.outcome);
        focus.parts.push_back(Focus::Part{ioas, "", Range{0, kMaxIova}});
        if (cur != s.current) r.failure = "an ENOMEM `" + trace::to_string(op) + "` changed the current IOAS";
        else if (std::string d = diff_focused(*s.spec, *s.engine, focus); !d.empty())
          r.failure = "after `" + trace::to_string(op) + "` failed with an injected ENOMEM (allocation " +
                      std::to_string(fail_nth) + "), the engine changed: " + d;
      } else {
        // The injection point lay beyond what the operation needed.
        const auto a = trace::execute(*s.spec, s.spec_current, op);
        r.outcome = a.outcome;
        s.current = cur;
        if (a.outcome != b.outcome)
          r.failure = "`" + trace::to_string(op) + "` (allocation " + std::to_string(fail_nth) +
                      " failing): spec => " + trace::to_string(a.outcome) + " (" + a.note + "), sut => " +
                      trace::to_string(b.outcome) + " (" + b.note + ")";
        else if (std::string d = diff_focused(*s.spec, *s.engine,
                                              how == Compare::kWhole ? Focus::everything()
                                                                     : focus_of(op, ioas, a.outcome));
                 !d.empty())
          r.failure = "after `" + trace::to_string(op) + "`: " + d;
      }
    } else {
      r = lockstep_step(*s.spec, s.spec_current, *s.engine, s.current, op, how);
    }
    if (g_campaign) {
      const std::string outcome = injected_enomem ? std::string(trace::op_name(op)) + " ENOMEM (injected)"
                                                  : outcome_class(op, r.outcome);
      g_campaign->coverage[outcome]++;
      // Kernel mode and the mock format are counted apart too, so the
      // campaign shows it compared them (SPEC "Kernel mode").
      if (options.ok() && options->mode == IoasMode::kKernel) {
        g_campaign->coverage["kernel " + outcome]++;
        if (write_only(op)) g_campaign->coverage["kernel write-only " + outcome]++;
      }
      if (const auto* at = std::get_if<trace::AttachOp>(&op); at && at->fmt == Format::kMock)
        g_campaign->coverage["mock " + outcome]++;
      g_campaign->operations++;
      if (!injected_enomem)
        for (auto& b : bias_classes(*s.spec, s.spec_current, op, r.outcome)) g_campaign->coverage[b]++;
      if (!r.failure.empty()) g_campaign->last_failure = s.history;
    }
    if (!r.failure.empty()) RC_FAIL(r.failure);
  }

  void show(std::ostream& os) const override {
    if (fail_nth) os << "# the engine's page-table allocation " << fail_nth << " fails in:\n";
    os << trace::to_string(op);
  }

};

// A step drawn from a state: the command keeps the state's generation
// context (to draw shrunk arguments from), not a copy of the model as
// rc::state::gen::execOneOfWithArgs would (a clone of the engine per step).
rc::Gen<std::shared_ptr<const rc::state::Command<SpecModel, Sut>>> gen_step(const SpecModel& m) {
  return rc::gen::exec([c = context_for(m)]() -> std::shared_ptr<const rc::state::Command<SpecModel, Sut>> {
    return std::make_shared<const Step>(c);
  });
}

}  // namespace

std::string write_counterexample(const std::vector<Operation>& ops, const std::string& dir,
                                 const std::string& stem) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = dir + "/" + stem + ".trace";
  std::ofstream out(path);
  if (!out) return "";
  out << "# Found by the lockstep state machine (differential/lockstep); shrunk by\n"
         "# RapidCheck. Expectations are the model's answers: the engine under test\n"
         "# disagreed with one of them, or with the model's state, at the last line.\n";
  SpecModel spec;
  for (const auto& op : ops) {
    auto a = trace::execute(*spec.engine, spec.current, op);
    const bool bare = (std::holds_alternative<trace::IoasOp>(op) || std::holds_alternative<trace::MemOp>(op)) &&
                      a.outcome.kind == trace::OutcomeKind::kOk;
    out << trace::format_line(op, bare ? std::nullopt : std::optional<trace::Outcome>(a.outcome)) << "\n";
  }
  out << "check => ok\n";
  return out ? path : "";
}

CampaignResult run_campaign(const CampaignConfig& cfg) {
  CampaignState state;
  state.inject = cfg.inject;
  g_campaign = &state;
  rc::detail::TestParams params;
  params.seed = cfg.seed;
  params.maxSuccess = cfg.cases;
  params.maxSize = cfg.max_size;
  const auto make = cfg.make_sut;
  const std::uint64_t whole_every = std::max<std::uint64_t>(cfg.whole_every, 1);
  // rc::state::check's loop, with the spec run in place beside the engine
  // under test (no model copied per step), the touched parts compared after
  // each step and whole states after every `whole_every`th and the last:
  // a difference the focused comparison misses is found by the next whole
  // one, and a shrunk sequence ends at the step that made it.
  auto property = rc::detail::toProperty([make, whole_every] {
    SpecModel initial;
    const auto commands = *rc::state::gen::commands(initial, gen_step);
    Sut sut{SpecModel().engine, "default", make(), "default", {}};
    RC_ASSERT(sut.engine != nullptr);
    RC_ASSERT(sut.engine->create_ioas("default", IoasOptions{}).ok());
    for (std::size_t i = 0; i < commands.size(); ++i) {
      const bool whole = (i + 1) % whole_every == 0 || i + 1 == commands.size();
      static_cast<const Step&>(*commands[i]).check(sut, whole ? Compare::kWhole : Compare::kTouched);
    }
  });
  rc::detail::TestMetadata meta;
  meta.id = "lockstep";
  meta.description = "model and engine in lockstep";
  const auto result = rc::detail::checkProperty(property, meta, params);
  g_campaign = nullptr;

  CampaignResult out;
  out.coverage = std::move(state.coverage);
  out.operations = state.operations;
  std::ostringstream msg;
  rc::detail::printResultMessage(result, msg);
  out.message = msg.str();
  rc::detail::SuccessResult success;
  out.passed = result.match(success);
  if (!out.passed && !state.last_failure.empty() && !cfg.corpus_dir.empty()) {
    out.counterexample = write_counterexample(state.last_failure, cfg.corpus_dir,
                                              "found-seed" + std::to_string(cfg.seed));
  }
  return out;
}

}  // namespace ioas::lockstep
