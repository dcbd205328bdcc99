// impl/engine.cpp: the production engine.
//
// Layout of one IOAS (the kernel's io_pagetable, with one change: areas and
// the union of reserved ranges share one augmented tree so that the free
// holes automatic allocation searches are the tree's gaps):
//   space            SpaceTree (a B+tree) of areas + reserved-union pieces (32 B per interval)
//   reserved         per owner: a coalesced RangeSet (what snapshot reports)
//   reserved_union   the union over all owners, mirrored into `space`
//   allowed          RangeSet exactly as the user gave it
//   pins             by id; area_pins counts pins per pinned area (a side map,
//                    so the area node carries no pin field)
//   align_hist       areas counted by granularity (lowest set bit of
//                    iova | len | uaddr%PAGE, capped at PAGE), so "are all
//                    areas aligned to A" is O(1), not a scan
// Memory sources are interned: an area stores a 32-bit source id.
//
// Ownership: the Engine owns IOASes, sources, domains and devices; a Domain
// belongs to exactly one IOAS (listed in Ioas::domains) and owns its page
// table. No operation leaves a half-done change: every check that can fail
// runs before the first mutation, except domain page-table fills, which are
// undone on failure. Heap exhaustion included: what an operation allocates
// comes before its first change, or is undone without allocating (per
// operation: "Heap exhaustion" in include/ioas/engine.hpp); the hash maps
// are std::unordered_map, whose single inserts are all or nothing.
#include "ioas/impl.hpp"

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/inlined_vector.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>

#include "ioas/boundary.hpp"
#include "ioas/core/check.hpp"
#include "ioas/core/text.hpp"
#include "ioas/rules.hpp"
#include "domain.hpp"
#include "range_set.hpp"
#include "space_tree.hpp"

namespace ioas {
namespace impl {
namespace {

// The engine's hash maps are std::unordered_map: a single insert that throws
// (heap exhausted) leaves the map as it was, and reserve() likewise, which
// absl's flat maps do not promise (their growth can throw half-way).
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
template <typename K, typename V>
using HashMap = std::unordered_map<K, V>;
std::string_view key(std::string_view s) { return s; }

// Room for one more push_back (doubling), so that the push itself cannot
// throw: for a commit phase that must not allocate.
template <typename V>
void room_for_one(V& v) {
  if (v.size() == v.capacity()) v.reserve(2 * v.size() + 1);
}

std::string span(u64 iova, u64 len) { return hex(iova) + "+" + hex(len); }

Error err(int code, std::string msg) { return make_error(code, std::move(msg)); }

u64 lowest_bit(u64 x) { return arith::lowest_bit(x); }
bool aligned(u64 x, u64 a) { return arith::is_aligned(x, a); }

Error ulong_max_error(const std::string& what) {
  return err(EOVERFLOW, what + ": an iova or length of 2^64-1 (ULONG_MAX; refused in kernel mode)");
}

// The prot map and copy refuse in an IOAS of this mode (EINVAL): anything
// but r and rw, and w too unless ModeRules::write_only_maps.
std::optional<Error> refused_prot(IoasMode mode, Prot p, const std::string& what) {
  const bool wo = rules_for(mode).write_only_maps;
  if (prot_reads(p) || (wo && p == Prot::kWrite)) return std::nullopt;
  return err(EINVAL, what + ": prot " + to_string(p) + (wo ? " (r, w or rw)" : " (r or rw only)"));
}

constexpr u64 k48Bits = (u64{1} << 48) - 1;
constexpr unsigned kPageShift = 12;
static_assert(kPage == (u64{1} << kPageShift));

// Granularity bucket of an area: log2 of the largest alignment (<= PAGE)
// its iova, length and uaddr%PAGE all have.
unsigned granularity(u64 iova, u64 len, u64 uaddr) {
  return static_cast<unsigned>(std::countr_zero(iova | len | (uaddr % kPage) | kPage));
}

struct Source {
  MemorySource info;
  u64 use_count = 0;
  bool live = false;
};

struct Pin {
  Range iova;
  bool write = false;
  bool release = true;
  absl::InlinedVector<std::uint32_t, 2> sources;  // distinct, each counted once
};

struct Ioas;

struct Domain {
  std::string name;
  Ioas* ioas = nullptr;
  Format fmt = Format::kX86_64;
  Range aperture;
  u64 pgsize_bitmap = 0;
  absl::btree_set<std::string> devices;
  DirtyMode dirty = DirtyMode::kOff;
  std::unique_ptr<IoPageTable> pt;
};

struct Ioas {
  std::string name;
  IoasOptions options;
  u64 iova_alignment = 1;
  SpaceTree space;
  std::size_t area_count = 0;
  absl::btree_map<Owner, RangeSet> reserved;
  RangeSet reserved_union{true};
  RangeSet allowed{false};
  absl::btree_map<std::uint32_t, Pin> pins;
  std::uint32_t next_pin_id = 1;
  HashMap<u64, std::uint32_t> area_pins;
  std::array<u64, kPageShift + 1> align_hist{};
  std::vector<Domain*> domains;  // sorted by name
};

struct DeviceRec {
  Ioas* ioas = nullptr;
  Domain* dom = nullptr;
};

// An area as collected by a walk (a copy: tree nodes move on erase).
struct AreaRef {
  u64 start, last, offset;
  std::uint32_t source;
  std::uint8_t prot;
};

class ImplEngine final : public Engine {
 public:
  explicit ImplEngine(const ImplOptions& o) : opts_(o) {}
  const char* kind() const override { return "impl"; }
  std::unique_ptr<Engine> clone() const override;

  Status create_ioas(std::string_view name, const IoasOptions& options) override;
  Result<IoasOptions> ioas_options(std::string_view ioas) const override;
  Status set_huge_pages(std::string_view ioas, bool on) override;
  std::vector<std::string> ioas_names() const override;
  Status add_memory(const MemorySource& source) override;
  Status remove_memory(std::string_view name) override;
  std::vector<MemoryInfo> memories() const override;
  Result<u64> map(std::string_view ioas, const MapArgs& args) override;
  Result<u64> unmap(std::string_view ioas, u64 iova, u64 len) override;
  Status cut(std::string_view ioas, u64 iova) override;
  Result<u64> copy(std::string_view ioas, const CopyArgs& args) override;
  Status reserve(std::string_view ioas, Range range, std::string_view owner) override;
  Status unreserve(std::string_view ioas, std::string_view owner) override;
  Status allow(std::string_view ioas, std::span<const Range> ranges) override;
  Result<IovaRanges> ranges(std::string_view ioas) const override;
  Status attach(std::string_view ioas, const AttachArgs& args) override;
  Status detach(std::string_view dev) override;
  Result<std::uint32_t> pin(std::string_view ioas, const PinArgs& args) override;
  Status unpin(std::string_view ioas, std::uint32_t id) override;
  Result<std::optional<Translation>> translate(std::string_view dom, u64 iova) const override;
  Result<DmaOutcome> dma(std::string_view dom, DmaDir dir, u64 iova, u64 len) override;
  Status set_dirty_tracking(std::string_view dom, DirtyMode mode) override;
  Result<std::vector<Range>> read_dirty(std::string_view dom, u64 iova, u64 len, u64 pgsize,
                                        bool keep) override;
  Result<u64> uva(std::string_view ioas, u64 iova) const override;
  Result<std::vector<LeafInfo>> leaves(std::string_view dom, Range r) const override;
  Result<IoasState> snapshot(std::string_view ioas) const override;
  std::vector<Violation> check() const override;

 private:
  // Runs verify_all() after a mutating call when the option is set.
  // Verification allocates; a heap exhausted there is not the operation's
  // failure (it has happened), so it aborts rather than report ENOMEM.
  template <typename R>
  R checked(R r) {
    if (opts_.verify_each_op) {
      try {
        verify_all();
      } catch (const std::bad_alloc&) {
        boundary_abort("verify", "heap exhausted while verifying");
      }
    }
    return r;
  }
  void verify_all() const;

 public:
  // Fault injection (include/ioas/impl.hpp).
  hw::HeapPageMemory& table_memory() { return *ptmem_; }
  // An allocation site of the engine's own objects (see fail_nth_alloc).
  bool alloc_ok() { return ptmem_->count_allocation(); }
  u64 reachable_table_pages() const {
    u64 n = 0;
    for (const auto& [name, d] : domains_) n += d->pt->table_pages();
    return n;
  }

 private:

  Ioas* find_ioas(std::string_view name) const {
    auto it = ioases_.find(key(name));
    return it == ioases_.end() ? nullptr : it->second.get();
  }
  Source* find_source(std::string_view name, std::uint32_t* id = nullptr) {
    auto it = source_ids_.find(key(name));
    if (it == source_ids_.end()) return nullptr;
    if (id) *id = it->second;
    return &sources_[it->second];
  }
  Domain* find_domain(std::string_view name) const {
    auto it = domains_.find(key(name));
    return it == domains_.end() ? nullptr : it->second.get();
  }

  // Areas of `s` touching r, in order; reserved pieces are skipped.
  template <typename F>
  static void for_each_area(const Ioas& s, Range r, F&& f) {
    for (const SpaceNode* n = s.space.first_from(r.start); n && n->start <= r.last; n = s.space.next(*n)) {
      if (n->is_area()) f(*n);
      if (n->last >= r.last) break;
    }
  }
  static bool touches_area(const Ioas& s, Range r) {
    bool any = false;
    for (const SpaceNode* n = s.space.first_from(r.start); n && n->start <= r.last; n = s.space.next(*n)) {
      if (n->is_area()) {
        any = true;
        break;
      }
      if (n->last >= r.last) break;
    }
    return any;
  }
  static bool all_areas_aligned(const Ioas& s, u64 a) {
    for (unsigned b = 0; b < s.align_hist.size() && (u64{1} << b) < a; ++b)
      if (s.align_hist[b]) return false;
    return true;
  }
  // The sizes a domain's leaves are chosen from: huge-pages=off keeps sizes
  // <= PAGE; split dirty tracking keeps only the smallest size.
  static u64 effective_pgsizes(const Ioas& s, const Domain& d) {
    if (d.dirty == DirtyMode::kOnSplit) return lowest_bit(d.pgsize_bitmap);
    if (!s.options.huge_pages) return d.pgsize_bitmap & (kPage | (kPage - 1));
    return d.pgsize_bitmap;
  }
  static void recompute_alignment(Ioas& s) {
    u64 a = s.options.huge_pages ? 1 : kPage;
    for (const Domain* d : s.domains) a = std::max(a, lowest_bit(d->pgsize_bitmap));
    if (!s.pins.empty()) a = std::max(a, kPage);
    s.iova_alignment = a;
  }
  // A change of the reserved owners: `owner`'s ranges become *ranges, or the
  // owner goes (ranges == nullptr).
  struct OwnerChange {
    const Owner* owner;
    const RangeSet* ranges;
  };
  // What the union of the owners' ranges becomes with `changes`, and the
  // pieces `space` drops and gains; allocates all of it (and the tree's
  // nodes for the new pieces) without changing anything visible.
  struct ReservedPlan {
    RangeSet u{true};
    std::vector<Range> drop, add;
  };
  static ReservedPlan plan_reserved(Ioas& s, std::span<const OwnerChange> changes);
  // Makes `space` and reserved_union follow a plan; allocates nothing.
  static void apply_reserved(Ioas& s, ReservedPlan& plan);
  // Makes `space` hold exactly the pieces of the union of all owners' ranges.
  static void resync_reserved(Ioas& s) {
    ReservedPlan plan = plan_reserved(s, {});
    apply_reserved(s, plan);
  }

  // The automatic-allocation search of SPEC "map": allowed spans (adjacent
  // ones joined) clipped to the window, lowest fitting hole first.
  static std::optional<u64> alloc_iova(const Ioas& s, u64 len, u64 a, u64 off);

  // Inserts an area (tree, histogram, use count) and maps it into every
  // domain; on a domain failure everything is undone and the error returned.
  Status add_area(Ioas& s, const AreaRef& a);
  void remove_area(Ioas& s, const AreaRef& a);
  void finish_remove_area(Ioas& s, const AreaRef& a);
  void drop_pin(Ioas& s, absl::btree_map<std::uint32_t, Pin>::iterator it);
  u64 area_pa(const SpaceNode& n) const { return sources_[n.source].info.pa + n.offset; }
  u64 area_uaddr(const SpaceNode& n) const { return sources_[n.source].info.va + n.offset; }

  ImplOptions opts_;
  // The physical memory every domain's page-table pages come from (declared
  // before the domains, so it outlives their tables).
  std::unique_ptr<hw::HeapPageMemory> ptmem_ = std::make_unique<hw::HeapPageMemory>();
  NameMap<std::unique_ptr<Ioas>> ioases_;
  std::vector<Source> sources_;
  std::vector<std::uint32_t> free_source_ids_;
  NameMap<std::uint32_t> source_ids_;
  NameMap<std::unique_ptr<Domain>> domains_;
  NameMap<DeviceRec> devices_;
};

// A deep copy; the IOAS <-> domain <-> device pointers are re-aimed at the
// copies.
std::unique_ptr<Engine> ImplEngine::clone() const {
  auto e = std::make_unique<ImplEngine>(opts_);
  // The page-table memory first: the tables are re-made over its copy.
  e->ptmem_ = std::make_unique<hw::HeapPageMemory>(*ptmem_);
  e->sources_ = sources_;
  e->free_source_ids_ = free_source_ids_;
  e->source_ids_ = source_ids_;
  HashMap<const Ioas*, Ioas*> imap;
  HashMap<const Domain*, Domain*> dmap;
  for (const auto& [name, s] : ioases_) {
    auto n = std::make_unique<Ioas>(*s);
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
    n->pt = d->pt->clone_onto(*e->ptmem_);
    if (!n->pt) return nullptr;  // a table that cannot be copied
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
  if (name.empty()) return checked<Status>(err(EINVAL, "create ioas: empty name"));
  if (find_ioas(name)) return checked<Status>(err(EEXIST, "create ioas " + std::string(name) + ": exists"));
  if (!alloc_ok()) return checked<Status>(err(ENOMEM, "create ioas " + std::string(name) + ": out of memory"));
  auto s = std::make_unique<Ioas>();
  s->name = std::string(name);
  s->options = options;
  s->options.zero_page = rules_for(options.mode).forced_zero_page.value_or(options.zero_page);
  recompute_alignment(*s);
  if (s->options.zero_page == ZeroPage::kReserved) {
    s->reserved.try_emplace(Owner{OwnerKind::kZeroPage, ""}, true).first->second.add(Range{0, kPage - 1});
    resync_reserved(*s);
  }
  ioases_.emplace(s->name, std::move(s));
  return checked(ok_status());
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
  if (!s) return checked<Status>(err(ENOENT, "huge-pages: no IOAS " + std::string(ioas)));
  if (s->options.huge_pages == on) return checked(ok_status());
  const std::string what = std::string("huge-pages ") + (on ? "on" : "off") + " in " + s->name;
  if (!on && !s->domains.empty() && s->area_count)
    return checked<Status>(err(EINVAL, what + ": domain " + s->domains.front()->name +
                                           " holds areas, which it may map with large pages"));
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
    std::optional<Range> bad;
    for_each_area(*s, Range::all(), [&](const SpaceNode& n) {
      if (!bad && granularity(n.start, n.last - n.start + 1, area_uaddr(n)) <
                      static_cast<unsigned>(std::countr_zero(s->iova_alignment)))
        bad = n.range();
    });
    const u64 a = s->iova_alignment;
    restore();
    return checked<Status>(err(EADDRINUSE, what + ": area " + (bad ? to_string(*bad) : std::string("?")) +
                                               " is not aligned to the new iova_alignment " + hex(a)));
  }
  for (std::size_t i = 0; i < s->domains.size(); ++i) {
    Domain* d = s->domains[i];
    const u64 after = effective_pgsizes(*s, *d);
    if (after == before[i]) continue;
    if (Status st = d->pt->relayout(after); !st.ok()) {
      for (std::size_t j = 0; j < i; ++j) (void)s->domains[j]->pt->relayout(before[j]);
      for (std::size_t j = 0; j < i; ++j) s->domains[j]->pt->flush_iotlb();
      restore();
      return checked<Status>(err(st.code(), what + ": re-laying the leaves of " + d->name + ": " + st.error().message));
    }
  }
  for (Domain* d : s->domains) d->pt->flush_iotlb();
  return checked(ok_status());
}

std::vector<std::string> ImplEngine::ioas_names() const {
  std::vector<std::string> out;
  for (const auto& [n, s] : ioases_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------- memory

Status ImplEngine::add_memory(const MemorySource& m) {
  if (m.name.empty()) return checked<Status>(err(EINVAL, "mem: the name is empty"));
  if (source_ids_.contains(m.name)) return checked<Status>(err(EEXIST, "mem " + m.name + ": name exists"));
  if (m.len == 0) return checked<Status>(err(EINVAL, "mem " + m.name + ": length 0"));
  if (arith::range_last(m.va, m.len).overflow || arith::range_last(m.pa, m.len).overflow)
    return checked<Status>(err(EOVERFLOW, "mem " + m.name + ": va+len or pa+len passes 2^64-1"));
  if (m.va % kPage != m.pa % kPage)
    return checked<Status>(err(EINVAL, "mem " + m.name + ": va " + hex(m.va) + " and pa " + hex(m.pa) +
                                           " have different offsets within a page"));
  if (!alloc_ok()) return checked<Status>(err(ENOMEM, "mem " + m.name + ": out of memory"));
  // Everything allocated first (the record, room in sources_, the name's
  // entry: a strong insert); then nothing below allocates.
  Source fresh{m, 0, true};
  const bool reuse = !free_source_ids_.empty();
  if (!reuse) {
    IOAS_CHECK(sources_.size() < kReservedPiece, "too many memory sources");
    room_for_one(sources_);
  }
  const std::uint32_t id = reuse ? free_source_ids_.back() : static_cast<std::uint32_t>(sources_.size());
  source_ids_.emplace(m.name, id);
  if (reuse)
    free_source_ids_.pop_back();
  else
    sources_.emplace_back();
  sources_[id] = std::move(fresh);
  return checked(ok_status());
}

Status ImplEngine::remove_memory(std::string_view name) {
  std::uint32_t id;
  Source* src = find_source(name, &id);
  if (!src) return checked<Status>(err(ENOENT, "unmem " + std::string(name) + ": no such memory source"));
  if (src->use_count)
    return checked<Status>(err(EBUSY, "unmem " + std::string(name) + ": used by " +
                                          std::to_string(src->use_count) + " areas and pins"));
  room_for_one(free_source_ids_);
  *src = Source{};
  source_ids_.erase(source_ids_.find(key(name)));
  free_source_ids_.push_back(id);
  return checked(ok_status());
}

std::vector<MemoryInfo> ImplEngine::memories() const {
  std::vector<MemoryInfo> out;
  for (const auto& s : sources_)
    if (s.live) out.push_back(MemoryInfo{s.info, s.use_count});
  std::sort(out.begin(), out.end(),
            [](const MemoryInfo& a, const MemoryInfo& b) { return a.source.name < b.source.name; });
  return out;
}

// ---------------------------------------------------------------- areas

Status ImplEngine::add_area(Ioas& s, const AreaRef& a) {
  const Source& src = sources_[a.source];
  const u64 pa = src.info.pa + a.offset;
  const Range r{a.start, a.last};
  if (!alloc_ok()) return err(ENOMEM, "area " + to_string(r) + ": out of memory for its node");
  s.space.reserve_inserts(1);  // the node, before any change
  std::size_t done = 0;
  for (; done < s.domains.size(); ++done) {
    Domain* d = s.domains[done];
    Status st = ok_status();
    try {
      st = d->pt->map(r, pa, src.info.va + a.offset, static_cast<Prot>(a.prot), effective_pgsizes(s, *d));
    } catch (const std::bad_alloc&) {  // a back end's own allocation: it changed nothing
      st = out_of_memory();
    }
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
  s.space.insert(SpaceEntry{a.start, a.last, a.source, a.offset, a.prot});
  ++s.area_count;
  ++s.align_hist[granularity(a.start, a.last - a.start + 1, src.info.va + a.offset)];
  ++sources_[a.source].use_count;
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
  --s.align_hist[granularity(a.start, a.last - a.start + 1, sources_[a.source].info.va + a.offset)];
  --sources_[a.source].use_count;
}

// Holes are those of (reserved ∪ areas) inside the allowed spans (the whole
// window when there is no allowed range), clipped to the window
// [PAGE, 2^64-1-PAGE]; spans ascend, so the first fit is the lowest.
std::optional<u64> ImplEngine::alloc_iova(const Ioas& s, u64 len, u64 a, u64 off) {
  constexpr u64 kWinLo = kPage, kWinHi = kMaxIova - kPage;
  if (s.allowed.empty()) return s.space.lowest_fit(kWinLo, kWinHi, len, a, off);
  std::optional<Range> span;
  std::optional<u64> found;
  auto try_span = [&](Range sp) {
    u64 lo = std::max(sp.start, kWinLo), hi = std::min(sp.last, kWinHi);
    if (lo <= hi) found = s.space.lowest_fit(lo, hi, len, a, off);
  };
  s.allowed.for_each([&](Range r) {
    if (found) return;
    if (span && span->precedes_adjacent(r)) {
      span->last = r.last;
      return;
    }
    if (span) try_span(*span);
    span = r;
  });
  if (!found && span) try_span(*span);
  return found;
}

Result<u64> ImplEngine::map(std::string_view ioas, const MapArgs& args) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Result<u64>>(err(ENOENT, "map: no IOAS " + std::string(ioas)));
  std::uint32_t sid;
  Source* src = find_source(args.source, &sid);
  if (!src) return checked<Result<u64>>(err(ENOENT, "map: no memory source " + args.source));
  auto what = [&] { return std::string("map " + (args.iova ? span(*args.iova, args.len) : "auto+" + hex(args.len))); };
  if (refuses_ulong_max(rules_for(s->options.mode), {args.iova.value_or(0), args.len}))
    return checked<Result<u64>>(ulong_max_error(what()));
  if (auto bad = refused_prot(s->options.mode, args.prot, what())) return checked<Result<u64>>(*bad);
  if (args.len == 0) return checked<Result<u64>>(err(EINVAL, what() + ": length 0"));
  // A fixed IOVA's overflow: with the arguments (SPEC), or after its
  // alignment (the kernel's iopt_check_iova).
  const bool overflows = args.iova && arith::range_last(*args.iova, args.len).overflow;
  const auto overflow_error = [&] { return checked<Result<u64>>(err(EOVERFLOW, what() + ": iova+len passes 2^64-1")); };
  if (overflows && !rules_for(s->options.mode).fixed_iova_alignment_before_overflow) return overflow_error();
  if (arith::range_last(args.offset, args.len).overflow)
    return checked<Result<u64>>(err(EOVERFLOW, what() + ": source offset+len passes 2^64-1"));
  if (args.offset + args.len - 1 > src->info.len - 1)
    return checked<Result<u64>>(err(EINVAL, what() + ": offset+len beyond source " + args.source + " (" +
                                                hex(src->info.len) + " bytes)"));
  if (prot_writes(args.prot) && !src->info.writable)
    return checked<Result<u64>>(err(EPERM, what() + ": source " + args.source + " is read-only"));
  const u64 uaddr = src->info.va + args.offset;
  const u64 A = s->iova_alignment;
  // The page offset with the other alignments (SPEC), or once the IOVA is
  // settled (the kernel's iopt_insert_area).
  const bool offset_later = rules_for(s->options.mode).page_offset_after_iova;
  const auto offset_error = [&] {
    return checked<Result<u64>>(err(EINVAL, what() + ": uaddr " + hex(uaddr) +
                                                " has a page offset not a multiple of iova_alignment " + hex(A)));
  };
  if ((args.iova && !aligned(*args.iova, A)) || !aligned(args.len, A))
    return checked<Result<u64>>(err(EINVAL, what() + ": iova or length not a multiple of iova_alignment " + hex(A)));
  if (!offset_later && !aligned(uaddr % kPage, A)) return offset_error();
  if (overflows) return overflow_error();
  u64 iova;
  if (args.iova) {
    iova = *args.iova;
    const Range r{iova, iova + args.len - 1};
    if (auto rr = s->reserved_union.first_overlapping(r))
      return checked<Result<u64>>(err(EINVAL, what() + ": overlaps reserved range " + to_string(*rr)));
    if (touches_area(*s, r)) return checked<Result<u64>>(err(EEXIST, what() + ": overlaps a mapped area"));
  } else {
    if (args.len >= (u64{1} << 63)) return checked<Result<u64>>(err(EOVERFLOW, what() + ": length >= 2^63"));
    const u64 a = arith::auto_alignment(args.len, uaddr, kMaxAutoAlignment);
    if (a < A)
      return checked<Result<u64>>(
          err(EINVAL, what() + ": wanted alignment " + hex(a) + " is below iova_alignment " + hex(A)));
    auto found = alloc_iova(*s, args.len, a, uaddr % kPage);
    if (!found) return checked<Result<u64>>(err(ENOSPC, what() + ": no free hole fits"));
    iova = *found;
  }
  if (offset_later && !aligned(uaddr % kPage, A)) return offset_error();
  Status st = add_area(*s, AreaRef{iova, iova + args.len - 1, args.offset, sid, static_cast<std::uint8_t>(args.prot)});
  if (!st.ok()) return checked<Result<u64>>(st.error());
  return checked<Result<u64>>(iova);
}

Result<u64> ImplEngine::unmap(std::string_view ioas, u64 iova, u64 len) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Result<u64>>(err(ENOENT, "unmap: no IOAS " + std::string(ioas)));
  const bool all = iova == 0 && len == kMaxIova;
  auto what = [&] { return std::string(all ? std::string("unmap all") : "unmap " + span(iova, len)); };
  Range r = Range::all();
  if (!all) {
    if (refuses_ulong_max(rules_for(s->options.mode), {iova, len})) return checked<Result<u64>>(ulong_max_error(what()));
    if (len == 0) return checked<Result<u64>>(err(EINVAL, what() + ": length 0"));
    if (arith::range_last(iova, len).overflow)
      return checked<Result<u64>>(err(EOVERFLOW, what() + ": iova+len passes 2^64-1"));
    r = Range{iova, iova + len - 1};
  }
  // The common case in one tree descent: the range is exactly one unpinned
  // area (no other area can then touch it).
  if (!all && s->area_pins.empty()) {
    SpaceNode gone;
    if (s->space.erase_area(r.start, r.last, &gone)) {
      finish_remove_area(*s, AreaRef{gone.start, gone.last, gone.offset, gone.source, gone.prot});
      for (Domain* d : s->domains) d->pt->flush_iotlb();
      return checked<Result<u64>>(gone.last - gone.start + 1);
    }
  }
  // The areas wholly inside, in IOVA order, up to the first one that is not.
  // With unmap_all_or_nothing (SPEC) any stop fails the whole unmap; without
  // it (the kernel's iopt_unmap_iova_range) the areas before the stop are
  // removed and the stop's error is returned.
  const ModeRules rules = rules_for(s->options.mode);
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
    if (rules.unmap_all_or_nothing) return checked<Result<u64>>(*stop);
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
        if (rules.unmap_all_or_nothing) return checked<Result<u64>>(*stop);
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
  if (stop && victims.empty()) return checked<Result<u64>>(std::move(*stop));
  if (victims.empty() && !all) return checked<Result<u64>>(err(ENOENT, what() + ": nothing mapped there"));
  u64 total = 0;
  for (const AreaRef& v : victims) {
    remove_area(*s, v);
    total += v.last - v.start + 1;
  }
  for (Domain* d : s->domains) d->pt->flush_iotlb();
  if (stop) return checked<Result<u64>>(std::move(*stop));  // a move: nothing allocates after the removals
  return checked<Result<u64>>(total);
}

Status ImplEngine::cut(std::string_view ioas, u64 iova) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Status>(err(ENOENT, "cut: no IOAS " + std::string(ioas)));
  const SpaceNode* n = s->space.find(iova);
  if (!n || !n->is_area() || iova == n->start || iova == n->last) return checked(ok_status());
  const AreaRef a{n->start, n->last, n->offset, n->source, n->prot};
  auto what = [&] { return std::string("cut " + hex(iova) + " in area " + to_string(Range{a.start, a.last})); };
  if (s->area_pins.contains(a.start)) return checked<Status>(err(EINVAL, what() + ": area is pinned"));
  if (!aligned(iova + 1, s->iova_alignment))
    return checked<Status>(
        err(EINVAL, what() + ": new boundary " + hex(iova + 1) + " not aligned to " + hex(s->iova_alignment)));
  if (!rules_for(s->options.mode).cut_splits_domain_areas && s->options.huge_pages && !s->domains.empty())
    return checked<Status>(err(EINVAL, what() + ": held by domain " + s->domains.front()->name +
                                           ", which may map it with large pages (kernel mode does not split them)"));
  if (!alloc_ok()) return checked<Status>(err(ENOMEM, what() + ": out of memory for the new area's node"));
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
      return checked<Status>(err(st.code(), what() + ": domain " + s->domains[done]->name + ": " + st.error().message));
    }
  }
  for (Domain* d : s->domains) d->pt->flush_iotlb();
  const u64 va = sources_[a.source].info.va;
  --s->align_hist[granularity(a.start, a.last - a.start + 1, va + a.offset)];
  s->space.set_last(a.start, iova);
  const AreaRef right{iova + 1, a.last, a.offset + (iova + 1 - a.start), a.source, a.prot};
  s->space.insert(SpaceEntry{right.start, right.last, right.source, right.offset, right.prot});
  ++s->area_count;
  ++s->align_hist[granularity(a.start, iova - a.start + 1, va + a.offset)];
  ++s->align_hist[granularity(right.start, right.last - right.start + 1, va + right.offset)];
  ++sources_[a.source].use_count;
  return checked(ok_status());
}

Result<u64> ImplEngine::copy(std::string_view ioas, const CopyArgs& args) {
  Ioas* dst = find_ioas(ioas);
  if (!dst) return checked<Result<u64>>(err(ENOENT, "copy: no IOAS " + std::string(ioas)));
  Ioas* from = find_ioas(args.from);
  if (!from) return checked<Result<u64>>(err(ENOENT, "copy: no source IOAS " + args.from));
  auto what = [&] { return std::string("copy " + args.from + ":" + span(args.src_iova, args.len)); };
  if (refuses_ulong_max(rules_for(dst->options.mode), {args.src_iova, args.dst_iova.value_or(0), args.len}))
    return checked<Result<u64>>(ulong_max_error(what()));
  if (auto bad = refused_prot(dst->options.mode, args.prot, what())) return checked<Result<u64>>(*bad);
  if (args.len == 0) return checked<Result<u64>>(err(EINVAL, what() + ": length 0"));
  if (arith::range_last(args.src_iova, args.len).overflow)
    return checked<Result<u64>>(err(EOVERFLOW, what() + ": source range passes 2^64-1"));
  // A fixed destination's overflow: with the arguments (SPEC), or once the
  // source is taken, before or after the destination's alignment (the
  // kernel's iommufd_ioas_copy, then iopt_check_iova).
  const ModeRules rules = rules_for(dst->options.mode);
  const bool dst_overflows = args.dst_iova && arith::range_last(*args.dst_iova, args.len).overflow;
  const auto dst_overflow_error = [&] {
    return checked<Result<u64>>(err(EOVERFLOW, what() + ": destination range passes 2^64-1"));
  };
  if (dst_overflows && !rules.copy_source_before_destination) return dst_overflow_error();
  const Range src_r{args.src_iova, args.src_iova + args.len - 1};
  // The source must be covered by contiguous areas; one piece per area.
  std::vector<AreaRef> pieces;
  u64 next = src_r.start;
  bool covered = true;
  for (const SpaceNode* n = from->space.first_from(src_r.start); n && n->start <= src_r.last;
       n = from->space.next(*n)) {
    if (!n->is_area() || n->start > next) {
      covered = false;
      break;
    }
    const u64 ps = std::max(n->start, src_r.start), pl = std::min(n->last, src_r.last);
    pieces.push_back(AreaRef{ps, pl, n->offset + (ps - n->start), n->source, static_cast<std::uint8_t>(args.prot)});
    if (pl == src_r.last) break;
    next = pl + 1;
  }
  if (!covered || pieces.empty() || pieces.back().last != src_r.last)
    return checked<Result<u64>>(err(ENOENT, what() + ": source range is not covered by contiguous areas"));
  const u64 A = dst->iova_alignment;
  for (const AreaRef& p : pieces) {
    const Source& src = sources_[p.source];
    if (prot_writes(args.prot) && !src.info.writable)
      return checked<Result<u64>>(err(EPERM, what() + ": source " + src.info.name + " is read-only"));
  }
  const u64 first_uaddr = sources_[pieces.front().source].info.va + pieces.front().offset;
  if (dst_overflows && !rules.fixed_iova_alignment_before_overflow) return dst_overflow_error();
  for (const AreaRef& p : pieces) {
    const u64 dst_start = args.dst_iova.value_or(0) + (p.start - src_r.start);
    if ((args.dst_iova && !aligned(dst_start, A)) || !aligned(p.last - p.start + 1, A))
      return checked<Result<u64>>(
          err(EINVAL, what() + ": a piece's iova or length is not a multiple of iova_alignment " + hex(A)));
  }
  if (dst_overflows) return dst_overflow_error();
  // The pieces' page offsets with the other alignments (SPEC), or once the
  // IOVA is settled (the kernel's iopt_insert_area).
  const bool offset_later = rules.page_offset_after_iova;
  const auto offset_error = [&]() -> std::optional<Result<u64>> {
    for (const AreaRef& p : pieces)
      if (!aligned((sources_[p.source].info.va + p.offset) % kPage, A))
        return checked<Result<u64>>(
            err(EINVAL, what() + ": a piece's uaddr%PAGE is not a multiple of iova_alignment " + hex(A)));
    return std::nullopt;
  };
  if (!offset_later)
    if (auto e = offset_error()) return *e;
  u64 iova;
  if (args.dst_iova) {
    iova = *args.dst_iova;
    const Range r{iova, iova + args.len - 1};
    if (auto rr = dst->reserved_union.first_overlapping(r))
      return checked<Result<u64>>(err(EINVAL, what() + ": destination overlaps reserved range " + to_string(*rr)));
    if (touches_area(*dst, r)) return checked<Result<u64>>(err(EEXIST, what() + ": destination overlaps an area"));
  } else {
    if (args.len >= (u64{1} << 63)) return checked<Result<u64>>(err(EOVERFLOW, what() + ": length >= 2^63"));
    const u64 a = arith::auto_alignment(args.len, first_uaddr, kMaxAutoAlignment);
    if (a < A)
      return checked<Result<u64>>(
          err(EINVAL, what() + ": wanted alignment " + hex(a) + " is below iova_alignment " + hex(A)));
    auto found = alloc_iova(*dst, args.len, a, first_uaddr % kPage);
    if (!found) return checked<Result<u64>>(err(ENOSPC, what() + ": no free hole fits"));
    iova = *found;
  }
  if (offset_later)
    if (auto e = offset_error()) return *e;
  std::vector<AreaRef> added;
  added.reserve(pieces.size());
  dst->space.reserve_inserts(pieces.size());  // every piece's node, before any change
  for (const AreaRef& p : pieces) {
    const u64 ds = iova + (p.start - src_r.start);
    AreaRef a{ds, ds + (p.last - p.start), p.offset, p.source, p.prot};
    Status st = add_area(*dst, a);
    if (!st.ok()) {
      for (const AreaRef& b : added) remove_area(*dst, b);
      for (Domain* d : dst->domains) d->pt->flush_iotlb();
      return checked<Result<u64>>(st.error());
    }
    added.push_back(a);
  }
  dst->space.trim_spares();
  return checked<Result<u64>>(iova);
}

// ---------------------------------------------------------------- reserved / allowed

ImplEngine::ReservedPlan ImplEngine::plan_reserved(Ioas& s, std::span<const OwnerChange> changes) {
  ReservedPlan plan;
  auto changed = [&](const Owner& o) {
    for (const OwnerChange& c : changes)
      if (*c.owner == o) return true;
    return false;
  };
  for (const auto& [owner, rs] : s.reserved)
    if (!changed(owner)) rs.for_each([&](Range r) { plan.u.add(r); });
  for (const OwnerChange& c : changes)
    if (c.ranges) c.ranges->for_each([&](Range r) { plan.u.add(r); });
  s.reserved_union.for_each([&](Range r) {
    if (plan.u.find(r.start) != std::optional<Range>(r)) plan.drop.push_back(r);
  });
  plan.u.for_each([&](Range r) {
    if (s.reserved_union.find(r.start) != std::optional<Range>(r)) plan.add.push_back(r);
  });
  s.space.reserve_inserts(plan.add.size());
  return plan;
}

void ImplEngine::apply_reserved(Ioas& s, ReservedPlan& plan) {
  // Drop pieces that are no longer pieces, then add the new ones, so the
  // tree stays disjoint at every step.
  for (const Range& r : plan.drop) {
    bool erased = s.space.erase(r.start);
    IOAS_CHECK(erased, "apply_reserved: piece missing from the space tree");
  }
  for (const Range& r : plan.add) s.space.insert(SpaceEntry{r.start, r.last, kReservedPiece, 0, 0});
  s.space.trim_spares();
  s.reserved_union = std::move(plan.u);
}

Status ImplEngine::reserve(std::string_view ioas, Range range, std::string_view owner) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Status>(err(ENOENT, "reserve: no IOAS " + std::string(ioas)));
  auto what = [&] { return std::string("reserve " + to_string(range) + " owner " + std::string(owner)); };
  if (owner.empty()) return checked<Status>(err(EINVAL, what() + ": the owner is empty"));
  if (range.start > range.last) return checked<Status>(err(EINVAL, what() + ": start > last"));
  if (touches_area(*s, range)) return checked<Status>(err(EADDRINUSE, what() + ": intersects a mapped area"));
  if (auto a = s->allowed.first_overlapping(range))
    return checked<Status>(err(EADDRINUSE, what() + ": intersects allowed range " + to_string(*a)));
  if (!alloc_ok()) return checked<Status>(err(ENOMEM, what() + ": out of memory"));
  // The owner's new ranges and the new union, allocated before any change.
  Owner o{OwnerKind::kUser, std::string(owner)};
  auto it = s->reserved.find(o);
  RangeSet mine = it == s->reserved.end() ? RangeSet(true) : it->second;
  mine.add(range);
  const OwnerChange change{&o, &mine};
  ReservedPlan plan = plan_reserved(*s, {&change, 1});
  if (it != s->reserved.end())
    it->second = std::move(mine);
  else
    s->reserved.try_emplace(std::move(o), std::move(mine));  // throws before it inserts, or inserts
  apply_reserved(*s, plan);
  return checked(ok_status());
}

Status ImplEngine::unreserve(std::string_view ioas, std::string_view owner) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Status>(err(ENOENT, "unreserve: no IOAS " + std::string(ioas)));
  const Owner o{OwnerKind::kUser, std::string(owner)};
  const OwnerChange change{&o, nullptr};
  ReservedPlan plan = plan_reserved(*s, {&change, 1});
  s->reserved.erase(o);
  apply_reserved(*s, plan);
  return checked(ok_status());
}

Status ImplEngine::allow(std::string_view ioas, std::span<const Range> ranges) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Status>(err(ENOENT, "allow: no IOAS " + std::string(ioas)));
  for (const Range& r : ranges)
    if (r.start >= r.last) return checked<Status>(err(EINVAL, "allow " + to_string(r) + ": start >= last"));
  std::vector<Range> sorted(ranges.begin(), ranges.end());
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i - 1].overlaps(sorted[i]))
      return checked<Status>(err(EINVAL, "allow: " + to_string(sorted[i - 1]) + " and " + to_string(sorted[i]) + " overlap"));
  for (const Range& r : ranges)
    if (auto rr = s->reserved_union.first_overlapping(r))
      return checked<Status>(err(EADDRINUSE, "allow " + to_string(r) + ": touches reserved " + to_string(*rr)));
  if (!alloc_ok()) return checked<Status>(err(ENOMEM, "allow: out of memory"));
  RangeSet allowed(false);
  for (const Range& r : sorted) allowed.add(r);
  s->allowed = std::move(allowed);
  return checked(ok_status());
}

Result<IovaRanges> ImplEngine::ranges(std::string_view ioas) const {
  const Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "ranges: no IOAS " + std::string(ioas));
  return IovaRanges{s->reserved_union.complement(), s->iova_alignment};
}

// ---------------------------------------------------------------- devices and domains

Status ImplEngine::attach(std::string_view ioas, const AttachArgs& args) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Status>(err(ENOENT, "attach: no IOAS " + std::string(ioas)));
  auto what = [&] { return std::string("attach " + args.dev + " to " + args.dom); };
  if (args.dev.empty()) return checked<Status>(err(EINVAL, "attach: the device name is empty"));
  if (args.dom.empty()) return checked<Status>(err(EINVAL, "attach: the domain name is empty"));
  if (devices_.contains(args.dev)) return checked<Status>(err(EBUSY, what() + ": device already attached"));
  Domain* dom = find_domain(args.dom);
  if (dom) {
    if (dom->ioas != s) return checked<Status>(err(EINVAL, what() + ": domain is in IOAS " + dom->ioas->name));
    if ((args.fmt && *args.fmt != dom->fmt) || (args.aperture && *args.aperture != dom->aperture) ||
        (args.pgsize_bitmap && *args.pgsize_bitmap != dom->pgsize_bitmap) || !args.pgsizes_not_pow2.empty())
      return checked<Status>(err(EINVAL, what() + ": format, aperture or page sizes differ from the domain's"));
  }
  // The device's reserved regions.
  RangeSet dev_resv(true);
  for (const ResvRegion& rr : args.resv) {
    // Malformed input is rejected even for a region that would be skipped.
    if (rr.range.start > rr.range.last)
      return checked<Status>(err(EINVAL, what() + ": reserved region " + to_string(rr.range) + " has start > last"));
    if (rr.type == ResvType::kDirectRelaxable) continue;
    if (touches_area(*s, rr.range))
      return checked<Status>(err(EADDRINUSE, what() + ": reserved region " + to_string(rr.range) + " intersects an area"));
    if (auto a = s->allowed.first_overlapping(rr.range))
      return checked<Status>(err(EADDRINUSE, what() + ": reserved region " + to_string(rr.range) +
                                                 " intersects allowed range " + to_string(*a)));
    dev_resv.add(rr.range);
  }
  std::unique_ptr<Domain> fresh;
  RangeSet dom_resv(true);
  u64 new_alignment = s->iova_alignment;
  if (!dom) {
    fresh = std::make_unique<Domain>();
    fresh->name = args.dom;
    fresh->ioas = s;
    fresh->fmt = args.fmt.value_or(Format::kX86_64);
    const bool tce = fresh->fmt == Format::kTce;
    fresh->aperture = args.aperture.value_or(default_aperture(fresh->fmt));
    fresh->pgsize_bitmap = args.pgsize_bitmap.value_or(default_pgsizes(fresh->fmt));
    const u64 pg = fresh->pgsize_bitmap;
    if (!args.pgsizes_not_pow2.empty())
      return checked<Status>(err(EINVAL, what() + ": page size " + hex(args.pgsizes_not_pow2.front()) +
                                             " is not a power of two"));
    if (!pgsizes_allowed(fresh->fmt, pg))
      return checked<Status>(err(EINVAL, what() + ": page sizes " + hex(pg) + " not allowed by format " +
                                             to_string(fresh->fmt) + " (" + pgsizes_rule(fresh->fmt) + ")"));
    if (fresh->aperture.start > fresh->aperture.last)
      return checked<Status>(err(EINVAL, what() + ": aperture " + to_string(fresh->aperture) + " has start > last"));
    // tce is a flat table of whole IOMMU pages; mock's xarray indexes any
    // 64-bit IOVA; the others translate 48 bits.
    if (tce ? (!aligned(fresh->aperture.start, pg) || !aligned(fresh->aperture.last + 1, pg))
            : fresh->fmt != Format::kMock && fresh->aperture.last > k48Bits)
      return checked<Status>(err(EINVAL, what() + ": aperture " + to_string(fresh->aperture) +
                                             " cannot be addressed by format " + to_string(fresh->fmt)));
    const u64 minpg = lowest_bit(pg);
    if (minpg > kPage)
      return checked<Status>(err(EINVAL, what() + ": minimum page size " + hex(minpg) + " above PAGE"));
    new_alignment = std::max(new_alignment, minpg);
    if (!all_areas_aligned(*s, new_alignment))
      return checked<Status>(err(EADDRINUSE, what() + ": existing areas are not aligned to " + hex(new_alignment)));
    const Range ap = fresh->aperture;
    if (ap.start > 0) dom_resv.add(Range{0, ap.start - 1});
    if (ap.last < kMaxIova) dom_resv.add(Range{ap.last + 1, kMaxIova});
    for (const Range& r : dom_resv.ranges()) {
      if (touches_area(*s, r))
        return checked<Status>(err(EADDRINUSE, what() + ": an area lies outside the aperture " + to_string(ap)));
      if (auto a = s->allowed.first_overlapping(r))
        return checked<Status>(err(EADDRINUSE, what() + ": allowed range " + to_string(*a) +
                                                   " lies outside the aperture " + to_string(ap)));
    }
    if (!alloc_ok()) return checked<Status>(err(ENOMEM, what() + ": out of memory for the domain"));
    // Fill the new page table with every area (work on the new table only;
    // it is installed on success).
    auto builtin = [&]() -> Result<std::unique_ptr<IoPageTable>> {
      auto t = HwPageTable::create(fresh->fmt, fresh->aperture, fresh->pgsize_bitmap, *ptmem_);
      if (!t.ok()) return t.error();
      return std::unique_ptr<IoPageTable>(std::move(t).value());
    };
    auto table = opts_.tables ? opts_.tables(DomainConfig{fresh->name, s->name, args.dev, fresh->fmt,
                                                          fresh->aperture, fresh->pgsize_bitmap},
                                             builtin)
                              : builtin();
    if (!table.ok())
      return checked<Status>(err(table.code(), what() + ": page table: " + table.error().message));
    if (!table.value()) return checked<Status>(err(EINVAL, what() + ": the table factory made no table"));
    fresh->pt = std::move(table).value();
    const u64 pgsizes = effective_pgsizes(*s, *fresh);
    for (const SpaceNode* n = s->space.first(); n; n = s->space.next(*n)) {
      if (!n->is_area()) continue;
      Status st = fresh->pt->map(n->range(), area_pa(*n), area_uaddr(*n), static_cast<Prot>(n->prot), pgsizes);
      if (st.code() != EINVAL && !st.ok())  // ENOMEM, or a back end's own error: as it is
        return checked<Status>(err(st.code(), what() + ": area " + to_string(n->range()) + ": " + st.error().message));
      if (!st.ok())
        return checked<Status>(err(EINVAL, what() + ": area " + to_string(n->range()) + " at pa " + hex(area_pa(*n)) +
                                               " cannot be mapped by the domain (page sizes " + hex(pgsizes) +
                                               ", physical addresses up to " + hex(max_output_address(fresh->fmt)) +
                                               "): " + st.error().message));
    }
    fresh->pt->flush_iotlb();
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
  return checked(ok_status());
}

Status ImplEngine::detach(std::string_view dev) {
  auto it = devices_.find(key(dev));
  if (it == devices_.end()) return checked<Status>(err(ENOENT, "detach: no attached device " + std::string(dev)));
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
  return checked(ok_status());
}

// ---------------------------------------------------------------- pins

Result<std::uint32_t> ImplEngine::pin(std::string_view ioas, const PinArgs& args) {
  using R = Result<std::uint32_t>;
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<R>(err(ENOENT, "pin: no IOAS " + std::string(ioas)));
  auto what = [&] { return std::string("pin " + span(args.iova, args.len)); };
  // The first pin raises the alignment to PAGE: before the range
  // (pin_alignment_before_range) or after it.
  const bool misaligned = s->pins.empty() && s->iova_alignment < kPage && !all_areas_aligned(*s, kPage);
  const auto alignment_error = [&] {
    return checked<R>(err(EADDRINUSE, what() + ": the first pin needs every area PAGE aligned"));
  };
  const bool alignment_first = rules_for(s->options.mode).pin_alignment_before_range;
  if (misaligned && alignment_first) return alignment_error();
  if (args.len == 0) return checked<R>(err(EINVAL, what() + ": length 0"));
  if (arith::range_last(args.iova, args.len).overflow) return checked<R>(err(EOVERFLOW, what() + ": iova+len passes 2^64-1"));
  const Range r{args.iova, args.iova + args.len - 1};
  absl::InlinedVector<AreaRef, 4> areas;
  u64 next = r.start;
  bool covered = true;
  for (const SpaceNode* n = s->space.first_from(r.start); n && n->start <= r.last; n = s->space.next(*n)) {
    if (!n->is_area() || n->start > next) {
      covered = false;
      break;
    }
    areas.push_back(AreaRef{n->start, n->last, n->offset, n->source, n->prot});
    if (n->last >= r.last) break;
    next = n->last + 1;
  }
  if (!covered || areas.empty() || areas.back().last < r.last)
    return checked<R>(err(ENOENT, what() + ": not covered by contiguous areas"));
  // The area's own prot decides (the kernel's check_area_prot): a write pin
  // needs w, a read pin r.
  for (const AreaRef& a : areas) {
    const Prot ap = static_cast<Prot>(a.prot);
    if (args.write && !prot_writes(ap))
      return checked<R>(err(EPERM, what() + ": write pin on read-only area " + to_string(Range{a.start, a.last})));
    if (!args.write && !prot_reads(ap))
      return checked<R>(err(EPERM, what() + ": read pin on write-only area " + to_string(Range{a.start, a.last})));
  }
  if (misaligned) return alignment_error();
  if (!alloc_ok()) return checked<R>(err(ENOMEM, what() + ": out of memory"));
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
  for (std::uint32_t src : pin_it->second.sources) ++sources_[src].use_count;
  ++s->next_pin_id;
  s->iova_alignment = std::max(s->iova_alignment, kPage);
  return checked<R>(id);
}

Status ImplEngine::unpin(std::string_view ioas, std::uint32_t id) {
  Ioas* s = find_ioas(ioas);
  if (!s) return checked<Status>(err(ENOENT, "unpin: no IOAS " + std::string(ioas)));
  auto it = s->pins.find(id);
  if (it == s->pins.end()) return checked<Status>(err(ENOENT, "unpin " + std::to_string(id) + ": no such pin"));
  drop_pin(*s, it);
  return checked(ok_status());
}

void ImplEngine::drop_pin(Ioas& s, absl::btree_map<std::uint32_t, Pin>::iterator it) {
  const Pin& p = it->second;
  for_each_area(s, p.iova, [&](const SpaceNode& n) {
    auto c = s.area_pins.find(n.start);
    IOAS_CHECK(c != s.area_pins.end() && c->second > 0, "unpin: area pin count missing");
    if (--c->second == 0) s.area_pins.erase(c);
  });
  for (std::uint32_t src : p.sources) --sources_[src].use_count;
  s.pins.erase(it);
  if (s.pins.empty()) recompute_alignment(s);
}

// ---------------------------------------------------------------- hardware view

Result<std::optional<Translation>> ImplEngine::translate(std::string_view dom, u64 iova) const {
  const Domain* d = find_domain(dom);
  if (!d) return err(ENOENT, "translate: no domain " + std::string(dom));
  return d->pt->translate(iova);
}

Result<DmaOutcome> ImplEngine::dma(std::string_view dom, DmaDir dir, u64 iova, u64 len) {
  Domain* d = find_domain(dom);
  if (!d) return checked<Result<DmaOutcome>>(err(ENOENT, "dma: no domain " + std::string(dom)));
  if (len == 0) return checked<Result<DmaOutcome>>(err(EINVAL, "dma " + span(iova, len) + ": length 0"));
  if (arith::range_last(iova, len).overflow)
    return checked<Result<DmaOutcome>>(err(EOVERFLOW, "dma " + span(iova, len) + ": iova+len passes 2^64-1"));
  DmaOutcome out = d->pt->dma(dir, Range{iova, iova + len - 1});
  d->pt->flush_iotlb();
  return checked<Result<DmaOutcome>>(out);
}

Status ImplEngine::set_dirty_tracking(std::string_view dom, DirtyMode mode) {
  Domain* d = find_domain(dom);
  if (!d) return checked<Status>(err(ENOENT, "dirty: no domain " + std::string(dom)));
  const u64 before = effective_pgsizes(*d->ioas, *d);
  const DirtyMode old = d->dirty;
  d->dirty = mode;
  const u64 after = effective_pgsizes(*d->ioas, *d);
  // The leaves first: splitting may need pages (ENOMEM: nothing changed).
  if (before != after) {
    Status st = ok_status();
    try {
      st = d->pt->relayout(after);
    } catch (const std::bad_alloc&) {  // a back end's own allocation: it changed nothing
      st = out_of_memory();
    }
    if (!st.ok()) {
      d->dirty = old;
      return checked<Status>(err(st.code(), "dirty " + d->name + ": splitting the leaves: " + st.error().message));
    }
  }
  // Every mode change starts from a clean slate: `on` clears, `off` ends
  // tracking (nothing can read the dirty state until the next `on`; the
  // hardware keeps setting D bits meanwhile, which the next `on` clears).
  d->pt->clear_dirty();
  d->pt->flush_iotlb();
  return checked(ok_status());
}

Result<std::vector<Range>> ImplEngine::read_dirty(std::string_view dom, u64 iova, u64 len, u64 pgsize, bool keep) {
  using R = Result<std::vector<Range>>;
  Domain* d = find_domain(dom);
  if (!d) return checked<R>(err(ENOENT, "read-dirty: no domain " + std::string(dom)));
  auto what = [&] { return std::string("read-dirty " + span(iova, len) + " pgsize " + hex(pgsize)); };
  if (d->dirty == DirtyMode::kOff) return checked<R>(err(EINVAL, what() + ": dirty tracking is off"));
  if (len == 0) return checked<R>(err(EINVAL, what() + ": length 0"));
  if (pgsize == 0 || !std::has_single_bit(pgsize)) return checked<R>(err(EINVAL, what() + ": page size not a power of two"));
  if (!aligned(iova, pgsize) || !aligned(len, pgsize))
    return checked<R>(err(EINVAL, what() + ": iova or length not aligned to the page size"));
  if (arith::range_last(iova, len).overflow) return checked<R>(err(EOVERFLOW, what() + ": iova+len passes 2^64-1"));
  auto out = d->pt->read_dirty(Range{iova, iova + len - 1}, pgsize, keep);
  if (!keep) d->pt->flush_iotlb();
  return checked<R>(std::move(out));
}

Result<u64> ImplEngine::uva(std::string_view ioas, u64 iova) const {
  const Ioas* s = find_ioas(ioas);
  if (!s) return err(ENOENT, "uva: no IOAS " + std::string(ioas));
  const SpaceNode* n = s->space.find(iova);
  if (!n || !n->is_area()) return err(ENOENT, "uva " + hex(iova) + ": not mapped");
  return area_uaddr(*n) + (iova - n->start);
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

// ---------------------------------------------------------------- observation

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

std::vector<Violation> ImplEngine::check() const {
  std::vector<Violation> out;
  HashMap<std::uint32_t, u64> uses;
  std::vector<std::string> names = ioas_names();
  for (const std::string& name : names) {
    const Ioas& s = *find_ioas(name);
    auto add = [&](Invariant inv, std::string detail, std::optional<u64> w = std::nullopt) {
      out.push_back(Violation{inv, name, std::move(detail), w});
    };
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
      if (!aligned(r.start, A) || !aligned(r.length(), A) || !aligned(area_uaddr(*n) % kPage, A))
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
    for (const Domain* d : s.domains) {
      std::vector<PtMapping> maps;
      d->pt->for_each_mapping([&](const PtMapping& m) { maps.push_back(m); });
      std::size_t i = 0;
      bool bad = false;
      std::optional<u64> witness;
      for (const SpaceNode* n = s.space.first(); n && !bad; n = s.space.next(*n)) {
        if (!n->is_area()) continue;
        // The table's leaf at the area's start holds what the format makes
        // of the area's prot (leaf_prot: a write-only area is rw on x86-64).
        std::optional<Translation> first;
        if (i < maps.size() && maps[i].iova == n->range()) first = d->pt->translate(n->start);
        if (i >= maps.size() || maps[i].iova != n->range() || maps[i].pa != area_pa(*n) ||
            maps[i].prot != static_cast<Prot>(n->prot) || !first || first->pa != area_pa(*n) ||
            first->prot != leaf_prot(d->fmt, static_cast<Prot>(n->prot))) {
          bad = true;
          witness = n->start;
        }
        ++i;
      }
      if (!bad && i != maps.size()) {
        bad = true;
        witness = maps[i].iova.start;
      }
      if (bad) add(Invariant::kTranslation, "domain " + d->name + " does not map exactly the areas", witness);
    }
    for (const auto& [id, p] : s.pins)
      for (std::uint32_t src : p.sources) ++uses[src];
  }
  // 8.
  for (std::uint32_t id = 0; id < sources_.size(); ++id) {
    const Source& src = sources_[id];
    if (!src.live) continue;
    const u64 want = uses.contains(id) ? uses[id] : 0;
    if (src.use_count != want)
      out.push_back(Violation{Invariant::kUseCount, "",
                              "memory source " + src.info.name + " use count " + std::to_string(src.use_count) +
                                  ", references " + std::to_string(want),
                              std::nullopt});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Violation& a, const Violation& b) { return a.invariant < b.invariant; });
  return out;
}

void ImplEngine::verify_all() const {
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
    s.reserved_union.for_each([&](Range r) {
      const SpaceNode* n = s.space.find(r.start);
      IOAS_CHECK(n && !n->is_area() && n->range() == r, "verify: reserved piece missing from the space tree");
    });
    std::array<u64, kPageShift + 1> hist{};
    HashMap<u64, std::uint32_t> pins;
    for (const SpaceNode* n = s.space.first(); n; n = s.space.next(*n)) {
      if (!n->is_area()) continue;
      IOAS_CHECK(n->source < sources_.size() && sources_[n->source].live, "verify: area refers to a dead source");
      ++hist[granularity(n->start, n->last - n->start + 1, area_uaddr(*n))];
    }
    IOAS_CHECK(hist == s.align_hist, "verify: alignment histogram out of date");
    for (const auto& [id, p] : s.pins)
      for_each_area(s, p.iova, [&](const SpaceNode& n) { ++pins[n.start]; });
    IOAS_CHECK(pins == s.area_pins, "verify: per-area pin counts out of date");
    IOAS_CHECK(s.pins.empty() || s.pins.rbegin()->first < s.next_pin_id, "verify: pin id at or past next_pin_id");
    u64 a = s.options.huge_pages ? 1 : kPage;
    for (const Domain* d : s.domains) {
      a = std::max(a, lowest_bit(d->pgsize_bitmap));
      IOAS_CHECK(d->ioas == &s && !d->devices.empty(), "verify: domain bookkeeping");
      IOAS_CHECK(d->pt->verify() == s.area_count, "verify: page table mapping count");
    }
    if (!s.pins.empty()) a = std::max(a, kPage);
    IOAS_CHECK(a == s.iova_alignment, "verify: iova_alignment is not what the domains, pins and options give");
  }
  for (const auto& [dev, rec] : devices_)
    IOAS_CHECK(rec.dom->devices.contains(dev), "verify: device not listed by its domain");
  auto v = check();
  if (!v.empty()) {
    for (const auto& x : v) std::fprintf(stderr, "violated %s in %s: %s\n", to_string(x.invariant), x.ioas.c_str(), x.detail.c_str());
    IOAS_CHECK(false, "verify: a SPEC invariant is violated");
  }
}

// ---------------------------------------------------------------- locking

// The engine's locking (include/ioas/impl.hpp): one readers-writer lock.
// Observers that change nothing run concurrently with each other; every
// other call (dma and read_dirty too: they set or clear accessed/dirty
// bits) runs alone. Page-table splits and merges happen inside those calls,
// so they never overlap a map or unmap.
class LockedEngine final : public Engine {
 public:
  explicit LockedEngine(std::unique_ptr<ImplEngine> e) : e_(std::move(e)) {}
  ImplEngine& inner() const { return *e_; }
  const char* kind() const override { return "impl"; }
  std::unique_ptr<Engine> clone() const override {
    R l(mu_);
    auto c = e_->clone();
    if (!c) return nullptr;
    return std::make_unique<LockedEngine>(std::unique_ptr<ImplEngine>(static_cast<ImplEngine*>(c.release())));
  }
  Status create_ioas(std::string_view n, const IoasOptions& o) override { W l(mu_); return e_->create_ioas(n, o); }
  Result<IoasOptions> ioas_options(std::string_view n) const override { R l(mu_); return e_->ioas_options(n); }
  Status set_huge_pages(std::string_view n, bool on) override { W l(mu_); return e_->set_huge_pages(n, on); }
  std::vector<std::string> ioas_names() const override { R l(mu_); return e_->ioas_names(); }
  Status add_memory(const MemorySource& m) override { W l(mu_); return e_->add_memory(m); }
  Status remove_memory(std::string_view n) override { W l(mu_); return e_->remove_memory(n); }
  std::vector<MemoryInfo> memories() const override { R l(mu_); return e_->memories(); }
  Result<u64> map(std::string_view s, const MapArgs& a) override { W l(mu_); return e_->map(s, a); }
  Result<u64> unmap(std::string_view s, u64 i, u64 n) override { W l(mu_); return e_->unmap(s, i, n); }
  Status cut(std::string_view s, u64 i) override { W l(mu_); return e_->cut(s, i); }
  Result<u64> copy(std::string_view s, const CopyArgs& a) override { W l(mu_); return e_->copy(s, a); }
  Status reserve(std::string_view s, Range r, std::string_view o) override { W l(mu_); return e_->reserve(s, r, o); }
  Status unreserve(std::string_view s, std::string_view o) override { W l(mu_); return e_->unreserve(s, o); }
  Status allow(std::string_view s, std::span<const Range> r) override { W l(mu_); return e_->allow(s, r); }
  Result<IovaRanges> ranges(std::string_view s) const override { R l(mu_); return e_->ranges(s); }
  Status attach(std::string_view s, const AttachArgs& a) override { W l(mu_); return e_->attach(s, a); }
  Status detach(std::string_view d) override { W l(mu_); return e_->detach(d); }
  Result<std::uint32_t> pin(std::string_view s, const PinArgs& a) override { W l(mu_); return e_->pin(s, a); }
  Status unpin(std::string_view s, std::uint32_t id) override { W l(mu_); return e_->unpin(s, id); }
  Result<std::optional<Translation>> translate(std::string_view d, u64 i) const override {
    R l(mu_);
    return e_->translate(d, i);
  }
  Result<DmaOutcome> dma(std::string_view d, DmaDir dir, u64 i, u64 n) override {
    W l(mu_);
    return e_->dma(d, dir, i, n);
  }
  Status set_dirty_tracking(std::string_view d, DirtyMode m) override { W l(mu_); return e_->set_dirty_tracking(d, m); }
  Result<std::vector<Range>> read_dirty(std::string_view d, u64 i, u64 n, u64 p, bool k) override {
    W l(mu_);
    return e_->read_dirty(d, i, n, p, k);
  }
  Result<u64> uva(std::string_view s, u64 i) const override { R l(mu_); return e_->uva(s, i); }
  Result<std::vector<LeafInfo>> leaves(std::string_view d, Range r) const override {
    R l(mu_);
    return e_->leaves(d, r);
  }
  Result<IoasState> snapshot(std::string_view s) const override { R l(mu_); return e_->snapshot(s); }
  std::vector<Violation> check() const override { R l(mu_); return e_->check(); }

 private:
  using R = std::shared_lock<std::shared_mutex>;
  using W = std::unique_lock<std::shared_mutex>;
  mutable std::shared_mutex mu_;
  std::unique_ptr<ImplEngine> e_;
};

// The ImplEngine behind an engine of make_engine(), or nullptr.
ImplEngine* impl_of(const Engine& outer) {
  const auto* g = dynamic_cast<const GuardedEngine*>(&outer);
  const Engine& engine = g ? g->inner() : outer;
  if (auto* l = dynamic_cast<const LockedEngine*>(&engine)) return &l->inner();
  return const_cast<ImplEngine*>(dynamic_cast<const ImplEngine*>(&engine));
}

}  // namespace
}  // namespace impl

// IOAS_IMPL_VERIFY=1 in the environment turns per-call verification on for
// make_engine() (so a harness can enable it without a rebuild).
std::unique_ptr<Engine> make_engine() {
  static const bool env = [] {
    const char* v = std::getenv("IOAS_IMPL_VERIFY");
    return v && *v && std::string_view(v) != "0";
  }();
  ImplOptions o;
  o.verify_each_op = env;
  return make_engine(o);
}
std::unique_ptr<Engine> make_impl_engine() { return make_engine(); }
std::unique_ptr<Engine> make_engine(const ImplOptions& options) {
  auto e = std::make_unique<impl::ImplEngine>(options);
  if (!options.thread_safe) return std::make_unique<GuardedEngine>(std::move(e));
  return std::make_unique<GuardedEngine>(std::make_unique<impl::LockedEngine>(std::move(e)));
}
std::unique_ptr<Engine> make_checked_engine() {
  ImplOptions o;
  o.verify_each_op = true;
  return make_engine(o);
}

bool fail_nth_alloc(Engine& engine, std::uint64_t nth) {
  impl::ImplEngine* e = impl::impl_of(engine);
  if (!e) return false;
  e->table_memory().fail_nth_alloc(nth);
  return true;
}
std::uint64_t alloc_calls(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->table_memory().alloc_calls() : 0;
}
std::uint64_t table_pages_reachable(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->reachable_table_pages() : 0;
}
std::uint64_t table_pages_in_use(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->table_memory().live_pages() : 0;
}

}  // namespace ioas
