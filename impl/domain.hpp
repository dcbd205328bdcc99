// impl/domain.hpp: the engine's built-in domain table (the IoPageTable
// interface is public: include/ioas/backend.hpp), over the hardware-format
// tables of hw/.
//
// Dirty state lives in the leaves (x86 D, ARM DBM/AP[2], tce's software
// bit): a DMA write sets it on every leaf it writes a byte of (hardware does
// so whether or not tracking is on; the engine clears everything when
// tracking starts and reports nothing while it is off); read_dirty reports
// the pgsize pages of the query that intersect a dirty leaf and, unless
// `keep`, cleans every leaf that intersects the query. split() and
// relayout() to finer leaves keep the dirty byte set as it is (a dirty leaf
// becomes dirty pieces).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "ioas/backend.hpp"
#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"
#include "memory.hpp"
#include "pagetable.hpp"
#include "space_tree.hpp"

namespace ioas::impl {


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


// The mappings of one domain, disjoint, by IOVA: a SpaceTree (32 bytes per
// mapping, one descent per change, none for a change next to the previous
// one; it is never searched for holes, so it does not track them) whose
// intervals carry the mapping's pa (offset), prot, and in `source` the index
// of its kind: the user address's distance from pa and the page sizes,
// which the mappings of one memory source share.
//
// The latest add() waits beside the tree (`pending_`) until the next add()
// puts it in: a mapping removed before another one comes (a map and unmap
// of one buffer, the streaming DMA pattern) never touches the tree. Every
// reader sees the tree and the pending mapping as one list. Invariants
// (verify()): the pending mapping, if any, is disjoint from every mapping
// of the tree; each kind's `uses` counts the mappings of both.
class MappingList {
 public:
  std::size_t size() const { return tree_.size() + (pending_ ? 1 : 0); }
  std::optional<PtMapping> holding(u64 x) const;
  // Room for one add() of a mapping with these uaddr - pa and page sizes;
  // std::bad_alloc with nothing changed. Returns the kind to add it with.
  std::uint32_t reserve(u64 uaddr, u64 pa, u64 pgsizes);
  void add(const PtMapping& m, std::uint32_t kind);  // after reserve(): cannot fail
  bool remove(Range r);                               // exactly a mapping; never allocates
  void set_last(u64 start, u64 last);                 // up to the next mapping; never allocates
  u64 pgsizes_used() const;                           // the union over the mappings
  void set_pgsizes(u64 pgsizes);                      // of every mapping
  // In IOVA order, the pending mapping in its place among the tree's.
  template <class F>
  void for_each(F&& f) const {
    bool pending_done = !pending_;
    for (const SpaceNode* n = tree_.first(); n; n = tree_.next(*n)) {
      if (!pending_done && pending_->start < n->start) {
        f(mapping(*pending_));
        pending_done = true;
      }
      f(mapping(*n));
    }
    if (!pending_done) f(mapping(*pending_));
  }
  // Aborts on a broken invariant; returns the number of mappings.
  std::size_t verify() const;

 private:
  struct Kind {
    u64 uaddr_minus_pa = 0;
    u64 pgsizes = 0;
    u64 uses = 0;  // 0: free for reuse
  };
  PtMapping mapping(const SpaceNode& n) const {
    const Kind& k = kinds_[n.source];
    return PtMapping{n.range(), n.offset, static_cast<Prot>(n.prot), k.pgsizes, arith::run_addr(k.uaddr_minus_pa, u64{0}, n.offset)};
  }
  SpaceTree tree_{SpaceTree::kMaxSlots, SpaceTree::kMaxSlots, SpaceTree::Holes::kUntracked};
  std::optional<SpaceNode> pending_;  // the latest add(), not in tree_
  std::vector<Kind> kinds_;
  std::uint32_t last_kind_ = 0;  // where reserve() looks first
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
  void leaves_into(Range r, std::vector<LeafInfo>& out) const override;
  void flush_iotlb() override { gather_.sync(); }
  u64 flushes() const override { return table_->iotlb().flushes(); }
  u64 table_pages() const override { return table_->table_pages(); }
  std::size_t mapping_count() const override { return maps_.size(); }
  void for_each_mapping(const std::function<void(const PtMapping&)>& f) const override;
  std::size_t verify() const override;
  // The same table over `mem`, a copy of this table's page memory.
  std::unique_ptr<HwPageTable> clone_onto(hw::HeapPageMemory& mem) const;

  const hw::PageTable& table() const { return *table_; }

 private:
  HwPageTable(std::unique_ptr<hw::PageTable> t, hw::PageMemory& mem)
      : table_(std::move(t)), gather_(table_->iotlb(), mem) {}
  // leaves() and leaves_into(): f(info) for each leaf intersecting r.
  template <class F>
  void each_leaf(Range r, F&& f) const;

  std::unique_ptr<hw::PageTable> table_;
  // After table_ (synced before the table goes), and off its line, which
  // a translate reads beside the writer that changes the gather.
  alignas(64) hw::IotlbGather gather_;
  MappingList maps_;
};

}  // namespace ioas::impl
