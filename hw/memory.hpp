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

// Table words. The thread-safe engine's translate walks a domain's table
// with no lock while the IOAS's writer changes it (include/ioas/impl.hpp),
// as an IOMMU walks the tables a driver edits: every word of a table that
// may be reachable is written with an atomic store and read by that walk
// with an atomic load, so the walk reads each word whole, old or new.
// A table link is stored with release (the page it points at was filled
// before) and read with acquire; a leaf is stored relaxed (nothing hangs
// off it). On x86-64 all three are plain 8-byte moves. Words of a page not
// yet linked anywhere may be written plainly.
inline std::uint64_t load_word(const std::uint64_t* p) {
  return std::atomic_ref<std::uint64_t>(*const_cast<std::uint64_t*>(p)).load(std::memory_order_acquire);
}
inline void store_link(std::uint64_t* p, std::uint64_t v) {
  std::atomic_ref<std::uint64_t>(*p).store(v, std::memory_order_release);
}
inline void store_leaf(std::uint64_t* p, std::uint64_t v) {
  std::atomic_ref<std::uint64_t>(*p).store(v, std::memory_order_relaxed);
}
// A walker's accessed/dirty update of a word (one writer at a time; the
// lock-free reader only loads).
inline void or_word(std::uint64_t* p, std::uint64_t bits) {
  std::atomic_ref<std::uint64_t>(*p).fetch_or(bits, std::memory_order_relaxed);
}
inline void and_word(std::uint64_t* p, std::uint64_t bits) {
  std::atomic_ref<std::uint64_t>(*p).fetch_and(bits, std::memory_order_relaxed);
}

// Epoch-deferred reclamation for the readers of one memory that take no
// lock: a page a writer frees is not handed out again while a reader that
// may have reached it before it was unlinked is still walking.
//
// Readers count themselves in a slot (a cache line per slot, a slot per
// thread, as the engine's SlottedLock) under the parity of the epoch they
// entered in. The writer (one at a time: the memory's own lock serializes
// them) moves the epoch from E to E + 1 only when no reader is counted
// under the parity of E - 1, and frees a page retired in epoch R once the
// epoch is R + 2.
//
// Why that is safe: a reader's count (a seq_cst increment) comes before its
// re-read of the epoch (seq_cst), which must give its parity. A reader whose
// re-read gave epoch e >= R + 1 read the writer's store of it, which
// came after the unlink: it walks from the new links and never reaches the
// page. A reader whose re-read gave e <= R is counted under e's parity
// before the store of e + 1, so the writer's scan before moving from e + 1
// to e + 2 (after that store) sees it, and waits (the epoch stays) until
// its release decrement, which the scan's acquire load then orders before
// the page's reuse. R + 2 >= e + 2, so the page waits too.
//
// Readers never wait for a writer: a reader's only loop is a re-count
// when the epoch moved between its two reads. Writers never wait for
// readers either: a page that cannot be freed yet stays retired, and the
// writer allocates a fresh one.
class ReaderEpochs {
 public:
  // A reader inside the memory's tables from enter() to exit(token).
  unsigned enter() {
    Slot& s = slots_[slot()];
    unsigned p = static_cast<unsigned>(epoch_.load(std::memory_order_relaxed) & 1);
    for (;;) {
      s.readers[p].fetch_add(1, std::memory_order_seq_cst);
      const unsigned now = static_cast<unsigned>(epoch_.load(std::memory_order_seq_cst) & 1);
      if (now == p) return p;
      s.readers[p].fetch_sub(1, std::memory_order_release);
      p = now;
    }
  }
  void exit(unsigned token) { slots_[slot()].readers[token].fetch_sub(1, std::memory_order_release); }

  // The writer's side (one writer at a time).
  u64 epoch() const { return epoch_.load(std::memory_order_relaxed); }
  // Moves to the next epoch when no reader of the one before the current
  // remains; whether it moved.
  bool advance() {
    const u64 e = epoch_.load(std::memory_order_relaxed);
    const unsigned old = static_cast<unsigned>((e + 1) & 1);  // the parity of e - 1
    for (const Slot& s : slots_)
      if (s.readers[old].load(std::memory_order_seq_cst) != 0) return false;
    epoch_.store(e + 1, std::memory_order_seq_cst);
    return true;
  }
  // Whether a page retired in epoch `retired` may be reused now.
  bool reusable(u64 retired) const { return epoch() >= retired + 2; }
  // Moves the epoch on, as far as the readers allow and twice at most (what
  // something retired in the current epoch needs), until what was retired
  // in epoch `retired` may be reused.
  void advance_for(u64 retired) {
    for (int k = 0; k < 2 && !reusable(retired); ++k)
      if (!advance()) break;
  }

 private:
  static constexpr unsigned kSlots = 64;
  struct alignas(64) Slot {
    std::atomic<std::uint32_t> readers[2] = {0, 0};
  };
  // This thread's slot: threads take slots in turn (two threads may share
  // one; they are counts).
  static unsigned slot() {
    static std::atomic<unsigned> next{0};
    thread_local const unsigned mine = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
    return mine;
  }
  Slot slots_[kSlots];
  std::atomic<u64> epoch_{2};  // R + 2 never wraps
};

// Pages from the heap, given made-up physical addresses from `base`
// upward: page i (index = (pa - base) / 4K, in allocation order) is at a
// host address computed from pa, with no table to read on the way.
//
// Layout. The pages live in regions, each one heap allocation made when
// the first of its pages is handed out. Region k holds region_pages << k
// pages (region_pages, a power of two, is a constructor argument), so
// that region k starts at index region_pages * (2^k - 1), the index of a
// page names its region with a shift and a bit scan, and what is
// allocated is at most twice what is in use (plus region 0); a region is
// cut short where max_pages ends. Region 0 is the fast path: for its
// pages host = region 0's address + (pa - base), two additions and no
// load (FastLookup).
//
// Unlimited unless a failure is injected, max_pages is reached, or the
// heap refuses a region: all three answer nullopt with nothing changed.
//
// Readers without a lock (Reading) may look pages up and read them while
// the one writer allocates and frees: a region is never freed or moved
// while the memory lives, a region's address is published (release)
// before the count of pages that covers it, a page never moves, and a
// freed page is reused only when no reader may still be inside it
// (ReaderEpochs). Without readers a freed page is reused at the next
// allocation, last freed first.
class HeapPageMemory final : public PageMemory {
 public:
  // The default first region: 16 pages (64 KiB, below glibc's threshold
  // for a mapping of its own, so that a copy of a small memory makes no
  // system call): a table of up to 16 pages is walked by arithmetic.
  static constexpr u64 kRegionPages = 16;

  // base: 4 KiB aligned. region_pages: a power of two (tests make it small
  // to reach later regions with a few pages).
  explicit HeapPageMemory(u64 base = 0x1'0000'0000, u64 max_pages = ~u64{0}, u64 region_pages = kRegionPages);
  // A deep copy: every page (freed ones too) at the same physical address,
  // in regions of its own laid out as o's, the same counters and injection
  // state (PageTable::clone_onto needs it). Pages waiting for readers are
  // free in the copy, which has none. Throws std::bad_alloc when the heap
  // refuses the copy's regions.
  HeapPageMemory(const HeapPageMemory& o);
  HeapPageMemory& operator=(const HeapPageMemory&) = delete;
  ~HeapPageMemory() override;
  std::uint64_t* page(u64 pa) const override { return Lookup(*this).page(pa); }

  // Where region 0's handed-out pages are: page pa is at host + (pa -
  // base) when base <= pa < base + bytes. The writer stores host before the
  // first bytes that cover region 0 (release); readers load bytes
  // (acquire) before host. Only bytes changes after that, growing.
  struct FastPages {
    u64 base = 0;
    std::atomic<u64> bytes{0};
    std::atomic<u64> host{0};
  };
  const FastPages& fast_pages() const { return fast_; }
  // FastPages of no page, for a walk over some other memory: every
  // lookup then takes the memory's own way.
  static const FastPages kNoFastPages;

  // FastPages as they are when made, for a walk that looks up several
  // pages in a row: read once, not once a page. A page past them (of a
  // later region, or handed out since) is not covered; page() finds it.
  // A walk's level is then: offset, one comparison, word_at.
  class FastLookup {
   public:
    // Inline at every level of a walk (GCC otherwise calls them).
    [[gnu::always_inline]] explicit FastLookup(const FastPages& f)
        : base_(f.base), bytes_(f.bytes.load(std::memory_order_acquire)),
          host_(f.host.load(std::memory_order_relaxed)) {}
    // pa's byte offset in region 0: below bytes() when covered (below
    // base it wraps past any extent).
    [[gnu::always_inline]] u64 offset(u64 pa) const { return pa - base_; }
    [[gnu::always_inline]] u64 bytes() const { return bytes_; }
    [[gnu::always_inline]] bool covers(u64 pa) const { return offset(pa) < bytes_; }
    // The host view of the page holding pa, which covers(pa).
    [[gnu::always_inline]] std::uint64_t* page(u64 pa) const {
      return reinterpret_cast<std::uint64_t*>(host_ + (offset(pa) & ~(kGranule - 1)));
    }
    // Word i of the table page at offset off (4 KiB aligned, below
    // bytes()): one addition, and the load's own indexing. The empty asm
    // keeps GCC from adding 8i to the host address first and off after,
    // which takes an instruction more.
    [[gnu::always_inline]] const std::uint64_t* word_at(u64 off, unsigned i) const {
      u64 host = host_ + off;
      asm("" : "+r"(host));
      return reinterpret_cast<const std::uint64_t*>(host) + i;
    }

   private:
    u64 base_;
    u64 bytes_;
    u64 host_;
  };

  // page() for a walk that looks up several pages in a row (FastLookup,
  // and page_after past it).
  class Lookup {
   public:
    [[gnu::always_inline]] explicit Lookup(const HeapPageMemory& m) : m_(m), fast_(m.fast_) {}
    [[gnu::always_inline]] std::uint64_t* page(u64 pa) const {
      return fast_.covers(pa) ? fast_.page(pa) : m_.page_after(pa);
    }

   private:
    const HeapPageMemory& m_;
    FastLookup fast_;
  };

  // A reader walking this memory's tables without the writer's lock, for
  // as long as it lives (ReaderEpochs).
  class Reading {
   public:
    explicit Reading(const HeapPageMemory& m) : e_(m.readers_), token_(e_.enter()) {}
    Reading(const Reading&) = delete;
    Reading& operator=(const Reading&) = delete;
    ~Reading() { e_.exit(token_); }

   private:
    ReaderEpochs& e_;
    unsigned token_;
  };
  // Freed pages not yet reusable because a reader may be inside them.
  std::size_t retired_pages() const { return retired_.size(); }
  // Regions allocated so far.
  unsigned regions() const { return regions_; }
  // For tests: the nth region allocation from now fails as the heap's
  // refusal would; 0 turns that off.
  void fail_nth_region(u64 n) { region_fail_in_ = n; }

 protected:
  std::optional<u64> do_alloc() override;
  void do_free(u64 pa) override;

 private:
  struct Retired {
    u64 index;
    u64 epoch;
  };
  static constexpr unsigned kMaxRegions = 40;
  // The page at pa, past a Lookup's extent (nullptr: not a page handed out).
  std::uint64_t* page_after(u64 pa) const;
  // The region holding page index i, its first index and its pages.
  unsigned region_of(u64 i) const;
  u64 region_start(unsigned k) const { return ((u64{1} << k) - 1) << region_shift_; }
  u64 region_pages(unsigned k) const;
  // Makes page count_ usable: allocates the region it starts. false:
  // refused, nothing changed.
  bool add_region();
  // The heap's aligned allocation, or the injected refusal (fail_nth_region).
  unsigned char* allocate_region(u64 pages);
  bool refused();
  // The host view of handed-out page i (the writer's).
  std::uint64_t* host_of(u64 i) const;
  void free_regions();
  // Moves the retired pages no reader can be inside to free_.
  void reclaim();

  // What a lookup reads, on a cache line of its own: the writer's counters
  // (PageMemory's, free_, retired_) change on every operation, and a
  // reader sharing their line would miss on it each time.
  // fast_: region 0's place and extent; count_: pages handed out;
  // region_[k]: region k's host address. The writer stores a region's
  // address before the counts that cover it (release); readers load the
  // counts first (acquire).
  alignas(64) FastPages fast_;
  std::atomic<u64> count_{0};
  unsigned region_shift_;
  std::atomic<unsigned char*> region_[kMaxRegions] = {};
  alignas(64) u64 base_;
  u64 max_pages_;
  unsigned regions_ = 0;    // regions allocated (the writer's)
  u64 committed_ = 0;       // pages [0, committed_) lie in them (the writer's)
  u64 region_fail_in_ = 0;     // fail_nth_region's countdown
  std::vector<u64> free_;        // indexes of freed pages (kept, reused)
  std::vector<Retired> retired_; // freed, waiting for readers
  mutable ReaderEpochs readers_;
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
