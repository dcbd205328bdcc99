// uapi/tests/context_state.hpp: the observable state of an iommufd context
// as text, for "a refused call changes nothing": the layer's own table
// (iommufd_testing.hpp's table_of) and everything the engine shows (every
// IOAS's snapshot and ranges, the memory sources; spec_rules.hpp's
// describe). Two contexts in the same state give the same text.
#pragma once

#include <string>

#include "iommufd_testing.hpp"
#include "spec_rules.hpp"

namespace ioas::uapi::testing {

inline std::string context_state(int handle) {
  const Engine* e = engine_of(handle);
  if (!e) return "no context " + std::to_string(handle) + "\n";
  return table_of(handle) + ::ioas::testing::spec_text::describe(*e);
}

}  // namespace ioas::uapi::testing
