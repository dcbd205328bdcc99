#include "domain.hpp"

#include <bit>
#include <new>
#include <optional>

#include "ioas/core/check.hpp"
#include "tce.hpp"
#include "ioas/boundary.hpp"
#include "walker.hpp"

namespace ioas::impl {
namespace {
// The runs of leaf_runs one at a time, f(run), allocating nothing; false when
// some step finds no usable size.
template <class F>
bool visit_leaf_runs(Range iova, u64 pa, u64 pgsizes, F&& f) {
  std::optional<LeafRun> run;
  u64 p = iova.start;
  for (;;) {
    // The iommu_pgsize rule itself and the length of its run (ioas/arith.hpp,
    // proved in proofs/) at p and its physical address; rem == 0 (2^64)
    // cannot happen for an area.
    const u64 rem = iova.last - p + 1;
    const u64 q = pa + (p - iova.start);
    const u64 s = arith::iommu_pgsize(pgsizes, p, q, rem);
    if (s == 0) return false;
    const u64 run_last = arith::range_last(p, arith::pgsize_run(pgsizes, s, p, q, rem).bytes).last;
    if (run && run->size == s) {
      run->iova.last = run_last;
    } else {
      if (run) f(*run);
      run = LeafRun{Range{p, run_last}, s};
    }
    if (run_last == iova.last) {
      f(*run);
      return true;
    }
    p = run_last + 1;
  }
}
}  // namespace

// Runs of the iommu_pgsize rule. At IOVA p (physical q = pa + (p - start)),
// a size s is usable iff s | p, s | q and s <= remaining. The rule keeps a
// size S until either the remaining length drops below S or p reaches a
// multiple of the next larger size T that still fits (when p and q are
// equally offset within T); pgsize_count gives that run in O(1).
std::vector<LeafRun> leaf_runs(Range iova, u64 pa, u64 pgsizes) {
  std::vector<LeafRun> runs;
  if (!visit_leaf_runs(iova, pa, pgsizes, [&](const LeafRun& r) { runs.push_back(r); })) return {};
  return runs;
}

// Allocates nothing: unsplit(), an undo, relies on it.
Range leaf_at(const PtMapping& m, u64 x) {
  std::optional<Range> leaf;
  visit_leaf_runs(m.iova, m.pa, m.pgsizes, [&](const LeafRun& r) {
    if (leaf || !r.iova.contains(x)) return;
    // Runs start on a multiple of their size.
    const u64 s = arith::align_down(x, r.size);
    leaf = Range{s, s + (r.size - 1)};
  });
  IOAS_CHECK(leaf.has_value(), "leaf_at: x outside the mapping or mapping has no leaves");
  return *leaf;
}

// ---------------------------------------------------------------- HwPageTable

Result<std::unique_ptr<HwPageTable>> HwPageTable::create(Format fmt, Range aperture, u64 pgsize_bitmap,
                                                         hw::HeapPageMemory& mem) {
  hw::TableConfig cfg;
  cfg.format = fmt;
  cfg.pgsize_bitmap = pgsize_bitmap;
  cfg.aperture = aperture;
  auto t = hw::make_page_table(cfg, mem);
  if (!t.ok()) return t.error();
  return std::unique_ptr<HwPageTable>(new HwPageTable(std::move(t).value(), mem));
}

std::unique_ptr<HwPageTable> HwPageTable::clone_onto(hw::HeapPageMemory& mem) const {
  std::unique_ptr<HwPageTable> c(new HwPageTable(table_->clone_onto(mem), mem));
  c->maps_ = maps_;
  return c;
}

const PtMapping* HwPageTable::holding(u64 x) const {
  auto it = maps_.upper_bound(x);
  if (it == maps_.begin()) return nullptr;
  --it;
  return it->second.iova.contains(x) ? &it->second : nullptr;
}

Status HwPageTable::map(Range iova, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) {
  IOAS_CHECK(!holding(iova.start) && !holding(iova.last), "page table map: overlaps a mapping");
  hw::MapArgs a;
  a.iova = iova.start;
  a.pa = pa;
  a.len = iova.length();
  a.prot = prot;
  a.uaddr = uaddr;
  a.pgsizes = pgsizes;
  Status st = table_->map(a, &gather_);
  if (!st.ok()) {
    // Pages the failed map linked and took back are freed after a flush,
    // as ever: do it now rather than leave them to the next operation.
    gather_.sync();
    IOAS_CHECK(st.code() != EEXIST, "page table map: the table holds leaves where no mapping is");
    if (st.code() == ERANGE) return make_error(EINVAL, st.error().message);
    return st;
  }
  try {
    maps_.emplace(iova.start, PtMapping{iova, pa, prot, pgsizes, uaddr});
  } catch (const std::bad_alloc&) {
    // The mapping list has no room: take the leaves back (an unmap of
    // whole leaves allocates nothing).
    (void)table_->unmap(iova.start, iova.length(), &gather_);
    gather_.sync();
    return out_of_memory();
  }
  return ok_status();
}

void HwPageTable::unmap(Range iova) {
  auto it = maps_.find(iova.start);
  IOAS_CHECK(it != maps_.end() && it->second.iova == iova, "page table unmap: not a mapping");
  auto n = table_->unmap(iova.start, iova.length(), &gather_);
  // Leaves never span two mappings, so nothing is split and nothing fails.
  IOAS_CHECK(n.ok() && *n == iova.length(), "page table unmap: the table did not hold the whole mapping");
  maps_.erase(it);
}

Status HwPageTable::split(u64 last) {
  const PtMapping* m = holding(last);
  IOAS_CHECK(m && m->iova.last != last, "page table split: not inside a mapping");
  // The one leaf that may cross the new boundary is split one size down at
  // a time (a 1G leaf into 2M leaves, then the 2M leaf holding the boundary
  // into 4K ones: one table page per step, not 512), until a leaf ends at
  // `last`. Every other leaf is already what the rule gives for either side
  // (a run from a later start meets the old boundaries at the crossing
  // leaf's end, and the pieces of an aligned leaf are aligned); the merge of
  // each side below only confirms it. On ENOMEM the merge of the original
  // leaf puts back what earlier steps split.
  auto crossing = [&]() {
    std::optional<hw::Leaf> found;
    table_->for_each_leaf(Range{last, last}, [&](const hw::Leaf& l) { found = l; });
    IOAS_CHECK(found.has_value(), "page table split: no leaf holds the boundary");
    return Range{found->iova, found->iova + (found->size - 1)};
  };
  const Range original = crossing();
  for (Range leaf = original; leaf.last != last; leaf = crossing()) {
    const u64 next = arith::pgsize_below(m->pgsizes, leaf.length());
    IOAS_CHECK(next != 0, "page table split: no smaller page size");
    if (Status st = table_->split_blocks(leaf, &gather_, next); !st.ok()) {
      table_->merge_blocks(original, m->pgsizes, &gather_);
      gather_.sync();
      return st;
    }
  }
  if (original.last != last) {
    table_->merge_blocks(Range{original.start, last}, m->pgsizes, &gather_);
    table_->merge_blocks(Range{last + 1, original.last}, m->pgsizes, &gather_);
  }
  PtMapping right = *m;
  right.iova.start = last + 1;
  right.pa = m->pa + (last + 1 - m->iova.start);
  right.uaddr = m->uaddr + (last + 1 - m->iova.start);
  const u64 start = m->iova.start, pgsizes = m->pgsizes;
  try {
    maps_.emplace(right.iova.start, right);  // invalidates m
  } catch (const std::bad_alloc&) {
    // No room for the right part: the leaves go back as they were.
    table_->merge_blocks(original, pgsizes, &gather_);
    gather_.sync();
    return out_of_memory();
  }
  maps_.find(start)->second.iova.last = last;
  return ok_status();
}

void HwPageTable::unsplit(u64 last) {
  const PtMapping* l = holding(last);
  IOAS_CHECK(l && l->iova.last == last, "unsplit: no mapping ends there");
  auto right = maps_.find(last + 1);
  IOAS_CHECK(right != maps_.end(), "unsplit: no mapping starts after it");
  const u64 start = l->iova.start, joined_last = right->second.iova.last;
  maps_.erase(right);  // invalidates every iterator and pointer into the btree
  PtMapping& joined = maps_.find(start)->second;
  joined.iova.last = joined_last;
  // The leaf the joined mapping has at the boundary, as it had before.
  const Range span = leaf_at(joined, last);
  table_->merge_blocks(span, joined.pgsizes, &gather_);
}

Status HwPageTable::relayout(u64 pgsizes) {
  u64 old = 0;
  for (const auto& [s, m] : maps_) old |= m.pgsizes;
  if (old & ~pgsizes) {
    // Some leaves must get smaller: everything to the smallest size first
    // (one allocating step for the whole table, all or nothing).
    if (Status st = table_->split_blocks(Range::all(), &gather_); !st.ok()) {
      gather_.sync();
      return st;
    }
  }
  for (auto& [s, m] : maps_) {
    table_->merge_blocks(m.iova, pgsizes, &gather_);
    m.pgsizes = pgsizes;
  }
  return ok_status();
}

// The walker's writes set dirty state in place, except tce's, which records
// dirty slots on the heap: those records are allocated before the DMA starts,
// so a heap exhausted midway cannot leave half of a DMA recorded.
DmaOutcome HwPageTable::dma(DmaDir dir, Range iova) {
  auto* tce = table_->format() == Format::kTce ? static_cast<hw::TceTable*>(table_.get()) : nullptr;
  if (tce && dir == DmaDir::kWrite) tce->reserve_dirty(iova);
  const DmaOutcome out = hw::Walker(*table_).dma(dir, iova);
  if (tce) tce->drop_dirty_reserve();
  return out;
}

std::vector<Range> HwPageTable::read_dirty(Range iova, u64 pgsize, bool keep) {
  std::vector<Range> out;
  table_->for_each_leaf(iova, [&](const hw::Leaf& l) {
    if (!l.dirty) return;
    // The pgsize pages of the query that this leaf touches.
    const u64 first = std::max(l.iova, iova.start), last = std::min(l.iova + (l.size - 1), iova.last);
    const Range pages{arith::align_down(first, pgsize), arith::align_down(last, pgsize) + (pgsize - 1)};
    if (!out.empty() && out.back().last + 1 == pages.start) {
      out.back().last = pages.last;
    } else if (!out.empty() && out.back().last >= pages.start) {
      out.back().last = std::max(out.back().last, pages.last);
    } else {
      out.push_back(pages);
    }
  });
  if (!keep) table_->read_and_clear_dirty(iova, nullptr, false, &gather_);
  return out;
}

void HwPageTable::clear_dirty() { table_->read_and_clear_dirty(Range::all(), nullptr, false, &gather_); }

void HwPageTable::leaves(Range r, const std::function<void(const LeafInfo&)>& f) const {
  // The walker reads the table as the IOMMU would (update=false: a look,
  // not an access); the table's own listing gives where leaves are and their
  // dirty state. Where they disagree, the walker's answer is reported, so a
  // comparison with the model catches it.
  hw::Walker walker(const_cast<hw::PageTable&>(*table_));
  table_->for_each_leaf(r, [&](const hw::Leaf& l) {
    const hw::WalkResult rd = walker.access(l.iova, false, false);
    const hw::WalkResult wr = walker.access(l.iova, true, false);
    const bool reads = rd.fault == hw::Fault::kNone, writes = wr.fault == hw::Fault::kNone;
    LeafInfo info;
    if (!reads && !writes) {
      info.iova = Range{l.iova, l.iova};
      info.prot = Prot::kNone;
    } else {
      const hw::WalkResult& w = reads ? rd : wr;  // a write-only leaf (tce, mock) only writes
      info.iova = Range{w.leaf_iova, w.leaf_iova + (w.leaf_size - 1)};
      info.pa = w.pa;
      info.prot = reads && writes ? Prot::kReadWrite : reads ? Prot::kRead : Prot::kWrite;
    }
    info.dirty = l.dirty;
    if (auto u = table_->uaddr(l.iova)) {
      info.uaddr = *u;
    } else if (const PtMapping* m = holding(l.iova)) {
      info.uaddr = m->uaddr + (l.iova - m->iova.start);
    }
    f(info);
  });
}

void HwPageTable::for_each_mapping(const std::function<void(const PtMapping&)>& f) const {
  for (const auto& [s, m] : maps_) f(m);
}

std::size_t HwPageTable::verify() const {
  const u64 leaves = table_->verify();
  const PtMapping* prev = nullptr;
  u64 want = 0;
  for (const auto& [s, m] : maps_) {
    IOAS_CHECK(s == m.iova.start && m.iova.valid(), "page table verify: mapping key");
    IOAS_CHECK(!prev || prev->iova.last < m.iova.start, "page table verify: mappings overlap");
    const auto runs = leaf_runs(m.iova, m.pa, m.pgsizes);
    IOAS_CHECK(!runs.empty(), "page table verify: a mapping the rule cannot lay out");
    for (const auto& run : runs) want += run.iova.length() / run.size;
    prev = &m;
  }
  IOAS_CHECK(leaves == want, "page table verify: the table's leaves are not the mappings' leaves");
  return maps_.size();
}

}  // namespace ioas::impl
