#include "domain.hpp"

#include <bit>

#include "check.hpp"

namespace ioas::impl {
namespace {

// The largest power of two dividing both x and y (2^63 when both are 0).
u64 common_align(u64 x) { return x == 0 ? (u64{1} << 63) : (x & (~x + 1)); }


}  // namespace

// Runs of the iommu_pgsize rule. At IOVA p (physical q = pa + (p - start)),
// a size s is usable iff s | p, s | q and s <= remaining. With d = pa - start
// (mod 2^64), s | q iff s | d once s | p, so the sizes dividing d are fixed
// for the whole mapping. The rule keeps a size S until either the remaining
// length drops below S or p reaches a multiple of the next larger usable
// size T that still fits; so each run is computed in O(1).
std::vector<LeafRun> leaf_runs(Range iova, u64 pa, u64 pgsizes) {
  std::vector<LeafRun> runs;
  const u64 d = pa - iova.start;
  const u64 usable = pgsizes & (common_align(d) | (common_align(d) - 1));
  u64 p = iova.start;
  for (;;) {
    const u64 rem = iova.last - p + 1;  // 0 means 2^64: cannot happen for an area
    // The iommu_pgsize rule itself (ioas/arith.hpp, proved in proofs/) at p
    // and its physical address; rem == 0 (2^64) cannot happen for an area.
    const u64 s = arith::iommu_pgsize(pgsizes, p, pa + (p - iova.start), rem);
    if (s == 0) return {};
    u64 n = rem / s;  // leaves of size s that fit
    // The next larger usable size T.
    u64 bigger = usable & ~((s << 1) - 1);
    if (s == (u64{1} << 63)) bigger = 0;
    if (bigger) {
      const u64 t = bigger & (~bigger + 1);
      // First T-aligned position after p; T is taken there if it fits.
      auto up = arith::align_up(p, t);
      if (!up.wrapped && up.value > p) {
        auto end = arith::range_last(up.value, t);
        if (!end.overflow && end.last <= iova.last) n = std::min(n, (up.value - p) / s);
      }
    }
    const u64 run_last = p + n * s - 1;
    if (!runs.empty() && runs.back().size == s) {
      runs.back().iova.last = run_last;
    } else {
      runs.push_back(LeafRun{Range{p, run_last}, s});
    }
    if (run_last == iova.last) return runs;
    p = run_last + 1;
  }
}

Range leaf_at(const PtMapping& m, u64 x) {
  for (const auto& r : leaf_runs(m.iova, m.pa, m.pgsizes)) {
    if (r.iova.contains(x)) {
      u64 s = r.iova.start + (x - r.iova.start) / r.size * r.size;
      return Range{s, s + r.size - 1};
    }
  }
  IOAS_CHECK(false, "leaf_at: x outside the mapping or mapping has no leaves");
  return {};
}

const PtMapping* SoftPageTable::holding(u64 x) const {
  auto it = maps_.upper_bound(x);
  if (it == maps_.begin()) return nullptr;
  --it;
  return it->second.iova.contains(x) ? &it->second : nullptr;
}

Status SoftPageTable::map(Range iova, u64 pa, Prot prot, u64 pgsizes) {
  if (leaf_runs(iova, pa, pgsizes).empty())
    return make_error(EINVAL, "map " + to_string(iova) +
                                  ": IOVA and physical address cannot be mapped with the domain's page sizes");
  auto it = maps_.lower_bound(iova.start);
  IOAS_CHECK(it == maps_.end() || it->first > iova.last, "page table map: overlaps a mapping");
  IOAS_CHECK(!holding(iova.start), "page table map: overlaps a mapping");
  maps_.emplace(iova.start, PtMapping{iova, pa, prot, pgsizes});
  return ok_status();
}

void SoftPageTable::unmap(Range iova) {
  auto it = maps_.find(iova.start);
  IOAS_CHECK(it != maps_.end() && it->second.iova == iova, "page table unmap: not a mapping");
  maps_.erase(it);
  dirty_.subtract(iova);
}

void SoftPageTable::split(u64 last) {
  const PtMapping* m = holding(last);
  IOAS_CHECK(m && m->iova.last != last, "page table split: not inside a mapping");
  PtMapping right = *m;
  right.iova.start = last + 1;
  right.pa = m->pa + (last + 1 - m->iova.start);
  maps_[m->iova.start].iova.last = last;
  maps_.emplace(right.iova.start, right);
  // The leaves of each side refine the old ones (see leaf_runs: a greedy run
  // from a later start is finer until it meets the old boundaries), so the
  // dirty byte set stays a union of leaves.
}

void SoftPageTable::relayout(u64 pgsizes) {
  for (auto& [s, m] : maps_) m.pgsizes = pgsizes;
}

std::optional<Translation> SoftPageTable::translate(u64 iova) const {
  const PtMapping* m = holding(iova);
  if (!m) return std::nullopt;
  return Translation{m->pa + (iova - m->iova.start), m->prot};
}

Range SoftPageTable::widen_to_leaves(Range r) const {
  if (const PtMapping* m = holding(r.start)) r.start = leaf_at(*m, r.start).start;
  if (const PtMapping* m = holding(r.last)) r.last = leaf_at(*m, r.last).last;
  return r;
}

DmaOutcome SoftPageTable::dma(DmaDir dir, Range iova, bool track_dirty) {
  u64 p = iova.start;
  DmaOutcome out;
  for (;;) {
    const PtMapping* m = holding(p);
    bool fault = !m || (dir == DmaDir::kWrite && m->prot != Prot::kReadWrite);
    if (fault) {
      out = DmaOutcome{true, p};
      break;
    }
    const u64 seg_last = std::min(m->iova.last, iova.last);
    if (dir == DmaDir::kWrite && track_dirty) dirty_.add(widen_to_leaves(Range{p, seg_last}));
    if (seg_last == iova.last) break;
    p = seg_last + 1;
  }
  return out;
}

std::vector<Range> SoftPageTable::read_dirty(Range iova, u64 pgsize, bool keep) {
  std::vector<Range> out;
  for (const Range& d : dirty_.clipped(iova)) {
    // The pgsize pages of the query that hold a dirty byte.
    Range pages{d.start & ~(pgsize - 1), (d.last & ~(pgsize - 1)) + (pgsize - 1)};
    if (!out.empty() && (out.back().overlaps(pages) || out.back().precedes_adjacent(pages))) {
      out.back().last = std::max(out.back().last, pages.last);
    } else {
      out.push_back(pages);
    }
  }
  if (!keep) dirty_.subtract(widen_to_leaves(iova));
  return out;
}

void SoftPageTable::for_each_mapping(const std::function<void(const PtMapping&)>& f) const {
  for (const auto& [s, m] : maps_) f(m);
}

std::size_t SoftPageTable::verify() const {
  const PtMapping* prev = nullptr;
  for (const auto& [s, m] : maps_) {
    IOAS_CHECK(s == m.iova.start && m.iova.valid(), "page table verify: bad key");
    if (prev) IOAS_CHECK(prev->iova.last < m.iova.start, "page table verify: mappings overlap");
    IOAS_CHECK(!leaf_runs(m.iova, m.pa, m.pgsizes).empty(), "page table verify: mapping without leaves");
    prev = &m;
  }
  dirty_.verify();
  dirty_.for_each([&](Range d) {
    const PtMapping* a = holding(d.start);
    const PtMapping* b = holding(d.last);
    IOAS_CHECK(a && b, "page table verify: dirty bytes outside mappings");
    IOAS_CHECK(leaf_at(*a, d.start).start == d.start && leaf_at(*b, d.last).last == d.last,
               "page table verify: dirty bytes are not whole leaves");
  });
  return maps_.size();
}

}  // namespace ioas::impl
