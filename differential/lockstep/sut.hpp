// The engine the lockstep tests check against the model: the production
// engine, verifying its trees and page tables in each check(), which every
// whole comparison (diff_states) calls. A breach found there aborts; one
// made and undone between two whole comparisons goes unseen, as any state
// the comparisons cannot see.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "ioas/engine.hpp"
#include "ioas/impl.hpp"

namespace ioas::lockstep {

inline std::unique_ptr<Engine> make_sut() {
  ImplOptions o;
  o.verify_on_check = true;
  return make_engine(o);
}

// Fault injection into the engine under test (the kernel's fail_nth): the
// impl engine's page-table allocations.
inline std::function<bool(Engine&, std::uint64_t)> sut_fail_nth() {
  return [](Engine& e, std::uint64_t n) { return fail_nth_alloc(e, n); };
}

}  // namespace ioas::lockstep
