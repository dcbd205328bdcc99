// ioas/engine.hpp: the C++ interface that both engines implement.
//
// An Engine holds a whole world, as one iommufd context does: several IO
// address spaces (IOASes), the memory sources they map, and the devices and
// domains attached to them. Every operation of SPEC.md is one method here, so
// one test or one trace replay can run on the executable spec
// (make_model_engine(), model/) or on the production engine (impl/) and give
// the same answer: the same value, the same errno, the same chosen IOVA.
//
// Conventions
// - Names: IOAS names are per engine; memory source, device and domain names
//   are global to the engine. A name that does not exist gives ENOENT before
//   any other check (SPEC "Operations and their errors").
// - Ranges are inclusive (ioas::Range); lengths are byte counts; every
//   start+len-1 is computed with an overflow check.
// - Errors are values (ioas::Result / ioas::Status) with the errno of
//   SPEC.md and a message naming what was wrong. No exception leaves a
//   method. An operation that fails changes nothing.
// - Heap exhaustion is one more failure: any allocation of an operation
//   (its objects, tree nodes, containers, strings, page-table pages) that
//   fails makes it answer ENOMEM, "out of memory", with nothing changed.
//   Every method runs at a boundary (ioas/boundary.hpp) that turns a
//   std::bad_alloc into that ENOMEM and aborts, loudly, on any other
//   exception (an escaped exception is a bug). How each engine keeps
//   "nothing changed" true:
//   * model (make_model_engine): every operation computes the next world on
//     a copy and installs it with a move; a failure drops the copy.
//   * impl (make_engine): allocate first, then commit with no allocation;
//     an undo where noted never allocates. Per operation:
//     create_ioas   the IOAS is built aside; one insert that either happens
//                   or throws having changed nothing.
//     add_memory    the record, room in the source table and the name's
//                   entry first; remove_memory: room in the free list first.
//     map           the area's tree node is allocated ahead; each domain's
//                   table maps all or nothing (its page-table journal is
//                   grown before each write and undoes without allocating);
//                   a later domain's failure unmaps the earlier ones.
//     copy          as map, with every piece's node allocated ahead.
//     unmap         its lists (areas, pins told to release) are made before
//                   the first change; removal allocates nothing.
//     cut           the new node ahead; each domain's split all or nothing;
//                   a later domain's failure unsplits (no allocation).
//     reserve, unreserve, allow   the owner's new ranges, the new union and
//                   the tree nodes of its new pieces first; then moves.
//     attach        the new domain and its filled table are built aside; the
//                   reserved plan, keys and list room first; its inserts
//                   each happen or throw having changed nothing, and a later
//                   one's failure erases the earlier ones.
//     detach, unpin keys and reserved plan first; then only erases.
//     pin           the pin is inserted, then the per-area counts; a
//                   failure erases what was inserted.
//     dma           tce's dirty records are allocated before the DMA; the
//                   other formats set bits in place.
//     set_dirty_tracking  the leaves' split is all or nothing (journal).
//     read_dirty    the answer is built before any dirty bit is cleared.
//     queries       allocate only their answer. check, memories and
//                   ioas_names have no error value: heap exhaustion while
//                   making their answer aborts. clone() gives nullptr.
// - Thread safety: none is promised by this interface; an Engine is used by
//   one thread at a time unless the implementation documents more.
// - Query methods (snapshot, ranges, translate, uva, check) never change the
//   state, except read_dirty, which clears what it reports unless `keep`.
//
// API sketch (one line per operation; SPEC.md has the rules and errnos):
//   create_ioas(name, options)           -> ok | EEXIST
//   set_huge_pages(ioas, on)             -> ok | EINVAL | EADDRINUSE
//   add_memory({name, va, len, pa, writable})  remove_memory(name)
//   map(ioas, {iova?, len, source, offset, prot}) -> chosen iova
//   unmap(ioas, iova, len) -> bytes unmapped      unmap_all(ioas)
//   cut(ioas, iova)  reserve(ioas, range, owner)  unreserve(ioas, owner)
//   allow(ioas, ranges)  ranges(ioas) -> {valid ranges, alignment}
//   attach(ioas, {dev, dom, fmt?, aperture?, pgsizes?, resv})  detach(dev)
//   pin(ioas, {iova, len, write, release}) -> id   unpin(ioas, id)
//   copy(ioas, {from, src iova, len, dst iova?, prot}) -> chosen iova
//   translate(dom, iova)  dma(dom, dir, iova, len)  uva(ioas, iova)
//   set_dirty_tracking(dom, mode)  read_dirty(dom, iova, len, pgsize, keep)
//   snapshot(ioas)  memories()  check()
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ioas/range.hpp"
#include "ioas/result.hpp"

namespace ioas {

// Largest alignment an automatic map asks for (the kernel's HPAGE_SIZE cap).
inline constexpr u64 kMaxAutoAlignment = u64{2} << 20;
inline constexpr u64 k4K = u64{1} << 12;
inline constexpr u64 k2M = u64{1} << 21;
inline constexpr u64 k1G = u64{1} << 30;
// The kernel selftest's mock domain (drivers/iommu/iommufd/iommufd_test.h,
// 6.12): MOCK_IO_PAGE_SIZE = PAGE_SIZE / 2 and MOCK_HUGE_PAGE_SIZE =
// 512 * MOCK_IO_PAGE_SIZE.
inline constexpr u64 kMockPage = k4K / 2;
inline constexpr u64 kMockHugePage = 512 * kMockPage;

// Access rights of a mapping. Map and copy take kRead and kReadWrite, and in
// kernel mode kWrite too (ModeRules::write_only_maps; leaf_prot in
// ioas/rules.hpp says what each format's leaves make of it); kNone, and
// kWrite in the default mode, exist so that a caller's bad value can be
// expressed and rejected with EINVAL.
enum class Prot : std::uint8_t { kNone = 0, kRead = 1, kWrite = 2, kReadWrite = 3 };
const char* to_string(Prot p);  // "r", "w", "rw", "none"
inline bool prot_reads(Prot p) { return p == Prot::kRead || p == Prot::kReadWrite; }
inline bool prot_writes(Prot p) { return p == Prot::kWrite || p == Prot::kReadWrite; }

// Policy for IOVA page 0 (SPEC "zero page").
enum class ZeroPage : std::uint8_t {
  kReserved,  // default: [0, PAGE-1] reserved with owner zero-page
  kAllowed,   // the kernel's: fixed maps at 0 allowed, automatic never 0
};

// Which rules an IOAS follows (SPEC "Kernel mode"). kDefault: SPEC's own,
// including every rule marked beyond. kKernel: where SPEC goes beyond Linux
// iommufd, the kernel's rule instead (zero page, partial unmap, no split of a
// large page by cut, the kernel's order of checks and alignment). The
// iommufd uAPI layer creates every IOAS in kernel mode.
enum class IoasMode : std::uint8_t { kDefault, kKernel };
const char* to_string(IoasMode m);  // "default", "kernel"

struct IoasOptions {
  // In kernel mode the zero-page policy is the kernel's (kAllowed): an IOAS
  // created in kernel mode reads back kAllowed whatever was given here. (The
  // trace's `zero-page=reserved` with `mode=kernel` is refused with EINVAL.)
  ZeroPage zero_page = ZeroPage::kReserved;
  bool huge_pages = true;  // false: alignment >= PAGE, PAGE-sized leaves only
  IoasMode mode = IoasMode::kDefault;  // last, so positional initializers keep their meaning
  friend bool operator==(const IoasOptions&, const IoasOptions&) = default;
};

// A registered memory source (SPEC "memory sources"). `pa` is the physical
// address of the first byte (defaults to va in traces); va and pa must have
// the same offset within a page.
struct MemorySource {
  std::string name;
  u64 va = 0;
  u64 len = 0;
  u64 pa = 0;
  bool writable = true;
  friend bool operator==(const MemorySource&, const MemorySource&) = default;
};

struct MemoryInfo {
  MemorySource source;
  u64 use_count = 0;  // areas + pins that reference it (invariant 8)
  friend bool operator==(const MemoryInfo&, const MemoryInfo&) = default;
};

struct MapArgs {
  std::optional<u64> iova;  // fixed when set, automatic when not
  u64 len = 0;
  std::string source;       // memory source name
  u64 offset = 0;           // byte offset into the source
  Prot prot = Prot::kReadWrite;
};

// Kinds of owner of a reserved range (SPEC "reserve"). Owners of different
// kinds live in different namespaces: reserve/unreserve only ever touch kUser.
enum class OwnerKind : std::uint8_t { kZeroPage, kUser, kDevice, kDomain };
const char* to_string(OwnerKind k);  // "zero-page", "user", "device", "domain"

struct Owner {
  OwnerKind kind = OwnerKind::kUser;
  std::string name;  // empty for kZeroPage
  friend bool operator==(const Owner&, const Owner&) = default;
  friend auto operator<=>(const Owner&, const Owner&) = default;
};
std::string to_string(const Owner& o);  // "device nic", "zero-page", ...

// Page-table formats a domain can have (SPEC "hw", and "Kernel mode" for
// kMock, the kernel selftest's mock domain: a flat table of 2 KiB slots,
// pgsizes 2K, or 2K|1M when created huge; available in both modes).
enum class Format : std::uint8_t { kX86_64, kArmLpae, kTce, kMock };
const char* to_string(Format f);  // "x86-64", "arm-lpae", "tce", "mock"
// The inverse of to_string(Format); nullopt for any other text.
std::optional<Format> format_from_string(std::string_view s);

// The output address size of a format: the last physical address its leaves
// can hold (x86-64: 52 bits, MAXPHYADDR's architectural limit; arm-lpae: 48
// bits, the 4K-granule OA without 52-bit extensions; tce: 52 bits,
// TCE_RPN_BITS; mock: 64 bits, the xarray entry holds pfn and flags in an
// unsigned long, so no physical address is out of reach). An area whose physical range passes it cannot be mapped in
// a domain of that format (attach and map: EINVAL, as for page sizes).
u64 max_output_address(Format f);

// Linux reserved-region types, as in /sys/kernel/iommu_groups/*/reserved_regions.
enum class ResvType : std::uint8_t { kDirect, kDirectRelaxable, kReserved, kMsi };
const char* to_string(ResvType t);  // "direct", "direct-relaxable", ...

struct ResvRegion {
  Range range;  // may arrive with start > last: attach rejects it (EINVAL)
  ResvType type = ResvType::kReserved;
  friend bool operator==(const ResvRegion&, const ResvRegion&) = default;
};

// Attach device `dev` to domain `dom`, creating the domain in this IOAS when it
// does not exist. For a new domain, unset fields take the format's defaults
// (fmt x86-64; x86-64/arm-lpae: aperture 0-0xffffffffffff, pgsizes 4K|2M|1G;
// tce: aperture 0-0x7fffffff, pgsizes 4K; mock: aperture 0x1000000-0x7fffffff
// (MOCK_APERTURE_START..MOCK_APERTURE_LAST), pgsizes 2K, and a "huge" mock
// domain is asked for with pgsizes 2K|1M). For an existing domain, a field
// that is set must equal the domain's own (else EINVAL).
struct AttachArgs {
  std::string dev;
  std::string dom;
  std::optional<Format> fmt;
  std::optional<Range> aperture;
  std::optional<u64> pgsize_bitmap;  // a set of page sizes, one bit each
  std::vector<ResvRegion> resv;      // the device's reserved regions
  // Page sizes a caller gave that no bitmap can hold (not powers of two, so
  // no format allows them): attach refuses them with EINVAL where it checks
  // page sizes (for an existing domain, as sizes that differ from its own).
  // Last, so positional initializers keep their meaning.
  std::vector<u64> pgsizes_not_pow2;
};

struct PinArgs {
  u64 iova = 0;
  u64 len = 0;
  bool write = false;
  bool release = true;  // releases its pin when an unmap tells it to
};

struct CopyArgs {
  std::string from;           // source IOAS (may be the destination itself)
  u64 src_iova = 0;
  u64 len = 0;
  std::optional<u64> dst_iova;  // fixed when set, automatic when not
  Prot prot = Prot::kReadWrite;
};

struct Translation {
  u64 pa = 0;
  Prot prot = Prot::kNone;  // the leaf's: leaf_prot(format, the area's prot)
  friend bool operator==(const Translation&, const Translation&) = default;
};

enum class DmaDir : std::uint8_t { kRead, kWrite };

struct DmaOutcome {
  bool faulted = false;
  u64 fault_iova = 0;  // the first IOVA that faulted, when faulted
  friend bool operator==(const DmaOutcome&, const DmaOutcome&) = default;
};

enum class DirtyMode : std::uint8_t { kOff, kOn, kOnSplit };

// One leaf of a domain's page table, as the IOMMU walks it (SPEC "hw"):
// leaves follow the iommu_pgsize rule from each area's start and never span
// two areas.
struct LeafInfo {
  Range iova;               // one page of a size in the domain's bitmap
  u64 pa = 0;               // the physical address of its first byte
  Prot prot = Prot::kNone;  // leaf_prot(format, the area's prot)
  bool dirty = false;       // written since tracking last cleared it; false while tracking is off
  u64 uaddr = 0;            // the user address of its first byte (the userspace view)
  friend bool operator==(const LeafInfo&, const LeafInfo&) = default;
};

// The answer of `ranges`: the complement of the reserved set and the IOAS's
// current iova_alignment.
struct IovaRanges {
  std::vector<Range> ranges;
  u64 alignment = 1;
  friend bool operator==(const IovaRanges&, const IovaRanges&) = default;
};

// ---- Observable state, for tests, differential comparison and dumps ----

struct AreaInfo {
  Range iova;
  Prot prot = Prot::kNone;
  std::string source;  // memory source name
  u64 offset = 0;      // byte offset of the first byte in the source
  u64 pins = 0;        // pins (accesses) that touch this area
  friend bool operator==(const AreaInfo&, const AreaInfo&) = default;
};

struct ReservedInfo {
  Range range;
  Owner owner;
  friend bool operator==(const ReservedInfo&, const ReservedInfo&) = default;
};

struct PinInfo {
  std::uint32_t id = 0;
  Range iova;
  bool write = false;
  bool release = true;
  friend bool operator==(const PinInfo&, const PinInfo&) = default;
};

struct DomainInfo {
  std::string name;
  Format fmt = Format::kX86_64;
  Range aperture;
  u64 pgsize_bitmap = 0;
  std::vector<std::string> devices;  // sorted
  DirtyMode dirty = DirtyMode::kOff;
  friend bool operator==(const DomainInfo&, const DomainInfo&) = default;
};

struct IoasState {
  std::string name;
  IoasOptions options;
  u64 iova_alignment = 1;
  std::vector<AreaInfo> areas;          // sorted by iova
  std::vector<ReservedInfo> reserved;   // sorted by (owner, range)
  std::vector<Range> allowed;           // sorted
  std::vector<PinInfo> pins;            // sorted by id
  std::vector<DomainInfo> domains;      // sorted by name
  std::uint32_t next_pin_id = 1;
  friend bool operator==(const IoasState&, const IoasState&) = default;
};

// The SPEC invariants, in SPEC order; their names are those of the trace
// `check` result.
enum class Invariant : std::uint8_t {
  kSorted,           // "sorted"
  kAreaReserved,     // "area-reserved"
  kAllowedReserved,  // "allowed-reserved"
  kZeroIova,         // "zero-iova"
  kAlignment,        // "alignment"
  kAperture,         // "aperture"
  kTranslation,      // "translation"
  kUseCount,         // "use-count"
};
const char* to_string(Invariant i);

struct Violation {
  Invariant invariant;
  std::string ioas;     // the IOAS it was found in ("" for engine-wide)
  std::string detail;   // what, where: names the range, owner or object
  std::optional<u64> witness;  // an IOVA that shows it, when there is one
};

class Engine {
 public:
  virtual ~Engine() = default;
  // "model" or "impl".
  virtual const char* kind() const = 0;

  // An independent copy of the whole world: a plan can be tried on the copy
  // and thrown away, and the lockstep tests keep the spec's state as a value.
  // Every engine of ioas implements it; nullptr only from an engine that
  // documents it cannot copy itself (a kernel back end, for example).
  virtual std::unique_ptr<Engine> clone() const { return nullptr; }

  // ---- IOASes ----
  // A new empty IOAS. EEXIST when the name is taken, EINVAL for an empty name.
  virtual Status create_ioas(std::string_view name, const IoasOptions& options) = 0;
  virtual Result<IoasOptions> ioas_options(std::string_view ioas) const = 0;
  // Turns an IOAS's huge_pages option on or off (the kernel's
  // IOMMU_OPTION_HUGE_PAGES set: iopt_enable_large_pages and
  // iopt_disable_large_pages, the same rules in both modes). Setting the
  // current value changes nothing. Off: EINVAL while a domain is attached
  // and an area is mapped (its leaves may be large); then iova_alignment
  // becomes at least PAGE, and EADDRINUSE when an area's iova, length or
  // uaddr % PAGE is not a multiple of it. On: never refused; iova_alignment
  // drops to what the domains and pins need. The domains' leaves follow the
  // new setting (turned on, an area's leaves grow to the large pages its
  // placement allows; the kernel leaves existing small IOPTEs in place, with
  // the same translations). ENOENT for an unknown IOAS. An engine that cannot
  // change the option answers EOPNOTSUPP; both engines of ioas can.
  virtual Status set_huge_pages(std::string_view ioas, bool on);
  virtual std::vector<std::string> ioas_names() const = 0;  // sorted

  // ---- memory sources ----
  virtual Status add_memory(const MemorySource& source) = 0;
  virtual Status remove_memory(std::string_view name) = 0;
  virtual std::vector<MemoryInfo> memories() const = 0;  // sorted by name

  // ---- mapping ----
  // Returns the IOVA of the new area (the fixed one, or the one chosen).
  virtual Result<u64> map(std::string_view ioas, const MapArgs& args) = 0;
  // Returns the bytes unmapped. unmap(ioas, 0, 2^64-1) is unmap all.
  virtual Result<u64> unmap(std::string_view ioas, u64 iova, u64 len) = 0;
  Result<u64> unmap_all(std::string_view ioas) { return unmap(ioas, 0, kMaxIova); }
  virtual Status cut(std::string_view ioas, u64 iova) = 0;
  virtual Result<u64> copy(std::string_view ioas, const CopyArgs& args) = 0;

  // ---- reserved and allowed ----
  virtual Status reserve(std::string_view ioas, Range range, std::string_view owner) = 0;
  virtual Status unreserve(std::string_view ioas, std::string_view owner) = 0;
  virtual Status allow(std::string_view ioas, std::span<const Range> ranges) = 0;
  virtual Result<IovaRanges> ranges(std::string_view ioas) const = 0;

  // ---- devices and domains ----
  virtual Status attach(std::string_view ioas, const AttachArgs& args) = 0;
  virtual Status detach(std::string_view dev) = 0;

  // ---- accesses (emulated devices pinning pages) ----
  virtual Result<std::uint32_t> pin(std::string_view ioas, const PinArgs& args) = 0;
  virtual Status unpin(std::string_view ioas, std::uint32_t id) = 0;

  // ---- what the hardware sees ----
  // nullopt when the IOVA is not mapped in the domain (a fault).
  virtual Result<std::optional<Translation>> translate(std::string_view dom, u64 iova) const = 0;
  virtual Result<DmaOutcome> dma(std::string_view dom, DmaDir dir, u64 iova, u64 len) = 0;
  virtual Status set_dirty_tracking(std::string_view dom, DirtyMode mode) = 0;
  // Dirty pages of size pgsize in [iova, iova+len-1], coalesced into ranges.
  virtual Result<std::vector<Range>> read_dirty(std::string_view dom, u64 iova, u64 len,
                                                u64 pgsize, bool keep) = 0;
  // The user address behind a mapped IOVA byte (the userspace view).
  virtual Result<u64> uva(std::string_view ioas, u64 iova) const = 0;
  // The leaves of domain `dom` intersecting r, in IOVA order: exactly what
  // its page table holds there. ENOENT for an unknown domain. The list has
  // one entry per leaf: ask for small ranges where leaves are small.
  virtual Result<std::vector<LeafInfo>> leaves(std::string_view dom, Range r) const = 0;
  // leaves() into `out`, whose memory is reused: for a caller that lists
  // leaves over and over (a checker comparing two engines after every
  // step). The same answer; `out` is unspecified after an error.
  virtual Status leaves_into(std::string_view dom, Range r, std::vector<LeafInfo>& out) const {
    auto l = leaves(dom, r);
    if (!l.ok()) return l.error();
    out = std::move(*l);
    return ok_status();
  }

  // ---- observation ----
  virtual Result<IoasState> snapshot(std::string_view ioas) const = 0;
  // snapshot() into `out`, reusing its memory, as leaves_into.
  virtual Status snapshot_into(std::string_view ioas, IoasState& out) const {
    auto s = snapshot(ioas);
    if (!s.ok()) return s.error();
    out = std::move(*s);
    return ok_status();
  }
  // Every SPEC invariant over every IOAS; empty when all hold.
  virtual std::vector<Violation> check() const = 0;
};

// The executable spec (model/).
std::unique_ptr<Engine> make_model_engine();

}  // namespace ioas
