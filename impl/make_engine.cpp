// impl/make_engine.cpp: the engine's locks, its per-call verification and
// the public factories (include/ioas/impl.hpp).
#include <atomic>
#include <bit>
#include <cstdint>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine_impl.hpp"

namespace ioas {
namespace impl {
namespace {

// An Engine that forwards every call to an inner engine with a guard of
// Around's held across it: Around::observe() for the calls that change
// nothing, Around::mutate() for the others. The guard is made before the
// call and dropped after it, once the answer is built.
template <typename Around>
class WrappedEngine final : public Engine {
 public:
  explicit WrappedEngine(std::unique_ptr<Engine> e) : e_(std::move(e)) {}
  Engine& inner() const { return *e_; }
  const char* kind() const override { return e_->kind(); }
  std::unique_ptr<Engine> clone() const override {
    [[maybe_unused]] auto g = around_.observe(*e_);
    auto c = e_->clone();
    return c ? std::make_unique<WrappedEngine>(std::move(c)) : nullptr;
  }
#define IOAS_OBSERVE(call)                        \
  {                                               \
    [[maybe_unused]] auto g = around_.observe(*e_); \
    return e_->call;                              \
  }
#define IOAS_MUTATE(call)                        \
  {                                              \
    [[maybe_unused]] auto g = around_.mutate(*e_); \
    return e_->call;                             \
  }
  Status create_ioas(std::string_view n, const IoasOptions& o) override IOAS_MUTATE(create_ioas(n, o))
  Result<IoasOptions> ioas_options(std::string_view n) const override IOAS_OBSERVE(ioas_options(n))
  Status set_huge_pages(std::string_view n, bool on) override IOAS_MUTATE(set_huge_pages(n, on))
  std::vector<std::string> ioas_names() const override IOAS_OBSERVE(ioas_names())
  Status add_memory(const MemorySource& m) override IOAS_MUTATE(add_memory(m))
  Status remove_memory(std::string_view n) override IOAS_MUTATE(remove_memory(n))
  std::vector<MemoryInfo> memories() const override IOAS_OBSERVE(memories())
  Result<u64> map(std::string_view s, const MapArgs& a) override IOAS_MUTATE(map(s, a))
  Result<u64> unmap(std::string_view s, u64 i, u64 n) override IOAS_MUTATE(unmap(s, i, n))
  Status cut(std::string_view s, u64 i) override IOAS_MUTATE(cut(s, i))
  Result<u64> copy(std::string_view s, const CopyArgs& a) override IOAS_MUTATE(copy(s, a))
  Status reserve(std::string_view s, Range r, std::string_view o) override IOAS_MUTATE(reserve(s, r, o))
  Status unreserve(std::string_view s, std::string_view o) override IOAS_MUTATE(unreserve(s, o))
  Status allow(std::string_view s, std::span<const Range> r) override IOAS_MUTATE(allow(s, r))
  Result<IovaRanges> ranges(std::string_view s) const override IOAS_OBSERVE(ranges(s))
  Status attach(std::string_view s, const AttachArgs& a) override IOAS_MUTATE(attach(s, a))
  Status detach(std::string_view d) override IOAS_MUTATE(detach(d))
  Result<std::uint32_t> pin(std::string_view s, const PinArgs& a) override IOAS_MUTATE(pin(s, a))
  Status unpin(std::string_view s, std::uint32_t id) override IOAS_MUTATE(unpin(s, id))
  Result<std::optional<Translation>> translate(std::string_view d, u64 i) const override IOAS_OBSERVE(translate(d, i))
  Result<DmaOutcome> dma(std::string_view d, DmaDir dir, u64 i, u64 n) override IOAS_MUTATE(dma(d, dir, i, n))
  Status set_dirty_tracking(std::string_view d, DirtyMode m) override IOAS_MUTATE(set_dirty_tracking(d, m))
  Result<std::vector<Range>> read_dirty(std::string_view d, u64 i, u64 n, u64 p, bool k) override
      IOAS_MUTATE(read_dirty(d, i, n, p, k))
  Result<u64> uva(std::string_view s, u64 i) const override IOAS_OBSERVE(uva(s, i))
  Result<std::vector<LeafInfo>> leaves(std::string_view d, Range r) const override IOAS_OBSERVE(leaves(d, r))
  Status leaves_into(std::string_view d, Range r, std::vector<LeafInfo>& out) const override
      IOAS_OBSERVE(leaves_into(d, r, out))
  Result<IoasState> snapshot(std::string_view s) const override IOAS_OBSERVE(snapshot(s))
  Status snapshot_into(std::string_view s, IoasState& out) const override IOAS_OBSERVE(snapshot_into(s, out))
  std::vector<Violation> check() const override IOAS_OBSERVE(check())
#undef IOAS_OBSERVE
#undef IOAS_MUTATE

 private:
  mutable Around around_;
  std::unique_ptr<Engine> e_;
};

// A readers-writer lock whose readers each touch a counter of their own (a
// cache line per slot, a slot per thread): readers on different threads
// share no written memory, so taking it costs a reader no cache-line
// transfer while no writer comes. A writer raises its flag, then waits for
// every slot to drain; a reader that sees the flag steps back and waits for
// it to drop. Each side writes its own word and then reads the other's
// (the slot before the flag, the flag before the slots), and a full barrier
// between the two on both sides makes sure that at least one of them sees
// the other.
//
// A thread holds a slot of its own (Seat) while it lives, kSlots - 1 threads
// at a time; the others share the last slot, which counts with
// read-modify-writes (each a full barrier). An owner writes its slot with
// plain stores, and its barrier is the writer's: membarrier(2) makes every
// thread of the process run one (Linux's sys_membarrier, as liburcu's
// readers rely on), so a reader pays no atomic read-modify-write at all. A
// writer skips that system call while no other thread has ever read
// through an owned slot of this lock (`seen`): a reader sets its bit there
// (a read-modify-write, once per thread and lock) before its first plain
// store, so a writer that misses the bit wrote its flag before the reader's
// bit, and the reader's flag load, after the bit, sees it. Where the
// kernel has no membarrier, owners count with read-modify-writes too.
class SlottedLock {
 public:
  void lock_shared() {
    const Ticket& me = ticket();
    Slot& s = slots_[me.index];
    const std::uint64_t bit = std::uint64_t{1} << me.index;
    // Sequentially consistent, as the writer's load: a bit an earlier owner
    // of this slot set counts as this thread's own.
    if (!(seen_.load(std::memory_order_seq_cst) & bit)) seen_.fetch_or(bit, std::memory_order_seq_cst);
    for (;;) {
      enter(s, me);
      if (!writer_.load(std::memory_order_seq_cst)) return;
      leave(s, me);
      while (writer_.load(std::memory_order_acquire)) std::this_thread::yield();
    }
  }
  void unlock_shared() {
    const Ticket& me = ticket();
    leave(slots_[me.index], me);
  }
  void lock() {
    writers_.lock();
    writer_.store(true, std::memory_order_seq_cst);
    const std::uint64_t others = seen_.load(std::memory_order_seq_cst) & kOwnable & ~(std::uint64_t{1} << ticket().index);
    if (others && asymmetric()) heavy_barrier();
    for (Slot& s : slots_)
      while (s.readers.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  }
  void unlock() {
    writer_.store(false, std::memory_order_seq_cst);
    writers_.unlock();
  }

 private:
  static constexpr unsigned kSlots = 64;
  static constexpr unsigned kShared = kSlots - 1;
  struct alignas(64) Slot {
    std::atomic<std::uint32_t> readers{0};
  };
  // This thread's slot: the lowest one no living thread owns (taken in the
  // process-wide `owned` mask, given back when the thread ends), else the
  // shared one.
  struct Seat {
    unsigned index = kShared;
    bool own = false;
    Seat() {
      std::uint64_t m = owned().load(std::memory_order_relaxed);
      while (~m & kOwnable) {
        const unsigned i = static_cast<unsigned>(std::countr_zero(~m & kOwnable));
        if (owned().compare_exchange_weak(m, m | (std::uint64_t{1} << i), std::memory_order_relaxed)) {
          index = i;
          own = true;
          return;
        }
      }
    }
    ~Seat() {
      // A lock taken later in this thread's exit (by another thread_local's
      // destructor) counts in the shared slot, with read-modify-writes.
      Ticket& t = ticket_slot();
      t.index = kShared;
      t.own = t.plain = false;
      if (own) owned().fetch_and(~(std::uint64_t{1} << index), std::memory_order_relaxed);
    }
    Seat(const Seat&) = delete;
    Seat& operator=(const Seat&) = delete;
  };
  static constexpr std::uint64_t kOwnable = (std::uint64_t{1} << kShared) - 1;
  static std::atomic<std::uint64_t>& owned() {
    static std::atomic<std::uint64_t> mask{0};
    return mask;
  }
  static const Seat& seat() {
    thread_local const Seat mine;
    return mine;
  }
  // What a reader needs of its Seat, in a thread_local with nothing to
  // construct or destroy: reading it costs no guard check, where seat()
  // checks its construction guard and asymmetric() its own on every call.
  // own: the slot is this thread's alone; plain: and counts with plain stores.
  struct Ticket {
    unsigned index = kShared;
    bool own = false;
    bool plain = false;
    bool ready = false;
  };
  static Ticket& ticket_slot() {
    constinit thread_local Ticket mine;
    return mine;
  }
  [[gnu::noinline]] static void issue(Ticket& t) {
    const Seat& s = seat();
    t.index = s.index;
    t.own = s.own;
    t.plain = s.own && asymmetric();
    t.ready = true;
  }
  static const Ticket& ticket() {
    Ticket& t = ticket_slot();
    if (!t.ready) [[unlikely]]
      issue(t);
    return t;
  }
  // Whether owners count with plain stores: membarrier's private expedited
  // command is registered for the process (once, before any reader or
  // writer relies on it).
  static bool asymmetric() {
    static const bool on = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    return on;
  }
  static void heavy_barrier() {
    const long r = syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    IOAS_CHECK(r == 0, "world lock: membarrier failed after it was registered");
  }
  static void enter(Slot& s, const Ticket& me) {
    if (me.plain) {
      s.readers.store(s.readers.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the writer's membarrier is the barrier
    } else {
      s.readers.fetch_add(1, std::memory_order_seq_cst);
    }
  }
  static void leave(Slot& s, const Ticket& me) {
    if (me.own)
      s.readers.store(s.readers.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    else
      s.readers.fetch_sub(1, std::memory_order_release);
  }
  Slot slots_[kSlots];
  std::atomic<bool> writer_{false};
  std::atomic<std::uint64_t> seen_{0};  // bit i: a thread has read through slot i
  std::mutex writers_;
};

// An IOAS's lock: a readers-writer lock in one word, on a cache line of its
// own (writers on different IOASes take their locks at the same time, and
// two locks, or a lock and another object written meanwhile, on one line
// would bounce it between them). Uncontended, a writer pays one
// compare-and-swap to take it and a plain release store to drop it (a
// std::shared_mutex costs about three times as much); a reader one
// compare-and-swap each way. Whoever finds it taken waits by polling
// (yielding the CPU): nobody is told when it drops, so dropping it never
// has to look for waiters. The word is kWriter while a writer holds it,
// else the number of readers.
class alignas(64) IoasLock {
 public:
  void lock() {
    for (std::uint32_t free = 0; !word_.compare_exchange_weak(free, kWriter, std::memory_order_acquire,
                                                              std::memory_order_relaxed);
         free = 0)
      wait_until([](std::uint32_t w) { return w == 0; });
  }
  void unlock() { word_.store(0, std::memory_order_release); }
  void lock_shared() {
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    for (;;) {
      if (w == kWriter) w = wait_until([](std::uint32_t v) { return v != kWriter; });
      if (word_.compare_exchange_weak(w, w + 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    }
  }
  void unlock_shared() { word_.fetch_sub(1, std::memory_order_release); }

 private:
  static constexpr std::uint32_t kWriter = ~std::uint32_t{0};
  // Polls until ready(word) holds; returns that word.
  template <typename Ready>
  std::uint32_t wait_until(Ready ready) const {
    for (;;) {
      const std::uint32_t w = word_.load(std::memory_order_relaxed);
      if (ready(w)) return w;
      std::this_thread::yield();
    }
  }
  std::atomic<std::uint32_t> word_{0};
};

// The thread-safe engine (include/ioas/impl.hpp): a lock per IOAS, and the
// world lock (a SlottedLock) for the engine-wide objects.
//   - world, exclusive: the calls that change the engine-wide objects
//     (create_ioas, memory sources, attach and detach: the name maps, the
//     source table, the domains), and the calls that read every IOAS
//     (check, clone).
//   - world, shared, then the IOAS's lock: every call on one IOAS or one
//     domain (which belongs to one IOAS); exclusive for the calls that change
//     it (dma and read_dirty too: they set and clear accessed/dirty bits),
//     shared for the ones that read it. copy locks both of its IOASes,
//     exclusive, in the order of their names.
//   - world, shared, alone: ioas_names, memories (which sums the IOASes'
//     use counts of each source, stored with relaxed atomics), ranges (which
//     copies what its IOAS publishes: impl/published_ranges.hpp).
//   - world, shared, and a reader of the IOAS's page memory
//     (hw::HeapPageMemory::Reading): translate on a domain whose table may
//     be walked beside its writer (lock_free_pages in engine_impl.hpp), so
//     that it never waits for one; the world lock keeps the domain and its
//     table (only attach and detach, alone, make and drop them).
// A call on one IOAS writes nothing outside it: each IOAS counts its own
// uses of the memory sources (Ioas::source_uses) and its own allocations
// (Ioas::mem); the fault injection they share is only read while it is off
// (hw::PageMemory::share_injection). With verify_each_op, the
// verification after each call reads the whole world: every mutating call
// then takes the world exclusive.
class ConcurrentEngine final : public Engine {
 private:
  static ImplEngine* impl_of_inner(const Engine& e);
  // The lock of IOAS `name`, or nullptr when there is no such IOAS (the
  // call then answers ENOENT without touching one). Under the world lock:
  // locks_ changes only under it, exclusive.
  // locks_ erases only the entry create_ioas made in the same call, alone,
  // which no lookup has found: find_remembered's condition holds.
  IoasLock* lock_of(std::string_view name) const {
    Guarded* g = guarded(name);
    return g ? &g->lock : nullptr;
  }
  // The IOAS `name` with its lock, or nullptr: one lookup for both.
  struct Guarded {
    IoasLock lock;
    Ioas* ioas = nullptr;  // set once create_ioas has made it
  };
  Guarded* guarded(std::string_view name) const { return find_remembered(locks_, lookups_, name); }
  // The lock of the IOAS domain `dom` belongs to, or nullptr.
  IoasLock* lock_of_domain(std::string_view dom) const {
    const std::string* s = impl_.ioas_of_domain(dom);
    return s ? lock_of(*s) : nullptr;
  }

  template <typename F>
  auto alone(F&& f) const {
    std::unique_lock w(world_);
    return f();
  }
  // f() under the world lock, shared, and the lock (held as Lock: unique for
  // a change, shared for a read) of the IOAS find() names, if any.
  template <template <typename> class Lock, typename Find, typename F>
  auto in_ioas(Find&& find, F&& f) const {
    std::shared_lock w(world_);
    IoasLock* m = find();
    Lock<IoasLock> l = m ? Lock<IoasLock>(*m) : Lock<IoasLock>();
    return f();
  }
  template <typename F>
  auto writing(std::string_view ioas, F&& f) const {
    if (serialize_writes_) return alone(f);
    return in_ioas<std::unique_lock>([&] { return lock_of(ioas); }, f);
  }
  template <typename F>
  auto reading(std::string_view ioas, F&& f) const {
    return in_ioas<std::shared_lock>([&] { return lock_of(ioas); }, f);
  }
  template <typename F>
  auto writing_domain(std::string_view dom, F&& f) const {
    if (serialize_writes_) return alone(f);
    return in_ioas<std::unique_lock>([&] { return lock_of_domain(dom); }, f);
  }
  template <typename F>
  auto reading_domain(std::string_view dom, F&& f) const {
    return in_ioas<std::shared_lock>([&] { return lock_of_domain(dom); }, f);
  }

 public:
  ConcurrentEngine(std::unique_ptr<Engine> e, ImplEngine& impl, bool serialize_writes)
      : e_(std::move(e)), impl_(impl), serialize_writes_(serialize_writes) {
    IOAS_CHECK(serialize_writes_ || e_.get() == &impl_,
               "thread-safe engine: calls that bypass the inner engine need it to be the ImplEngine");
    for (const std::string& n : e_->ioas_names()) {
      auto g = std::make_unique<Guarded>();
      g->ioas = impl_.ioas_named(n);
      locks_.emplace(n, std::move(g));
    }
  }
  Engine& inner() const { return *e_; }
  const char* kind() const override { return e_->kind(); }
  std::unique_ptr<Engine> clone() const override {
    std::unique_lock w(world_);
    auto c = e_->clone();
    if (!c) return nullptr;
    ImplEngine* ci = impl_of_inner(*c);
    return ci ? std::make_unique<ConcurrentEngine>(std::move(c), *ci, serialize_writes_) : nullptr;
  }

  Status create_ioas(std::string_view n, const IoasOptions& o) override {
    std::unique_lock w(world_);
    // The IOAS's lock first (a throw: nothing changed), dropped again when
    // the IOAS is not made.
    auto [it, fresh] = locks_.try_emplace(std::string(n), std::make_unique<Guarded>());
    auto drop = [&, it = it, fresh = fresh] {
      if (fresh) locks_.erase(it);
    };
    try {
      Status st = e_->create_ioas(n, o);
      if (!st.ok())
        drop();
      else
        it->second->ioas = impl_.ioas_named(n);
      return st;
    } catch (...) {
      drop();
      throw;
    }
  }
  Result<IoasOptions> ioas_options(std::string_view n) const override { return reading(n, [&] { return e_->ioas_options(n); }); }
  Status set_huge_pages(std::string_view n, bool on) override { return writing(n, [&] { return e_->set_huge_pages(n, on); }); }
  std::vector<std::string> ioas_names() const override {
    std::shared_lock w(world_);
    return e_->ioas_names();
  }
  Status add_memory(const MemorySource& m) override { return alone([&] { return e_->add_memory(m); }); }
  Status remove_memory(std::string_view n) override { return alone([&] { return e_->remove_memory(n); }); }
  std::vector<MemoryInfo> memories() const override {
    std::shared_lock w(world_);
    return e_->memories();
  }
  // map and unmap reach the IOAS the lookup for its lock found (unless the
  // writes are serialized, e_ is impl_): the name is looked up once.
  Result<u64> map(std::string_view s, const MapArgs& a) override {
    if (serialize_writes_) return alone([&] { return e_->map(s, a); });
    std::shared_lock w(world_);
    Guarded* g = guarded(s);
    if (!g) return e_->map(s, a);  // no such IOAS: its error, no lock
    std::unique_lock l(g->lock);
    return impl_.map_in(*g->ioas, a);
  }
  Result<u64> unmap(std::string_view s, u64 i, u64 n) override {
    if (serialize_writes_) return alone([&] { return e_->unmap(s, i, n); });
    std::shared_lock w(world_);
    Guarded* g = guarded(s);
    if (!g) return e_->unmap(s, i, n);
    std::unique_lock l(g->lock);
    return impl_.unmap_in(*g->ioas, i, n);
  }
  Status cut(std::string_view s, u64 i) override { return writing(s, [&] { return e_->cut(s, i); }); }
  Result<u64> copy(std::string_view s, const CopyArgs& a) override {
    if (serialize_writes_) return alone([&] { return e_->copy(s, a); });
    std::shared_lock w(world_);
    IoasLock* to = lock_of(s);
    IoasLock* from = lock_of(a.from);
    if (to == from) from = nullptr;
    if (from && std::string_view(a.from) < s) std::swap(to, from);
    std::unique_lock first = to ? std::unique_lock(*to) : std::unique_lock<IoasLock>();
    std::unique_lock second = from ? std::unique_lock(*from) : std::unique_lock<IoasLock>();
    return e_->copy(s, a);
  }
  Status reserve(std::string_view s, Range r, std::string_view o) override { return writing(s, [&] { return e_->reserve(s, r, o); }); }
  Status unreserve(std::string_view s, std::string_view o) override { return writing(s, [&] { return e_->unreserve(s, o); }); }
  Status allow(std::string_view s, std::span<const Range> r) override { return writing(s, [&] { return e_->allow(s, r); }); }
  // Without the IOAS's lock: the IOAS publishes what ranges answers
  // (impl/published_ranges.hpp); the world lock, shared, keeps the IOAS.
  Result<IovaRanges> ranges(std::string_view s) const override {
    std::shared_lock w(world_);
    return e_->ranges(s);
  }
  Status attach(std::string_view s, const AttachArgs& a) override { return alone([&] { return e_->attach(s, a); }); }
  Status detach(std::string_view d) override { return alone([&] { return e_->detach(d); }); }
  Result<std::uint32_t> pin(std::string_view s, const PinArgs& a) override { return writing(s, [&] { return e_->pin(s, a); }); }
  Status unpin(std::string_view s, std::uint32_t id) override { return writing(s, [&] { return e_->unpin(s, id); }); }
  // Without the IOAS's lock where the domain's table allows it (the world
  // lock, shared, keeps the domain and its table): a reader of the IOAS's
  // memory instead, so that a writer of the IOAS never makes it wait.
  Result<std::optional<Translation>> translate(std::string_view d, u64 i) const override {
    std::shared_lock w(world_);
    if (const Domain* dom = impl_.lock_free_domain(d)) {
      hw::HeapPageMemory::Reading r(*dom->lock_free);
      // Unless writes are serialized, e_ is impl_, whose translate is this
      // walk: the domain's name is looked up once.
      if (!serialize_writes_) return dom->pt->translate(i);
      return e_->translate(d, i);
    }
    IoasLock* l = lock_of_domain(d);
    std::shared_lock g = l ? std::shared_lock(*l) : std::shared_lock<IoasLock>();
    return e_->translate(d, i);
  }
  Result<DmaOutcome> dma(std::string_view d, DmaDir dir, u64 i, u64 n) override {
    return writing_domain(d, [&] { return e_->dma(d, dir, i, n); });
  }
  Status set_dirty_tracking(std::string_view d, DirtyMode m) override {
    return writing_domain(d, [&] { return e_->set_dirty_tracking(d, m); });
  }
  Result<std::vector<Range>> read_dirty(std::string_view d, u64 i, u64 n, u64 p, bool k) override {
    return writing_domain(d, [&] { return e_->read_dirty(d, i, n, p, k); });
  }
  Result<u64> uva(std::string_view s, u64 i) const override { return reading(s, [&] { return e_->uva(s, i); }); }
  Result<std::vector<LeafInfo>> leaves(std::string_view d, Range r) const override {
    return reading_domain(d, [&] { return e_->leaves(d, r); });
  }
  Status leaves_into(std::string_view d, Range r, std::vector<LeafInfo>& out) const override {
    return reading_domain(d, [&] { return e_->leaves_into(d, r, out); });
  }
  Result<IoasState> snapshot(std::string_view s) const override { return reading(s, [&] { return e_->snapshot(s); }); }
  Status snapshot_into(std::string_view s, IoasState& out) const override {
    return reading(s, [&] { return e_->snapshot_into(s, out); });
  }
  std::vector<Violation> check() const override { return alone([&] { return e_->check(); }); }

 private:
  mutable SlottedLock world_;
  NameMap<std::unique_ptr<Guarded>> locks_;
  LookupOwner lookups_;  // of locks_
  std::unique_ptr<Engine> e_;
  ImplEngine& impl_;
  const bool serialize_writes_;
};

// ImplOptions::verify_each_op: after every mutating call, success or
// failure, the ImplEngine inside runs verify_all() (its trees' invariants
// and the SPEC ones), aborting with the reason on a breach. A call that
// throws (heap exhausted) is not verified: GuardedEngine reports it.
// Verification allocates; a heap exhausted there is not the operation's
// failure (it has happened), so it aborts rather than report ENOMEM.
struct Verifying {
  struct NoGuard {};
  class VerifyAfter {
   public:
    explicit VerifyAfter(const ImplEngine& e) : e_(e) {}
    VerifyAfter(const VerifyAfter&) = delete;
    VerifyAfter& operator=(const VerifyAfter&) = delete;
    ~VerifyAfter() {
      if (std::uncaught_exceptions() != exceptions_) return;
      try {
        e_.verify_all();
      } catch (const std::bad_alloc&) {
        boundary_abort("verify", "heap exhausted while verifying");
      }
    }

   private:
    const ImplEngine& e_;
    int exceptions_ = std::uncaught_exceptions();
  };
  NoGuard observe(const Engine&) { return {}; }
  VerifyAfter mutate(const Engine& inner) { return VerifyAfter(dynamic_cast<const ImplEngine&>(inner)); }
};
using VerifiedEngine = WrappedEngine<Verifying>;

// The ImplEngine behind an engine of make_engine(), or nullptr.
ImplEngine* impl_of(const Engine& outer) {
  const Engine* e = &outer;
  for (;;) {
    if (const auto* g = dynamic_cast<const GuardedEngine*>(e))
      e = &g->inner();
    else if (const auto* l = dynamic_cast<const ConcurrentEngine*>(e))
      e = &l->inner();
    else if (const auto* v = dynamic_cast<const VerifiedEngine*>(e))
      e = &v->inner();
    else
      return const_cast<ImplEngine*>(dynamic_cast<const ImplEngine*>(e));
  }
}

ImplEngine* ConcurrentEngine::impl_of_inner(const Engine& e) { return impl_of(e); }

}  // namespace
}  // namespace impl

// IOAS_IMPL_VERIFY=1 in the environment turns per-call verification on for
// make_engine() (so a harness can enable it without a rebuild).
std::unique_ptr<Engine> make_engine() {
  static const bool env = [] {
    const char* v = std::getenv("IOAS_IMPL_VERIFY");
    return v && *v && std::string_view(v) != "0";
  }();
  ImplOptions o;
  o.verify_each_op = env;
  return make_engine(o);
}
std::unique_ptr<Engine> make_impl_engine() { return make_engine(); }
std::unique_ptr<Engine> make_engine(const ImplOptions& options) {
  auto impl = std::make_unique<impl::ImplEngine>(options);
  impl::ImplEngine& inner = *impl;
  std::unique_ptr<Engine> e = std::move(impl);
  if (options.verify_each_op) e = std::make_unique<impl::VerifiedEngine>(std::move(e));
  if (options.thread_safe) e = std::make_unique<impl::ConcurrentEngine>(std::move(e), inner, options.verify_each_op);
  return std::make_unique<GuardedEngine>(std::move(e));
}
std::unique_ptr<Engine> make_checked_engine() {
  ImplOptions o;
  o.verify_each_op = true;
  return make_engine(o);
}

bool fail_nth_alloc(Engine& engine, std::uint64_t nth) {
  impl::ImplEngine* e = impl::impl_of(engine);
  if (!e) return false;
  e->fail_nth_alloc(nth);
  return true;
}
std::uint64_t alloc_calls(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->alloc_calls() : 0;
}
std::uint64_t table_pages_reachable(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->reachable_table_pages() : 0;
}
std::uint64_t table_pages_in_use(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->live_table_pages() : 0;
}

}  // namespace ioas
