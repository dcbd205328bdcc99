#include "domain.hpp"

#include <bit>
#include <iterator>
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
    const u64 rem = arith::range_length(p, iova.last);
    const u64 q = arith::run_addr(pa, iova.start, p);
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
    p = arith::range_after(run_last).next;
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
    const auto b = arith::block_of(x, r.size);
    leaf = Range{b.first, b.last};
  });
  IOAS_CHECK(leaf.has_value(), "leaf_at: x outside the mapping or mapping has no leaves");
  return *leaf;
}

// ---------------------------------------------------------------- MappingList

std::optional<PtMapping> MappingList::holding(u64 x) const {
  if (pending_ && pending_->range().contains(x)) return mapping(*pending_);
  const SpaceNode* n = tree_.find(x);
  if (!n) return std::nullopt;
  return mapping(*n);
}

std::uint32_t MappingList::reserve(u64 uaddr, u64 pa, u64 pgsizes) {
  tree_.reserve_inserts(1);  // where add() puts the pending mapping
  const u64 d = arith::run_addr(uaddr, pa, u64{0});  // the uaddr of pa 0 in the run pa -> uaddr
  auto fits = [&](const Kind& k) { return k.uses != 0 && k.uaddr_minus_pa == d && k.pgsizes == pgsizes; };
  if (last_kind_ < kinds_.size() && fits(kinds_[last_kind_])) return last_kind_;
  std::optional<std::uint32_t> free;
  for (std::uint32_t i = 0; i < kinds_.size(); ++i) {
    if (fits(kinds_[i])) return last_kind_ = i;
    if (kinds_[i].uses == 0 && !free) free = i;
  }
  // A kind no mapping uses is taken over; it stays unused (and so free)
  // until add().
  if (!free) {
    IOAS_CHECK(kinds_.size() < kReservedPiece, "mapping list: too many kinds");
    kinds_.push_back(Kind{});
    free = static_cast<std::uint32_t>(kinds_.size() - 1);
  }
  kinds_[*free].uaddr_minus_pa = d;
  kinds_[*free].pgsizes = pgsizes;
  return last_kind_ = *free;
}

void MappingList::add(const PtMapping& m, std::uint32_t kind) {
  IOAS_CHECK(kind < kinds_.size() && kinds_[kind].uaddr_minus_pa == arith::run_addr(m.uaddr, m.pa, u64{0}) && kinds_[kind].pgsizes == m.pgsizes,
             "mapping list: add with a kind that is not the mapping's");
  IOAS_CHECK(!pending_ || !pending_->range().overlaps(m.iova), "mapping list: add over a mapping");
  // The tree's room for the previous pending mapping was reserved, so this
  // insert cannot fail (and it aborts on an overlap with the tree).
  if (pending_) tree_.insert(SpaceEntry{pending_->start, pending_->last, pending_->source, pending_->offset, pending_->prot});
  SpaceNode n;
  n.start = m.iova.start;
  n.last = m.iova.last;
  n.offset = m.pa;
  n.source = kind;
  n.prot = static_cast<std::uint8_t>(m.prot);
  pending_ = n;
  ++kinds_[kind].uses;
}

bool MappingList::remove(Range r) {
  if (pending_ && pending_->start == r.start) {
    if (pending_->last != r.last) return false;
    --kinds_[pending_->source].uses;
    pending_.reset();
    return true;
  }
  SpaceNode gone;
  if (!tree_.erase_area(r.start, r.last, &gone)) return false;
  --kinds_[gone.source].uses;
  return true;
}

void MappingList::set_last(u64 start, u64 last) {
  if (pending_ && pending_->start == start) {
    IOAS_CHECK(start <= last, "mapping list set_last: last below start");
    // Growing: up to the next mapping of the tree.
    const SpaceNode* after = last > pending_->last ? tree_.first_from(pending_->last) : nullptr;
    IOAS_CHECK(!after || last < after->start, "mapping list set_last: would overlap the next mapping");
    pending_->last = last;
    return;
  }
  // Growing a mapping of the tree must not swallow the pending one.
  IOAS_CHECK(!pending_ || pending_->start < start || pending_->start > last,
             "mapping list set_last: would overlap the next mapping");
  tree_.set_last(start, last);
}

// The tree's invariants (sorted, disjoint), the pending mapping's place
// beside them, and every kind's count of uses.
std::size_t MappingList::verify() const {
  const std::size_t n = tree_.verify();
  std::vector<u64> uses(kinds_.size(), 0);
  auto count = [&](const SpaceNode& m) {
    IOAS_CHECK(m.is_area() && m.source < kinds_.size(), "mapping list verify: a mapping without a kind");
    ++uses[m.source];
  };
  for (const SpaceNode* m = tree_.first(); m; m = tree_.next(*m)) count(*m);
  if (pending_) {
    IOAS_CHECK(pending_->start <= pending_->last, "mapping list verify: the pending mapping ends before it starts");
    const SpaceNode* after = tree_.first_from(pending_->start);
    IOAS_CHECK(!after || pending_->last < after->start, "mapping list verify: the pending mapping overlaps the tree");
    count(*pending_);
  }
  for (std::size_t i = 0; i < kinds_.size(); ++i)
    IOAS_CHECK(uses[i] == kinds_[i].uses, "mapping list verify: a kind's count of uses");
  return n + (pending_ ? 1 : 0);
}

u64 MappingList::pgsizes_used() const {
  u64 all = 0;
  for (const Kind& k : kinds_)
    if (k.uses != 0) all |= k.pgsizes;
  return all;
}

// Kinds that end up equal stay apart; reserve() takes the first that fits.
void MappingList::set_pgsizes(u64 pgsizes) {
  for (Kind& k : kinds_) k.pgsizes = pgsizes;
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

// A mapping that overlaps another is a bug of the caller: the table then
// holds leaves there (EEXIST below aborts), so no lookup beforehand is
// needed to catch it (the list of mappings aborts too, at its add over the
// pending mapping or at the insert into its tree).
Status HwPageTable::map(Range iova, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) {
  // The list's room first: once the leaves are in, nothing fails.
  std::uint32_t kind = 0;
  try {
    kind = maps_.reserve(uaddr, pa, pgsizes);
  } catch (const std::bad_alloc&) {
    return out_of_memory();
  }
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
    IOAS_CHECK(st.code() != EEXIST, "page table map: the table holds leaves there (an overlapping mapping?)");
    if (st.code() == ERANGE) return make_error(EINVAL, st.error().message);
    return st;
  }
  maps_.add(PtMapping{iova, pa, prot, pgsizes, uaddr}, kind);
  return ok_status();
}

void HwPageTable::unmap(Range iova) {
  IOAS_CHECK(maps_.remove(iova), "page table unmap: not a mapping");
  auto n = table_->unmap(iova.start, iova.length(), &gather_);
  // Leaves never span two mappings, so nothing is split and nothing fails.
  IOAS_CHECK(n.ok() && *n == iova.length(), "page table unmap: the table did not hold the whole mapping");
}

Status HwPageTable::split(u64 last) {
  const std::optional<PtMapping> m = maps_.holding(last);
  IOAS_CHECK(m && m->iova.last != last, "page table split: not inside a mapping");
  // The list's room for the right part first: once leaves move, nothing fails.
  std::uint32_t kind = 0;
  try {
    kind = maps_.reserve(m->uaddr, m->pa, m->pgsizes);
  } catch (const std::bad_alloc&) {
    return out_of_memory();
  }
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
    return Range{found->iova, arith::range_last(found->iova, found->size).last};
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
  const u64 after = arith::range_after(last).next;
  if (original.last != last) {
    table_->merge_blocks(Range{original.start, last}, m->pgsizes, &gather_);
    table_->merge_blocks(Range{after, original.last}, m->pgsizes, &gather_);
  }
  PtMapping right = *m;
  right.iova.start = after;
  right.pa = arith::run_addr(m->pa, m->iova.start, after);
  right.uaddr = arith::run_addr(m->uaddr, m->iova.start, after);
  maps_.set_last(m->iova.start, last);
  maps_.add(right, kind);
  return ok_status();
}

void HwPageTable::unsplit(u64 last) {
  const u64 after = arith::range_after(last).next;
  const std::optional<PtMapping> l = maps_.holding(last), right = maps_.holding(after);
  IOAS_CHECK(l && l->iova.last == last, "unsplit: no mapping ends there");
  IOAS_CHECK(right && right->iova.start == after, "unsplit: no mapping starts after it");
  maps_.remove(right->iova);
  maps_.set_last(l->iova.start, right->iova.last);
  PtMapping joined = *l;
  joined.iova.last = right->iova.last;
  // The leaf the joined mapping has at the boundary, as it had before.
  const Range span = leaf_at(joined, last);
  table_->merge_blocks(span, joined.pgsizes, &gather_);
}

Status HwPageTable::relayout(u64 pgsizes) {
  if (maps_.pgsizes_used() & ~pgsizes) {
    // Some leaves must get smaller: everything to the smallest size first
    // (one allocating step for the whole table, all or nothing).
    if (Status st = table_->split_blocks(Range::all(), &gather_); !st.ok()) {
      gather_.sync();
      return st;
    }
  }
  // Then each mapping's leaves as large as `pgsizes` allows; when that is
  // the table's smallest size alone, every leaf already is one (split above,
  // or no mapping used another size) and there is nothing to merge.
  if (pgsizes != table_->min_pgsize())
    maps_.for_each([&](const PtMapping& m) { table_->merge_blocks(m.iova, pgsizes, &gather_); });
  maps_.set_pgsizes(pgsizes);
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
    const Range in = Range{l.iova, arith::range_last(l.iova, l.size).last}.intersect(iova);
    const Range pages{arith::align_down(in.start, pgsize), arith::block_of(in.last, pgsize).last};
    if (!out.empty() && arith::range_after(out.back().last).next == pages.start) {
      out.back().last = pages.last;
    } else if (!out.empty() && out.back().last >= pages.start) {
      out.back().last = out.back().hull(pages).last;
    } else {
      out.push_back(pages);
    }
  });
  if (!keep) table_->read_and_clear_dirty(iova, nullptr, false, &gather_);
  return out;
}

void HwPageTable::clear_dirty() { table_->read_and_clear_dirty(Range::all(), nullptr, false, &gather_); }

template <class F>
void HwPageTable::each_leaf(Range r, F&& f) const {
  // The walker reads the table as the IOMMU would (a look, not an access:
  // nothing changes while it looks, so it keeps the upper levels from leaf
  // to leaf as an IOMMU's walk cache does); the table's own listing gives
  // where leaves are and their dirty state. Where they disagree, the
  // walker's answer is reported, so a comparison with the model catches it.
  hw::Walker walker(const_cast<hw::PageTable&>(*table_));
  std::optional<PtMapping> held;
  table_->for_each_leaf(r, [&](const hw::Leaf& l) {
    // One walk when the leaf reads (it tells whether a write would fault
    // too); a second, writing one only for a leaf that does not.
    const hw::WalkResult rd = walker.look(l.iova);
    const bool reads = rd.fault == hw::Fault::kNone;
    const hw::WalkResult wr = reads ? rd : walker.access(l.iova, true, false);
    const bool writes = reads ? rd.writes : wr.fault == hw::Fault::kNone;
    LeafInfo info;
    if (!reads && !writes) {
      info.iova = Range{l.iova, l.iova};
      info.prot = Prot::kNone;
    } else {
      const hw::WalkResult& w = reads ? rd : wr;  // a write-only leaf (tce, mock) only writes
      info.iova = Range{w.leaf_iova, arith::range_last(w.leaf_iova, w.leaf_size).last};
      info.pa = w.pa;
      info.prot = reads && writes ? Prot::kReadWrite : reads ? Prot::kRead : Prot::kWrite;
    }
    info.dirty = l.dirty;
    if (l.uaddr) {
      info.uaddr = *l.uaddr;  // kept in the table (tce), as uaddr() reads it
    } else {
      // Leaves come in IOVA order and mappings do not overlap: the mapping
      // that held the last leaf is the one holding this one if it covers it.
      if (!held || !held->iova.contains(l.iova)) held = maps_.holding(l.iova);
      if (held) info.uaddr = arith::run_addr(held->uaddr, held->iova.start, l.iova);
    }
    f(info);
  });
}

void HwPageTable::leaves(Range r, const std::function<void(const LeafInfo&)>& f) const { each_leaf(r, f); }

void HwPageTable::leaves_into(Range r, std::vector<LeafInfo>& out) const {
  out.clear();
  each_leaf(r, [&](const LeafInfo& l) { out.push_back(l); });
}

void HwPageTable::for_each_mapping(const std::function<void(const PtMapping&)>& f) const {
  maps_.for_each(f);
}

std::size_t HwPageTable::verify() const {
  const u64 leaves = table_->verify();
  u64 want = 0;
  maps_.for_each([&](const PtMapping& m) {
    const auto runs = leaf_runs(m.iova, m.pa, m.pgsizes);
    IOAS_CHECK(!runs.empty(), "page table verify: a mapping the rule cannot lay out");
    for (const auto& run : runs) want += arith::block_count(run.iova.length(), run.size);
  });
  IOAS_CHECK(leaves == want, "page table verify: the table's leaves are not the mappings' leaves");
  return maps_.verify();
}

}  // namespace ioas::impl
