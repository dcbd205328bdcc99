// impl/engine_impl.hpp: the production engine's state and its class, shared
// by the files that implement it (one file a job, as the model's sections):
//   engine.cpp       the engine's objects: clone, IOASes, memory sources
//   areas.cpp        areas: map, unmap, cut, copy
//   placement.cpp    where an area goes: fixed and automatic placement
//   reserved.cpp     reserved and allowed ranges
//   attach.cpp       devices and domains: attach, detach
//   pins.cpp         pins
//   dirty.cpp        DMA and dirty tracking
//   queries.cpp      translate, uva, leaves, snapshot
//   invariants.cpp   check() (SPEC), verify_trees() and verify_all() (the trees)
//   make_engine.cpp  the locks, per-call verification, the public factories
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
#pragma once

#include "ioas/impl.hpp"

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/inlined_vector.h>
#include <absl/functional/function_ref.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "ioas/boundary.hpp"
#include "ioas/core/check.hpp"
#include "ioas/core/text.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/rules.hpp"
#include "domain.hpp"
#include "published_ranges.hpp"
#include "range_set.hpp"
#include "space_tree.hpp"

namespace ioas::impl {

// The engine's hash maps are std::unordered_map: a single insert that throws
// (heap exhausted) leaves the map as it was, and reserve() likewise, which
// absl's flat maps do not promise (their growth can throw half-way).
// The hash is FNV-1a, inline: names are short, and every call on an IOAS
// looks its name up (std::hash's out-of-line murmur costs more than the
// rest of such a lookup).
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    std::uint64_t h = 0xcbf29ce484222325;
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3;
    return static_cast<std::size_t>(h);
  }
};
// Equality of two names, inline: std::equal_to's compare calls the C
// library's memcmp, whose call and dispatch cost more than comparing the
// few bytes of a short name here (a lookup compares once, on a hit).
struct NameEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
};
template <typename V>
using NameMap = std::unordered_map<std::string, V, NameHash, NameEq>;
template <typename K, typename V>
using HashMap = std::unordered_map<K, V>;
inline std::string_view key(std::string_view s) { return s; }

// The owner of a name map that remembers lookups (find_remembered): an id
// no other owner has had in this process, a fresh one for a copy and on an
// assignment (the map it goes with then changes wholesale), so that a
// thread's memory of one map never answers for another, even one made
// where a destroyed one was.
class LookupOwner {
 public:
  LookupOwner() : id_(next()) {}
  LookupOwner(const LookupOwner&) : id_(next()) {}
  LookupOwner& operator=(const LookupOwner&) {
    id_ = next();
    return *this;
  }
  std::uint64_t id() const { return id_; }

 private:
  static std::uint64_t next() {
    static std::atomic<std::uint64_t> ids{1};
    return ids.fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t id_;
};

// m.find(name)'s value, remembering per thread the last name found and its
// value, so that a run of calls on one name hashes it once (the hash, a
// division by the bucket count and the compare cost more than the rest of
// a small call). Each thread keeps one name per V, for the owner that
// looked it up last. Only for a map that never erases an entry another
// lookup has found while `owner` lives: the value remembered is then the
// map's until the owner goes, and a new owner has a new id. Names longer
// than the buffer are not remembered.
template <typename V>
struct LastFound {
  std::uint64_t owner = 0;  // 0: nothing remembered
  V* value = nullptr;
  std::uint32_t len = 0;
  char name[44] = {};  // every member set: constant-initialized, no guard on each access
};
template <typename V>
[[gnu::noinline]] V* find_and_remember(const NameMap<std::unique_ptr<V>>& m, const LookupOwner& owner,
                                       std::string_view name, LastFound<V>& last) {
  auto it = m.find(key(name));
  if (it == m.end()) return nullptr;
  if (name.size() <= sizeof last.name) {
    last.owner = owner.id();
    last.value = it->second.get();
    last.len = static_cast<std::uint32_t>(name.size());
    std::copy(name.begin(), name.end(), last.name);
  }
  return it->second.get();
}
template <typename V>
[[gnu::always_inline]] inline V* find_remembered(const NameMap<std::unique_ptr<V>>& m, const LookupOwner& owner,
                                                 std::string_view name) {
  constinit thread_local LastFound<V> last;
  LastFound<V>& l = last;
  if (l.owner == owner.id() && NameEq{}(std::string_view(l.name, l.len), name)) return l.value;
  return find_and_remember(m, owner, name, l);
}

// Room for one more push_back (doubling), so that the push itself cannot
// throw: for a commit phase that must not allocate.
template <typename V>
void room_for_one(V& v) {
  if (v.size() == v.capacity()) v.reserve(2 * v.size() + 1);
}

inline std::string span(u64 iova, u64 len) { return hex(iova) + "+" + hex(len); }

inline Error err(int code, std::string msg) { return make_error(code, std::move(msg)); }

inline u64 lowest_bit(u64 x) { return arith::lowest_bit(x); }
inline bool aligned(u64 x, u64 a) { return arith::is_aligned(x, a); }

inline Error ulong_max_error(const std::string& what) {
  return err(EOVERFLOW, what + ": an iova or length of 2^64-1 (ULONG_MAX; refused in kernel mode)");
}

// Whether map and copy refuse prot p in an IOAS of this mode (EINVAL):
// anything but r and rw, and w too unless ModeRules::write_only_maps. The
// test alone, inline (every map asks it); prot_error() builds the answer.
inline bool refuses_prot(const ModeRules& rules, Prot p) {
  return !prot_reads(p) && !(rules.write_only_maps && p == Prot::kWrite);
}
// `what` names the call.
inline Error prot_error(const ModeRules& rules, Prot p, const std::string& what) {
  return err(EINVAL, what + ": prot " + to_string(p) + (rules.write_only_maps ? " (r, w or rw)" : " (r or rw only)"));
}

constexpr unsigned kPageShift = 12;
static_assert(kPage == (u64{1} << kPageShift));
// x mod PAGE.
inline u64 page_offset(u64 x) { return arith::page_offset(x, kPageShift); }

// Granularity bucket of an area: log2 of the largest alignment (<= PAGE)
// its iova, length and uaddr%PAGE all have: the lowest set bit of their OR
// with PAGE (never 0), counted in one instruction where arith's lowest_bit
// and log2_pow2 (written for Z3 terms too) take a few dozen.
inline unsigned granularity(u64 iova, u64 len, u64 uaddr) {
  return static_cast<unsigned>(std::countr_zero(iova | len | page_offset(uaddr) | kPage));
}

struct Source {
  MemorySource info;
  bool live = false;
};

// Counts, one an index, that share no cache line with another object: they
// sit 64 bytes clear of either end of their heap block (zeros that are never
// written), so that the counts of different IOASes, which writers on
// different threads change at once, never bounce a line between them.
class PaddedCounts {
 public:
  std::size_t size() const { return v_.empty() ? 0 : v_.size() - 2 * kPad; }
  u64& operator[](std::size_t i) { return v_[kPad + i]; }
  const u64& operator[](std::size_t i) const { return v_[kPad + i]; }
  // n zero counts (the only call that may allocate besides room_for_one).
  void assign_zeros(std::size_t n) { v_.assign(n + 2 * kPad, 0); }
  // Room for one more count, so that push_zero() cannot throw.
  void room_for_one() {
    if (v_.size() == v_.capacity()) v_.reserve(2 * v_.size() + 1);
  }
  // One more count, 0 (the first zero of the padding behind becomes it).
  void push_zero() { v_.push_back(0); }

 private:
  static constexpr std::size_t kPad = 64 / sizeof(u64);
  std::vector<u64> v_;
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
  // The memory whose readers (hw::HeapPageMemory::Reading) may translate
  // through pt without the IOAS's lock, or nullptr (see lock_free_pages).
  const hw::HeapPageMemory* lock_free = nullptr;
};

struct Ioas {
  std::string name;
  // The memory its domains' page-table pages come from: one per IOAS, so
  // that writers on different IOASes allocate pages from different
  // memories. It counts this IOAS's allocations (the engine's objects made
  // for it too: alloc_ok(Ioas&)) and answers to the engine's injection
  // (ImplEngine::fail_nth_alloc).
  std::shared_ptr<hw::HeapPageMemory> mem;
  // By memory source id: the areas and pins of this IOAS that name the
  // source (a pin counts once per source it spans). Sized to the engine's
  // source table whenever that grows (add_memory, create_ioas), so that a
  // map allocates nothing for it; a source's use count is the sum over the
  // IOASes (ImplEngine::use_count). Written under this IOAS's lock, with
  // relaxed atomic stores, so that memories() may sum them beside writers.
  PaddedCounts source_uses;
  IoasOptions options;
  // rules_for(options.mode), kept: every call that follows a mode rule reads it here.
  ModeRules rules;
  u64 iova_alignment = 1;
  // What `ranges` answers: reserved_union's complement and iova_alignment,
  // published at the commit of each change of either (apply_reserved,
  // publish_alignment), for readers that take no lock.
  PublishedRanges published{RangeSet(true).complement()};
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
  // The id of the memory source the last map here named (a hint, checked
  // against the source's name and liveness on use: ImplEngine::source_for),
  // so that a run of maps from one source skips the name's hashed lookup.
  // Written under this IOAS's lock.
  std::uint32_t last_source = kReservedPiece;
};

// Where translate may walk d's table beside the IOAS's writer: the built-in
// table in a hardware format (radix, tce: their words are read and written
// atomically, hw/memory.hpp), whose pages are the IOAS's memory. nullptr
// for a back end's own table and for mock (a std::map), which take the
// IOAS's lock to read. d's table and format are set when d is made.
inline const hw::HeapPageMemory* lock_free_pages(const Domain& d) {
  const bool builtin = dynamic_cast<const HwPageTable*>(d.pt.get()) != nullptr;
  return builtin && d.fmt != Format::kMock ? d.ioas->mem.get() : nullptr;
}

struct DeviceRec {
  Ioas* ioas = nullptr;
  Domain* dom = nullptr;
};

// An area as collected by a walk (a copy: tree nodes move on erase).
struct AreaRef {
  u64 start, last, offset;
  std::uint32_t source;
  std::uint8_t prot;
  bool pages_writable = false;  // SpaceNode::pages_writable
};

class ImplEngine final : public Engine {
  // impl/tests/invariants_test.cpp: breaks a state on purpose, to see check() report it.
  friend struct ImplEngineProbe;

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
  Status leaves_into(std::string_view dom, Range r, std::vector<LeafInfo>& out) const override;
  Result<IoasState> snapshot(std::string_view ioas) const override;
  Status snapshot_into(std::string_view ioas, IoasState& out) const override;
  std::vector<Violation> check() const override;

  // The trees' and page tables' own invariants; a breach aborts with its
  // reason. check() runs it first when ImplOptions::verify_on_check is set.
  void verify_trees() const;
  // verify_trees() and the SPEC invariants (check()); a breach aborts with
  // its reason. Run after every mutating call by VerifiedEngine
  // (make_engine.cpp) when ImplOptions::verify_each_op is set.
  void verify_all() const;
  std::optional<u64> translation_mismatch(const Ioas& s, const Domain& d) const;

 public:
  // Fault injection (include/ioas/impl.hpp): the nth allocation from now,
  // over every memory of the engine (they share ptmem_'s injection), fails.
  void fail_nth_alloc(u64 n) { ptmem_->fail_nth_alloc(n); }
  // Allocations counted so far: the engine's own memory's and every IOAS's.
  u64 alloc_calls() const {
    u64 n = ptmem_->alloc_calls();
    for (const auto& [name, s] : ioases_) n += s->mem->alloc_calls();
    return n;
  }
  // Table pages handed out and not freed, over every IOAS's memory.
  u64 live_table_pages() const {
    u64 n = ptmem_->live_pages();
    for (const auto& [name, s] : ioases_) n += s->mem->live_pages();
    return n;
  }
  // The IOAS `name` (stable: an IOAS is never destroyed), or nullptr; and
  // map and unmap on an IOAS found so, which answer as map and unmap on its
  // name: the thread-safe engine finds the IOAS once for its lock and the
  // call.
  Ioas* ioas_named(std::string_view name) const { return find_ioas(name); }
  Result<u64> map_in(Ioas& s, const MapArgs& args);
  Result<u64> unmap_in(Ioas& s, u64 iova, u64 len);
  // The name of the IOAS domain `dom` belongs to (stable: an IOAS is never
  // destroyed), or nullptr.
  const std::string* ioas_of_domain(std::string_view dom) const {
    const Domain* d = find_domain(dom);
    return d ? &d->ioas->name : nullptr;
  }
  // Domain `dom` when a translate may walk its table without the IOAS's
  // lock, entering d->lock_free as a reader; nullptr when there is no such
  // domain or its table is read under the lock (lock_free_pages).
  const Domain* lock_free_domain(std::string_view dom) const {
    const Domain* d = find_domain(dom);
    return d && d->lock_free ? d : nullptr;
  }
  // An allocation site of the engine's own objects (see fail_nth_alloc):
  // counted in IOAS s's memory when it is made for s (under s's lock), in
  // the engine's own otherwise (under the world lock).
  bool alloc_ok(Ioas& s) { return s.mem->count_allocation(); }
  bool alloc_ok() { return ptmem_->count_allocation(); }
  u64 reachable_table_pages() const {
    u64 n = 0;
    for (const auto& [name, d] : domains_) n += d->pt->table_pages();
    return n;
  }

 private:

  // The one body of map and map_in (of unmap and unmap_in), inlined in
  // each (areas.cpp): a call more on the path of map costs as much as the
  // lookup map_in saves the thread-safe engine.
  Result<u64> map_at(Ioas& s, const MapArgs& args);
  Result<u64> unmap_at(Ioas& s, u64 iova, u64 len);
  // ioases_ never erases an entry (no IOAS is ever destroyed).
  Ioas* find_ioas(std::string_view name) const { return find_remembered(ioases_, lookups_, name); }
  Source* find_source(std::string_view name, std::uint32_t* id = nullptr) {
    auto it = source_ids_.find(key(name));
    if (it == source_ids_.end()) return nullptr;
    if (id) *id = it->second;
    return &sources_[it->second];
  }
  // find_source for a map in s, through s.last_source when it still names
  // that live source (a live source's name is unique, so the answer is the
  // same).
  Source* source_for(Ioas& s, std::string_view name, std::uint32_t* id) {
    if (const std::uint32_t c = s.last_source; c < sources_.size() && sources_[c].live &&
                                               NameEq{}(sources_[c].info.name, name)) {
      *id = c;
      return &sources_[c];
    }
    Source* src = find_source(name, id);
    if (src) s.last_source = *id;
    return src;
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
  // The first area of `s` touching r.
  static std::optional<Range> first_area(const Ioas& s, Range r) {
    for (const SpaceNode* n = s.space.first_from(r.start); n && n->start <= r.last; n = s.space.next(*n)) {
      if (n->is_area()) return n->range();
      if (n->last >= r.last) break;
    }
    return std::nullopt;
  }
  // The first area of `s` not aligned to a (huge-pages, attach and the first
  // pin name it when they refuse).
  std::optional<Range> first_misaligned_area(const Ioas& s, u64 a) const;
  // "reserved range X owned by O" for the owner's range that touches r
  // first (an error path: it walks every owner).
  static std::string reserved_conflict(const Ioas& s, Range r);
  // The areas covering r without a hole, in IOVA order and whole (not
  // clipped to r); false when a hole or a reserved piece comes first (SPEC
  // "pin" and "copy": "covered by contiguous areas").
  template <typename V>
  static bool covering_areas(const Ioas& s, Range r, V& out) {
    u64 next = r.start;
    for (const SpaceNode* n = s.space.first_from(r.start); n && n->start <= r.last; n = s.space.next(*n)) {
      if (!n->is_area() || n->start > next) return false;
      out.push_back(AreaRef{n->start, n->last, n->offset, n->source, n->prot, n->pages_writable});
      if (n->last >= r.last) return true;
      next = arith::range_after(n->last).next;
    }
    return false;
  }
  static bool all_areas_aligned(const Ioas& s, u64 a) {
    for (unsigned b = 0; b < s.align_hist.size() && arith::page_size(a, b) < a; ++b)
      if (s.align_hist[b]) return false;
    return true;
  }
  // The sizes a domain's leaves are chosen from: huge-pages=off keeps sizes
  // <= PAGE; split dirty tracking keeps only the smallest size.
  static u64 effective_pgsizes(const Ioas& s, const Domain& d) {
    if (d.dirty == DirtyMode::kOnSplit) return lowest_bit(d.pgsize_bitmap);
    if (!s.options.huge_pages) return d.pgsize_bitmap & arith::smear_down(kPage);  // the sizes <= PAGE
    return d.pgsize_bitmap;
  }
  static void recompute_alignment(Ioas& s) {
    u64 a = s.options.huge_pages ? 1 : kPage;
    for (const Domain* d : s.domains) a = arith::align_join(a, lowest_bit(d->pgsize_bitmap));
    if (!s.pins.empty()) a = arith::align_join(a, kPage);
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
    std::unique_ptr<PublishedRanges::Version> ranges;  // u's complement
  };
  static ReservedPlan plan_reserved(Ioas& s, std::span<const OwnerChange> changes);
  // Makes `space` and reserved_union follow a plan, and publishes the
  // ranges with s.iova_alignment; allocates nothing.
  static void apply_reserved(Ioas& s, ReservedPlan& plan);
  // Publishes a change of s.iova_alignment alone, at its commit.
  static void publish_alignment(Ioas& s) { s.published.publish_alignment(s.iova_alignment); }
  // Makes `space` hold exactly the pieces of the union of all owners' ranges.
  static void resync_reserved(Ioas& s) {
    ReservedPlan plan = plan_reserved(s, {});
    apply_reserved(s, plan);
  }

  // The automatic-allocation search of SPEC "map": allowed spans (adjacent
  // ones joined) clipped to the window, lowest fitting hole first.
  static std::optional<u64> alloc_iova(const Ioas& s, u64 len, u64 a, u64 off);
  static std::optional<u64> lowest_fit_in(const Ioas& s, Range sp, u64 len, u64 a, u64 off);
  // Where a new range of len bytes whose first byte is at user address
  // uaddr goes (SPEC "map", fixed and automatic IOVA; copy's destination
  // too): at `fixed`, which must touch no reserved range and no area, or
  // the lowest hole alloc_iova finds at the automatic alignment. `what`
  // names the call in an error; it is built only when there is one.
  static Result<u64> place(const Ioas& s, std::optional<u64> fixed, u64 len, u64 uaddr,
                           absl::FunctionRef<std::string()> what);

  // Inserts an area (tree, histogram, use count) and maps it into every
  // domain; on a domain failure everything is undone and the error returned.
  Status add_area(Ioas& s, const AreaRef& a);
  void remove_area(Ioas& s, const AreaRef& a);
  Status add_pieces(Ioas& dst, const std::vector<AreaRef>& pieces, u64 src_start, u64 dst_start);
  void finish_remove_area(Ioas& s, const AreaRef& a);
  static Status device_regions(const Ioas& s, const AttachArgs& args, const std::string& what, RangeSet& dev_resv);
  Result<std::unique_ptr<Domain>> new_domain(Ioas& s, const AttachArgs& args, const std::string& what,
                                             RangeSet& dom_resv);
  Status check_new_domain(const Ioas& s, const Domain& d, const AttachArgs& args, const std::string& what,
                          RangeSet& dom_resv) const;
  void drop_pin(Ioas& s, absl::btree_map<std::uint32_t, Pin>::iterator it);
  // A source's use in IOAS s up or down by one: a plain increment (one
  // writer per IOAS), stored atomically for memories()' sake.
  static void use_source(Ioas& s, std::uint32_t id, int d) {
    std::atomic_ref<u64> n(s.source_uses[id]);
    n.store(n.load(std::memory_order_relaxed) + static_cast<u64>(d), std::memory_order_relaxed);
  }
  // Areas and pins over every IOAS that name source id.
  u64 use_count(std::uint32_t id) const {
    u64 total = 0;
    for (const auto& [name, s] : ioases_)
      total += std::atomic_ref<u64>(const_cast<u64&>(s->source_uses[id])).load(std::memory_order_relaxed);
    return total;
  }
  // A source is one run from offset 0, at pa physically and va for the user.
  u64 source_pa(std::uint32_t id, u64 offset) const { return arith::run_addr(sources_[id].info.pa, u64{0}, offset); }
  u64 source_uaddr(std::uint32_t id, u64 offset) const { return arith::run_addr(sources_[id].info.va, u64{0}, offset); }
  u64 area_pa(const SpaceNode& n) const { return source_pa(n.source, n.offset); }
  u64 area_uaddr(const SpaceNode& n) const { return source_uaddr(n.source, n.offset); }

  ImplOptions opts_;
  // The memory of the engine-wide objects' allocations, whose injection
  // every IOAS's page memory shares (Ioas::mem; the IOASes are declared
  // before the domains, so their memories outlive the domains' tables).
  std::unique_ptr<hw::HeapPageMemory> ptmem_ = std::make_unique<hw::HeapPageMemory>();
  NameMap<std::unique_ptr<Ioas>> ioases_;
  LookupOwner lookups_;  // of ioases_
  std::vector<Source> sources_;
  std::vector<std::uint32_t> free_source_ids_;
  NameMap<std::uint32_t> source_ids_;
  NameMap<std::unique_ptr<Domain>> domains_;
  NameMap<DeviceRec> devices_;
};

}  // namespace ioas::impl
