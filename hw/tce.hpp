// hw/tce.hpp: the POWER TCE table (arch/powerpc/include/asm/iommu.h,
// arch/powerpc/kernel/iommu.c, drivers/vfio/vfio_iommu_spapr_tce.c).
//
// A flat array of big-endian TCEs, one per IOMMU page of the DMA window:
// entry e (window_offset <= e < window_offset + window_entries) translates
// bus address e << page_shift; its slot is e - window_offset (it_offset,
// it_size, it_page_shift). A TCE is (pa & page mask) | READ(0x1) | WRITE(0x2),
// both clear = empty. Beside it, the per-entry userspace view (it_userspace):
// the user address each entry maps, big-endian as the kernel keeps it.
//
// TCE hardware has no accessed or dirty bit; Linux marks pages dirty when a
// device-writable TCE is exchanged. For dirty tracking we keep one software
// dirty bit per entry beside the table, set by the software walker on a
// device write (as if the host bridge reported it), read and cleared here.
//
// Invariants (verify()): a non-empty TCE has READ set (r or rw; write-only
// is never made) and a page-aligned address; an empty TCE has no userspace
// view and no dirty bit; dirty bits sit only on writable TCEs.
//
// The array is allocated page by page from the PageMemory at creation (flat:
// nothing is allocated later, so map never fails with ENOMEM).
#pragma once

#include <memory>
#include <vector>

#include "formats.hpp"
#include "pagetable.hpp"

namespace ioas::hw {

class TceTable final : public PageTable {
 public:
  // EINVAL: the page size is not a single power of two >= 4K, or the window
  // is not made of whole pages. ENOMEM: the array could not be allocated.
  static Result<std::unique_ptr<TceTable>> create(const TableConfig& cfg, PageMemory& mem);
  ~TceTable() override;

  u64 root() const override { return pages_.empty() ? 0 : pages_[0]; }
  Status map(const MapArgs& args, IotlbGather* gather = nullptr) override;
  Result<u64> unmap(u64 iova, u64 len, IotlbGather* gather = nullptr) override;
  std::optional<Translation> translate(u64 iova) const override;
  std::optional<u64> uaddr(u64 iova) const override;
  // One page size: nothing to split or merge.
  Status split_blocks(Range, IotlbGather*) override { return ok_status(); }
  void merge_blocks(Range, u64, IotlbGather*) override {}
  u64 read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep, IotlbGather* gather = nullptr) override;
  void for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const override;
  u64 verify() const override;
  std::vector<u64> image() const override;
  u64 table_pages() const override { return pages_.size(); }

  // The raw window, for the software walker (what the host bridge reads).
  unsigned page_shift() const { return shift_; }
  u64 window_offset() const { return offset_; }    // it_offset, in pages
  u64 window_entries() const { return entries_; }  // it_size
  u64 raw_entry(u64 slot) const { return slot_ptr(slot)[0]; }  // big-endian TCE
  void mark_dirty(u64 slot) { dirty_[slot] = 1; }

 private:
  TceTable(const TableConfig& cfg, PageMemory& mem, unsigned shift);
  u64* slot_ptr(u64 slot) const { return mem_.page(pages_[slot / 512]) + slot % 512; }
  unsigned shift_;
  u64 offset_;
  u64 entries_;
  std::vector<u64> pages_;       // the TCE array, 512 entries per page
  std::vector<u64> userspace_;   // it_userspace, big-endian
  std::vector<std::uint8_t> dirty_;
};

}  // namespace ioas::hw
