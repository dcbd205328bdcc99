// hw/pagetable.cpp: the factory, the dirty bitmap and the page memories.
#include "pagetable.hpp"

#include <cstring>
#include <new>

#include "mock.hpp"
#include "radix.hpp"
#include "tce.hpp"

namespace ioas::hw {

Result<std::unique_ptr<PageTable>> make_page_table(const TableConfig& cfg, PageMemory& mem) {
  if (cfg.format == Format::kTce) {
    auto t = TceTable::create(cfg, mem);
    if (!t.ok()) return t.error();
    return std::unique_ptr<PageTable>(std::move(t).value());
  }
  if (cfg.format == Format::kMock) {
    auto t = MockTable::create(cfg, mem);
    if (!t.ok()) return t.error();
    return std::unique_ptr<PageTable>(std::move(t).value());
  }
  return make_radix_table(cfg, mem);
}

void DirtyBitmap::record(Range r) {
  if (units_ == 0) return;
  const u64 last_byte = arith::range_last(iova_, arith::page_start(units_, shift_)).last;
  if (r.last < iova_ || r.start > last_byte) return;
  const Range in = r.intersect(Range{iova_, last_byte});
  const u64 s = arith::page_index_in(iova_, in.start, shift_);
  const u64 e = arith::page_index_in(iova_, in.last, shift_);
  for (u64 u = s; u <= e; ++u)
    words_[arith::page_number(u, kWordShift)] |= u64{1} << arith::page_offset(u, kWordShift);
}

std::vector<Range> DirtyBitmap::ranges() const {
  std::vector<Range> out;
  for (u64 u = 0; u < units_; ++u) {
    if (!test(u)) continue;
    const u64 start = arith::page_advance(iova_, u, shift_);
    const Range r{start, arith::range_last(start, arith::page_size(start, shift_)).last};
    if (!out.empty() && out.back().precedes_adjacent(r))
      out.back().last = r.last;
    else
      out.push_back(r);
  }
  return out;
}

u64 DirtyBitmap::count() const {
  u64 n = 0;
  for (u64 w : words_) n += static_cast<u64>(__builtin_popcountll(w));
  return n;
}

HeapPageMemory::HeapPageMemory(const HeapPageMemory& o)
    : PageMemory(o), base_(o.base_), max_pages_(o.max_pages_), free_(o.free_) {
  free_.reserve(o.pages_.size());
  pages_.reserve(o.pages_.size());
  for (const auto& p : o.pages_)
    pages_.emplace_back(reinterpret_cast<std::uint64_t*>(new Page(*reinterpret_cast<const Page*>(p.get()))));
}

std::optional<u64> HeapPageMemory::do_alloc() {
  if (!free_.empty()) {
    const u64 i = free_.back();
    free_.pop_back();
    std::memset(pages_[i].get(), 0, kGranule);
    return pool_page(base_, i);
  }
  if (pages_.size() >= max_pages_) return std::nullopt;
  // An exhausted heap is this allocator running out (nullopt). free_ gets
  // room for every page first, so that do_free never allocates.
  try {
    if (pages_.size() == pages_.capacity()) pages_.reserve(2 * pages_.size() + 1);
    if (free_.capacity() < pages_.size() + 1) free_.reserve(pages_.capacity());
    pages_.emplace_back(reinterpret_cast<std::uint64_t*>(new Page{}));
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
  return pool_page(base_, pages_.size() - 1);
}

void HeapPageMemory::do_free(u64 pa) { free_.push_back(pool_index(base_, pa)); }

std::optional<u64> ArenaPageMemory::do_alloc() {
  u64 i;
  if (!free_.empty()) {
    i = free_.back();
    free_.pop_back();
  } else if (next_ < pages_) {
    // Room in free_ for every page handed out, so that do_free never allocates.
    try {
      if (free_.capacity() < next_ + 1) free_.reserve(2 * next_ + 1);
    } catch (const std::bad_alloc&) {
      return std::nullopt;
    }
    i = next_++;
  } else {
    return std::nullopt;
  }
  std::memset(host_ + arith::page_start(i, kGranuleShift), 0, kGranule);
  return pool_page(base_, i);
}

void ArenaPageMemory::do_free(u64 pa) { free_.push_back(pool_index(base_, pa)); }

}  // namespace ioas::hw
