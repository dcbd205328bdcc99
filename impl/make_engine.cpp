// impl/make_engine.cpp: the engine's lock, its per-call verification and the
// public factories (include/ioas/impl.hpp).
#include <exception>
#include <mutex>
#include <shared_mutex>

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
  Result<IoasState> snapshot(std::string_view s) const override IOAS_OBSERVE(snapshot(s))
  std::vector<Violation> check() const override IOAS_OBSERVE(check())
#undef IOAS_OBSERVE
#undef IOAS_MUTATE

 private:
  mutable Around around_;
  std::unique_ptr<Engine> e_;
};

// The engine's locking (include/ioas/impl.hpp): one readers-writer lock.
// Observers that change nothing run concurrently with each other; every
// other call (dma and read_dirty too: they set or clear accessed/dirty
// bits) runs alone. Page-table splits and merges happen inside those calls,
// so they never overlap a map or unmap.
struct Locking {
  std::shared_lock<std::shared_mutex> observe(const Engine&) { return std::shared_lock(mu); }
  std::unique_lock<std::shared_mutex> mutate(const Engine&) { return std::unique_lock(mu); }
  std::shared_mutex mu;
};
using LockedEngine = WrappedEngine<Locking>;

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
    else if (const auto* l = dynamic_cast<const LockedEngine*>(e))
      e = &l->inner();
    else if (const auto* v = dynamic_cast<const VerifiedEngine*>(e))
      e = &v->inner();
    else
      return const_cast<ImplEngine*>(dynamic_cast<const ImplEngine*>(e));
  }
}

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
  std::unique_ptr<Engine> e = std::make_unique<impl::ImplEngine>(options);
  if (options.verify_each_op) e = std::make_unique<impl::VerifiedEngine>(std::move(e));
  if (options.thread_safe) e = std::make_unique<impl::LockedEngine>(std::move(e));
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
  e->table_memory().fail_nth_alloc(nth);
  return true;
}
std::uint64_t alloc_calls(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->table_memory().alloc_calls() : 0;
}
std::uint64_t table_pages_reachable(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->reachable_table_pages() : 0;
}
std::uint64_t table_pages_in_use(const Engine& engine) {
  impl::ImplEngine* e = impl::impl_of(engine);
  return e ? e->table_memory().live_pages() : 0;
}

}  // namespace ioas
