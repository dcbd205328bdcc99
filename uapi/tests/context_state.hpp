// uapi/tests/context_state.hpp: the observable state of an iommufd context
// as text, for "a refused call changes nothing": the layer's own table
// (iommufd_testing.hpp's table_of) and everything the engine shows (every
// IOAS's snapshot and ranges, the memory sources; spec_rules.hpp's
// describe). Two contexts in the same state give the same text.
#pragma once

#include <cstdint>
#include <string>

#include "ioas/uapi/iommufd_test.h"
#include "iommufd_testing.hpp"
#include "spec_rules.hpp"

namespace ioas::uapi::testing {

inline std::string context_state(int handle) {
  const Engine* e = engine_of(handle);
  if (!e) return "no context " + std::to_string(handle) + "\n";
  return table_of(handle) + ::ioas::testing::spec_text::describe(*e);
}

// An IOMMU_TEST_CMD of operation `op` on object `id`, its other fields zero.
inline iommu_test_cmd test_cmd(std::uint32_t op, std::uint32_t id) {
  iommu_test_cmd cmd{};
  cmd.size = sizeof(cmd);
  cmd.op = op;
  cmd.id = id;
  return cmd;
}

}  // namespace ioas::uapi::testing
