// impl/make_engine.cpp: the engine's lock and the public factories
// (include/ioas/impl.hpp).
#include <mutex>
#include <shared_mutex>

#include "engine_impl.hpp"

namespace ioas {
namespace impl {
namespace {

// The engine's locking (include/ioas/impl.hpp): one readers-writer lock.
// Observers that change nothing run concurrently with each other; every
// other call (dma and read_dirty too: they set or clear accessed/dirty
// bits) runs alone. Page-table splits and merges happen inside those calls,
// so they never overlap a map or unmap.
class LockedEngine final : public Engine {
 public:
  explicit LockedEngine(std::unique_ptr<ImplEngine> e) : e_(std::move(e)) {}
  ImplEngine& inner() const { return *e_; }
  const char* kind() const override { return "impl"; }
  std::unique_ptr<Engine> clone() const override {
    R l(mu_);
    auto c = e_->clone();
    if (!c) return nullptr;
    return std::make_unique<LockedEngine>(std::unique_ptr<ImplEngine>(static_cast<ImplEngine*>(c.release())));
  }
  Status create_ioas(std::string_view n, const IoasOptions& o) override { W l(mu_); return e_->create_ioas(n, o); }
  Result<IoasOptions> ioas_options(std::string_view n) const override { R l(mu_); return e_->ioas_options(n); }
  Status set_huge_pages(std::string_view n, bool on) override { W l(mu_); return e_->set_huge_pages(n, on); }
  std::vector<std::string> ioas_names() const override { R l(mu_); return e_->ioas_names(); }
  Status add_memory(const MemorySource& m) override { W l(mu_); return e_->add_memory(m); }
  Status remove_memory(std::string_view n) override { W l(mu_); return e_->remove_memory(n); }
  std::vector<MemoryInfo> memories() const override { R l(mu_); return e_->memories(); }
  Result<u64> map(std::string_view s, const MapArgs& a) override { W l(mu_); return e_->map(s, a); }
  Result<u64> unmap(std::string_view s, u64 i, u64 n) override { W l(mu_); return e_->unmap(s, i, n); }
  Status cut(std::string_view s, u64 i) override { W l(mu_); return e_->cut(s, i); }
  Result<u64> copy(std::string_view s, const CopyArgs& a) override { W l(mu_); return e_->copy(s, a); }
  Status reserve(std::string_view s, Range r, std::string_view o) override { W l(mu_); return e_->reserve(s, r, o); }
  Status unreserve(std::string_view s, std::string_view o) override { W l(mu_); return e_->unreserve(s, o); }
  Status allow(std::string_view s, std::span<const Range> r) override { W l(mu_); return e_->allow(s, r); }
  Result<IovaRanges> ranges(std::string_view s) const override { R l(mu_); return e_->ranges(s); }
  Status attach(std::string_view s, const AttachArgs& a) override { W l(mu_); return e_->attach(s, a); }
  Status detach(std::string_view d) override { W l(mu_); return e_->detach(d); }
  Result<std::uint32_t> pin(std::string_view s, const PinArgs& a) override { W l(mu_); return e_->pin(s, a); }
  Status unpin(std::string_view s, std::uint32_t id) override { W l(mu_); return e_->unpin(s, id); }
  Result<std::optional<Translation>> translate(std::string_view d, u64 i) const override {
    R l(mu_);
    return e_->translate(d, i);
  }
  Result<DmaOutcome> dma(std::string_view d, DmaDir dir, u64 i, u64 n) override {
    W l(mu_);
    return e_->dma(d, dir, i, n);
  }
  Status set_dirty_tracking(std::string_view d, DirtyMode m) override { W l(mu_); return e_->set_dirty_tracking(d, m); }
  Result<std::vector<Range>> read_dirty(std::string_view d, u64 i, u64 n, u64 p, bool k) override {
    W l(mu_);
    return e_->read_dirty(d, i, n, p, k);
  }
  Result<u64> uva(std::string_view s, u64 i) const override { R l(mu_); return e_->uva(s, i); }
  Result<std::vector<LeafInfo>> leaves(std::string_view d, Range r) const override {
    R l(mu_);
    return e_->leaves(d, r);
  }
  Result<IoasState> snapshot(std::string_view s) const override { R l(mu_); return e_->snapshot(s); }
  std::vector<Violation> check() const override { R l(mu_); return e_->check(); }

 private:
  using R = std::shared_lock<std::shared_mutex>;
  using W = std::unique_lock<std::shared_mutex>;
  mutable std::shared_mutex mu_;
  std::unique_ptr<ImplEngine> e_;
};

// The ImplEngine behind an engine of make_engine(), or nullptr.
ImplEngine* impl_of(const Engine& outer) {
  const auto* g = dynamic_cast<const GuardedEngine*>(&outer);
  const Engine& engine = g ? g->inner() : outer;
  if (auto* l = dynamic_cast<const LockedEngine*>(&engine)) return &l->inner();
  return const_cast<ImplEngine*>(dynamic_cast<const ImplEngine*>(&engine));
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
  auto e = std::make_unique<impl::ImplEngine>(options);
  if (!options.thread_safe) return std::make_unique<GuardedEngine>(std::move(e));
  return std::make_unique<GuardedEngine>(std::make_unique<impl::LockedEngine>(std::move(e)));
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
