// The fixture of the x86-64 and arm-lpae table tests (radix_test.cpp,
// radix_random_test.cpp): one test per rule, run on each format.
#pragma once

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace ioas::hw {

class Radix : public ::testing::TestWithParam<Format> {
 protected:
  testing::Fixture make(u64 sizes = k4K | k2M | k1G, bool preset = true) {
    return testing::Fixture(testing::radix_config(GetParam(), sizes, preset));
  }
};

}  // namespace ioas::hw
