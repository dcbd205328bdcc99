// impl/domain.hpp: the interface between the engine and a domain's IO page
// table, and its implementation over the hardware-format tables of hw/.
//
// The engine calls a page table once per area: map() when an area appears
// in a domain, unmap() when it goes, split() when a cut divides it, relayout()
// when dirty tracking switches between split and normal leaves. Leaves are
// chosen by the iommu_pgsize rule, per mapping, from the mapping's own start:
// at each step the largest size in `pgsizes` that divides both the current
// IOVA and physical address and fits the remaining length. Leaves never span
// two mappings.
//
// Dirty state lives in the leaves (x86 D, ARM DBM/AP[2], tce's software
// bit): a DMA write sets it on every leaf it writes a byte of (hardware does
// so whether or not tracking is on; the engine clears everything when
// tracking starts and reports nothing while it is off); read_dirty reports
// the pgsize pages of the query that intersect a dirty leaf and, unless
// `keep`, cleans every leaf that intersects the query. split() and relayout()
// to finer leaves keep the dirty byte set as it is (a dirty leaf becomes
// dirty pieces).
//
// Failure: map, split and relayout may need table pages and fail with ENOMEM
// (from the page memory, which tests make fail on purpose); then nothing
// changed. unmap, unsplit (the undo of a split) and the rest never fail.
//
// Every change is gathered; flush_iotlb() ends an operation with at most one
// IOTLB invalidation (flushes() counts them).
#pragma once

#include <absl/container/btree_map.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"
#include "memory.hpp"
#include "pagetable.hpp"

namespace ioas::impl {

// One mapping as the page table knows it.
struct PtMapping {
  Range iova;
  u64 pa = 0;
  Prot prot = Prot::kNone;
  u64 pgsizes = 0;  // the page sizes its leaves were chosen from
  u64 uaddr = 0;    // the user address of its first byte
  friend bool operator==(const PtMapping&, const PtMapping&) = default;
};

// The leaves the iommu_pgsize rule gives for a mapping, as runs of equal-size
// leaves. Empty when some step finds no usable size (the mapping is
// impossible with these sizes). At most 2 * popcount(pgsizes) + 1 runs.
struct LeafRun {
  Range iova;     // covers a whole number of leaves
  u64 size = 0;   // leaf size in this run
};
std::vector<LeafRun> leaf_runs(Range iova, u64 pa, u64 pgsizes);
// The leaf of the mapping that holds x (x inside m.iova).
Range leaf_at(const PtMapping& m, u64 x);

class IoPageTable {
 public:
  virtual ~IoPageTable() = default;

  // Maps iova.. -> pa.. with prot, leaves from pgsizes; uaddr is the user
  // address of the first byte (kept by formats with a userspace view).
  // EINVAL: the iommu_pgsize rule finds no size at some step, or the format
  // cannot hold the physical range (ERANGE from hw/ becomes EINVAL); ENOMEM.
  // On error nothing changed. Precondition: the range maps nothing yet.
  virtual Status map(Range iova, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) = 0;
  // Unmaps exactly one earlier mapping (or a piece made by split()); drops
  // its dirty state.
  virtual void unmap(Range iova) = 0;
  // The mapping holding `last` ends at `last`; the rest becomes a mapping of
  // its own; each side's leaves follow the rule from its own start (the one
  // leaf crossing the boundary, if any, is split). ENOMEM: nothing changed.
  virtual Status split(u64 last) = 0;
  // Undoes a successful split(last): the mappings ending at `last` and
  // starting after it become one again, with the leaves they had.
  virtual void unsplit(u64 last) = 0;
  // Chooses the leaves of every mapping again from `pgsizes` (split for
  // dirty tracking, or merge back). ENOMEM (only when leaves get smaller):
  // nothing changed.
  virtual Status relayout(u64 pgsizes) = 0;

  virtual std::optional<Translation> translate(u64 iova) const = 0;
  // Reads or writes [iova, last] through the software walker; stops at the
  // first byte with no mapping, or (write) in a read-only mapping.
  virtual DmaOutcome dma(DmaDir dir, Range iova) = 0;
  // Precondition: pgsize is a power of two, the range is pgsize aligned.
  virtual std::vector<Range> read_dirty(Range iova, u64 pgsize, bool keep) = 0;
  virtual void clear_dirty() = 0;
  // The leaves intersecting r, in order, as the software walker sees them;
  // `dirty` as the table holds it.
  virtual void leaves(Range r, const std::function<void(const LeafInfo&)>& f) const = 0;

  virtual void flush_iotlb() = 0;
  virtual u64 flushes() const = 0;
  // Table pages reachable from the root (empty intermediate tables stay
  // after an unmap, as in the kernel's io-pgtable).
  virtual u64 table_pages() const = 0;

  virtual std::size_t mapping_count() const = 0;
  virtual void for_each_mapping(const std::function<void(const PtMapping&)>& f) const = 0;
  // Checks the table's structure and that its leaves are exactly those of
  // the mappings; aborts with a message otherwise. Returns the mapping count.
  virtual std::size_t verify() const = 0;
  // The same table over `mem`, a copy of this table's page memory; nullptr
  // for a table that cannot be copied (a kernel back end).
  virtual std::unique_ptr<IoPageTable> clone_onto(hw::HeapPageMemory& mem) const = 0;
};

// A domain's table in a hardware format (hw/), its pages from a PageMemory
// shared by every domain of the engine, plus the list of mappings (areas)
// it holds.
class HwPageTable final : public IoPageTable {
 public:
  // EINVAL: a configuration the format cannot have; ENOMEM: no top table.
  static Result<std::unique_ptr<HwPageTable>> create(Format fmt, Range aperture, u64 pgsize_bitmap,
                                                     hw::HeapPageMemory& mem);

  Status map(Range iova, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) override;
  void unmap(Range iova) override;
  Status split(u64 last) override;
  void unsplit(u64 last) override;
  Status relayout(u64 pgsizes) override;
  std::optional<Translation> translate(u64 iova) const override { return table_->translate(iova); }
  DmaOutcome dma(DmaDir dir, Range iova) override;
  std::vector<Range> read_dirty(Range iova, u64 pgsize, bool keep) override;
  void clear_dirty() override;
  void leaves(Range r, const std::function<void(const LeafInfo&)>& f) const override;
  void flush_iotlb() override { gather_.sync(); }
  u64 flushes() const override { return table_->iotlb().flushes(); }
  u64 table_pages() const override { return table_->table_pages(); }
  std::size_t mapping_count() const override { return maps_.size(); }
  void for_each_mapping(const std::function<void(const PtMapping&)>& f) const override;
  std::size_t verify() const override;
  std::unique_ptr<IoPageTable> clone_onto(hw::HeapPageMemory& mem) const override;

  const hw::PageTable& table() const { return *table_; }

 private:
  HwPageTable(std::unique_ptr<hw::PageTable> t, hw::PageMemory& mem)
      : table_(std::move(t)), gather_(table_->iotlb(), mem) {}
  const PtMapping* holding(u64 x) const;

  std::unique_ptr<hw::PageTable> table_;
  hw::IotlbGather gather_;  // after table_: synced before the table goes
  absl::btree_map<u64, PtMapping> maps_;  // by iova.start
};

}  // namespace ioas::impl
