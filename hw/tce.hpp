// hw/tce.hpp: the POWER TCE table (arch/powerpc/include/asm/iommu.h,
// arch/powerpc/kernel/iommu.c, arch/powerpc/platforms/powernv/pci-ioda-tce.c,
// drivers/vfio/vfio_iommu_spapr_tce.c).
//
// One TCE per IOMMU page of the DMA window: entry e (window_offset <= e <=
// window_offset + last_index) translates bus address e << page_shift; its
// slot is e - window_offset (it_offset, it_size, it_page_shift). A TCE is a
// big-endian word (pa & page mask) | READ(0x1) | WRITE(0x2); both clear =
// empty.
//
// The table is multi-level, as PowerNV's indirect TCE tables are
// (it_indirect_levels): each level is a 4 KiB page of 512 big-endian
// entries; an indirect entry is (pa of the next level) | READ | WRITE; the
// last level holds the TCEs. There are as many levels as the window needs
// (512^levels >= its entries), and pages below the top are allocated on
// first use (pnv_tce(..., alloc=true)), so map can fail with ENOMEM and a
// window may be as large as the whole 64-bit space. Pages stay once
// allocated (as the kernel's do) until the table is destroyed.
//
// Beside it, the per-entry userspace view (it_userspace): a second tree of
// the same shape holding the big-endian user address of each entry.
//
// TCE hardware has no accessed or dirty bit; Linux marks pages dirty when a
// device-writable TCE is exchanged. For dirty tracking we keep one software
// dirty bit per entry beside the table, set by the software walker on a
// device write (as if the host bridge reported it), read and cleared here.
//
// Page sizes: real hardware has 4K and larger; SPEC allows any one power of
// two. Down to 4 bytes the encoding is the real one (the address bits below
// the page size are zero, so READ/WRITE fit); for 1- and 2-byte pages, which
// no machine has, a TCE holds (pa << 2) | READ | WRITE. Output addresses are
// below 2^52 (TCE_RPN_BITS).
//
// Invariants (verify()): a non-empty TCE has READ set (r or rw; write-only
// is never made) and an address aligned to the page; an indirect entry has
// READ|WRITE and points at a page of the table's memory; an empty TCE has no
// userspace view and no dirty bit; dirty bits sit only on writable TCEs.
#pragma once

#include <memory>
#include <set>
#include <vector>

#include "formats.hpp"
#include "pagetable.hpp"

namespace ioas::hw {

class TceTable final : public PageTable {
 public:
  // EINVAL: the page size is not a single power of two, or the window is not
  // made of whole pages. ENOMEM: no top-level pages.
  static Result<std::unique_ptr<TceTable>> create(const TableConfig& cfg, PageMemory& mem);
  ~TceTable() override;

  u64 root() const override { return root_; }
  Status map(const MapArgs& args, IotlbGather* gather = nullptr) override;
  Result<u64> unmap(u64 iova, u64 len, IotlbGather* gather = nullptr) override;
  std::optional<Translation> translate(u64 iova) const override;
  std::optional<u64> uaddr(u64 iova) const override;
  // One page size: nothing to split or merge.
  Status split_blocks(Range, IotlbGather*, u64) override { return ok_status(); }
  void merge_blocks(Range, u64, IotlbGather*) override {}
  u64 read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep, IotlbGather* gather = nullptr) override;
  void for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const override;
  u64 verify() const override;
  std::vector<u64> image() const override;
  u64 table_pages() const override;
  std::unique_ptr<PageTable> clone_onto(PageMemory& mem) const override;

  // The raw window, for the software walker (what the host bridge reads).
  unsigned page_shift() const { return shift_; }
  u64 window_offset() const { return offset_; }  // it_offset, in pages
  u64 last_index() const { return last_index_; }  // it_size - 1
  unsigned levels() const { return levels_; }     // it_indirect_levels + 1
  // The slot of iova when the window holds it.
  std::optional<u64> window_slot(u64 iova) const;
  u64 user_root() const { return uroot_; }        // it_userspace's top page
  // The big-endian TCE of a slot (0 when its last-level page is absent).
  u64 raw_entry(u64 slot) const;
  // Records a write to slot (the walker's DMA). Takes a record allocated
  // by reserve_dirty() when there is one, so a write DMA prepared with it
  // cannot fail for want of memory.
  void mark_dirty(u64 slot);
  // Allocates ahead the records a write over iova may add (one per mapped,
  // writable, clean slot); std::bad_alloc: nothing changed.
  void reserve_dirty(Range iova);
  // Frees the records reserve_dirty() made that a DMA did not take.
  void drop_dirty_reserve() { spare_dirty_.clear(); }

  // The TCE encoding of a page's physical address, and back.
  static u64 encode(u64 pa, unsigned shift, Prot prot);
  // The permission of a present entry: r, w or rw.
  static Prot perm_prot(u64 e);
  static u64 decode(u64 tce, unsigned shift);
  static constexpr u64 kMaxOa = formats::facts(Format::kTce).output_last;

 private:
  TceTable(const TableConfig& cfg, PageMemory& mem, unsigned shift);
  struct Journal {
    std::vector<u64*> linked;    // indirect entries this operation filled
    std::vector<u64> allocated;  // pages it allocated
  };
  // The slot of an iova the window holds.
  u64 slot_of(u64 iova) const;
  // The last-level entry of `slot` in the tree at `root`; nullptr when a
  // page on the way is absent.
  u64* find(u64 root, u64 slot) const;
  // Same, allocating absent pages (recorded in j); nullptr on ENOMEM.
  u64* ensure(u64 root, u64 slot, Journal& j);
  // Visits the present last-level entries of slots [first, last] in order.
  template <class F>
  void visit(u64 table, unsigned level, u64 base, u64 first, u64 last, F&& f) const;
  // visit, with a second tree of the same shape (`beside`: its table at
  // this level, nullptr when absent) descended along: f(slot, entry, the
  // second tree's entry of the slot or nullptr when a page on its way is
  // absent). One pass where a find() per slot would walk from the top.
  template <class F>
  void visit_beside(u64 table, u64* beside, unsigned level, u64 base, u64 first, u64 last, F&& f) const;
  template <class F>
  void visit_pages(u64 table, unsigned level, F&& f) const;
  void free_tree(u64 table, unsigned level);

  unsigned shift_;
  u64 offset_;
  u64 last_index_;
  unsigned levels_;
  u64 root_ = 0;
  u64 uroot_ = 0;
  std::set<u64> dirty_;  // slots
  std::vector<std::set<u64>::node_type> spare_dirty_;  // see reserve_dirty
};

}  // namespace ioas::hw
