// hw/memory.hpp: the physical memory that page-table pages live in, as the
// IOMMU (or a CPU) sees it.
//
// A page-table page has a physical address, which is what table entries
// hold, and a host view through which our code and the software walker read
// and write it. Every walk goes pa -> page(pa), exactly as hardware walks
// physical memory; nothing else links one table to another.
//
// Allocation can be made to fail (fail_nth_alloc), so that tests can fail
// the Nth allocation of an operation for every N and check that the table
// is unchanged next to every failure.
//
// Invariants: pages are 4 KiB, 4 KiB aligned in physical address, zeroed
// when handed out; live_pages() counts pages handed out and not freed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "ioas/arith.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/range.hpp"

namespace ioas::hw {

inline constexpr u64 kGranule = formats::kRadixGranule;
inline constexpr unsigned kGranuleShift = arith::kPtGranuleShift;

// A pool of pages whose page 0 is at physical address base: the index of
// the page holding pa (pa >= base), and the address of page i.
inline u64 pool_index(u64 base, u64 pa) { return arith::page_index_in(base, pa, kGranuleShift); }
inline u64 pool_page(u64 base, u64 i) { return arith::page_advance(base, i, kGranuleShift); }

class PageMemory {
 public:
  PageMemory() = default;
  // A copy has the same count, and an injection of its own in the same
  // state.
  PageMemory(const PageMemory& o)
      : calls_(o.alloc_calls()),
        injection_(std::make_shared<Injection>(o.injection_->armed_calls.load(std::memory_order_relaxed),
                                               o.injection_->fail_at.load(std::memory_order_relaxed))),
        live_(o.live_) {}
  PageMemory& operator=(const PageMemory&) = delete;
  virtual ~PageMemory() = default;

  // A zeroed page, or nullopt when memory is exhausted or a failure was
  // injected for this allocation.
  std::optional<u64> alloc_page() {
    if (!count_allocation()) return std::nullopt;
    auto pa = do_alloc();
    if (pa) ++live_;
    return pa;
  }
  void free_page(u64 pa) {
    --live_;
    do_free(pa);
  }
  // The host view of the 4 KiB page at physical address pa (4 KiB aligned);
  // nullptr when pa is not memory of this allocator. A page's view stays at
  // the same host address as long as the memory lives (freed pages too), so
  // a caller may keep it.
  virtual std::uint64_t* page(u64 pa) const = 0;

  // An allocation made elsewhere that counts in this memory and answers to
  // its injection (the engine's own objects: an area node, a domain, a
  // pin): counts as an allocation and answers false when it is the one to
  // fail. Allocates nothing.
  //
  // One thread at a time allocates from a memory, so its own count is a
  // plain increment (a relaxed load and store: alloc_calls() may read it
  // from another thread). Memories that share an injection (share_injection)
  // write nothing shared while it is off, only read fail_at; while it is on,
  // each allocation takes a ticket from the shared armed_calls, so that "the
  // nth allocation from now" is one allocation over all of them.
  bool count_allocation() {
    calls_.store(calls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    Injection& in = *injection_;
    const u64 at = in.fail_at.load(std::memory_order_relaxed);
    if (at == 0) return true;
    return in.armed_calls.fetch_add(1, std::memory_order_relaxed) + 1 != at;
  }

  // The nth allocation from now (1-based) over every memory that shares
  // this one's injection fails; 0 turns injection off.
  void fail_nth_alloc(u64 n) {
    Injection& in = *injection_;
    in.fail_at.store(n == 0 ? 0 : in.armed_calls.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Allocations counted in this memory (failed ones included).
  u64 alloc_calls() const { return calls_.load(std::memory_order_relaxed); }
  u64 live_pages() const { return live_; }

  // From now on this memory answers to o's injection (fail_nth_alloc on
  // either arms both), so that several memories count as one for "the nth
  // allocation": an engine's per-IOAS memories. Each keeps its own count
  // (alloc_calls); their sum is the allocations of all of them. Call it
  // before another thread uses this memory.
  void share_injection(const PageMemory& o) { injection_ = o.injection_; }

 protected:
  virtual std::optional<u64> do_alloc() = 0;
  virtual void do_free(u64 pa) = 0;

 private:
  // What memories sharing an injection share: fail_at is the value of
  // armed_calls at the allocation to fail (0: off); armed_calls counts the
  // allocations made while it is on.
  struct Injection {
    Injection() = default;
    Injection(u64 a, u64 f) : armed_calls(a), fail_at(f) {}
    std::atomic<u64> armed_calls{0};
    std::atomic<u64> fail_at{0};
  };
  std::atomic<u64> calls_{0};
  std::shared_ptr<Injection> injection_ = std::make_shared<Injection>();
  u64 live_ = 0;  // pages of this memory handed out and not freed
};

// Pages from the heap, given made-up physical addresses from `base` upward
// (a pa -> host lookup is an index into a vector). Unlimited unless a
// failure is injected or `max_pages` is reached.
class HeapPageMemory final : public PageMemory {
  struct alignas(4096) Page {
    std::uint64_t e[512];
  };
  struct PageDeleter {
    void operator()(std::uint64_t* p) const { delete reinterpret_cast<Page*>(p); }
  };

 public:
  explicit HeapPageMemory(u64 base = 0x1'0000'0000, u64 max_pages = ~u64{0})
      : base_(base), max_pages_(max_pages) {}
  // A deep copy: every page (freed ones too) at the same physical address,
  // the same counters and injection state (PageTable::clone_onto needs it).
  HeapPageMemory(const HeapPageMemory& o);
  HeapPageMemory& operator=(const HeapPageMemory&) = delete;
  std::uint64_t* page(u64 pa) const override { return Lookup(*this).page(pa); }

  // page() over a copy of the page index taken when it is made: for a walk
  // that looks up several pages in a row and allocates none meanwhile (the
  // index is read once, not once a page).
  class Lookup {
   public:
    explicit Lookup(const HeapPageMemory& m) : base_(m.base_), pages_(m.pages_.data()), count_(m.pages_.size()) {}
    // Inline at every level of a walk (GCC otherwise calls it past the first).
    [[gnu::always_inline]] std::uint64_t* page(u64 pa) const {
      if (pa < base_) return nullptr;
      const u64 i = pool_index(base_, pa);
      return i < count_ ? pages_[i].get() : nullptr;
    }

   private:
    u64 base_;
    const std::unique_ptr<std::uint64_t, PageDeleter>* pages_;
    u64 count_;
  };

 protected:
  std::optional<u64> do_alloc() override;
  void do_free(u64 pa) override;

 private:
  u64 base_;
  u64 max_pages_;
  std::vector<std::unique_ptr<std::uint64_t, PageDeleter>> pages_;  // index = (pa-base)/4K
  std::vector<u64> free_;  // indexes of freed pages (kept allocated, reused)
};

// Pages carved from a caller's buffer that is physical memory
// [base_pa, base_pa + bytes) (for KVM: a slice of the guest's RAM, so that
// table pointers are guest-physical addresses).
class ArenaPageMemory final : public PageMemory {
 public:
  ArenaPageMemory(void* host, u64 base_pa, u64 bytes)
      : host_(static_cast<unsigned char*>(host)), base_(base_pa), pages_(arith::page_number(bytes, kGranuleShift)) {}
  std::uint64_t* page(u64 pa) const override {
    if (pa < base_ || pool_index(base_, pa) >= pages_) return nullptr;
    return reinterpret_cast<std::uint64_t*>(host_ + arith::page_start(pool_index(base_, pa), kGranuleShift));
  }

 protected:
  std::optional<u64> do_alloc() override;
  void do_free(u64 pa) override;

 private:
  unsigned char* host_;
  u64 base_;
  u64 pages_;
  u64 next_ = 0;
  std::vector<u64> free_;
};

}  // namespace ioas::hw
