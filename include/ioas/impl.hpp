// ioas/impl.hpp: the production engine (impl/).
//
// Same interface and same answers as the executable spec (make_model_engine);
// built for size: automatic map and unmap in O(log n) over interval trees,
// compact per-area nodes. See impl/engine.cpp for the layout.
#pragma once

#include <memory>

#include "ioas/engine.hpp"

namespace ioas {

struct ImplOptions {
  // After every mutating call (success or failure), run the trees' verify()
  // and the SPEC invariants (check()), aborting with a message on a breach.
  // O(size of the world) per call: for tests and the differential harness,
  // never for production or benchmarks.
  bool verify_each_op = false;
};

// The production engine with default options: no per-call verification,
// unless the environment has IOAS_IMPL_VERIFY=1.
std::unique_ptr<Engine> make_engine();
// The same, under the name the trace replayer registers.
std::unique_ptr<Engine> make_impl_engine();
std::unique_ptr<Engine> make_engine(const ImplOptions& options);
// make_engine({.verify_each_op = true}): for test factories.
std::unique_ptr<Engine> make_checked_engine();

}  // namespace ioas
