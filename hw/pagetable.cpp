// hw/pagetable.cpp: the factory, the dirty bitmap and the page memories.
#include "pagetable.hpp"

#include <algorithm>
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
    : PageMemory(o), base_(o.base_), max_pages_(o.max_pages_) {
  const u64 n = o.count_.load(std::memory_order_relaxed);
  free_.reserve(n);
  retired_.reserve(n);
  free_ = o.free_;
  for (const Retired& r : o.retired_) free_.push_back(r.index);
  if (n == 0) return;
  dirs_.push_back(std::make_unique<std::uint64_t*[]>(n));
  std::uint64_t** d = dirs_.back().get();
  std::uint64_t* const* from = o.dir_.load(std::memory_order_relaxed);
  u64 made = 0;
  try {
    for (; made < n; ++made)
      d[made] = reinterpret_cast<std::uint64_t*>(new Page(*reinterpret_cast<const Page*>(from[made])));
  } catch (...) {
    while (made != 0) delete reinterpret_cast<Page*>(d[--made]);
    throw;
  }
  dir_.store(d, std::memory_order_relaxed);
  count_.store(n, std::memory_order_relaxed);
  capacity_ = n;
}

HeapPageMemory::~HeapPageMemory() {
  std::uint64_t** d = dir_.load(std::memory_order_relaxed);
  for (u64 i = 0, n = count_.load(std::memory_order_relaxed); i < n; ++i) delete reinterpret_cast<Page*>(d[i]);
}

void HeapPageMemory::reclaim() {
  if (!retired_.empty()) readers_.advance_for(retired_.back().epoch);
  // Oldest first, so that without readers the last freed is reused first.
  std::size_t kept = 0;
  for (const Retired& r : retired_) {
    if (readers_.reusable(r.epoch))
      free_.push_back(r.index);  // free_ has room for every page
    else
      retired_[kept++] = r;
  }
  retired_.resize(kept);
}

void HeapPageMemory::grow_directory() {
  const u64 n = count_.load(std::memory_order_relaxed);
  const u64 cap = 2 * capacity_ + 1;
  auto d = std::make_unique<std::uint64_t*[]>(cap);
  if (n != 0) std::copy_n(dir_.load(std::memory_order_relaxed), n, d.get());
  dirs_.reserve(dirs_.size() + 1);
  dir_.store(d.get(), std::memory_order_release);
  dirs_.push_back(std::move(d));
  capacity_ = cap;
}

std::optional<u64> HeapPageMemory::do_alloc() {
  if (!retired_.empty()) reclaim();
  if (!free_.empty()) {
    const u64 i = free_.back();
    free_.pop_back();
    std::memset(dir_.load(std::memory_order_relaxed)[i], 0, kGranule);
    return pool_page(base_, i);
  }
  const u64 n = count_.load(std::memory_order_relaxed);
  if (n >= max_pages_) return std::nullopt;
  // An exhausted heap is this allocator running out (nullopt). free_ and
  // retired_ get room for every page first, so that do_free and reclaim
  // never allocate.
  try {
    if (n == capacity_) grow_directory();
    if (free_.capacity() < n + 1) free_.reserve(capacity_);
    if (retired_.capacity() < n + 1) retired_.reserve(capacity_);
    dir_.load(std::memory_order_relaxed)[n] = reinterpret_cast<std::uint64_t*>(new Page{});
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
  count_.store(n + 1, std::memory_order_release);
  return pool_page(base_, n);
}

void HeapPageMemory::do_free(u64 pa) { retired_.push_back(Retired{pool_index(base_, pa), readers_.epoch()}); }

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
