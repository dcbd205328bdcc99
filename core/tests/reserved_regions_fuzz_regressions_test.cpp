// The reserved_regions fuzzer's checks (core/fuzz/reserved_regions_fuzz.cpp,
// compiled into this test; a broken property aborts) in the ordinary build,
// on:
//   - every input that once broke the reader, kept forever in
//     core/fuzz/reserved_regions_regressions/, whose name states parse_reserved_regions's
//     answer: error-* must be rejected with EINVAL "file:line: what", ok-*
//     must read;
//   - every shipped input the fuzzer starts from (the *.reserved_regions of
//     core/testdata, and core/fuzz/reserved_regions_seeds), so the target keeps compiling
//     and its properties keep holding on them between fuzzing runs.
#include <gtest/gtest.h>

#include <string>

#include "ioas/core/reserved_regions.hpp"
#include "kept_inputs.hpp"

namespace ioas::resv {
namespace {

const std::filesystem::path kRegressions = IOAS_FUZZ_REGRESSIONS_DIR;

TEST(FuzzRegressions, EveryKeptInputKeepsTheFuzzTargetsPropertiesAndGetsTheAnswerItsNameStates) {
  fuzz::expect_kept_inputs(kRegressions, [](const std::string& text, const std::string& name) {
    return parse_reserved_regions(text, name);
  });
}

TEST(FuzzRegressions, EveryShippedSeedKeepsTheFuzzTargetsProperties) {
  EXPECT_GT(fuzz::check_seeds({IOAS_TESTDATA_DIR, IOAS_FUZZ_SEEDS_DIR}, ".expected"), 0) << "no seed read";
}

}  // namespace
}  // namespace ioas::resv
