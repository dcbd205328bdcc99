// proofs/checker.hpp: the Z3 invariant checker.
//
// Takes a concrete state (a StateDump: from either engine through the public
// Engine interface, or from a state JSON file) and checks the eight SPEC
// invariants as named, tracked Z3 assertions. Every instance of an invariant
// (one pair area/reserved range, one area's alignment, one sampled
// translation, ...) is a clause built with the shared templates of
// ioas/arith.hpp instantiated on Z3 terms (overlaps, contains, is_aligned,
// lowest_bit...), asserted with assert_and_track under its own name. When the
// solver answers unsat, the unsat core names broken clauses; they are set
// aside and the rest re-checked until sat, so every broken clause is named.
// For each, a second query over a symbolic IOVA finds a witness (an IOVA in
// both the area and the reserved range, in the area and outside the aperture,
// ...).
//
// The checker is independent of model/ and impl/: it sees only IoasState,
// MemoryInfo and translations, and re-derives what they must satisfy.
#pragma once

#include <string>
#include <vector>

#include "ioas/engine.hpp"
#include "ioas/core/state.hpp"

namespace ioas::checker {

struct Report {
  std::vector<Violation> violations;  // in SPEC order of the invariant
  int clauses = 0;                    // tracked assertions checked
  int solver_calls = 0;
};

Report check_state(const state::StateDump& s);
// check_state(state::dump_engine(e)).violations.
std::vector<Violation> check_engine(const Engine& e);

}  // namespace ioas::checker
