// The lockstep state machine: see lockstep.hpp.
#include "lockstep.hpp"

#include <rapidcheck.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <malloc.h>
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
SpecModel::SpecModel(const SpecModel& o) : engine(o.engine->clone()), current(o.current) {}
SpecModel& SpecModel::operator=(const SpecModel& o) {
  if (this != &o) {
    engine = o.engine->clone();
    current = o.current;
  }
  return *this;
}

// ---------------------------------------------------------------------------
// The generator: names and boundaries present in the state, and operations
// drawn from them with Rng.

std::uint64_t Rng::next() {
  // splitmix64 (Steele, Lea, Flood): one add and two multiplies per draw.
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

std::uint64_t Rng::below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }

std::uint64_t Rng::any() {
  // Half the draws use the whole 64 bits, half fall below a random power of
  // two: small values and the top of the space both come often.
  const std::uint64_t x = next();
  return (x & 1) ? next() : next() >> (x >> 58);
}

std::size_t Rng::weighted(std::initializer_list<unsigned> weights) {
  unsigned total = 0;
  for (unsigned w : weights) total += w;
  std::uint64_t x = below(total);
  std::size_t i = 0;
  for (unsigned w : weights) {
    if (x < w) return i;
    x -= w;
    ++i;
  }
  return 0;  // all weights zero
}

namespace {

constexpr u64 P = kPage;
const std::vector<std::string> kIoasNames = {"default", "io1"};
const std::vector<std::string> kMemNames = {"m0", "m1", "m2"};
const std::vector<std::string> kDevNames = {"dv0", "dv1", "dv2", "dv3"};
const std::vector<std::string> kDomNames = {"D0", "D1", "D2"};
const std::vector<std::string> kOwners = {"u0", "u1"};

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

}  // namespace

namespace {

// GenContext::fill's body, reading the state through `names`, `mems` and
// `snap(name)` (an IoasState pointer, null when the IOAS cannot be read).
template <typename Snap>
void fill_context(GenContext& c, std::vector<std::string> names, const std::vector<MemoryInfo>& mems, Snap snap,
                  const std::string& current) {
  auto& [points, areas, current_areas, ioases, memories, domains, devices, tracking, pins, fits, kernel] = c;
  points.clear();
  areas.clear();
  current_areas.clear();
  memories.clear();
  domains.clear();
  devices.clear();
  tracking.clear();
  pins.clear();
  fits.clear();
  kernel = false;
  ioases = std::move(names);
  for (const auto& mi : mems) memories.push_back(mi.source.name);
  // The current IOAS first, then the others in order.
  auto visit = [&](const std::string& name) {
    const IoasState* s = snap(name);
    if (!s) return;
    const bool cur = name == current;
    if (cur) kernel = s->options.mode == IoasMode::kKernel;
    for (const auto& a : s->areas) {
      areas.push_back(a.iova);
      if (cur) current_areas.push_back(a.iova);
      points.push_back(a.iova.start);
      points.push_back(a.iova.last);
      points.push_back(a.iova.last + 1);
    }
    for (const auto& r : s->reserved) {
      points.push_back(r.range.start);
      points.push_back(r.range.last);
      points.push_back(r.range.last + 1);
    }
    for (const auto& r : s->allowed) {
      points.push_back(r.start);
      points.push_back(r.last + 1);
    }
    for (const auto& d : s->domains) {
      domains.push_back(d.name);
      if (cur && d.dirty != DirtyMode::kOff) tracking.push_back(d.name);
      if (cur)
        for (const auto& f : adjacent_sizes(d.pgsize_bitmap))
          if (std::find(fits.begin(), fits.end(), f) == fits.end()) fits.push_back(f);
      for (const auto& dev : d.devices) devices.push_back(dev);
    }
    if (cur)
      for (const auto& p : s->pins) pins.push_back(p.id);
  };
  for (const auto& name : ioases)
    if (name == current) visit(name);
  for (const auto& name : ioases)
    if (name != current) visit(name);
}

}  // namespace

void GenContext::fill(const Engine& e, const std::string& current) {
  std::optional<IoasState> held;
  fill_context(*this, e.ioas_names(), e.memories(), [&](const std::string& name) -> const IoasState* {
    auto st = e.snapshot(name);
    if (!st.ok()) return nullptr;
    held = std::move(*st);
    return &*held;
  }, current);
}

namespace {

using Ctx = GenContext;

// Something present (8 in 9), else anything of `all`.
template <typename T>
T pick_or(Rng& r, const std::vector<T>& present, const std::vector<T>& all) {
  if (present.empty() || r.weighted({8, 1}) == 1) return r.pick(all);
  return r.pick(present);
}

std::string name_from(Rng& r, const std::vector<std::string>& present, const std::vector<std::string>& all) {
  return pick_or(r, present, all);
}

// An IOVA: mostly near something that exists, else small page multiples, now
// and then an extreme of the 64-bit space.
u64 gen_iova(const Ctx& c, Rng& r) {
  static const std::vector<u64> extremes = {0,       1,        P - 1,       P,           kMaxIova - P,
                                            kMaxIova - P + 1, kMaxIova, (u64{1} << 48) - 1, u64{1} << 48,
                                            u64{1} << 63,     0xfee00000, 0x200000,    0x80000000};
  static const std::vector<std::int64_t> deltas = {0, 0, 0, 1, -1, static_cast<std::int64_t>(P),
                                                   -static_cast<std::int64_t>(P)};
  switch (r.weighted({c.points.empty() ? 0u : 8u, 6, 1, 1, 1})) {
    case 0: {
      const u64 p = r.pick(c.points);
      return p + static_cast<u64>(r.pick(deltas));
    }
    case 1: return r.below(40) * P;
    case 2: return r.below(8) * 0x200000;
    case 3: return r.pick(extremes);
    default: return r.any();
  }
}

u64 gen_len(Rng& r) {
  static const std::vector<u64> odd = {1, P / 2, P + 0x800, 0x200000, 0x400000, 0x200000 + P};
  static const std::vector<u64> huge = {0, u64{1} << 63, kMaxIova, kMaxIova - P + 1, u64{1} << 40};
  switch (r.weighted({10, 2, 1})) {
    case 0: return r.range(1, 9) * P;
    case 1: return r.pick(odd);
    default: return r.pick(huge);
  }
}

// Map and copy go to the current IOAS: in kernel mode write-only is a valid
// prot (ModeRules::write_only_maps), so it is drawn as often as a real one.
Prot gen_prot(const Ctx& c, Rng& r) {
  if (c.kernel) {
    static constexpr Prot kinds[] = {Prot::kReadWrite, Prot::kRead, Prot::kWrite, Prot::kNone};
    return kinds[r.weighted({10, 8, 6, 1})];
  }
  switch (r.weighted({10, 8, 1})) {
    case 0: return Prot::kReadWrite;
    case 1: return Prot::kRead;
    default: return r.below(2) ? Prot::kNone : Prot::kWrite;
  }
}

// A range over existing areas: exact, a sub-range, or spanning neighbours.
Range gen_area_range(const Ctx& c, const std::vector<Range>& areas, Rng& r) {
  auto any = [&] {
    const u64 s = gen_iova(c, r);
    return Range{s, s + gen_len(r) - 1};
  };
  if (areas.empty()) return any();
  switch (r.weighted({4, 2, 2, 2})) {
    case 0: return r.pick(areas);
    case 1: {
      const Range a = r.pick(areas);  // the area's first page only
      return Range{a.start, std::min(a.last, a.start + P - 1)};
    }
    case 2: {
      const Range a = r.pick(areas), b = r.pick(areas);
      return Range{std::min(a.start, b.start), std::max(a.last, b.last)};
    }
    default: return any();
  }
}

Range gen_small_range(const Ctx& c, Rng& r) {
  static const std::vector<Range> fixed = {Range{0xfee00000, 0xfeefffff}, Range{0, 0xfff}, Range{P, P},
                                           Range{kMaxIova - P + 1, kMaxIova}};
  switch (r.weighted({6, 1, 1})) {
    case 0: {
      const u64 s = gen_iova(c, r);
      return Range{s, s + r.range(1, 6) * P - 1};
    }
    case 1: {
      const u64 s = gen_iova(c, r);
      return Range{s, gen_iova(c, r)};
    }
    default: return r.pick(fixed);
  }
}

Operation gen_mem(Rng& r) {
  static constexpr u64 vas[] = {0x7f0000000000, 0x7f0000201000, 0x7f0000000800, 0x40000000, kMaxIova - P + 1};
  static constexpr u64 lens[] = {0x1000000, 0x10000, 0x201000, 0, 0x80000000};
  std::string name = r.pick(kMemNames);
  const u64 va = vas[r.weighted({8, 2, 2, 2, 1})];
  const u64 len = lens[r.weighted({8, 2, 2, 1, 2})];
  std::optional<u64> pa;
  switch (r.weighted({6, 4, 2, 1})) {
    case 1: pa = 0x80000000 + (va % P); break;          // 2M aligned + same page offset
    case 2: pa = 0x80001000 + (va % P); break;          // 4K aligned only
    case 3: pa = 0x80000000 + ((va + 0x10) % P); break;  // offset mismatch
    default: break;
  }
  return trace::MemOp{std::move(name), va, len, pa, r.weighted({3, 1}) == 1};
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

Operation gen_exact_fit_map(const Ctx& c, Rng& r) {
  const auto [small, large] =
      c.fits.empty() || r.weighted({4, 1}) == 1 ? r.pick(every_format_fit()) : r.pick(c.fits);
  const u64 first = std::max<u64>(1, 0x1000000 / large + 1);
  const u64 k = r.below(3);
  std::string src = name_from(r, c.memories, kMemNames);
  return trace::MapOp{(first + k) * large - small, small + large, std::move(src), large - small, gen_prot(c, r)};
}

Operation gen_map(const Ctx& c, Rng& r) {
  if (r.weighted({8, 2}) == 1) return gen_exact_fit_map(c, r);
  // Odd offsets give odd user addresses: with no domain the alignment is 1
  // and an automatic map starts at a hole's first byte (| the offset).
  static const std::vector<u64> offsets = {0, 0, P, 2 * P, 0x200000, 0x800, 0xfff000, 1, 0x801};
  std::optional<u64> iova;
  if (r.below(2)) iova = gen_iova(c, r);
  const u64 len = gen_len(r);
  std::string src = name_from(r, c.memories, kMemNames);
  u64 off = 0;
  switch (r.weighted({6, 2, 1})) {
    case 0: off = r.pick(offsets); break;
    case 1: off = r.below(64) * P; break;
    default: off = kMaxIova; break;
  }
  return trace::MapOp{iova, len, std::move(src), off, gen_prot(c, r)};
}

Operation gen_unmap(const Ctx& c, Rng& r) {
  switch (r.weighted({8, 2, 1})) {
    case 0: {
      const Range a = gen_area_range(c, c.current_areas, r);
      return trace::UnmapOp{false, a.start, a.last - a.start + 1};
    }
    case 1: {
      const u64 i = gen_iova(c, r);
      return trace::UnmapOp{false, i, gen_len(r)};
    }
    default: return trace::UnmapOp{true, 0, 0};
  }
}

u64 gen_inner_point(const Ctx& c, Rng& r) {
  if (c.current_areas.empty() || r.weighted({4, 2}) == 1) return gen_iova(c, r);
  const Range a = r.pick(c.current_areas);
  const u64 k = r.range(1, 9);
  const u64 len = a.last - a.start;  // length - 1
  return a.start + (len == 0 ? 0 : ((k * P - 1) % (len + 1)));
}

Operation gen_attach(const Ctx& c, Rng& r) {
  static const std::vector<Range> apertures = {{0, 0xffffffffffff}, {0x1000, 0x7fffffff}, {0, 0x3fffff},
                                               {0x100000, 0xffffffff}, {0, kMaxIova}, {0x2000, 0x1fff},
                                               default_aperture(Format::kMock)};
  // 0x800 and 0x800|1M are the mock's (2K slots, 1M huge leaves).
  static const std::vector<u64> pgsizes = {k4K,   k4K | k2M,           k4K | k2M | k1G, k2M,       k4K | k1G,
                                           0x800, kMockPage | kMockHugePage, 0x400 | k4K, k2M | k1G};
  static constexpr std::optional<Format> formats[] = {std::nullopt, Format::kX86_64, Format::kArmLpae, Format::kTce,
                                                      Format::kMock};
  std::string dev = name_from(r, c.devices, kDevNames);
  std::string dom = name_from(r, c.domains, kDomNames);
  const std::optional<Format> fmt = formats[r.weighted({7, 1, 1, 2, 2})];
  // A mock domain asks for its huge size often: the huge mock's 2K/1M
  // leaves are its only pair of neighbouring sizes.
  std::optional<u64> pg;
  switch (r.weighted({6, fmt == Format::kMock ? 6u : 0u, 2})) {
    case 0: break;
    case 1: pg = kMockPage | kMockHugePage; break;
    default: pg = r.pick(pgsizes); break;
  }
  std::optional<Range> aperture;
  if (r.weighted({6, 2}) == 1) aperture = r.pick(apertures);
  std::vector<ResvRegion> resv(r.below(3));
  for (ResvRegion& x : resv) {
    x.range = r.weighted({2, 3}) == 0 ? Range{0xfee00000, 0xfeefffff} : gen_small_range(c, r);
    x.type = static_cast<ResvType>(r.weighted({1, 1, 1, 3}));
  }
  return trace::AttachOp{std::move(dev), std::move(dom), fmt, aperture, pg, std::move(resv), {}};
}

Operation gen_pin(const Ctx& c, Rng& r) {
  const Range a = gen_area_range(c, c.current_areas, r);
  const bool write = r.below(2);
  const bool release = r.weighted({3, 1}) == 0;
  return trace::PinOp{a.start, a.last - a.start + 1, write, release};
}

Operation gen_copy(const Ctx& c, Rng& r) {
  std::string from = name_from(r, c.ioases, kIoasNames);
  const Range a = gen_area_range(c, c.areas, r);
  std::optional<u64> to;
  if (r.below(2)) to = gen_iova(c, r);
  return trace::CopyOp{std::move(from), a.start, a.last - a.start + 1, to, gen_prot(c, r)};
}

Operation gen_ioas(Rng& r) {
  trace::IoasOp op{r.pick(kIoasNames), std::nullopt, std::nullopt, std::nullopt};
  const std::size_t opt = r.weighted({6, 2, 2, 1, 4, 1});
  if (opt == 1) op.zero_page = ZeroPage::kAllowed;
  if (opt == 2) op.huge_pages = false;
  if (opt == 3) op.zero_page = ZeroPage::kReserved;
  // Kernel mode (SPEC "Kernel mode"), with and without large pages.
  if (opt == 4 || opt == 5) op.mode = IoasMode::kKernel;
  if (opt == 5) op.huge_pages = false;
  return op;
}

Operation gen_dirty_ops(const Ctx& c, Rng& r) {
  auto dom = [&] { return name_from(r, c.domains, kDomNames); };
  // DMA and read-dirty go mostly to a domain that is tracking, so that
  // writes are recorded and read back.
  auto tdom = [&] { return c.tracking.empty() || r.weighted({8, 1}) == 1 ? dom() : r.pick(c.tracking); };
  // Mostly over existing areas; now and then a range whose end passes 2^64-1
  // while its start and length stay page aligned (the EOVERFLOW paths).
  auto area = [&] {
    return r.weighted({12, 1}) == 0 ? gen_area_range(c, c.current_areas, r)
                                    : Range{kMaxIova - P + 1, P - 1};  // [2^64-P, 2^64+P-1]: iova+len overflows
  };
  static const std::vector<u64> pgs = {P, P, P, 0x200000, 0x800, 0, 3 * P};
  switch (r.weighted({3, 4, 1, 6, 2})) {
    case 0: {
      std::string d = dom();
      return trace::DirtyOp{std::move(d), static_cast<DirtyMode>(r.weighted({1, 2, 2}))};
    }
    case 1: {
      std::string d = tdom();
      const DmaDir dir = r.weighted({1, 3}) == 1 ? DmaDir::kWrite : DmaDir::kRead;
      Range a;
      if (r.weighted({3, 2}) == 0) a = area();
      else {
        const u64 x = gen_inner_point(c, r);
        a = Range{x, x};
      }
      return trace::DmaOp{std::move(d), dir, a.start, a.last - a.start + 1};
    }
    case 2: return trace::DmaOp{tdom(), DmaDir::kWrite, P, 0};
    case 3: {
      std::string d = tdom();
      const Range a = area();
      const u64 pg = r.pick(pgs);
      return trace::ReadDirtyOp{std::move(d), a.start, a.last - a.start + 1, pg, r.below(2) == 1};
    }
    default: {
      std::string d = dom();
      return trace::TranslateOp{std::move(d), gen_inner_point(c, r)};
    }
  }
}

}  // namespace

// The operation kinds and their weights: the kind first, then its arguments.
Operation draw_operation(const GenContext& c, Rng& r) {
  enum Kind : std::size_t {
    kMem, kUnmem, kMap, kUnmap, kCut, kCopy, kPin, kUnpin, kReserve, kUnreserve,
    kAllow, kRanges, kAttach, kDetach, kDirtyOps, kUva, kIoas, kCheck,
  };
  const bool no_mem = c.memories.empty();
  const bool have_dom = !c.domains.empty();
  switch (r.weighted({no_mem ? 40u : 3u, 1, 20, 8, 4, 4, 4, 2, 3, 1, 2, 1, 6, have_dom ? 3u : 1u,
                      have_dom ? 16u : 2u, 2, 2, 1})) {
    case kMem: return gen_mem(r);
    case kUnmem: return trace::UnmemOp{name_from(r, c.memories, kMemNames)};
    case kMap: return gen_map(c, r);
    case kUnmap: return gen_unmap(c, r);
    case kCut: return trace::CutOp{gen_inner_point(c, r)};
    case kCopy: return gen_copy(c, r);
    case kPin: return gen_pin(c, r);
    case kUnpin: {
      static const std::vector<std::uint32_t> ids = {1, 2, 3, 4, 5};
      return trace::UnpinOp{pick_or(r, c.pins, ids)};
    }
    case kReserve: {
      const Range a = gen_small_range(c, r);
      return trace::ReserveOp{a, r.pick(kOwners)};
    }
    case kUnreserve: return trace::UnreserveOp{r.pick(kOwners)};
    case kAllow: {
      std::vector<Range> rs(r.below(3));
      for (Range& a : rs) a = gen_small_range(c, r);
      return trace::AllowOp{std::move(rs)};
    }
    case kRanges: return trace::RangesOp{};
    case kAttach: return gen_attach(c, r);
    case kDetach: return trace::DetachOp{name_from(r, c.devices, kDevNames)};
    case kDirtyOps: return gen_dirty_ops(c, r);
    case kUva: return trace::UvaOp{gen_inner_point(c, r)};
    case kIoas: return gen_ioas(r);
    default: return trace::CheckOp{};
  }
}

rc::Gen<Operation> gen_operation(const SpecModel& m) {
  auto c = std::make_shared<GenContext>();
  c->fill(*m.engine, m.current);
  return rc::gen::map(rc::gen::arbitrary<std::uint64_t>(), [c](std::uint64_t seed) {
    Rng r(seed);
    return draw_operation(*c, r);
  });
}
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

// At most `N` values held in place (the comparison's short lists, made
// per area and domain, without a heap block each).
template <typename T, std::size_t N>
struct Few {
  T v[N];
  std::size_t n = 0;
  void push_back(const T& x) { v[n++] = x; }
  const T* begin() const { return v; }
  const T* end() const { return v + n; }
};

// Bytes of an area worth translating: both ends, the second and second-last
// pages, the middle, and the bytes just outside.
Few<u64, 7> sample_points(const Range& a) {
  Few<u64, 7> v;
  v.push_back(a.start);
  v.push_back(a.last);
  v.push_back(a.start + (a.last - a.start) / 2);
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

namespace {
std::uint64_t g_sut_check_every = 1;
}
void set_sut_check_every(std::uint64_t n) { g_sut_check_every = n; }

void keep_heap_blocks() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
}

bool Focus::covers(const std::string& ioas) const {
  return whole || every_ioas || std::find(ioases.begin(), ioases.end(), ioas) != ioases.end() ||
         std::any_of(parts.begin(), parts.end(), [&](const Part& p) { return !p.dom.empty() || p.ioas == ioas; });
}

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

// The leaves of a very large area beyond the ends a focused comparison
// lists (more than 2 x 512 smallest pages): a whole comparison lists them
// (64K leaves at each end) where a step may have changed them since the
// last whole comparison, where it did not list them then, and everywhere on
// the first whole comparison of a run of steps and on one in
// kDeepListingEvery after it; elsewhere it lists the area's ends as a
// focused comparison does. A difference a step made outside the parts it
// touched (which focus_of names) is found by that sample.
constexpr std::uint64_t kDeepListingEvery = 4;

struct DeepListings {
  // Whether every whole comparison lists every very large area in full (a
  // replay for the shrinker, whose steps must fail where they did).
  bool always = false;
  std::uint64_t wholes = 0;  // whole comparisons so far
  // The very large areas (IOAS, domain, area) the last whole comparison saw.
  struct Seen {
    std::string ioas, dom;
    Range area;
    friend bool operator==(const Seen&, const Seen&) = default;
  };
  std::vector<Seen> seen, next;
  // The parts the steps since the last whole comparison acted on.
  Focus touched;
};

// What the comparisons and the generator read of the spec, kept from step
// to step while the spec cannot have changed: after a step it answered
// with an error, or that only looked, or that it did not run (an injected
// ENOMEM), SPEC says its state is as it was, so the engine under test is
// compared with the views read before. Dropped after any other step, and
// before every whole comparison, which reads the spec afresh: a spec that
// broke "a failed operation changes nothing" is caught there at the latest.
class SpecViews {
 public:
  void drop() {
    names_.reset();
    memories_.reset();
    for (auto& [name, held] : snapshots_) held.valid = false;  // the memory stays for the next read
    ranges_.clear();
  }
  DeepListings deep;
  const std::vector<std::string>& names(const Engine& spec) {
    if (!names_) names_ = spec.ioas_names();
    return *names_;
  }
  const std::vector<MemoryInfo>& memories(const Engine& spec) {
    if (!memories_) memories_ = spec.memories();
    return *memories_;
  }
  // Null when the spec cannot read it.
  const IoasState* snapshot(const Engine& spec, const std::string& name) {
    auto it = snapshots_.find(name);
    if (it == snapshots_.end()) it = snapshots_.emplace(name, Held{}).first;
    Held& h = it->second;
    if (!h.valid) h.valid = spec.snapshot_into(name, h.state).ok();
    return h.valid ? &h.state : nullptr;
  }
  const IovaRanges* ranges(const Engine& spec, const std::string& name) {
    auto it = ranges_.find(name);
    if (it == ranges_.end()) {
      auto r = spec.ranges(name);
      if (!r.ok()) return nullptr;
      it = ranges_.emplace(name, std::move(*r)).first;
    }
    return &it->second;
  }

 private:
  std::optional<std::vector<std::string>> names_;
  std::optional<std::vector<MemoryInfo>> memories_;
  struct Held {
    IoasState state;
    bool valid = false;  // read since the last drop()
  };
  std::map<std::string, Held, std::less<>> snapshots_;
  std::map<std::string, IovaRanges, std::less<>> ranges_;
};

// The comparison behind diff_states and diff_focused: the whole-state part
// (names, memory sources, every IOAS's snapshot and ranges) always; the
// per-area part (translations, the userspace view, page-table leaves,
// dirty state) on the areas `focus` covers; both engines' check() and the
// sampled Z3 checker only when the focus is whole.
std::string compare(Engine& spec, Engine& sut, const Focus& focus, SpecViews& views) {
  // What is read of the engine under test, and both leaf lists, in memory
  // kept from one comparison to the next.
  thread_local IoasState sut_state;
  thread_local std::vector<LeafInfo> leaves1, leaves2;
  if (focus.whole) views.drop();
  DeepListings& hist = views.deep;
  const bool deep_everywhere = hist.always || hist.wholes % kDeepListingEvery == 0;
  if (focus.whole) {
    ++hist.wholes;
    hist.next.clear();
  } else {
    hist.touched.parts.insert(hist.touched.parts.end(), focus.parts.begin(), focus.parts.end());
  }
  const auto& names = views.names(spec);
  if (focus.names && names != sut.ioas_names()) return "the IOAS names differ";
  if (focus.memories) {
    const auto& ms = views.memories(spec);
    const auto mu = sut.memories();
    if (ms != mu) {
      std::ostringstream os;
      os << "memory sources differ:";
      for (const auto& m : ms) os << " spec " << m.source.name << " uses=" << m.use_count;
      for (const auto& m : mu) os << " sut " << m.source.name << " uses=" << m.use_count;
      return os.str();
    }
  }
  for (const auto& name : names) {
    if (!focus.covers(name)) continue;
    const IoasState* s1 = views.snapshot(spec, name);
    if (!s1 || !sut.snapshot_into(name, sut_state).ok()) return "snapshot of " + name + " failed";
    if (*s1 != sut_state) return "IOAS " + name + " differs:\n  spec: " + show(*s1) + "\n  sut:  " + show(sut_state);
    const IovaRanges* r1 = views.ranges(spec, name);
    auto r2 = sut.ranges(name);
    if (!r1 || !r2.ok() || *r1 != *r2)
      return "ranges of " + name + " differ: spec " + (r1 ? to_string(r1->ranges) : "error") + " / sut " +
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
          const bool same = t1.code() == t2.code() && (!t1.ok() || *t1 == *t2);
          if (!same)
            return "translate " + d.name + " " + hex(x) + ": spec " + show_tr(t1) + ", sut " + show_tr(t2);
        }
      }
    }
    // Every domain's page table, leaf by leaf, as the software walker sees
    // it (impl) against the leaves the spec's rule gives: addresses, sizes,
    // permissions, dirty state and the userspace view. Very large areas are
    // compared at both ends (64K leaves each; a focused comparison, 512).
    // A whole comparison lists a very large area's ends as a focused one
    // does where DeepListings says it may.
    auto windows_of = [&](const DomainInfo& d, const Range& span, unsigned window_shift) {
      const u64 minpg = d.pgsize_bitmap & (~d.pgsize_bitmap + 1);
      const u64 window = minpg << window_shift;
      Few<Range, 2> w;
      if (span.length() / minpg <= 2 * (u64{1} << window_shift)) {
        w.push_back(span);
      } else {
        w.push_back(Range{span.start, span.start + (window - 1)});
        w.push_back(Range{span.last - (window - 1), span.last});
      }
      return w;
    };
    auto windows = [&](const DomainInfo& d, const Range& span) {
      if (!focus.whole) return windows_of(d, span, 9);
      const u64 minpg = d.pgsize_bitmap & (~d.pgsize_bitmap + 1);
      if (span.length() / minpg <= 2 * (u64{1} << 9)) return windows_of(d, span, 16);
      // A very large area (a whole comparison's span is its area).
      const DeepListings::Seen me{name, d.name, span};
      if (std::find(hist.next.begin(), hist.next.end(), me) == hist.next.end()) hist.next.push_back(me);
      const bool full = deep_everywhere || std::find(hist.seen.begin(), hist.seen.end(), me) == hist.seen.end() ||
                        hist.touched.clip(name, *s1, span);
      return windows_of(d, span, full ? 16 : 9);
    };
    for (const auto& d : s1->domains) {
      for (const Deep& x : deep) {
        const AreaInfo& a = *x.area;
        for (const Range& part : windows(d, leaf_span(d, x))) {
          const Status a1 = spec.leaves_into(d.name, part, leaves1), a2 = sut.leaves_into(d.name, part, leaves2);
          if (a1.code() != a2.code()) return "leaves of " + d.name + " over " + to_string(part) + ": answers differ";
          if (!a1.ok()) continue;
          const std::vector<LeafInfo>* l1 = &leaves1;
          const std::vector<LeafInfo>* l2 = &leaves2;
          // Security: nothing the hardware walks lies in a reserved range
          // (MSI windows, outside an aperture, page 0 by default). The
          // engine's leaves come in IOVA order when it is right (the leaf
          // comparison below checks that they are the spec's, which are): the
          // first leaf ending at or after a reserved range's start is the
          // only one to look at, when they are in order; else every one is.
          const bool ordered = std::is_sorted(l2->begin(), l2->end(), [](const LeafInfo& x, const LeafInfo& y) {
            return x.iova.last < y.iova.start;
          });
          for (const ReservedInfo& rr : s1->reserved) {
            auto from = ordered ? std::lower_bound(l2->begin(), l2->end(), rr.range.start,
                                                   [](const LeafInfo& l, u64 x) { return l.iova.last < x; })
                                : l2->begin();
            for (auto it = from; it != l2->end(); ++it) {
              if (it->iova.overlaps(rr.range))
                return "page table of " + d.name + " maps " + to_string(it->iova) + " inside reserved " +
                       to_string(rr.range) + " of " + to_string(rr.owner);
              if (ordered) break;
            }
          }
          const std::size_t i = static_cast<std::size_t>(
              std::mismatch(l1->begin(), l1->begin() + static_cast<std::ptrdiff_t>(std::min(l1->size(), l2->size())),
                            l2->begin())
                  .first -
              l1->begin());
          if (i < std::max(l1->size(), l2->size())) {
            auto show_leaf = [](const std::vector<LeafInfo>& v, std::size_t k) {
              if (k >= v.size()) return std::string("none");
              const LeafInfo& l = v[k];
              return to_string(l.iova) + " pa " + hex(l.pa) + " " + to_string(l.prot) +
                     (l.dirty ? " dirty" : "") + " uaddr " + hex(l.uaddr);
            };
            return "page table of " + d.name + " in area " + to_string(a.iova) + ", leaf " + std::to_string(i) +
                   ": spec " + show_leaf(*l1, i) + ", sut " + show_leaf(*l2, i);
          }
        }
      }
    }
    // Dirty state read back as a dirty read sees it: over the whole span in
    // a whole comparison, over the leaves' windows in a focused one.
    for (const auto& d : s1->domains) {
      if (d.dirty == DirtyMode::kOff) continue;
      const u64 pg = d.pgsize_bitmap & (~d.pgsize_bitmap + 1);
      for (const Deep& x : deep) {
        Few<Range, 2> spans = windows(d, leaf_span(d, x));
        if (focus.whole && spans.n == 2 && spans.v[0].length() > (pg << 9)) {
          spans.n = 0;  // a very large area listed in full: its dirty state over all of it
          spans.push_back(leaf_span(d, x));
        }
        for (const Range& span : spans) {
          auto g1 = spec.read_dirty(d.name, span.start, span.length(), pg, true);
          auto g2 = sut.read_dirty(d.name, span.start, span.length(), pg, true);
          if (g1.code() != g2.code() || (g1.ok() && *g1 != *g2))
            return "dirty state of " + d.name + " over " + to_string(span) + ": spec " +
                   (g1.ok() ? to_string(*g1) : errno_name(g1.code())) + ", sut " +
                   (g2.ok() ? to_string(*g2) : errno_name(g2.code()));
        }
      }
    }
  }
  if (!focus.whole) return "";
  hist.seen.swap(hist.next);
  hist.touched.parts.clear();
  // The spec's check() on every whole comparison; the engine's (its trees'
  // and tables' verify() too: sut.hpp) on one in g_sut_check_every.
  static std::uint64_t whole_comparisons = 0;
  const bool check_sut = g_sut_check_every <= 1 || ++whole_comparisons % g_sut_check_every == 0;
  for (Engine* e : {&spec, &sut}) {
    if (e == &sut && !check_sut) continue;
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

std::string diff_states(Engine& spec, Engine& sut) {
  SpecViews views;
  return compare(spec, sut, Focus::everything(), views);
}

std::string diff_focused(Engine& spec, Engine& sut, const Focus& focus) {
  SpecViews views;
  return compare(spec, sut, focus, views);
}

namespace {

// [start, start + len - 1], the end held at 2^64-1; none for an empty length.
std::optional<Range> span(u64 start, u64 len) {
  if (len == 0) return std::nullopt;
  const u64 last = start + (len - 1);
  return Range{start, last < start ? kMaxIova : last};
}

constexpr Range kEverywhere{0, kMaxIova};

// Whether the state can differ after an operation that answered `o` (the
// spec's answer): a failed operation changes nothing (SPEC), except a
// kernel-mode unmap, which keeps the areas it removed before the one that
// stopped it; the operations that only look change nothing.
bool may_change_state(const Operation& op, const trace::Outcome& o) {
  if (o.kind == trace::OutcomeKind::kError && !std::holds_alternative<trace::UnmapOp>(op)) return false;
  return !(std::holds_alternative<trace::RangesOp>(op) || std::holds_alternative<trace::TranslateOp>(op) ||
           std::holds_alternative<trace::UvaOp>(op) || std::holds_alternative<trace::CheckOp>(op));
}

}  // namespace

Focus focus_of(const Operation& op, const std::string& ioas, const trace::Outcome& outcome) {
  Focus f;
  // The IOAS the step ran on: its snapshot and ranges, even after a step
  // that cannot have changed them (that it did not is checked here).
  f.ioases.push_back(ioas);
  if (!may_change_state(op, outcome)) return f;
  f.names = std::holds_alternative<trace::IoasOp>(op);
  f.memories = std::holds_alternative<trace::MemOp>(op) || std::holds_alternative<trace::UnmemOp>(op) ||
               std::holds_alternative<trace::MapOp>(op) || std::holds_alternative<trace::CopyOp>(op) ||
               std::holds_alternative<trace::UnmapOp>(op) || std::holds_alternative<trace::CutOp>(op) ||
               std::holds_alternative<trace::PinOp>(op) || std::holds_alternative<trace::UnpinOp>(op);
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
        else if constexpr (std::is_same_v<T, trace::IoasOp>) f.ioases.push_back(o.name);
        else if constexpr (std::is_same_v<T, trace::DetachOp>) f.every_ioas = true;  // the device's IOAS
        // The rest change no area nor table (mem, unmem, unreserve, allow,
        // unpin): the snapshots, ranges and memory sources cover them.
      },
      op);
  return f;
}

namespace {

// lockstep_step with the spec's views kept in `views` (see SpecViews).
StepResult step_both(Engine& spec, std::string& spec_current, Engine& sut, std::string& sut_current,
                     const Operation& op, Compare how, SpecViews& views) {
  const std::string ioas = spec_current;
  const auto a = trace::execute(spec, spec_current, op);
  const auto b = trace::execute(sut, sut_current, op);
  if (may_change_state(op, a.outcome)) views.drop();
  StepResult r{a.outcome, ""};
  if (a.outcome != b.outcome) {
    r.failure = "`" + trace::to_string(op) + "`: spec => " + trace::to_string(a.outcome) + " (" + a.note +
                "), sut => " + trace::to_string(b.outcome) + " (" + b.note + ")";
  } else if (spec_current != sut_current) {
    r.failure = "current IOAS differs after `" + trace::to_string(op) + "`";
  } else if (std::string d = compare(spec, sut, how == Compare::kWhole ? Focus::everything() : focus_of(op, ioas, a.outcome),
                                     views);
             !d.empty()) {
    r.failure = "after `" + trace::to_string(op) + "` => " + trace::to_string(a.outcome) + ": " + d;
  }
  return r;
}

}  // namespace

StepResult lockstep_step(Engine& spec, std::string& spec_current, Engine& sut, std::string& sut_current,
                         const Operation& op, Compare how) {
  SpecViews views;
  return step_both(spec, spec_current, sut, sut_current, op, how, views);
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
// The campaign: generated sequences run on both engines in place, and the
// shrinker.

namespace {

// A map or copy asking for write-only (Prot::kWrite).
bool write_only(const Operation& op) {
  if (const auto* m = std::get_if<trace::MapOp>(&op)) return m->prot == Prot::kWrite;
  if (const auto* c = std::get_if<trace::CopyOp>(&op)) return c->prot == Prot::kWrite;
  return false;
}

// One step of a sequence: the operation, and the allocation of it that
// fails in the engine under test (0: none).
struct Step {
  Operation op;
  std::uint64_t fail_nth = 0;
};

std::string show_steps(const std::vector<Step>& steps) {
  std::string out;
  for (const Step& s : steps) {
    if (s.fail_nth) out += "# the engine's page-table allocation " + std::to_string(s.fail_nth) + " fails in:\n";
    out += trace::to_string(s.op) + "\n";
  }
  return out;
}

// The two engines in lockstep, each run in place: the spec (a model engine)
// and the engine under test.
struct Pair {
  std::unique_ptr<Engine> spec;
  std::string spec_current = "default";
  std::unique_ptr<Engine> sut;
  std::string current = "default";
  SpecViews views;  // of `spec`
};

// Where a campaign counts what its steps reached (none while shrinking).
struct Counts {
  std::map<std::string, std::uint64_t> coverage;
  std::uint64_t operations = 0;
};

// Runs `step` on both engines of `p` and compares them (`how`); returns the
// spec's answer (an injected ENOMEM: the engine's) and the difference, ""
// when they agree. Counts the outcome into `counts` if any.
StepResult run_step(Pair& p, const Step& step, Compare how, const CampaignConfig& cfg, Counts* counts) {
  const Operation& op = step.op;
  const std::string ioas = p.spec_current;  // before the step
  StepResult r;
  bool injected_enomem = false;
  if (step.fail_nth && cfg.inject) {
    // The engine under test alone, with its nth table allocation failing.
    cfg.inject(*p.sut, step.fail_nth);
    std::string cur = p.current;
    const auto b = trace::execute(*p.sut, cur, op);
    cfg.inject(*p.sut, 0);
    if (b.outcome.kind == trace::OutcomeKind::kError && b.outcome.error == ENOMEM) {
      // Nothing may have changed: the model did not run the operation.
      // Where an automatic placement would have gone is not known, so the
      // focus is every area of the IOAS, and the domains the step names.
      injected_enomem = true;
      r.outcome = b.outcome;
      Focus focus = how == Compare::kWhole ? Focus::everything() : focus_of(op, ioas, b.outcome);
      focus.parts.push_back(Focus::Part{ioas, "", Range{0, kMaxIova}});
      focus.every_ioas = focus.names = focus.memories = true;
      if (cur != p.current) r.failure = "an ENOMEM `" + trace::to_string(op) + "` changed the current IOAS";
      else if (std::string d = compare(*p.spec, *p.sut, focus, p.views); !d.empty())
        r.failure = "after `" + trace::to_string(op) + "` failed with an injected ENOMEM (allocation " +
                    std::to_string(step.fail_nth) + "), the engine changed: " + d;
    } else {
      // The injection point lay beyond what the operation needed.
      const auto a = trace::execute(*p.spec, p.spec_current, op);
      if (may_change_state(op, a.outcome)) p.views.drop();
      r.outcome = a.outcome;
      p.current = cur;
      if (a.outcome != b.outcome)
        r.failure = "`" + trace::to_string(op) + "` (allocation " + std::to_string(step.fail_nth) +
                    " failing): spec => " + trace::to_string(a.outcome) + " (" + a.note + "), sut => " +
                    trace::to_string(b.outcome) + " (" + b.note + ")";
      else if (std::string d = compare(*p.spec, *p.sut,
                                       how == Compare::kWhole ? Focus::everything() : focus_of(op, ioas, a.outcome),
                                       p.views);
               !d.empty())
        r.failure = "after `" + trace::to_string(op) + "`: " + d;
    }
  } else {
    r = step_both(*p.spec, p.spec_current, *p.sut, p.current, op, how, p.views);
  }
  if (counts) {
    const std::string outcome = injected_enomem ? std::string(trace::op_name(op)) + " ENOMEM (injected)"
                                                : outcome_class(op, r.outcome);
    counts->coverage[outcome]++;
    // Kernel mode and the mock format are counted apart too, so the
    // campaign shows it compared them (SPEC "Kernel mode").
    if (auto options = p.spec->ioas_options(ioas); options.ok() && options->mode == IoasMode::kKernel) {
      counts->coverage["kernel " + outcome]++;
      if (write_only(op)) counts->coverage["kernel write-only " + outcome]++;
    }
    if (const auto* at = std::get_if<trace::AttachOp>(&op); at && at->fmt == Format::kMock)
      counts->coverage["mock " + outcome]++;
    counts->operations++;
    if (!injected_enomem)
      for (auto& b : bias_classes(*p.spec, p.spec_current, op, r.outcome)) counts->coverage[b]++;
  }
  return r;
}

// A fresh pair: the model and the engine under test, each with the default
// IOAS; empty `sut` when the engine could not be made.
Pair fresh_pair(const CampaignConfig& cfg) {
  Pair p{make_model_engine(), "default", cfg.make_sut(), "default", {}};
  (void)p.spec->create_ioas("default", IoasOptions{});
  if (p.sut && !p.sut->create_ioas("default", IoasOptions{}).ok()) p.sut.reset();
  return p;
}

// `steps` replayed on a fresh pair, whole states compared after every step:
// the first difference, with the number of steps run up to it; "" when all
// agree.
struct Replay {
  std::string failure;
  std::size_t steps = 0;
};
Replay replay(const std::vector<Step>& steps, const CampaignConfig& cfg) {
  Pair p = fresh_pair(cfg);
  if (!p.sut) return Replay{"the engine under test could not be made", 0};
  p.views.deep.always = true;
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (std::string d = run_step(p, steps[i], Compare::kWhole, cfg, nullptr).failure; !d.empty())
      return Replay{d, i + 1};
  return Replay{};
}

// Simpler versions of a step to try in its place: no injected failure, no
// optional arguments (a format, an aperture, page sizes, reserved regions,
// a physical address), plain permissions and shorter lists.
std::vector<Step> simpler(const Step& s) {
  std::vector<Step> out;
  if (s.fail_nth) out.push_back(Step{s.op, 0});
  auto with = [&](auto change) {
    Step t = s;
    if (change(t.op)) out.push_back(std::move(t));
  };
  if (std::holds_alternative<trace::AttachOp>(s.op)) {
    with([](Operation& o) { auto& a = std::get<trace::AttachOp>(o); return !a.resv.empty() && (a.resv.clear(), true); });
    with([](Operation& o) { auto& a = std::get<trace::AttachOp>(o); return a.aperture && (a.aperture.reset(), true); });
    with([](Operation& o) { auto& a = std::get<trace::AttachOp>(o); return a.pgsize_bitmap && (a.pgsize_bitmap.reset(), true); });
    with([](Operation& o) { auto& a = std::get<trace::AttachOp>(o); return a.fmt && (a.fmt.reset(), true); });
  } else if (std::holds_alternative<trace::MemOp>(s.op)) {
    with([](Operation& o) { auto& m = std::get<trace::MemOp>(o); return m.pa && (m.pa.reset(), true); });
    with([](Operation& o) { auto& m = std::get<trace::MemOp>(o); return m.ro && !(m.ro = false); });
  } else if (std::holds_alternative<trace::MapOp>(s.op)) {
    with([](Operation& o) { auto& m = std::get<trace::MapOp>(o); return m.offset && !(m.offset = 0); });
    with([](Operation& o) {
      auto& m = std::get<trace::MapOp>(o);
      return m.prot != Prot::kReadWrite && (m.prot = Prot::kReadWrite, true);
    });
  } else if (std::holds_alternative<trace::AllowOp>(s.op)) {
    with([](Operation& o) {
      auto& a = std::get<trace::AllowOp>(o);
      return !a.ranges.empty() && (a.ranges.pop_back(), true);
    });
  } else if (std::holds_alternative<trace::IoasOp>(s.op)) {
    with([](Operation& o) {
      auto& i = std::get<trace::IoasOp>(o);
      const bool plain = !i.mode && !i.zero_page && !i.huge_pages;
      i.mode.reset(), i.zero_page.reset(), i.huge_pages.reset();
      return !plain;
    });
  }
  return out;
}

// Delta debugging over a failing sequence, each candidate replayed from a
// fresh pair: cut after the failing step, drop chunks of halving size, then
// single steps, then make the steps' arguments simpler; until nothing more
// can go. Returns the shrunk sequence and its failure.
Replay shrink(std::vector<Step>& steps, const CampaignConfig& cfg, Replay failing) {
  steps.resize(failing.steps);
  auto still_fails = [&](const std::vector<Step>& candidate) {
    Replay r = replay(candidate, cfg);
    if (r.failure.empty()) return false;
    failing = r;
    return true;
  };
  for (bool progress = true; progress;) {
    progress = false;
    for (std::size_t chunk = std::max<std::size_t>(steps.size() / 2, 1);; chunk /= 2) {
      for (std::size_t i = 0; i < steps.size();) {
        std::vector<Step> candidate;
        candidate.reserve(steps.size());
        candidate.insert(candidate.end(), steps.begin(), steps.begin() + static_cast<std::ptrdiff_t>(i));
        candidate.insert(candidate.end(), steps.begin() + static_cast<std::ptrdiff_t>(std::min(i + chunk, steps.size())),
                         steps.end());
        if (!candidate.empty() && still_fails(candidate)) {
          candidate.resize(failing.steps);
          steps = std::move(candidate);
          progress = true;
        } else {
          i += chunk;
        }
      }
      if (chunk == 1) break;
    }
    for (std::size_t i = 0; i < steps.size(); ++i) {
      for (const Step& s : simpler(steps[i])) {
        std::vector<Step> candidate = steps;
        candidate[i] = s;
        if (still_fails(candidate)) {
          candidate.resize(failing.steps);
          steps = std::move(candidate);
          progress = true;
          break;
        }
      }
    }
  }
  return failing;
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
         "# its delta debugger. Expectations are the model's answers: the engine under\n"
         "# test disagreed with one of them, or with the model's state, at the last line.\n";
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
  CampaignResult out;
  Counts counts;
  const std::uint64_t whole_every = std::max<std::uint64_t>(cfg.whole_every, 1);
  const std::size_t max_size = static_cast<std::size_t>(std::max(cfg.max_size, 1));
  Rng seeds(cfg.seed);
  GenContext ctx;
  std::vector<Step> steps;
  for (int c = 0; c < cfg.cases; ++c) {
    // Each case from its own seed, so that it replays alone; the longest
    // length allowed grows from 1 to max_size over the cases.
    Rng r(seeds.next());
    const std::size_t longest = std::max<std::size_t>(1, max_size * static_cast<std::size_t>(c + 1) /
                                                             static_cast<std::size_t>(cfg.cases));
    const std::size_t length = r.range(1, longest + 1);
    Pair p = fresh_pair(cfg);
    if (!p.sut) {
      out.message = "the engine under test could not be made";
      return out;
    }
    steps.clear();
    std::string failure;
    // The touched parts compared after each step, whole states after every
    // `whole_every`th step and the last: a difference the focused
    // comparison misses is found by the next whole one (and the shrinker
    // compares whole states after every step, so a shrunk sequence ends at
    // the step that made it).
    // The generator's view of the spec is made again only after a step that
    // may have changed it.
    bool stale = true;
    for (std::size_t i = 0; i < length && failure.empty(); ++i) {
      if (stale) {
        // From the views the last comparison read (the spec has not run since).
        fill_context(ctx, p.views.names(*p.spec), p.views.memories(*p.spec),
                     [&](const std::string& name) { return p.views.snapshot(*p.spec, name); }, p.spec_current);
      }
      Step step{draw_operation(ctx, r), 0};
      if (cfg.inject && r.below(16) == 0) step.fail_nth = r.range(1, 7);
      const bool whole = (i + 1) % whole_every == 0 || i + 1 == length;
      StepResult done = run_step(p, step, whole ? Compare::kWhole : Compare::kTouched, cfg, &counts);
      failure = std::move(done.failure);
      stale = may_change_state(step.op, done.outcome);
      steps.push_back(std::move(step));
    }
    if (failure.empty()) continue;
    Replay shrunk = replay(steps, cfg);
    if (shrunk.failure.empty()) {
      // Only the sequence's own run differed (state outside the trace):
      // reported as it was, unshrunk.
      shrunk = Replay{failure, steps.size()};
    } else {
      shrunk = shrink(steps, cfg, shrunk);
    }
    out.coverage = std::move(counts.coverage);
    out.operations = counts.operations;
    out.message = "case " + std::to_string(c + 1) + " of " + std::to_string(cfg.cases) + " failed; shrunk to " +
                  std::to_string(steps.size()) + " steps:\n" + show_steps(steps) + shrunk.failure;
    if (!cfg.corpus_dir.empty()) {
      std::vector<Operation> ops;
      for (const Step& s : steps) ops.push_back(s.op);
      out.counterexample = write_counterexample(ops, cfg.corpus_dir, "found-seed" + std::to_string(cfg.seed));
    }
    return out;
  }
  out.passed = true;
  out.coverage = std::move(counts.coverage);
  out.operations = counts.operations;
  return out;
}

}  // namespace ioas::lockstep
