// impl/dirty.cpp: DMA and dirty tracking.
#include "engine_impl.hpp"

namespace ioas::impl {

Result<DmaOutcome> ImplEngine::dma(std::string_view dom, DmaDir dir, u64 iova, u64 len) {
  Domain* d = find_domain(dom);
  if (!d) return err(ENOENT, "dma: no domain " + std::string(dom));
  if (len == 0) return err(EINVAL, "dma " + span(iova, len) + ": length 0");
  if (arith::range_last(iova, len).overflow)
    return err(EOVERFLOW, "dma " + span(iova, len) + ": iova+len passes 2^64-1");
  DmaOutcome out = d->pt->dma(dir, Range{iova, arith::range_last(iova, len).last});
  d->pt->flush_iotlb();
  return out;
}

Status ImplEngine::set_dirty_tracking(std::string_view dom, DirtyMode mode) {
  Domain* d = find_domain(dom);
  if (!d) return err(ENOENT, "dirty: no domain " + std::string(dom));
  const u64 before = effective_pgsizes(*d->ioas, *d);
  const DirtyMode old = d->dirty;
  d->dirty = mode;
  const u64 after = effective_pgsizes(*d->ioas, *d);
  // The leaves first: splitting may need pages (ENOMEM: nothing changed).
  if (before != after) {
    Status st = ok_status();
    try {
      st = d->pt->relayout(after);
    } catch (const std::bad_alloc&) {  // a back end's own allocation: it changed nothing
      st = out_of_memory();
    }
    if (!st.ok()) {
      d->dirty = old;
      return err(st.code(), "dirty " + d->name + ": splitting the leaves: " + st.error().message);
    }
  }
  // Every mode change starts from a clean slate: `on` clears, `off` ends
  // tracking (nothing can read the dirty state until the next `on`; the
  // hardware keeps setting D bits meanwhile, which the next `on` clears).
  d->pt->clear_dirty();
  d->pt->flush_iotlb();
  return ok_status();
}

Result<std::vector<Range>> ImplEngine::read_dirty(std::string_view dom, u64 iova, u64 len, u64 pgsize, bool keep) {
  Domain* d = find_domain(dom);
  if (!d) return err(ENOENT, "read-dirty: no domain " + std::string(dom));
  auto what = [&] { return std::string("read-dirty " + span(iova, len) + " pgsize " + hex(pgsize)); };
  if (d->dirty == DirtyMode::kOff) return err(EINVAL, what() + ": dirty tracking is off");
  if (len == 0) return err(EINVAL, what() + ": length 0");
  if (pgsize == 0 || !std::has_single_bit(pgsize)) return err(EINVAL, what() + ": page size not a power of two");
  if (!aligned(iova, pgsize) || !aligned(len, pgsize))
    return err(EINVAL, what() + ": iova or length not aligned to the page size");
  if (arith::range_last(iova, len).overflow) return err(EOVERFLOW, what() + ": iova+len passes 2^64-1");
  auto out = d->pt->read_dirty(Range{iova, arith::range_last(iova, len).last}, pgsize, keep);
  if (!keep) d->pt->flush_iotlb();
  return out;
}

}  // namespace ioas::impl
