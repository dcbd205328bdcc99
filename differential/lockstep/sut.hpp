// The engine the lockstep tests check against the model: the production
// engine, verifying its trees after every call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "ioas/engine.hpp"
#include "ioas/impl.hpp"

namespace ioas::lockstep {

inline std::unique_ptr<Engine> make_sut() { return make_checked_engine(); }

// Fault injection into the engine under test (the kernel's fail_nth): the
// impl engine's page-table allocations.
inline std::function<bool(Engine&, std::uint64_t)> sut_fail_nth() {
  return [](Engine& e, std::uint64_t n) { return fail_nth_alloc(e, n); };
}

}  // namespace ioas::lockstep
