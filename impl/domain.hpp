// impl/domain.hpp: the interface between the engine and a domain's IO page
// table, and a simple software implementation to use until the page-table
// issue lands (hw/ will implement IoPageTable for x86-64, arm-lpae and tce).
//
// The engine calls a page table once per area: map() when an area appears
// in a domain, unmap() when it goes, split() when a cut divides it, relayout()
// when dirty tracking switches between split and normal leaves. Leaves are
// chosen by the iommu_pgsize rule, per mapping, from the mapping's own start:
// at each step the largest size in `pgsizes` that divides both the current
// IOVA and physical address and fits the remaining length. Leaves never span
// two mappings.
//
// Dirty state is a set of bytes that is always a union of whole leaves: a DMA
// write (while tracking) dirties every leaf it writes a byte of; read_dirty
// reports the pgsize pages of the query that intersect a dirty leaf and,
// unless `keep`, cleans every leaf that intersects the query. split() and
// relayout() to finer leaves keep the dirty byte set as it is (a dirty leaf
// becomes dirty pieces).
//
// Every change is gathered; flush_iotlb() ends an operation (a software
// table only counts flushes).
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
#include "range_set.hpp"

namespace ioas::impl {

// One mapping as the page table knows it.
struct PtMapping {
  Range iova;
  u64 pa = 0;
  Prot prot = Prot::kNone;
  u64 pgsizes = 0;  // the page sizes its leaves were chosen from
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

  // Maps iova.. -> pa.. with prot, leaves from pgsizes. EINVAL (and nothing
  // changes) when the iommu_pgsize rule finds no size at some step.
  // Precondition: the range maps nothing yet.
  virtual Status map(Range iova, u64 pa, Prot prot, u64 pgsizes) = 0;
  // Unmaps exactly one earlier mapping (or a piece made by split()); drops
  // its dirty bytes.
  virtual void unmap(Range iova) = 0;
  // The mapping holding `last` ends at `last`; the rest becomes a mapping of
  // its own; each side's leaves follow the rule from its own start (large
  // leaves crossing the boundary are split).
  virtual void split(u64 last) = 0;
  // Chooses the leaves of every mapping again from `pgsizes` (split for
  // dirty tracking, or merge back).
  virtual void relayout(u64 pgsizes) = 0;

  virtual std::optional<Translation> translate(u64 iova) const = 0;
  // Reads or writes [iova, last]; stops at the first byte with no mapping,
  // or (write) in a read-only mapping. Writes dirty whole leaves when
  // `track_dirty`.
  virtual DmaOutcome dma(DmaDir dir, Range iova, bool track_dirty) = 0;
  // Precondition: pgsize is a power of two, the range is pgsize aligned.
  virtual std::vector<Range> read_dirty(Range iova, u64 pgsize, bool keep) = 0;
  virtual void clear_dirty() = 0;

  virtual void flush_iotlb() = 0;

  virtual std::size_t mapping_count() const = 0;
  virtual void for_each_mapping(const std::function<void(const PtMapping&)>& f) const = 0;
};

// Mappings in a btree keyed by IOVA; leaves are implied by leaf_runs().
class SoftPageTable final : public IoPageTable {
 public:
  Status map(Range iova, u64 pa, Prot prot, u64 pgsizes) override;
  void unmap(Range iova) override;
  void split(u64 last) override;
  void relayout(u64 pgsizes) override;
  std::optional<Translation> translate(u64 iova) const override;
  DmaOutcome dma(DmaDir dir, Range iova, bool track_dirty) override;
  std::vector<Range> read_dirty(Range iova, u64 pgsize, bool keep) override;
  void clear_dirty() override { dirty_.clear(); }
  void flush_iotlb() override { ++flushes_; }
  std::size_t mapping_count() const override { return maps_.size(); }
  void for_each_mapping(const std::function<void(const PtMapping&)>& f) const override;

  // Mappings sorted and disjoint, every mapping has leaves, dirty bytes are
  // inside mappings and are unions of whole leaves. Returns the mapping count.
  std::size_t verify() const;
  u64 flushes() const { return flushes_; }

 private:
  const PtMapping* holding(u64 x) const;
  // Widens r to the leaves holding its two ends (when they are mapped).
  Range widen_to_leaves(Range r) const;

  absl::btree_map<u64, PtMapping> maps_;  // by iova.start
  RangeSet dirty_{true};
  u64 flushes_ = 0;
};

}  // namespace ioas::impl
