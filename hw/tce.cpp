// hw/tce.cpp: the POWER TCE table (see tce.hpp).
#include "tce.hpp"

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "ioas/arith.hpp"
#include "ioas/core/check.hpp"
#include "ioas/core/text.hpp"

namespace ioas::hw {
namespace {

constexpr u64 kPerm = tce::kRead | tce::kWrite;
static_assert(kPerm == arith::kTcePermBits);
constexpr unsigned kEntries = 1u << formats::tce::kLevelBits;  // per level page

inline unsigned index_at(u64 slot, unsigned level) { return static_cast<unsigned>(arith::tce_level_index(slot, level)); }
// The next level's page of an indirect entry.
u64 next_table(u64 e) { return arith::align_down(e, kGranule); }

}  // namespace

u64 TceTable::encode(u64 pa, unsigned shift, Prot prot) {
  // TCE_PCI_READ and TCE_PCI_WRITE apart: prot w is a write-only entry.
  const u64 perm = (prot_reads(prot) ? tce::kRead : 0) | (prot_writes(prot) ? tce::kWrite : 0);
  return arith::tce_encode_addr(pa, shift) | perm;
}

Prot TceTable::perm_prot(u64 e) {
  const bool r = e & tce::kRead, w = e & tce::kWrite;
  return r && w ? Prot::kReadWrite : r ? Prot::kRead : w ? Prot::kWrite : Prot::kNone;
}

u64 TceTable::decode(u64 e, unsigned shift) {
  return arith::tce_decode_addr(e, shift);
}

TceTable::TceTable(const TableConfig& cfg, PageMemory& mem, unsigned shift)
    : PageTable(cfg, mem),
      shift_(shift),
      offset_(arith::page_number(cfg.aperture.start, shift)),
      last_index_(arith::tce_slot(cfg.aperture.last, shift, offset_, ~u64{0}).index),
      levels_(static_cast<unsigned>(arith::tce_levels(last_index_))) {}

TceTable::~TceTable() {
  if (root_) free_tree(root_, levels_ - 1);
  if (uroot_) free_tree(uroot_, levels_ - 1);
}

void TceTable::free_tree(u64 table, unsigned level) {
  if (level > 0) {
    const u64* t = mem_.page(table);
    for (unsigned i = 0; i < kEntries; ++i)
      if (const u64 e = tce::from_be(t[i]); e != 0) free_tree(next_table(e), level - 1);
  }
  mem_.free_page(table);
}

Result<std::unique_ptr<TceTable>> TceTable::create(const TableConfig& cfg, PageMemory& mem) {
  const u64 ps = cfg.pgsize_bitmap;
  if (!arith::is_pow2(ps)) return make_error(EINVAL, "tce: page size " + hex(ps) + " must be one power of two");
  const unsigned shift = static_cast<unsigned>(arith::log2_pow2(ps));
  const Range w = cfg.aperture;
  if (!w.valid() || !arith::is_aligned(w.start, ps) || !arith::is_aligned(arith::range_after(w.last).next, ps))
    return make_error(EINVAL, "tce: window " + to_string(w) + " is not whole " + hex(ps) + " pages");
  std::unique_ptr<TceTable> t(new TceTable(cfg, mem, shift));
  for (u64* root : {&t->root_, &t->uroot_}) {
    auto pa = mem.alloc_page();
    if (!pa) return make_error(ENOMEM, "tce: out of memory for the top-level TCE page");  // ~TceTable frees
    *root = *pa;
    ++t->stats_.table_allocs;
  }
  return t;
}

std::unique_ptr<PageTable> TceTable::clone_onto(PageMemory& mem) const {
  std::unique_ptr<TceTable> t(new TceTable(cfg_, mem, shift_));
  t->root_ = root_;
  t->uroot_ = uroot_;
  t->dirty_ = dirty_;
  t->stats_ = stats_;
  return t;
}

u64* TceTable::find(u64 root, u64 slot) const {
  u64 table = root;
  for (unsigned l = levels_ - 1; l > 0; --l) {
    const u64 e = tce::from_be(load_word(mem_.page(table) + index_at(slot, l)));
    if (e == 0) return nullptr;
    table = next_table(e);
  }
  return mem_.page(table) + index_at(slot, 0);
}

u64* TceTable::ensure(u64 root, u64 slot, Journal& j) {
  u64 table = root;
  for (unsigned l = levels_ - 1; l > 0; --l) {
    u64* p = mem_.page(table) + index_at(slot, l);
    if (*p == 0) {
      // Room in the journal first: a page taken is always recorded.
      j.allocated.reserve(j.allocated.size() + 1);
      j.linked.reserve(j.linked.size() + 1);
      auto pa = mem_.alloc_page();
      if (!pa) return nullptr;
      j.allocated.push_back(*pa);
      ++stats_.table_allocs;
      store_link(p, tce::to_be(*pa | kPerm));
      j.linked.push_back(p);
    }
    table = next_table(tce::from_be(*p));
  }
  return mem_.page(table) + index_at(slot, 0);
}

template <class F>
void TceTable::visit_beside(u64 table, u64* beside, unsigned level, u64 base, u64 first, u64 last,
                            F&& f) const {
  u64* t = mem_.page(table);
  // first past base lies in this table: its index here.
  const u64 i0 = first > base ? index_at(first, level) : 0;
  const u64 i1 = arith::tce_level_last(base, last, level);
  for (u64 i = i0; i <= i1; ++i) {
    if (t[i] == 0) continue;
    const u64 slot = arith::tce_entry_first(base, i, level);
    if (level == 0) {
      f(slot, &t[i], beside ? &beside[i] : nullptr);
    } else {
      u64* below = beside && beside[i] != 0 ? mem_.page(next_table(tce::from_be(beside[i]))) : nullptr;
      visit_beside(next_table(tce::from_be(t[i])), below, level - 1, slot, first, last, f);
    }
  }
}

template <class F>
void TceTable::visit(u64 table, unsigned level, u64 base, u64 first, u64 last, F&& f) const {
  visit_beside(table, nullptr, level, base, first, last, [&](u64 slot, u64* e, u64*) { f(slot, e); });
}

template <class F>
void TceTable::visit_pages(u64 table, unsigned level, F&& f) const {
  f(table, level);
  if (level == 0) return;
  const u64* t = mem_.page(table);
  for (unsigned i = 0; i < kEntries; ++i)
    if (t[i] != 0) visit_pages(next_table(tce::from_be(t[i])), level - 1, f);
}

u64 TceTable::raw_entry(u64 slot) const {
  const u64* e = slot <= last_index_ ? find(root_, slot) : nullptr;
  return e ? load_word(e) : 0;
}

Status TceTable::map(const MapArgs& a, IotlbGather* g) {
  auto what = [&] { return "map " + hex(a.iova) + "+" + hex(a.len); };
  const u64 ps = arith::page_size(u64{0}, shift_);
  if (a.len == 0) return make_error(EINVAL, what() + ": length 0");
  if (a.prot == Prot::kNone) return make_error(EINVAL, what() + ": permission must be r, w or rw");
  if (a.pgsizes != 0 && a.pgsizes != ps)
    return make_error(EINVAL, what() + ": tce has the one page size " + hex(ps));
  if (!arith::is_aligned(a.iova | a.pa | a.len, ps))
    return make_error(EINVAL, what() + " pa " + hex(a.pa) + ": not aligned to the TCE page size " + hex(ps));
  auto end = ioas::arith::range_last(a.iova, a.len);
  auto pend = ioas::arith::range_last(a.pa, a.len);
  if (end.overflow || !cfg_.aperture.contains(Range{a.iova, end.last}))
    return make_error(ERANGE, what() + ": outside the DMA window " + to_string(cfg_.aperture));
  if (pend.overflow || pend.last > kMaxOa)
    return make_error(ERANGE, what() + ": physical range passes the TCE address size (52 bits)");
  const u64 first = slot_of(a.iova);
  const u64 last = slot_of(end.last);
  // Refuse an overlap before writing anything (the kernel's xchg would
  // silently replace; SPEC refuses).
  std::optional<u64> busy;
  visit(root_, levels_ - 1, 0, first, last, [&](u64 slot, const u64* e) {
    if (!busy && *e != 0) busy = slot;
  });
  if (busy) return make_error(EEXIST, what() + ": " + hex(arith::tce_bus_addr(*busy, shift_, offset_)) + " is already mapped");
  // Allocate every absent page first, so nothing is written on ENOMEM.
  Journal j;
  for (u64 s = first;; s = arith::range_after(arith::tce_table_last(s)).next) {
    bool ok = false;
    try {
      ok = ensure(root_, s, j) && ensure(uroot_, s, j);
    } catch (const std::bad_alloc&) {
    }
    if (!ok) {
      for (u64* p : j.linked) store_link(p, 0);
      for (u64 pa : j.allocated) mem_.free_page(pa);
      stats_.table_allocs -= j.allocated.size();
      return make_error(ENOMEM, what() + ": out of memory for a TCE page");
    }
    if (arith::tce_table_last(s) >= last) break;
  }
  u64* e = nullptr;
  u64* u = nullptr;
  for (u64 s = first, k = 0;; ++s, ++k) {
    if (!e || index_at(s, 0) == 0) {
      e = find(root_, s);
      u = find(uroot_, s);
    } else {
      ++e;
      ++u;
    }
    store_leaf(e, tce::to_be(encode(arith::page_advance(a.pa, k, shift_), shift_, a.prot)));
    store_leaf(u, tce::to_be(arith::page_advance(a.uaddr, k, shift_)));
    if (s == last) break;
  }
  dirty_.erase(dirty_.lower_bound(first), dirty_.upper_bound(last));
  stats_.leaf_writes += arith::range_length(first, last);
  IotlbGather local(tlb_, mem_);
  (g ? *g : local).add_range(a.iova, a.len);  // tce_kill for the whole range
  return ok_status();
}

Result<u64> TceTable::unmap(u64 iova, u64 len, IotlbGather* g) {
  auto what = [&] { return "unmap " + hex(iova) + "+" + hex(len); };
  const u64 ps = arith::page_size(u64{0}, shift_);
  if (len == 0) return make_error(EINVAL, what() + ": length 0");
  if (!arith::is_aligned(iova | len, ps))
    return make_error(EINVAL, what() + ": not aligned to the TCE page size " + hex(ps));
  auto end = ioas::arith::range_last(iova, len);
  if (end.overflow) return make_error(EOVERFLOW, what() + ": passes 2^64-1");
  const Range r = Range{iova, end.last}.intersect(cfg_.aperture);
  if (!r.valid()) return u64{0};
  IotlbGather local(tlb_, mem_);
  IotlbGather& gather = g ? *g : local;
  u64 unmapped = 0;
  visit_beside(root_, mem_.page(uroot_), levels_ - 1, 0, slot_of(r.start), slot_of(r.last),
               [&](u64 slot, u64* e, u64* u) {
    store_leaf(e, 0);
    store_leaf(u, 0);
    if (!dirty_.empty()) dirty_.erase(slot);
    unmapped += ps;
    gather.add_range(arith::tce_bus_addr(slot, shift_, offset_), ps);
  });
  return unmapped;
}

std::optional<u64> TceTable::window_slot(u64 iova) const {
  // tce_slot's window holds it_size = last_index_ + 1 entries, which is 2^64
  // for a 64-bit window of 1-byte pages: the last slot is tested apart.
  const auto s = arith::tce_slot(iova, shift_, offset_, last_index_);
  if (s.inside || (s.index == last_index_ && offset_ <= arith::page_number(iova, shift_))) return s.index;
  return std::nullopt;
}

u64 TceTable::slot_of(u64 iova) const { return arith::tce_slot(iova, shift_, offset_, last_index_).index; }

std::optional<Translation> TceTable::translate(u64 iova) const {
  const auto slot = window_slot(iova);
  if (!slot) return std::nullopt;
  const u64 e = tce::from_be(raw_entry(*slot));
  if ((e & kPerm) == 0) return std::nullopt;
  return Translation{decode(e, shift_) | arith::page_offset(iova, shift_), perm_prot(e)};
}

std::optional<u64> TceTable::uaddr(u64 iova) const {
  const auto slot = window_slot(iova);
  if (!slot || raw_entry(*slot) == 0) return std::nullopt;
  return arith::run_addr(tce::from_be(*find(uroot_, *slot)), arith::tce_bus_addr(*slot, shift_, offset_), iova);
}

void TceTable::mark_dirty(u64 slot) {
  if (dirty_.contains(slot)) return;
  if (spare_dirty_.empty()) {
    dirty_.insert(slot);
    return;
  }
  auto node = std::move(spare_dirty_.back());
  spare_dirty_.pop_back();
  node.value() = slot;
  dirty_.insert(std::move(node));
}

void TceTable::reserve_dirty(Range r) {
  const Range w = r.intersect(cfg_.aperture);
  if (!r.valid() || !w.valid()) return;
  std::size_t n = 0;
  visit(root_, levels_ - 1, 0, slot_of(w.start), slot_of(w.last),
        [&](u64 slot, const u64* e) {
          if ((tce::from_be(*e) & tce::kWrite) && !dirty_.contains(slot)) ++n;
        });
  spare_dirty_.reserve(n);
  std::set<u64> scratch;
  while (spare_dirty_.size() < n) {
    scratch.insert(0);
    spare_dirty_.push_back(scratch.extract(scratch.begin()));
  }
}

u64 TceTable::read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep, IotlbGather* g) {
  const Range w = r.intersect(cfg_.aperture);
  if (!r.valid() || !w.valid()) return 0;
  const u64 ps = arith::page_size(u64{0}, shift_);
  u64 n = 0;
  IotlbGather local(tlb_, mem_);
  IotlbGather& gather = g ? *g : local;
  const u64 first = slot_of(w.start), last = slot_of(w.last);
  for (auto it = dirty_.lower_bound(first); it != dirty_.end() && *it <= last;) {
    ++n;
    const u64 base = arith::tce_bus_addr(*it, shift_, offset_);
    if (bitmap) bitmap->record(Range{base, arith::range_last(base, ps).last}.intersect(r));
    if (keep) {
      ++it;
    } else {
      gather.add_range(base, ps);
      it = dirty_.erase(it);
    }
  }
  return n;
}

void TceTable::for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const {
  const Range w = r.intersect(cfg_.aperture);
  if (!r.valid() || !w.valid()) return;
  const u64 ps = arith::page_size(u64{0}, shift_);
  // The user addresses beside, in the same pass (what uaddr() reads).
  visit_beside(root_, mem_.page(uroot_), levels_ - 1, 0, slot_of(w.start), slot_of(w.last),
               [&](u64 slot, const u64* p, const u64* u) {
                 const u64 e = tce::from_be(*p);
                 f(Leaf{arith::tce_bus_addr(slot, shift_, offset_), ps, decode(e, shift_), perm_prot(e), true,
                        dirty_.contains(slot), u ? std::optional<u64>(tce::from_be(*u)) : std::nullopt});
               });
}

u64 TceTable::verify() const {
  const u64 ps = arith::page_size(u64{0}, shift_);
  for (u64 root : {root_, uroot_}) {
    visit_pages(root, levels_ - 1, [&](u64 table, unsigned level) {
      const u64* t = mem_.page(table);
      IOAS_CHECK(t, "a table entry points outside the table's memory: " + hex(table));
      if (level == 0) return;
      for (unsigned i = 0; i < kEntries; ++i) {
        const u64 e = tce::from_be(t[i]);
        IOAS_CHECK(e == 0 || ((e & kPerm) == kPerm && mem_.page(next_table(e))),
                   "indirect entry " + hex(e) + " at level " + std::to_string(level));
      }
    });
  }
  u64 n = 0;
  visit(root_, levels_ - 1, 0, 0, last_index_, [&](u64 slot, const u64* p) {
    const u64 e = tce::from_be(*p);
    ++n;
    IOAS_CHECK(e & kPerm, "slot " + std::to_string(slot) + ": TCE with neither READ nor WRITE");
    IOAS_CHECK(shift_ < 2 || arith::is_aligned(arith::tce_addr_field(e), ps), "slot " + std::to_string(slot) + ": address not page aligned");
    IOAS_CHECK(decode(e, shift_) <= kMaxOa, "slot " + std::to_string(slot) + ": address beyond 52 bits");
  });
  visit_beside(uroot_, mem_.page(root_), levels_ - 1, 0, 0, last_index_, [&](u64 slot, const u64*, const u64* e) {
    IOAS_CHECK(e && *e != 0, "slot " + std::to_string(slot) + ": userspace view on an empty TCE");
  });
  for (u64 slot : dirty_) {
    const u64 e = tce::from_be(raw_entry(slot));
    IOAS_CHECK(e != 0, "slot " + std::to_string(slot) + ": dirty bit on an empty TCE");
    IOAS_CHECK(e & tce::kWrite, "slot " + std::to_string(slot) + ": dirty bit on a read-only TCE");
  }
  return n;
}

std::vector<u64> TceTable::image() const {
  std::vector<u64> out;
  for (u64 root : {root_, uroot_}) {
    visit_pages(root, levels_ - 1, [&](u64 table, unsigned) {
      out.push_back(table);
      const u64* p = mem_.page(table);
      out.insert(out.end(), p, p + kEntries);
    });
  }
  out.insert(out.end(), dirty_.begin(), dirty_.end());
  return out;
}

u64 TceTable::table_pages() const {
  u64 n = 0;
  for (u64 root : {root_, uroot_}) visit_pages(root, levels_ - 1, [&](u64, unsigned) { ++n; });
  return n;
}

}  // namespace ioas::hw
