// The engine the lockstep tests check against the model: the production
// engine when impl/ is built, else (saying so) the model itself.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "ioas/engine.hpp"
#ifdef IOAS_HAVE_IMPL
#include "ioas/impl.hpp"
#endif

namespace ioas::lockstep {

inline constexpr bool kHaveImpl =
#ifdef IOAS_HAVE_IMPL
    true;
#else
    false;
#endif

inline std::unique_ptr<Engine> make_sut() {
#ifdef IOAS_HAVE_IMPL
  return make_checked_engine();  // impl verifies its trees after every call
#else
  return make_model_engine();
#endif
}

// Fault injection into the engine under test (the kernel's fail_nth): the
// impl engine's page-table allocations; none for the model.
inline std::function<bool(Engine&, std::uint64_t)> sut_fail_nth() {
#ifdef IOAS_HAVE_IMPL
  return [](Engine& e, std::uint64_t n) { return fail_nth_alloc(e, n); };
#else
  return {};
#endif
}

}  // namespace ioas::lockstep
