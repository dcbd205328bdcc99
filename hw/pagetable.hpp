// hw/pagetable.hpp: page tables in real hardware formats, the IOTLB gather,
// and the dirty bitmap.
//
// The whole API at a glance:
//   auto pt = make_page_table({Format::kX86_64, pgsizes, aperture}, mem);
//   pt->map({iova, pa, len, prot});        // iommu_pgsize leaves, EEXIST on overlap
//   pt->unmap(iova, len) -> bytes;         // splits a large leaf cut by the range
//   pt->translate(iova) -> {pa, prot};
//   pt->split_blocks(range[, g, size]);    // every leaf -> smallest size (or size), one flush
//   pt->merge_blocks(range, pgsizes);      // back to the largest leaves allowed
//   pt->read_and_clear_dirty(range, &bitmap, keep);
// Every operation gathers its IOTLB invalidations and flushes once at its end,
// or adds them to a caller's gather (the engine batches one command that way).
//
// Failure atomicity: an operation that fails (ENOMEM from the page
// allocator, EEXIST on an overlap, ...) leaves every table byte as it was and
// frees what it allocated. Pages freed by a successful operation are released
// only after the flush that makes them unreachable (the kernel's freelist).
#pragma once

#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <new>
#include <string>
#include <vector>

#include "ioas/arith.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"
#include "memory.hpp"

namespace ioas::hw {

// The formats, page sizes and to_string(Format) are the public ones
// (ioas/engine.hpp), so a domain's format passes straight through.
using ::ioas::Format;
using ::ioas::k1G;
using ::ioas::k2M;
using ::ioas::k4K;

// The IOMMU's translation caches, as a driver sees them: invalidation only.
// Counts flushes so tests can assert "one flush per operation".
class Iotlb {
 public:
  void invalidate(Range r) {
    ++flushes_;
    last_ = r;
  }
  u64 flushes() const { return flushes_; }
  Range last_flush() const { return last_; }

 private:
  u64 flushes_ = 0;
  Range last_{};
};

// Batches the invalidations of one operation (include/linux/iommu.h's
// iommu_iotlb_gather): the union hull [start, last] of every changed leaf or
// table span, and the table pages to free once the flush is done. sync()
// flushes at most once and then frees the pages.
class IotlbGather {
 public:
  IotlbGather(Iotlb& tlb, PageMemory& mem) : tlb_(tlb), mem_(mem) {}
  IotlbGather(const IotlbGather&) = delete;
  IotlbGather& operator=(const IotlbGather&) = delete;
  ~IotlbGather() { sync(); }

  void add_range(u64 iova, u64 size) {
    const u64 last = arith::range_last(iova, size).last;
    if (empty_) {
      start_ = iova;
      last_ = last;
      empty_ = false;
    } else {
      const auto hull = arith::range_hull(start_, last_, iova, last);
      start_ = hull.start;
      last_ = hull.last;
    }
  }
  // Never allocates for the caller's sake: when the heap has no room to
  // defer the free, the whole IOTLB is invalidated now and the pages go at
  // once (the kernel's gather flushes early when its batch is full).
  void add_free(u64 table_pa) {
    try {
      freelist_.push_back(table_pa);
    } catch (const std::bad_alloc&) {
      tlb_.invalidate(Range::all());
      sync();
      mem_.free_page(table_pa);
    }
  }
  bool empty() const { return empty_ && freelist_.empty(); }
  void sync() {
    if (!empty_) tlb_.invalidate(Range{start_, last_});
    for (u64 pa : freelist_) mem_.free_page(pa);
    freelist_.clear();
    empty_ = true;
  }

 private:
  Iotlb& tlb_;
  PageMemory& mem_;
  bool empty_ = true;
  u64 start_ = 0;
  u64 last_ = 0;
  std::vector<u64> freelist_;
};

// The dirty bitmap of IOMMU_HWPT_GET_DIRTY_BITMAP: bit i is the page_size
// unit at iova + i * page_size. page_size is a power of two.
class DirtyBitmap {
 public:
  DirtyBitmap(u64 iova, u64 length, u64 page_size)
      : iova_(iova),
        shift_(static_cast<unsigned>(arith::log2_pow2(page_size))),
        units_(arith::page_number(length, shift_)),
        words_(arith::pages_covering(units_, kWordShift)) {}
  // Marks every unit holding a byte of r (clipped to the bitmap).
  void record(Range r);
  bool test(u64 unit) const {
    return (words_[arith::page_number(unit, kWordShift)] >> arith::page_offset(unit, kWordShift)) & 1;
  }
  // The marked units as maximal ranges.
  std::vector<Range> ranges() const;
  u64 count() const;

 private:
  static constexpr unsigned kWordShift = 6;  // 64 units a word
  u64 iova_;
  unsigned shift_;  // log2(page_size)
  u64 units_;
  std::vector<u64> words_;
};

struct MapArgs {
  u64 iova = 0;
  u64 pa = 0;
  u64 len = 0;
  Prot prot = Prot::kReadWrite;
  u64 uaddr = 0;    // the user address of the first byte (kept by tce)
  u64 pgsizes = 0;  // leaf sizes to choose from; 0 = the table's bitmap
};

// One leaf as it sits in the table.
struct Leaf {
  u64 iova = 0;
  u64 size = 0;
  u64 pa = 0;
  Prot prot = Prot::kNone;
  bool accessed = false;
  bool dirty = false;
  // The user address of its first byte, where the table keeps one beside
  // the leaf (tce's it_userspace; uaddr() gives the same); none elsewhere.
  std::optional<u64> uaddr;
  friend bool operator==(const Leaf&, const Leaf&) = default;
};

struct TableConfig {
  Format format = Format::kX86_64;
  u64 pgsize_bitmap = formats::facts(Format::kX86_64).default_pgsizes;  // tce: one size
  Range aperture = formats::facts(Format::kX86_64).default_aperture;     // tce: the DMA window
  // x86-64 and arm-lpae set A / AF in every entry they write, as Linux does
  // (so the walker never has to); false leaves them clear, so that a
  // walker (or a CPU) visibly sets them.
  bool preset_accessed = true;
};

// Counters for tests and benchmarks.
struct TableStats {
  u64 leaf_writes = 0;    // leaf entries written by map / split / merge
  u64 table_allocs = 0;   // table pages allocated
};

class PageTable {
 public:
  virtual ~PageTable() = default;

  const TableConfig& config() const { return cfg_; }
  Format format() const { return cfg_.format; }
  u64 pgsize_bitmap() const { return cfg_.pgsize_bitmap; }
  u64 min_pgsize() const { return arith::lowest_bit(cfg_.pgsize_bitmap); }
  Iotlb& iotlb() { return tlb_; }
  PageMemory& memory() const { return mem_; }
  const TableStats& stats() const { return stats_; }
  // The physical address the hardware is pointed at: CR3 / TTBR0 / the TCE
  // table's base (0 for tce, whose array is not in PageMemory).
  virtual u64 root() const = 0;

  // Maps [iova, iova+len) -> [pa, ...). At each step the largest page size
  // in args.pgsizes that divides iova and pa and fits what remains.
  // The format holds prot as it can: x86-64 and arm-lpae write w as rw
  // (leaf_prot in ioas/rules.hpp); tce and mock hold w as write-only.
  // EINVAL: len 0, prot none, iova|pa|len not a multiple of the smallest
  // size, pgsizes not a subset of the table's. ERANGE: outside the aperture
  // or the output address size. EEXIST: something is mapped there.
  // ENOMEM: the page allocator failed. On any error nothing changed.
  virtual Status map(const MapArgs& args, IotlbGather* gather = nullptr) = 0;
  // Unmaps every leaf byte in [iova, iova+len); a leaf only partly inside is
  // split first. Returns the bytes that were mapped. EINVAL: unaligned to the
  // smallest size or len 0. ENOMEM from a split: nothing changed.
  virtual Result<u64> unmap(u64 iova, u64 len, IotlbGather* gather = nullptr) = 0;
  virtual std::optional<Translation> translate(u64 iova) const = 0;
  // tce: the user address behind iova (it_userspace); others: nullopt.
  virtual std::optional<u64> uaddr(u64 iova) const { return std::nullopt; }

  // Every leaf intersecting r larger than `to_size` (a page size of the
  // table; 0: the smallest) becomes leaves of that size (same address,
  // permission, accessed and dirty state). One flush for the whole split.
  // ENOMEM: nothing changed. EINVAL: to_size is not one of the table's.
  virtual Status split_blocks(Range r, IotlbGather* gather = nullptr, u64 to_size = 0) = 0;
  // Inside r (one mapping: leaves never span two), every aligned block of a
  // size in pgsizes that is wholly in r and maps contiguous, equally
  // permitted memory aligned to that size becomes one leaf (dirty and
  // accessed are ORed). Never allocates, never fails.
  virtual void merge_blocks(Range r, u64 pgsizes, IotlbGather* gather = nullptr) = 0;
  // Records in `bitmap` (when given) the part inside r of every dirty leaf
  // intersecting r, and unless `keep` makes each such whole leaf clean.
  // Returns the number of dirty leaves seen.
  virtual u64 read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep,
                                   IotlbGather* gather = nullptr) = 0;

  // Visits the leaves intersecting r in IOVA order.
  virtual void for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const = 0;
  // Checks the structural invariants (see each format) and returns the number
  // of leaves; aborts with a message when one fails.
  virtual u64 verify() const = 0;
  // Every table byte reachable from the root (with the pages' physical
  // addresses, and tce's userspace view): equal images = unchanged table.
  virtual std::vector<u64> image() const = 0;
  // Table pages reachable from the root (the root included).
  virtual u64 table_pages() const = 0;
  // The same table over `mem`, which must be a copy of this table's memory
  // (HeapPageMemory's copy: the same pages at the same physical addresses).
  // Counters come along; the IOTLB starts with no flushes.
  virtual std::unique_ptr<PageTable> clone_onto(PageMemory& mem) const = 0;

 protected:
  PageTable(const TableConfig& cfg, PageMemory& mem) : cfg_(cfg), mem_(mem) {}
  TableConfig cfg_;
  PageMemory& mem_;
  // Off the line of the vtable pointer and cfg_, which a translate reads
  // beside a writer that counts flushes and leaf writes here.
  alignas(64) Iotlb tlb_;
  TableStats stats_;
};

// Validates cfg (EINVAL: sizes not allowed by the format, aperture beyond
// what it addresses) and allocates the top table (ENOMEM).
Result<std::unique_ptr<PageTable>> make_page_table(const TableConfig& cfg, PageMemory& mem);

}  // namespace ioas::hw
