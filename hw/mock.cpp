// hw/mock.cpp: the selftest's mock domain as a page table (see mock.hpp).
#include "mock.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <new>

#include "ioas/arith.hpp"
#include "ioas/boundary.hpp"
#include "ioas/core/check.hpp"
#include "ioas/core/text.hpp"

namespace ioas::hw {
namespace {

constexpr u64 kSlot = ::ioas::kMockPage;
constexpr u64 kHugeSize = ::ioas::kMockHugePage;
constexpr unsigned kShift = MockTable::kSlotShift;
const u64 kSlotsPerHuge = arith::page_number(kHugeSize, kShift);

// The slot (page number) holding iova, and the first byte of a slot.
u64 slot_of(u64 iova) { return arith::page_number(iova, kShift); }
u64 slot_start(u64 slot) { return arith::page_start(slot, kShift); }
// The first slot of the 1 MiB leaf that would hold slot i.
u64 huge_head(u64 i) { return arith::align_down(i, kSlotsPerHuge); }
// The last byte of the 1 MiB leaf that starts at iova.
u64 huge_last(u64 iova) { return arith::range_last(iova, kHugeSize).last; }
// The pfn field of an entry (bits 0..52), and the pfn k slots after it.
u64 pfn_of(u64 e) { return arith::desc_addr(e, 0, MockTable::kPfnBits); }
u64 pfn_after(u64 e, u64 k) { return arith::page_advance(pfn_of(e), k, 0); }
// The first slot of the huge leaf after the one holding slot i (slot indices
// are below 2^53: no wrap).
u64 next_huge(u64 i) { return arith::block_of(i, kSlotsPerHuge).next; }
// A huge leaf's 512 slots are exactly one block of MockSlots.
static_assert(kHugeSize >> kShift == MockSlots::kBlockSlots);

}  // namespace

Result<std::unique_ptr<MockTable>> MockTable::create(const TableConfig& cfg, PageMemory& mem) {
  if (cfg.pgsize_bitmap != kSlot && cfg.pgsize_bitmap != (kSlot | kHugeSize))
    return make_error(EINVAL, "mock: page sizes " + hex(cfg.pgsize_bitmap) + " are not 2K or 2K|1M");
  if (cfg.aperture.start > cfg.aperture.last) return make_error(EINVAL, "mock: aperture start > last");
  return std::unique_ptr<MockTable>(new MockTable(cfg, mem));
}

u64 MockSlots::get(u64 i) const {
  auto b = blocks_.find(arith::page_number(i, kBlockShift));
  return b == blocks_.end() ? 0 : b->second.e[arith::page_offset(i, kBlockShift)];
}

u64* MockSlots::find(u64 i) {
  auto b = blocks_.find(arith::page_number(i, kBlockShift));
  if (b == blocks_.end()) return nullptr;
  u64& e = b->second.e[arith::page_offset(i, kBlockShift)];
  return e ? &e : nullptr;
}

const u64* MockSlots::block(u64 head) const {
  auto b = blocks_.find(arith::page_number(head, kBlockShift));
  return b == blocks_.end() ? nullptr : b->second.e.data();
}

u64* MockSlots::block(u64 head) {
  auto b = blocks_.find(arith::page_number(head, kBlockShift));
  return b == blocks_.end() ? nullptr : b->second.e.data();
}

void MockSlots::set_run(u64 i, u64 n, u64 e) {
  while (n != 0) {
    Block& b = blocks_[arith::page_number(i, kBlockShift)];  // may throw: then this block was not added
    const u64 from = arith::page_offset(i, kBlockShift);
    const u64 count = arith::run_in_block(from, n, kBlockSlots);
    for (u64 k = 0; k < count; ++k) {
      u64& slot = b.e[from + k];
      if (slot == 0) ++b.used;
      slot = arith::desc_advance(e, k, 0);  // pfn + k: a run of slots maps a run of pages
    }
    i = arith::page_advance(i, count, 0);
    e = arith::desc_advance(e, count, 0);
    n = arith::run_rest(n, count);
  }
}

u64 MockSlots::erase(u64 lo, u64 hi) {
  u64 erased = 0;
  if (lo > hi) return 0;
  for (auto b = blocks_.lower_bound(arith::page_number(lo, kBlockShift)); b != blocks_.end();) {
    const u64 base = arith::page_start(b->first, kBlockShift);
    if (base > hi) break;
    // The slots of [lo, hi] in this block, as offsets from its first slot.
    const auto in = arith::range_intersect(lo, hi, base, arith::range_last(base, kBlockSlots).last);
    const u64 from = arith::run_addr(u64{0}, base, in.start);
    const u64 to = arith::run_addr(u64{0}, base, in.last);
    for (u64 k = from; k <= to; ++k) {
      if (b->second.e[k] == 0) continue;
      b->second.e[k] = 0;
      --b->second.used;
      ++erased;
    }
    b = b->second.used == 0 ? blocks_.erase(b) : std::next(b);
  }
  return erased;
}

std::optional<u64> MockSlots::first_in(u64 lo, u64 hi) const {
  std::optional<u64> found;
  scan(lo, hi, [&](u64 i, u64) {
    found = i;
    return ~u64{0};  // past hi: stop
  });
  return found;
}

std::pair<u64, u64> MockTable::leaf_of(u64 index, u64 e) const {
  if (!(e & kHuge)) return {index, 1};
  return {huge_head(index), kSlotsPerHuge};
}

Status MockTable::map(const MapArgs& a, IotlbGather* g) {
  auto what = [&] { return "map " + hex(a.iova) + "+" + hex(a.len); };
  const u64 sizes = a.pgsizes ? a.pgsizes : cfg_.pgsize_bitmap;
  if (a.len == 0) return make_error(EINVAL, what() + ": length 0");
  if (a.prot == Prot::kNone) return make_error(EINVAL, what() + ": permission must be r, w or rw");
  if ((sizes & ~cfg_.pgsize_bitmap) != 0 || !(sizes & kSlot))
    return make_error(EINVAL, what() + ": page sizes " + hex(sizes) + " are not the mock's");
  if (!arith::is_aligned(a.iova | a.pa | a.len, kSlot))
    return make_error(EINVAL, what() + " pa " + hex(a.pa) + ": not aligned to the mock page size 0x800");
  const auto end = arith::range_last(a.iova, a.len);
  if (end.overflow || !cfg_.aperture.contains(Range{a.iova, end.last}))
    return make_error(ERANGE, what() + ": outside the aperture " + to_string(cfg_.aperture));
  if (arith::range_last(a.pa, a.len).overflow) return make_error(ERANGE, what() + ": physical range passes 2^64-1");
  const u64 first = slot_of(a.iova);
  const u64 last = slot_of(end.last);
  if (auto used = slots_.first_in(first, last))
    return make_error(EEXIST, what() + ": " + hex(slot_start(*used)) + " is already mapped");
  // iommu_pgsize at each step: 1 MiB where iova and pa allow it and it fits.
  const u64 flags = kPresent | (prot_writes(a.prot) ? kWritable : 0) | (prot_reads(a.prot) ? 0 : kNoRead);
  u64 iova = a.iova;
  u64 pa = a.pa;
  u64 left = a.len;
  // Heap exhaustion (a new block) takes back the slots written so far: all
  // of [first, last] was empty.
  try {
    while (left != 0) {
      const bool huge = (sizes & kHugeSize) && arith::is_aligned(iova, kHugeSize) &&
                        arith::is_aligned(pa, kHugeSize) && left >= kHugeSize;
      // One huge leaf, or the small slots up to the next 1 MiB boundary of
      // iova (no huge leaf can start before it) or the end. The pfn is the
      // entry's low bits and pa + len does not wrap: e + k is slot k's entry.
      const u64 in_huge = arith::page_offset(slot_of(iova), MockSlots::kBlockShift);
      const u64 n = huge ? kSlotsPerHuge : arith::run_in_block(in_huge, slot_of(left), kSlotsPerHuge);
      slots_.set_run(slot_of(iova), n, slot_of(pa) | flags | (huge ? kHuge : 0));
      stats_.leaf_writes += n;
      const u64 done = slot_start(n);
      iova = arith::run_addr(iova, u64{0}, done);
      pa = arith::run_addr(pa, u64{0}, done);
      left = arith::run_rest(left, done);
    }
  } catch (const std::bad_alloc&) {
    slots_.erase(first, last);
    return out_of_memory();
  }
  (void)g;  // a new mapping needs no invalidation
  return ok_status();
}

Result<u64> MockTable::unmap(u64 iova, u64 len, IotlbGather* g) {
  if (len == 0 || !arith::is_aligned(iova | len, kSlot))
    return make_error(EINVAL, "unmap " + hex(iova) + "+" + hex(len) + ": not aligned to the mock page size 0x800");
  const auto end = arith::range_last(iova, len);
  if (end.overflow) return make_error(EINVAL, "unmap " + hex(iova) + "+" + hex(len) + ": passes 2^64-1");
  const Range r{iova, end.last};
  if (Status st = split_blocks(r, g, kSlot); !st.ok()) return st.error();
  // Only a leaf crossing r's ends must be split; split_blocks above split
  // every huge leaf in r, and whole ones go anyway.
  const u64 bytes = slot_start(slots_.erase(slot_of(r.start), slot_of(r.last)));
  if (bytes != 0) {
    IotlbGather own(tlb_, mem_);
    (g ? *g : own).add_range(r.start, r.length());
  }
  return bytes;
}

std::optional<Translation> MockTable::translate(u64 iova) const {
  const u64 e = entry(iova);
  if (!e) return std::nullopt;
  return Translation{entry_pa(e) | arith::page_offset(iova, kShift), entry_prot(e)};
}

u64 MockTable::entry(u64 iova) const { return slots_.get(slot_of(iova)); }
const u64* MockTable::entry_block(u64 iova) const { return slots_.block(slot_of(iova)); }

void MockTable::mark_dirty(u64 iova) {
  u64* e = slots_.find(slot_of(iova));
  if (e && (*e & kWritable)) *e |= kDirty;
}

Status MockTable::split_blocks(Range r, IotlbGather* g, u64 to_size) {
  if (to_size != 0 && !(cfg_.pgsize_bitmap & to_size) )
    return make_error(EINVAL, "split: " + hex(to_size) + " is not a mock page size");
  if (to_size == kHugeSize) return ok_status();
  // A huge leaf keeps its slots; it becomes 512 small leaves by losing the
  // huge mark (the dirty bits stay where they are: a small leaf is dirty
  // when its slot is, as mock_test_and_clear_dirty reads them).
  bool changed = false;
  Range hull{};
  slots_.scan(huge_head(slot_of(r.start)), slot_of(r.last), [&](u64 i, u64& e) -> u64 {
    if (!(e & kHuge)) return arith::range_after(i).next;
    const u64 head = huge_head(i);
    if (huge_last(slot_start(head)) < r.start) return next_huge(head);
    // Spread a huge leaf's dirty state to all its slots, so no write is lost.
    u64* leaf_slots = slots_.block(head);
    bool dirty = false;
    for (u64 k = 0; k < kSlotsPerHuge; ++k) dirty = dirty || (leaf_slots[k] & kDirty);
    for (u64 k = 0; k < kSlotsPerHuge; ++k) leaf_slots[k] = (leaf_slots[k] & ~kHuge) | (dirty ? kDirty : 0);
    stats_.leaf_writes += kSlotsPerHuge;
    const Range leaf{slot_start(head), huge_last(slot_start(head))};
    hull = changed ? hull.hull(leaf) : leaf;
    changed = true;
    return next_huge(head);
  });
  if (changed) {
    IotlbGather own(tlb_, mem_);
    (g ? *g : own).add_range(hull.start, hull.length());
  }
  return ok_status();
}

void MockTable::merge_blocks(Range r, u64 pgsizes, IotlbGather* g) {
  if (!(pgsizes & kHugeSize) || !(cfg_.pgsize_bitmap & kHugeSize)) return;
  bool changed = false;
  Range hull{};
  // Whole 1 MiB blocks in r: those starting in [first, last_head].
  const auto whole = arith::whole_blocks(r.start, r.last, kHugeSize);
  if (!whole.exists) return;
  // One 1 MiB block: merged when its 512 slots map 1 MiB-aligned, contiguous
  // memory with one permission.
  auto try_merge = [&](u64 head) {
    u64* leaf_slots = slots_.block(slot_of(head));
    if (!leaf_slots) return;
    const u64 first = leaf_slots[0];
    if (!first || (first & kHuge) || !arith::is_aligned(entry_pa(first), kHugeSize)) return;
    for (u64 k = 0; k < kSlotsPerHuge; ++k)
      if (!leaf_slots[k] || pfn_of(leaf_slots[k]) != pfn_after(first, k) ||
          ((leaf_slots[k] ^ first) & kPermBits) != 0)
        return;
    for (u64 k = 0; k < kSlotsPerHuge; ++k) leaf_slots[k] |= kHuge;
    stats_.leaf_writes += kSlotsPerHuge;
    const Range leaf{head, huge_last(head)};
    hull = changed ? hull.hull(leaf) : leaf;
    changed = true;
  };
  // Visit only blocks that hold slots (the range may span 2^64 bytes).
  slots_.scan(slot_of(whole.first), slot_of(whole.last_head), [&](u64 i, u64&) {
    try_merge(slot_start(huge_head(i)));
    return next_huge(i);
  });
  if (changed) {
    IotlbGather own(tlb_, mem_);
    (g ? *g : own).add_range(hull.start, hull.length());
  }
}

u64 MockTable::read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep, IotlbGather* g) {
  u64 seen = 0;
  bool cleaned = false;
  // Through std::ref: a std::function of a reference allocates nothing, so
  // clearing cannot fail (set_dirty_tracking relies on it).
  auto clean = [&](const Leaf& l) {
    if (!l.dirty) return;
    ++seen;
    if (bitmap) bitmap->record(Range{l.iova, arith::range_last(l.iova, l.size).last}.intersect(r));
    if (keep) return;
    for (u64 k = 0; k < slot_of(l.size); ++k)
      if (u64* e = slots_.find(arith::page_advance(slot_of(l.iova), k, 0))) *e &= ~kDirty;
    cleaned = true;
  };
  for_each_leaf(r, std::ref(clean));
  if (cleaned) {
    IotlbGather own(tlb_, mem_);
    (g ? *g : own).add_range(r.start, r.length());
  }
  return seen;
}

void MockTable::for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const {
  slots_.scan(huge_head(slot_of(r.start)), slot_of(r.last), [&](u64 i, u64 e) {
    const auto [first, count] = leaf_of(i, e);
    const Range leaf{slot_start(first), arith::range_last(slot_start(first), slot_start(count)).last};
    bool dirty = e & kDirty;
    if (count > 1) {
      const u64* leaf_slots = slots_.block(first);
      for (u64 k = 0; k < count && !dirty; ++k) dirty = leaf_slots[k] & kDirty;
    }
    if (leaf.overlaps(r))
      f(Leaf{leaf.start, slot_start(count), entry_pa(e), entry_prot(e), true, dirty, std::nullopt});
    return arith::page_advance(first, count, 0);
  });
}

u64 MockTable::verify() const {
  u64 leaves = 0;
  slots_.scan(0, slot_of(kMaxIova), [&](u64 i, u64 e) {
    const u64 iova = slot_start(i);
    IOAS_CHECK(e & kPresent, "slot " + hex(iova) + " holds an entry without the present bit");
    IOAS_CHECK(cfg_.aperture.contains(Range{iova, arith::range_last(iova, kSlot).last}), "slot " + hex(iova) + " outside the aperture");
    IOAS_CHECK(!(e & kDirty) || (e & kWritable), "slot " + hex(iova) + " is dirty but read-only");
    IOAS_CHECK(!(e & kNoRead) || (e & kWritable), "slot " + hex(iova) + " allows neither read nor write");
    ++leaves;
    if (!(e & kHuge)) return arith::range_after(i).next;
    IOAS_CHECK(cfg_.pgsize_bitmap & kHugeSize, "huge slot " + hex(iova) + " in a table without 1M pages");
    IOAS_CHECK(huge_head(i) == i && arith::is_aligned(entry_pa(e), kHugeSize),
               "huge leaf at " + hex(iova) + " is not 1M aligned");
    const u64* leaf_slots = slots_.block(i);
    for (u64 k = 0; k < kSlotsPerHuge; ++k) {
      IOAS_CHECK((leaf_slots[k] & kHuge) && pfn_of(leaf_slots[k]) == pfn_after(e, k) &&
                     ((leaf_slots[k] ^ e) & kPermBits) == 0,
                 "huge leaf at " + hex(iova) + " is not 512 contiguous slots of one permission");
    }
    return next_huge(i);
  });
  return leaves;
}

std::vector<u64> MockTable::image() const {
  std::vector<u64> out;
  slots_.scan(0, slot_of(kMaxIova), [&](u64 i, u64 e) {
    out.push_back(i);
    out.push_back(e);
    return arith::range_after(i).next;
  });
  return out;
}

u64 MockTable::table_pages() const {
  u64 nodes = 0;
  u64 prev = 0;
  slots_.scan(0, slot_of(kMaxIova), [&](u64 i, u64) {
    // An xarray leaf node holds 2^6 slots.
    const u64 node = arith::page_number(i, 6);
    if (nodes == 0 || node != prev) ++nodes;
    prev = node;
    return arith::range_after(i).next;
  });
  return nodes;
}

std::unique_ptr<PageTable> MockTable::clone_onto(PageMemory& mem) const {
  std::unique_ptr<MockTable> c(new MockTable(cfg_, mem));
  c->slots_ = slots_;
  c->stats_ = stats_;
  return c;
}

}  // namespace ioas::hw
