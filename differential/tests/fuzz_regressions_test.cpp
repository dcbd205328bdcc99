// The trace fuzzer's checks (differential/fuzz/trace_fuzz.cpp, compiled into
// this test; a broken property aborts) in the ordinary build, on:
//   - every input that once broke the reader, kept forever in
//     differential/fuzz/regressions/, whose name states parse_trace's answer:
//     error-* must be rejected with EINVAL "file:line:column: what", ok-*
//     must parse;
//   - every shipped input the fuzzer starts from (differential/corpus and
//     differential/fuzz/seeds), so the target keeps compiling and its
//     properties keep holding on them between fuzzing runs.
#include <gtest/gtest.h>

#include <string>

#include "trace.hpp"
#include "kept_inputs.hpp"

namespace ioas::trace {
namespace {

const std::filesystem::path kRegressions = IOAS_FUZZ_REGRESSIONS_DIR;

TEST(FuzzRegressions, EveryKeptInputKeepsTheFuzzTargetsPropertiesAndGetsTheAnswerItsNameStates) {
  fuzz::expect_kept_inputs(kRegressions, [](const std::string& text, const std::string& name) {
    return parse_trace(text, name);
  });
}

TEST(FuzzRegressions, EveryShippedSeedKeepsTheFuzzTargetsProperties) {
  EXPECT_GT(fuzz::check_seeds({IOAS_CORPUS_DIR, IOAS_FUZZ_SEEDS_DIR}), 0) << "no seed read";
}

}  // namespace
}  // namespace ioas::trace
