// hw/walker.cpp: the software IOMMU (see walker.hpp).
#include "walker.hpp"

#include "formats.hpp"
#include "ioas/arith.hpp"
#include "mock.hpp"
#include "tce.hpp"

namespace ioas::hw {

const char* to_string(Fault f) {
  switch (f) {
    case Fault::kNone: return "none";
    case Fault::kNotPresent: return "not-present";
    case Fault::kReadOnly: return "read-only";
    case Fault::kReserved: return "reserved";
    case Fault::kOutOfRange: return "out-of-range";
  }
  return "?";
}

namespace {
// Walk step s reads the table at level kRadixTopLevel - s (s = 0: the top
// table, bits 47:39).
unsigned step_level(int s) { return static_cast<unsigned>(formats::kRadixTopLevel - s); }
unsigned step_index(u64 iova, int s) { return static_cast<unsigned>(arith::pt_index(iova, step_level(s))); }
u64 step_size(int s) { return arith::pt_block_size(u64{0}, step_level(s)); }
// A hit on a leaf of `size` bytes whose address field is `oa` (bits below
// the size ignored); `writes`: whether a write finds no fault.
WalkResult leaf_result(u64 oa, u64 iova, u64 size, bool writes) {
  return WalkResult{Fault::kNone, arith::align_down(oa, size) | arith::align_offset(iova, size),
                    arith::align_down(iova, size), size, writes};
}
// What a look keeps after walk step s led to `table` (step s + 1 reads it):
// the IOVA bits that chose it are those of steps 0..s.
WalkCache remember(const PageMemory& mem, u64 iova, int s, u64 table, bool writable) {
  const unsigned shift = static_cast<unsigned>(arith::log2_pow2(step_size(s)));
  return WalkCache{true, shift, arith::page_number(iova, shift), s + 1, table, mem.page(table), writable};
}
// A look whose cached table holds its leaf (a listing's usual case, leaf
// after leaf of one table): that entry alone, as the full walk reads it at
// its first step. False when the cache does not hold iova's table or the
// entry there is not a leaf (the full walk decides then). No write fault:
// `writes` says whether a write would find one.
[[gnu::always_inline]] inline bool x86_cached_leaf(const WalkCache& c, u64 iova, WalkResult& out) {
  if (!c.valid || !c.page || arith::page_number(iova, c.shift) != c.tag) return false;
  const int s = c.step;  // >= 1: a cached table is below the top
  const u64 e = c.page[step_index(iova, s)];
  if (!(e & x86::kP) || !(s == 3 || (e & x86::kPS))) return false;
  out = leaf_result(x86::Fmt::addr(e), iova, step_size(s), c.writable && (e & x86::kRW));
  return true;
}
// The same for arm-lpae: a valid block at levels 1-2 or a page at level 3
// (anything else there: the full walk's table step or fault).
[[gnu::always_inline]] inline bool arm_cached_leaf(const WalkCache& c, u64 iova, WalkResult& out) {
  if (!c.valid || !c.page || arith::page_number(iova, c.shift) != c.tag) return false;
  const int s = c.step;  // >= 1: a cached table is below level 0
  const u64 e = c.page[step_index(iova, s)];
  if (!(e & arm::kValid)) return false;
  const u64 type = e & arm::kTypeMask;
  if (s < 3 ? type == arm::kTypeTable : type != arm::kTypePage) return false;
  const bool writes = c.writable && !((e & arm::kApRdonly) && !(e & arm::kDBM));
  out = leaf_result(arm::Fmt::addr(e), iova, step_size(s), writes);
  return true;
}
}  // namespace

WalkResult walk_x86_64(const PageMemory& mem, u64 cr3, u64 iova, bool write, bool update, WalkCache* cache) {
  // A 48-bit IOVA indexes the four levels with bits 47:0, as an IOMMU walks
  // this shape (VT-d second stage, AMD v1, generic_pt's x86_64 without sign
  // extension): the domain's default aperture is all of 0-0xffffffffffff. A
  // CPU (and a VT-d first stage) takes bits 47:0 of a canonical address
  // instead, so IOVAs with bit 47 set are where the CPU's upper half lives;
  // the KVM test only uses the lower half. Beyond 48 bits: out of range.
  if (!arith::pt_in_ias(iova)) return WalkResult{Fault::kOutOfRange};
  // A look whose cached table holds its leaf (a listing's usual case, leaf
  // after leaf of one table): that entry alone, as the loop below reads it
  // at its first step; anything else goes the whole way below.
  if (WalkResult hit; !update && cache && x86_cached_leaf(*cache, iova, hit)) {
    if (write && !hit.writes) return WalkResult{Fault::kReadOnly};
    return hit;
  }
  u64 table = x86::Fmt::addr(cr3);
  bool writable = true;
  u64* used[4];
  if (update) cache = nullptr;  // the levels above are written: each walk reads them
  int first = 0;
  u64* first_page = nullptr;
  if (cache && cache->valid && arith::page_number(iova, cache->shift) == cache->tag) {
    first = cache->step;
    table = cache->table;
    first_page = cache->page;
    writable = cache->writable;
  }
  for (int s = first; s < 4; ++s) {
    u64* t = s == first && first_page ? first_page : mem.page(table);
    if (!t) return WalkResult{Fault::kReserved};
    u64* e = &t[step_index(iova, s)];
    if (!(*e & x86::kP)) return WalkResult{Fault::kNotPresent};
    used[s] = e;
    writable = writable && (*e & x86::kRW);
    const bool leaf = s == 3 || (s > 0 && (*e & x86::kPS));
    if (s == 0 && (*e & x86::kPS)) return WalkResult{Fault::kReserved};
    if (!leaf) {
      table = x86::Fmt::addr(*e);
      if (cache) *cache = remember(mem, iova, s, table, writable);
      continue;
    }
    if (write && !writable) return WalkResult{Fault::kReadOnly};
    const u64 size = step_size(s);
    if (update) {
      for (int k = 0; k <= s; ++k) or_word(used[k], x86::kA);
      if (write) or_word(e, x86::kD);
    }
    return leaf_result(x86::Fmt::addr(*e), iova, size, writable);
  }
  return WalkResult{Fault::kReserved};
}

WalkResult walk_arm_lpae(const PageMemory& mem, u64 ttbr, u64 iova, bool write, bool update, WalkCache* cache) {
  // TTBR0 with T0SZ = 16: a 48-bit input; anything above faults.
  if (!arith::pt_in_ias(iova)) return WalkResult{Fault::kOutOfRange};
  u64 table = arm::Fmt::addr(ttbr);
  bool no_write = false;
  if (update) cache = nullptr;  // AF is set in the leaf only, but keep each updating walk whole
  int first = 0;
  u64* first_page = nullptr;
  if (cache && cache->valid && arith::page_number(iova, cache->shift) == cache->tag) {
    first = cache->step;
    table = cache->table;
    first_page = cache->page;
    no_write = !cache->writable;
  }
  for (int s = first; s < 4; ++s) {  // s = ARM level 0..3
    u64* t = s == first && first_page ? first_page : mem.page(table);
    if (!t) return WalkResult{Fault::kReserved};
    u64* e = &t[step_index(iova, s)];
    const u64 type = *e & arm::kTypeMask;
    if (!(*e & arm::kValid)) return WalkResult{Fault::kNotPresent};
    if (s < 3 && type == arm::kTypeTable) {
      no_write = no_write || (*e & arm::kApTableNoWrite);
      table = arm::Fmt::addr(*e);
      if (cache) *cache = remember(mem, iova, s, table, !no_write);
      continue;
    }
    // A block at ARM level 0 (4K granule) or the block encoding at level 3
    // is a translation fault.
    if (s == 0 || (s == 3 && type != arm::kTypePage)) return WalkResult{Fault::kNotPresent};
    const u64 size = step_size(s);
    const bool writes = !no_write && !((*e & arm::kApRdonly) && !(*e & arm::kDBM));
    if (write && !writes) return WalkResult{Fault::kReadOnly};
    if (update) {
      or_word(e, arm::kAF);
      if (write) and_word(e, ~arm::kApRdonly);  // writable-clean -> writable-dirty
    }
    return leaf_result(arm::Fmt::addr(*e), iova, size, writes);
  }
  return WalkResult{Fault::kReserved};
}

WalkResult walk_tce(TceTable& t, u64 iova, bool write, bool update, WalkCache* cache) {
  const unsigned shift = t.page_shift();
  const std::optional<u64> in_window = t.window_slot(iova);
  if (!in_window) return WalkResult{Fault::kOutOfRange};
  const u64 slot = *in_window;
  // Down the indirect levels from the root, as the host bridge fetches them;
  // a look whose slot shares the upper indexes with the last one starts at
  // the last level's table (the cache's tag is the slot's upper bits).
  const PageMemory& mem = t.memory();
  u64 table = t.root();
  if (update) cache = nullptr;
  const unsigned tag_shift = arith::kTceLevelBits;
  const bool hit = cache && cache->valid && cache->shift == tag_shift &&
                   arith::page_number(slot, tag_shift) == cache->tag;
  std::uint64_t* leaf_page = nullptr;
  if (hit) {
    table = cache->table;
    leaf_page = cache->page;
  }
  for (unsigned l = t.levels() - 1; l > 0 && !hit; --l) {
    const std::uint64_t* p = mem.page(table);
    if (!p) return WalkResult{Fault::kReserved};
    const u64 e = tce::from_be(p[arith::tce_level_index(slot, l)]);
    if ((e & (tce::kRead | tce::kWrite)) == 0) return WalkResult{Fault::kNotPresent};
    table = arith::align_down(e, kGranule);
  }
  if (!leaf_page) leaf_page = mem.page(table);
  if (cache && !hit)
    *cache = WalkCache{true, tag_shift, arith::page_number(slot, tag_shift), 0, table, leaf_page, true};
  const std::uint64_t* p = leaf_page;
  if (!p) return WalkResult{Fault::kReserved};
  const u64 e = tce::from_be(p[arith::tce_level_index(slot, 0)]);
  if ((e & (tce::kRead | tce::kWrite)) == 0) return WalkResult{Fault::kNotPresent};
  if (write ? !(e & tce::kWrite) : !(e & tce::kRead)) return WalkResult{Fault::kReadOnly};
  if (update && write) t.mark_dirty(slot);
  return leaf_result(TceTable::decode(e, shift), iova, arith::page_size(u64{0}, shift), (e & tce::kWrite) != 0);
}

WalkResult walk_mock(MockTable& t, u64 iova, bool write, bool update, WalkCache* cache) {
  if (!t.config().aperture.contains(iova)) return WalkResult{Fault::kOutOfRange};
  if (update) cache = nullptr;
  // The cache's tag is the slot's block (MockSlots::kBlockSlots slots); its
  // page, the block's entries (none: every slot of the block is empty).
  const unsigned tag_shift = MockTable::kSlotShift + MockSlots::kBlockShift;
  if (cache && !(cache->valid && cache->shift == tag_shift && cache->tag == arith::page_number(iova, tag_shift)))
    *cache = WalkCache{true, tag_shift, arith::page_number(iova, tag_shift), 0, 0,
                       const_cast<std::uint64_t*>(t.entry_block(iova)), true};
  const u64 e = !cache ? t.entry(iova) : cache->page ? cache->page[MockTable::entry_index(iova)] : 0;
  if (!e) return WalkResult{Fault::kNotPresent};
  if (write && !(e & MockTable::kWritable)) return WalkResult{Fault::kReadOnly};
  if (!write && (e & MockTable::kNoRead)) return WalkResult{Fault::kReadOnly};
  if (update && write) t.mark_dirty(iova);
  const u64 size = (e & MockTable::kHuge) ? kMockHugePage : kMockPage;
  return WalkResult{Fault::kNone, MockTable::entry_pa(e) | arith::page_offset(iova, MockTable::kSlotShift),
                    arith::align_down(iova, size), size, (e & MockTable::kWritable) != 0};
}

WalkResult Walker::access(u64 iova, bool write, bool update) {
  switch (pt_.format()) {
    case Format::kX86_64: return walk_x86_64(pt_.memory(), pt_.root(), iova, write, update);
    case Format::kArmLpae: return walk_arm_lpae(pt_.memory(), pt_.root(), iova, write, update);
    case Format::kTce: return walk_tce(static_cast<TceTable&>(pt_), iova, write, update);
    case Format::kMock: return walk_mock(static_cast<MockTable&>(pt_), iova, write, update);
  }
  return WalkResult{Fault::kReserved};
}

WalkResult Walker::look(u64 iova) {
  switch (format_) {
    // The cached-table hit first, here (no call): it is most looks.
    case Format::kX86_64:
      if (WalkResult hit; arith::pt_in_ias(iova) && x86_cached_leaf(cache_, iova, hit)) return hit;
      return walk_x86_64(pt_.memory(), root_, iova, false, false, &cache_);
    case Format::kArmLpae:
      if (WalkResult hit; arith::pt_in_ias(iova) && arm_cached_leaf(cache_, iova, hit)) return hit;
      return walk_arm_lpae(pt_.memory(), root_, iova, false, false, &cache_);
    case Format::kTce: return walk_tce(static_cast<TceTable&>(pt_), iova, false, false, &cache_);
    case Format::kMock: return walk_mock(static_cast<MockTable&>(pt_), iova, false, false, &cache_);
  }
  return WalkResult{Fault::kReserved};
}

DmaOutcome Walker::dma(DmaDir dir, Range r) {
  u64 p = r.start;
  for (;;) {
    const WalkResult w = access(p, dir == DmaDir::kWrite);
    if (w.fault != Fault::kNone) return DmaOutcome{true, p};
    const u64 leaf_last = arith::range_last(w.leaf_iova, w.leaf_size).last;
    if (leaf_last >= r.last) return DmaOutcome{};
    p = arith::range_after(leaf_last).next;
  }
}

}  // namespace ioas::hw
