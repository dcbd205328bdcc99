// hw/pagetable.cpp: the factory, the dirty bitmap and the page memories.
#include "pagetable.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

#include "ioas/core/check.hpp"
#include "ioas/core/text.hpp"
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

HeapPageMemory::HeapPageMemory(u64 base, u64 max_pages, u64 region_pages)
    : region_shift_(0), base_(base), max_pages_(max_pages) {
  fast_.base = base;
  IOAS_CHECK(arith::is_aligned(base, kGranule), "heap page memory: base " + hex(base) + " is not 4 KiB aligned");
  IOAS_CHECK(region_pages != 0 && arith::is_pow2(region_pages) &&
                 arith::log2_pow2(region_pages) + kMaxRegions <= 63,
             "heap page memory: region_pages " + hex(region_pages) + " is not a power of two up to 2^23");
  region_shift_ = static_cast<unsigned>(arith::log2_pow2(region_pages));
}

HeapPageMemory::HeapPageMemory(const HeapPageMemory& o)
    : PageMemory(o), region_shift_(o.region_shift_), base_(o.base_), max_pages_(o.max_pages_) {
  fast_.base = base_;
  const u64 n = o.count_.load(std::memory_order_relaxed);
  free_.reserve(n);
  retired_.reserve(n);
  free_ = o.free_;
  for (const Retired& r : o.retired_) free_.push_back(r.index);
  // Each of o's regions again, with the pages o handed out in it.
  for (unsigned k = 0; k < o.regions_; ++k) {
    const u64 used = std::min(n - region_start(k), region_pages(k));
    unsigned char* host = allocate_region(region_pages(k));
    if (!host) {
      free_regions();
      throw std::bad_alloc();
    }
    std::memcpy(host, o.region_[k].load(std::memory_order_relaxed), used * kGranule);
    region_[k].store(host, std::memory_order_relaxed);
    ++regions_;
  }
  if (regions_ != 0) {
    fast_.host.store(reinterpret_cast<u64>(region_[0].load(std::memory_order_relaxed)), std::memory_order_relaxed);
    fast_.bytes.store(std::min(n, region_pages(0)) * kGranule, std::memory_order_relaxed);
  }
  count_.store(n, std::memory_order_relaxed);
  committed_ = regions_ == 0 ? 0 : region_start(regions_ - 1) + region_pages(regions_ - 1);
}

const HeapPageMemory::FastPages HeapPageMemory::kNoFastPages{};

HeapPageMemory::~HeapPageMemory() { free_regions(); }

void HeapPageMemory::free_regions() {
  for (unsigned k = 0; k < regions_; ++k)
    ::operator delete(region_[k].load(std::memory_order_relaxed), std::align_val_t{kGranule});
  regions_ = 0;
}

unsigned HeapPageMemory::region_of(u64 i) const {
  // Region k holds [R (2^k - 1), R (2^(k+1) - 1)), R = 2^region_shift_:
  // with q = i / R (rounded down), R (2^k - 1) <= i < R (2^(k+1) - 1)
  // is 2^k <= q + 1 < 2^(k+1), as both bounds are multiples of R.
  return static_cast<unsigned>(std::bit_width((i >> region_shift_) + 1) - 1);
}

u64 HeapPageMemory::region_pages(unsigned k) const {
  const u64 start = region_start(k), nominal = u64{1} << (region_shift_ + k);
  return max_pages_ - start < nominal ? max_pages_ - start : nominal;
}

std::uint64_t* HeapPageMemory::page_after(u64 pa) const {
  // fast_.base, not base_: on the line readers read, not the writer's.
  if (pa < fast_.base) return nullptr;
  const u64 i = pool_index(fast_.base, pa);
  if (i >= count_.load(std::memory_order_acquire)) return nullptr;
  const unsigned k = region_of(i);
  return reinterpret_cast<std::uint64_t*>(region_[k].load(std::memory_order_relaxed) +
                                          arith::page_start(i - region_start(k), kGranuleShift));
}

std::uint64_t* HeapPageMemory::host_of(u64 i) const {
  const unsigned k = region_of(i);
  return reinterpret_cast<std::uint64_t*>(region_[k].load(std::memory_order_relaxed) +
                                          arith::page_start(i - region_start(k), kGranuleShift));
}

bool HeapPageMemory::refused() {
  if (region_fail_in_ == 0) return false;
  return --region_fail_in_ == 0;
}

unsigned char* HeapPageMemory::allocate_region(u64 pages) {
  if (refused() || pages > (~u64{0} >> kGranuleShift)) return nullptr;
  try {
    return static_cast<unsigned char*>(::operator new(pages * kGranule, std::align_val_t{kGranule}));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

bool HeapPageMemory::add_region() {
  const u64 n = committed_;
  const unsigned k = region_of(n);
  if (k >= kMaxRegions) return false;
  unsigned char* host = allocate_region(region_pages(k));
  if (!host) return false;
  // Before the counts that cover the region (do_alloc's release stores).
  if (k == 0) fast_.host.store(reinterpret_cast<u64>(host), std::memory_order_relaxed);
  region_[k].store(host, std::memory_order_relaxed);
  ++regions_;
  committed_ = region_start(k) + region_pages(k);
  return true;
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

std::optional<u64> HeapPageMemory::do_alloc() {
  if (!retired_.empty()) reclaim();
  if (!free_.empty()) {
    const u64 i = free_.back();
    free_.pop_back();
    std::memset(host_of(i), 0, kGranule);
    return pool_page(base_, i);
  }
  const u64 n = count_.load(std::memory_order_relaxed);
  if (n >= max_pages_) return std::nullopt;
  // An exhausted heap or a refused mapping is this allocator running out
  // (nullopt). free_ and retired_ get room for every page first, so that
  // do_free and reclaim never allocate.
  try {
    if (free_.capacity() < n + 1) free_.reserve(2 * n + 1);
    if (retired_.capacity() < n + 1) retired_.reserve(2 * n + 1);
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
  if (n == committed_ && !add_region()) return std::nullopt;
  std::memset(host_of(n), 0, kGranule);
  count_.store(n + 1, std::memory_order_release);
  if (n < region_pages(0)) fast_.bytes.store(arith::page_start(n + 1, kGranuleShift), std::memory_order_release);
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
