// cli/checker_process.hpp: the Z3 invariant checker (proofs/checker.hpp) run
// in a child process, so that a crash inside Z3 (as when it runs out of
// memory: some of its failure paths dereference null) ends the child, not
// `ioas`. The child checks the state (its copy of the parent's memory,
// after fork) and passes the report back through a pipe. `ioas check` and
// the trace `check` operation of `ioas replay` use it.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "checker.hpp"
#include "ioas/engine.hpp"
#include "ioas/core/state.hpp"

namespace ioas::cli {

// What cannot be done for lack of memory; main() prints "ioas: out of
// memory: <what>" and exits non-zero.
class OutOfMemory : public std::runtime_error {
 public:
  explicit OutOfMemory(const std::string& what) : std::runtime_error(what) {}
};

// checker::check_state(d) in a child. Throws OutOfMemory when the child
// ran out of memory or died by a signal (SIGSEGV and SIGABRT being how Z3
// dies when it does), std::runtime_error when it could not be run or failed
// otherwise.
checker::Report check_state_in_child(const state::StateDump& d);
// checker::check_engine(e) in a child: the violations of e's dumped state.
std::vector<Violation> check_engine_in_child(const Engine& e);

}  // namespace ioas::cli
