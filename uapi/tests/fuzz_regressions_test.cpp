// The iommufd fuzzer's checks (uapi/fuzz/iommufd_fuzz.cpp, compiled into
// this test; a broken property aborts) in the ordinary build, on:
//   - every input that once broke the layer, kept forever in
//     uapi/fuzz/regressions/ (named after what the layer must now do);
//   - every seed the fuzzer starts from (uapi/fuzz/seeds/), so the target
//     keeps compiling and its properties keep holding between fuzzing runs.
#include <gtest/gtest.h>

#include <filesystem>

#include "kept_inputs.hpp"

namespace {

TEST(IommufdFuzzRegressions, EveryKeptInputKeepsTheFuzzTargetsProperties) {
  const std::filesystem::path dir = IOAS_FUZZ_REGRESSIONS_DIR;
  if (!std::filesystem::exists(dir) || std::filesystem::is_empty(dir))
    GTEST_SKIP() << "no regression input kept in " << dir;
  EXPECT_GT(ioas::fuzz::check_seeds({dir}), 0);
}

TEST(IommufdFuzzRegressions, EveryShippedSeedKeepsTheFuzzTargetsProperties) {
  EXPECT_GT(ioas::fuzz::check_seeds({IOAS_FUZZ_SEEDS_DIR}), 0) << "no seed read";
}

}  // namespace
