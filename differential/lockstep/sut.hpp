// The engine the lockstep tests check against the model: the production
// engine when impl/ is built, else (saying so) the model itself.
#pragma once

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

}  // namespace ioas::lockstep
