// IOAS_CHECK (ioas/core/check.hpp): silent when the condition holds, else
// aborts naming the place, the condition and the reason.
#include <gtest/gtest.h>

#include <string>

#include "ioas/core/check.hpp"

namespace ioas {
namespace {

TEST(Check, AHoldingConditionDoesNothingAndBuildsNoMessage) {
  int built = 0;
  auto why = [&] {
    ++built;
    return std::string("never");
  };
  IOAS_CHECK(1 + 1 == 2, why());
  EXPECT_EQ(built, 0);
}

TEST(CheckDeathTest, ABrokenConditionAbortsWithPlaceConditionAndReason) {
  const int slot = 7;
  EXPECT_DEATH(IOAS_CHECK(slot < 4, "slot " + std::to_string(slot) + ": past the table"),
               "check_test\\.cpp:[0-9]+: IOAS_CHECK\\(slot < 4\\) failed: slot 7: past the table");
  EXPECT_DEATH(IOAS_CHECK(slot == 0, "a C string"), "IOAS_CHECK\\(slot == 0\\) failed: a C string");
}

}  // namespace
}  // namespace ioas
