// ioas/boundary.hpp: the edge of an engine operation, where no exception may
// pass (ioas/engine.hpp: "No exception leaves a method").
//
// An engine runs each public method through at_boundary(). A std::bad_alloc
// that reaches it is a heap exhaustion the operation was built to survive:
// the engine guarantees that, when one escapes its code, nothing has changed
// (everything was allocated before the first change, or what had changed was
// undone without allocating), so the answer is ENOMEM. Any other exception is
// a bug in ioas: it aborts with a message rather than leave an engine in an
// unknown state.
#pragma once

#include <cerrno>
#include <new>
#include <type_traits>
#include <vector>

#include "ioas/result.hpp"

namespace ioas {

// Error{ENOMEM, "out of memory"}: the message fits the string's inline buffer,
// so making it allocates nothing.
Error out_of_memory() noexcept;

// Prints "ioas: <what> in <op>" to stderr and aborts.
[[noreturn]] void boundary_abort(const char* op, const char* what) noexcept;

namespace detail {
template <typename T>
struct IsResult : std::false_type {};
template <typename T>
struct IsResult<Result<T>> : std::true_type {};
}  // namespace detail

// Runs f(); a std::bad_alloc becomes ENOMEM for a Result, and aborts for a
// method that has no error to give (check, memories, ioas_names: their
// answer is the allocation); any other exception aborts.
template <typename F>
auto at_boundary(const char* op, F&& f) noexcept -> decltype(f()) {
  using R = decltype(f());
  try {
    return f();
  } catch (const std::bad_alloc&) {
    if constexpr (detail::IsResult<R>::value) {
      return R(out_of_memory());
    } else {
      boundary_abort(op, "heap exhausted making an answer that has no error value");
    }
  } catch (...) {
    boundary_abort(op, "an exception escaped the engine");
  }
}

}  // namespace ioas

#include <memory>

#include "ioas/engine.hpp"

namespace ioas {

// An engine whose every method runs `inner`'s at the boundary (the model's
// make_model_engine() is one). clone() answers nullptr when the heap is
// exhausted.
class GuardedEngine final : public Engine {
 public:
  explicit GuardedEngine(std::unique_ptr<Engine> inner) : e_(std::move(inner)) {}
  Engine& inner() const { return *e_; }
  const char* kind() const override { return e_->kind(); }
  std::unique_ptr<Engine> clone() const override {
    try {
      auto c = e_->clone();
      return c ? std::make_unique<GuardedEngine>(std::move(c)) : nullptr;
    } catch (const std::bad_alloc&) {
      return nullptr;
    } catch (...) {
      boundary_abort("clone", "an exception escaped the engine");
    }
  }
#define IOAS_GUARD(op, call) return at_boundary(op, [&] { return e_->call; })
  Status create_ioas(std::string_view n, const IoasOptions& o) override { IOAS_GUARD("create_ioas", create_ioas(n, o)); }
  Result<IoasOptions> ioas_options(std::string_view n) const override { IOAS_GUARD("ioas_options", ioas_options(n)); }
  std::vector<std::string> ioas_names() const override { IOAS_GUARD("ioas_names", ioas_names()); }
  Status add_memory(const MemorySource& m) override { IOAS_GUARD("add_memory", add_memory(m)); }
  Status remove_memory(std::string_view n) override { IOAS_GUARD("remove_memory", remove_memory(n)); }
  std::vector<MemoryInfo> memories() const override { IOAS_GUARD("memories", memories()); }
  Result<u64> map(std::string_view s, const MapArgs& a) override { IOAS_GUARD("map", map(s, a)); }
  Result<u64> unmap(std::string_view s, u64 i, u64 n) override { IOAS_GUARD("unmap", unmap(s, i, n)); }
  Status cut(std::string_view s, u64 i) override { IOAS_GUARD("cut", cut(s, i)); }
  Status set_huge_pages(std::string_view s, bool on) override { IOAS_GUARD("set_huge_pages", set_huge_pages(s, on)); }
  Result<u64> copy(std::string_view s, const CopyArgs& a) override { IOAS_GUARD("copy", copy(s, a)); }
  Status reserve(std::string_view s, Range r, std::string_view o) override { IOAS_GUARD("reserve", reserve(s, r, o)); }
  Status unreserve(std::string_view s, std::string_view o) override { IOAS_GUARD("unreserve", unreserve(s, o)); }
  Status allow(std::string_view s, std::span<const Range> r) override { IOAS_GUARD("allow", allow(s, r)); }
  Result<IovaRanges> ranges(std::string_view s) const override { IOAS_GUARD("ranges", ranges(s)); }
  Status attach(std::string_view s, const AttachArgs& a) override { IOAS_GUARD("attach", attach(s, a)); }
  Status detach(std::string_view d) override { IOAS_GUARD("detach", detach(d)); }
  Result<std::uint32_t> pin(std::string_view s, const PinArgs& a) override { IOAS_GUARD("pin", pin(s, a)); }
  Status unpin(std::string_view s, std::uint32_t id) override { IOAS_GUARD("unpin", unpin(s, id)); }
  Result<std::optional<Translation>> translate(std::string_view d, u64 i) const override {
    IOAS_GUARD("translate", translate(d, i));
  }
  Result<DmaOutcome> dma(std::string_view d, DmaDir dir, u64 i, u64 n) override { IOAS_GUARD("dma", dma(d, dir, i, n)); }
  Status set_dirty_tracking(std::string_view d, DirtyMode m) override {
    IOAS_GUARD("set_dirty_tracking", set_dirty_tracking(d, m));
  }
  Result<std::vector<Range>> read_dirty(std::string_view d, u64 i, u64 n, u64 p, bool k) override {
    IOAS_GUARD("read_dirty", read_dirty(d, i, n, p, k));
  }
  Result<u64> uva(std::string_view s, u64 i) const override { IOAS_GUARD("uva", uva(s, i)); }
  Result<std::vector<LeafInfo>> leaves(std::string_view d, Range r) const override { IOAS_GUARD("leaves", leaves(d, r)); }
  Status leaves_into(std::string_view d, Range r, std::vector<LeafInfo>& out) const override {
    IOAS_GUARD("leaves", leaves_into(d, r, out));
  }
  Result<IoasState> snapshot(std::string_view s) const override { IOAS_GUARD("snapshot", snapshot(s)); }
  Status snapshot_into(std::string_view s, IoasState& out) const override {
    IOAS_GUARD("snapshot", snapshot_into(s, out));
  }
  std::vector<Violation> check() const override { IOAS_GUARD("check", check()); }
#undef IOAS_GUARD

 private:
  std::unique_ptr<Engine> e_;
};

}  // namespace ioas
