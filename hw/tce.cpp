// hw/tce.cpp: the POWER TCE table (see tce.hpp).
#include "tce.hpp"

#include <bit>
#include <cstdio>
#include <cstdlib>

#include "pt_arith.hpp"

namespace ioas::hw {
namespace {
std::string hex(u64 v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}
}  // namespace

TceTable::TceTable(const TableConfig& cfg, PageMemory& mem, unsigned shift)
    : PageTable(cfg, mem),
      shift_(shift),
      offset_(cfg.aperture.start >> shift),
      entries_((cfg.aperture.last - cfg.aperture.start + 1) >> shift) {}

TceTable::~TceTable() {
  for (u64 pa : pages_) mem_.free_page(pa);
}

Result<std::unique_ptr<TceTable>> TceTable::create(const TableConfig& cfg, PageMemory& mem) {
  const u64 ps = cfg.pgsize_bitmap;
  if (ps < k4K || !std::has_single_bit(ps))
    return make_error(EINVAL, "tce: page size " + hex(ps) + " must be one power of two >= 4K");
  const unsigned shift = static_cast<unsigned>(std::countr_zero(ps));
  const Range w = cfg.aperture;
  if (!w.valid() || (w.start & (ps - 1)) != 0 || ((w.last + 1) & (ps - 1)) != 0 || w.last == kMaxIova)
    return make_error(EINVAL, "tce: window " + to_string(w) + " is not whole " + hex(ps) + " pages");
  std::unique_ptr<TceTable> t(new TceTable(cfg, mem, shift));
  const u64 npages = (t->entries_ + 511) / 512;
  for (u64 i = 0; i < npages; ++i) {
    auto pa = mem.alloc_page();
    if (!pa) return make_error(ENOMEM, "tce: out of memory for the TCE array");  // ~TceTable frees
    t->pages_.push_back(*pa);
    ++t->stats_.table_allocs;
  }
  t->userspace_.assign(t->entries_, 0);
  t->dirty_.assign(t->entries_, 0);
  return t;
}

Status TceTable::map(const MapArgs& a, IotlbGather* g) {
  auto what = [&] { return "map " + hex(a.iova) + "+" + hex(a.len); };
  const u64 ps = u64{1} << shift_;
  if (a.len == 0) return make_error(EINVAL, what() + ": length 0");
  if (a.prot != Prot::kRead && a.prot != Prot::kReadWrite)
    return make_error(EINVAL, what() + ": permission must be r or rw");
  if (a.pgsizes != 0 && a.pgsizes != ps)
    return make_error(EINVAL, what() + ": tce has the one page size " + hex(ps));
  if (((a.iova | a.pa | a.len) & (ps - 1)) != 0)
    return make_error(EINVAL, what() + " pa " + hex(a.pa) + ": not aligned to the TCE page size " + hex(ps));
  auto end = ioas::arith::range_last(a.iova, a.len);
  auto pend = ioas::arith::range_last(a.pa, a.len);
  if (end.overflow || !cfg_.aperture.contains(Range{a.iova, end.last}))
    return make_error(ERANGE, what() + ": outside the DMA window " + to_string(cfg_.aperture));
  if (pend.overflow) return make_error(ERANGE, what() + ": physical address passes 2^64-1");
  const u64 first = arith::tce_slot(a.iova, shift_, offset_, entries_).index;
  const u64 n = a.len >> shift_;
  // Refuse an overlap before writing anything (the kernel's xchg would
  // silently replace; SPEC refuses).
  for (u64 k = 0; k < n; ++k)
    if (*slot_ptr(first + k) != 0)
      return make_error(EEXIST, what() + ": " + hex(a.iova + (k << shift_)) + " is already mapped");
  const u64 perm = tce::kRead | (a.prot == Prot::kReadWrite ? tce::kWrite : 0);
  for (u64 k = 0; k < n; ++k) {
    *slot_ptr(first + k) = tce::to_be(((a.pa + (k << shift_)) & ~(ps - 1)) | perm);
    userspace_[first + k] = tce::to_be(a.uaddr + (k << shift_));
    dirty_[first + k] = 0;
  }
  stats_.leaf_writes += n;
  IotlbGather local(tlb_, mem_);
  (g ? *g : local).add_range(a.iova, a.len);  // tce_kill for the whole range
  return ok_status();
}

Result<u64> TceTable::unmap(u64 iova, u64 len, IotlbGather* g) {
  auto what = [&] { return "unmap " + hex(iova) + "+" + hex(len); };
  const u64 ps = u64{1} << shift_;
  if (len == 0) return make_error(EINVAL, what() + ": length 0");
  if (((iova | len) & (ps - 1)) != 0)
    return make_error(EINVAL, what() + ": not aligned to the TCE page size " + hex(ps));
  auto end = ioas::arith::range_last(iova, len);
  if (end.overflow) return make_error(EOVERFLOW, what() + ": passes 2^64-1");
  const Range r{std::max(iova, cfg_.aperture.start), std::min(end.last, cfg_.aperture.last)};
  if (!r.valid()) return u64{0};
  IotlbGather local(tlb_, mem_);
  IotlbGather& gather = g ? *g : local;
  u64 unmapped = 0;
  const u64 first = arith::tce_slot(r.start, shift_, offset_, entries_).index;
  const u64 last = arith::tce_slot(r.last, shift_, offset_, entries_).index;
  for (u64 s = first; s <= last; ++s) {
    u64* e = slot_ptr(s);
    if (*e == 0) continue;
    *e = 0;
    userspace_[s] = 0;
    dirty_[s] = 0;
    unmapped += ps;
    gather.add_range((offset_ + s) << shift_, ps);
  }
  return unmapped;
}

std::optional<Translation> TceTable::translate(u64 iova) const {
  auto slot = arith::tce_slot(iova, shift_, offset_, entries_);
  if (!slot.inside) return std::nullopt;
  const u64 e = tce::from_be(*slot_ptr(slot.index));
  if ((e & (tce::kRead | tce::kWrite)) == 0) return std::nullopt;
  const u64 ps = u64{1} << shift_;
  return Translation{(e & ~(ps - 1)) | (iova & (ps - 1)),
                     (e & tce::kWrite) ? Prot::kReadWrite : Prot::kRead};
}

std::optional<u64> TceTable::uaddr(u64 iova) const {
  auto slot = arith::tce_slot(iova, shift_, offset_, entries_);
  if (!slot.inside || *slot_ptr(slot.index) == 0) return std::nullopt;
  return tce::from_be(userspace_[slot.index]) + (iova & ((u64{1} << shift_) - 1));
}

u64 TceTable::read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep, IotlbGather* g) {
  const Range w{std::max(r.start, cfg_.aperture.start), std::min(r.last, cfg_.aperture.last)};
  if (!r.valid() || !w.valid()) return 0;
  const u64 ps = u64{1} << shift_;
  u64 n = 0;
  IotlbGather local(tlb_, mem_);
  IotlbGather& gather = g ? *g : local;
  const u64 first = arith::tce_slot(w.start, shift_, offset_, entries_).index;
  const u64 last = arith::tce_slot(w.last, shift_, offset_, entries_).index;
  for (u64 s = first; s <= last; ++s) {
    if (!dirty_[s]) continue;
    ++n;
    const u64 base = (offset_ + s) << shift_;
    if (bitmap) bitmap->record(Range{std::max(base, r.start), std::min(base + (ps - 1), r.last)});
    if (!keep) {
      dirty_[s] = 0;
      gather.add_range(base, ps);
    }
  }
  return n;
}

void TceTable::for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const {
  const Range w{std::max(r.start, cfg_.aperture.start), std::min(r.last, cfg_.aperture.last)};
  if (!r.valid() || !w.valid()) return;
  const u64 ps = u64{1} << shift_;
  const u64 first = arith::tce_slot(w.start, shift_, offset_, entries_).index;
  const u64 last = arith::tce_slot(w.last, shift_, offset_, entries_).index;
  for (u64 s = first; s <= last; ++s) {
    const u64 e = tce::from_be(*slot_ptr(s));
    if (e == 0) continue;
    f(Leaf{(offset_ + s) << shift_, ps, e & ~(ps - 1),
           (e & tce::kWrite) ? Prot::kReadWrite : Prot::kRead, true, dirty_[s] != 0});
  }
}

u64 TceTable::verify() const {
  const u64 ps = u64{1} << shift_;
  u64 n = 0;
  for (u64 s = 0; s < entries_; ++s) {
    const u64 e = tce::from_be(*slot_ptr(s));
    const char* bad = nullptr;
    if (e == 0) {
      if (dirty_[s]) bad = "dirty bit on an empty TCE";
      if (userspace_[s] != 0) bad = "userspace view on an empty TCE";
    } else {
      ++n;
      if (!(e & tce::kRead)) bad = "TCE without READ (write-only is never made)";
      if ((e & (ps - 1) & ~(tce::kRead | tce::kWrite)) != 0) bad = "TCE address not page aligned";
      if (dirty_[s] && !(e & tce::kWrite)) bad = "dirty bit on a read-only TCE";
    }
    if (bad) {
      std::fprintf(stderr, "hw tce verify: slot %llu: %s\n", static_cast<unsigned long long>(s), bad);
      std::abort();
    }
  }
  return n;
}

std::vector<u64> TceTable::image() const {
  std::vector<u64> out;
  for (u64 pa : pages_) {
    out.push_back(pa);
    const u64* p = mem_.page(pa);
    out.insert(out.end(), p, p + 512);
  }
  out.insert(out.end(), userspace_.begin(), userspace_.end());
  for (auto d : dirty_) out.push_back(d);
  return out;
}

}  // namespace ioas::hw
