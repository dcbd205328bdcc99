// hw/mock.hpp: the kernel selftest's mock domain (Linux 6.12,
// drivers/iommu/iommufd/selftest.c, struct mock_iommu_domain).
//
// The mock keeps an xarray indexed by iova / MOCK_IO_PAGE_SIZE (2 KiB): one
// entry per 2 KiB slot, whatever page size mapped it. An entry holds the
// slot's page frame (pa / 2 KiB, MOCK_PFN_MASK = ULONG_MAX / 2 KiB) and flag
// bits above it; mock_domain_map_pages stores one entry per slot and marks
// the slots of a MOCK_HUGE_PAGE_SIZE (1 MiB) page with MOCK_PFN_HUGE_IOVA;
// mock_domain_read_and_clear_dirty treats such a slot as part of its 1 MiB
// page (dirty when any slot of it is, and cleaned whole). Here the xarray is
// MockSlots: blocks of 512 slots (one 1 MiB leaf's worth, so a huge leaf is
// one whole block) in an ordered map by block index, entry 0 an empty slot;
// the bits are ours:
//   bits 0..52  pa / 2K (so every physical address up to 2^64-1 fits)
//   bit 53      huge: the slot belongs to a 1 MiB leaf
//   bit 54      dirty (MOCK_PFN_DIRTY_IOVA), set by the software walker
//   bit 55      writable (the mock ignores prot; SPEC's translate needs it)
//   bit 57      no read: a write-only slot (prot w), which reads fault on
//
// Invariants (verify()): every slot lies in the aperture; the huge slots
// come in whole 1 MiB-aligned groups of 512 that map 1 MiB-aligned,
// contiguous physical memory with one permission, and only when the table
// has 1 MiB pages; dirty bits sit only on writable slots.
//
// The mock allocates no page-table pages (the xarray's nodes are kernel
// heap): map never fails with ENOMEM, table_pages() counts xarray leaf nodes
// (64 slots each) for the statistics only.
#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>

#include "ioas/arith.hpp"
#include "pagetable.hpp"

namespace ioas::hw {

// The mock's slot store: slot index -> entry (never 0 when present), in
// blocks of 512 slots, a block made on its first slot and dropped with its
// last. Invariant: a block's `used` counts its nonzero entries, and no
// block is empty.
class MockSlots {
 public:
  static constexpr unsigned kBlockShift = 9;
  static constexpr u64 kBlockSlots = u64{1} << kBlockShift;

  // The entry of slot i, 0 when absent.
  u64 get(u64 i) const;
  // The entry of slot i to change in place (not to 0), nullptr when absent.
  u64* find(u64 i);
  // The 512 entries of the block whose first slot is `head`, nullptr when it
  // holds none.
  const u64* block(u64 head) const;
  u64* block(u64 head);
  // Stores e + k (nonzero) at slot i + k for k < n, a block at a time;
  // std::bad_alloc when a new block cannot be made (the slots before it
  // are stored).
  void set_run(u64 i, u64 n, u64 e);
  // Empties the slots of [lo, hi]; returns how many held an entry.
  u64 erase(u64 lo, u64 hi);
  // The first slot in [lo, hi] that holds an entry.
  std::optional<u64> first_in(u64 lo, u64 hi) const;
  // f(index, entry) for each slot of [lo, hi] that holds an entry, in
  // ascending order; f returns the slot to go on from (above index). f may
  // change entries (not to 0) but not add or erase slots.
  template <typename F>
  void scan(u64 lo, u64 hi, F&& f) const {
    scan_blocks(blocks_, lo, hi, f);
  }
  template <typename F>
  void scan(u64 lo, u64 hi, F&& f) {
    scan_blocks(blocks_, lo, hi, f);
  }

 private:
  struct Block {
    std::array<u64, kBlockSlots> e{};
    u64 used = 0;
  };
  template <typename Blocks, typename F>
  static void scan_blocks(Blocks& blocks, u64 lo, u64 hi, F& f) {
    if (lo > hi) return;
    u64 i = lo;
    for (auto b = blocks.lower_bound(arith::page_number(i, kBlockShift)); b != blocks.end();) {
      const u64 base = arith::page_start(b->first, kBlockShift);
      if (base > hi) return;
      if (i < base) i = base;
      // Slot indices are below 2^53: neither the block's last slot nor the
      // slot after one wraps.
      const u64 block_last = arith::range_last(base, kBlockSlots).last;
      bool jumped = false;
      for (u64 slot = i; slot <= block_last;) {
        if (slot > hi) return;
        const u64 after = arith::range_after(slot).next;
        auto& e = b->second.e[arith::run_addr(u64{0}, base, slot)];
        if (e == 0) {
          slot = after;
          continue;
        }
        const u64 next = std::max<u64>(f(slot, e), after);
        if (next > hi) return;
        if (next > block_last) {
          i = next;
          b = blocks.lower_bound(arith::page_number(next, kBlockShift));
          jumped = true;
          break;
        }
        slot = next;
      }
      if (!jumped) ++b;
    }
  }
  std::map<u64, Block> blocks_;  // block index (slot >> 9) -> its slots
};

class MockTable final : public PageTable {
 public:
  // EINVAL: page sizes other than 2K or 2K|1M.
  static Result<std::unique_ptr<MockTable>> create(const TableConfig& cfg, PageMemory& mem);

  u64 root() const override { return 0; }
  Status map(const MapArgs& args, IotlbGather* gather = nullptr) override;
  Result<u64> unmap(u64 iova, u64 len, IotlbGather* gather = nullptr) override;
  std::optional<Translation> translate(u64 iova) const override;
  Status split_blocks(Range r, IotlbGather* gather = nullptr, u64 to_size = 0) override;
  void merge_blocks(Range r, u64 pgsizes, IotlbGather* gather = nullptr) override;
  u64 read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep, IotlbGather* gather = nullptr) override;
  void for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const override;
  u64 verify() const override;
  std::vector<u64> image() const override;
  u64 table_pages() const override;
  std::unique_ptr<PageTable> clone_onto(PageMemory& mem) const override;

  // The entry of the slot holding iova (0: none), for the walker.
  u64 entry(u64 iova) const;
  // The entries of the block of MockSlots::kBlockSlots slots holding iova
  // (the entry of iova's slot at entry_index(iova)), nullptr when the block
  // holds none: for a walker that looks at slot after slot.
  const u64* entry_block(u64 iova) const;
  static u64 entry_index(u64 iova) { return arith::page_offset(iova >> kSlotShift, MockSlots::kBlockShift); }
  // Marks the slot holding iova dirty (a device write, as the walker sees it).
  void mark_dirty(u64 iova);

  // A slot is a page of 2^kSlotShift bytes (MOCK_IO_PAGE_SIZE); the entry's
  // pfn is its page number.
  static constexpr unsigned kSlotShift = 11;
  static_assert(kMockPage == u64{1} << kSlotShift);
  static constexpr unsigned kPfnBits = 53;  // the pfn is bits 0..52
  static constexpr u64 kPfnMask = arith::field_mask(u64{0}, 0, kPfnBits);
  static constexpr u64 kHuge = u64{1} << 53;
  static constexpr u64 kDirty = u64{1} << 54;
  static constexpr u64 kWritable = u64{1} << 55;
  static constexpr u64 kPresent = u64{1} << 56;  // so that pa 0 read-only is not 0
  static constexpr u64 kNoRead = u64{1} << 57;
  static constexpr u64 kPermBits = kWritable | kNoRead;
  // The physical address of the slot an entry maps.
  static u64 entry_pa(u64 e) { return arith::page_start(arith::desc_addr(e, 0, kPfnBits), kSlotShift); }
  // The permission an entry holds: r, rw, or w (kNoRead).
  static Prot entry_prot(u64 e) {
    return (e & kNoRead) ? Prot::kWrite : (e & kWritable) ? Prot::kReadWrite : Prot::kRead;
  }

 private:
  MockTable(const TableConfig& cfg, PageMemory& mem) : PageTable(cfg, mem) {}
  // The leaf holding slot index i (present): its first slot and slot count.
  std::pair<u64, u64> leaf_of(u64 index, u64 e) const;

  MockSlots slots_;  // slot index (iova / 2K) -> entry
};

}  // namespace ioas::hw
