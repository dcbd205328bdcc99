// The state fuzzer's checks (core/fuzz/state_fuzz.cpp, compiled into this
// test; a broken property aborts) in the ordinary build, on:
//   - every input that once broke the reader, kept forever in
//     core/fuzz/state_regressions/, whose name states state::from_json_text's
//     answer: error-* must be rejected with EINVAL "file:line:column: what",
//     ok-* must read;
//   - every seed the fuzzer starts from (core/fuzz/state_seeds), so the target
//     keeps compiling and its properties keep holding on them between
//     fuzzing runs;
// and the shape of input that was slow (an object of many keys), made here:
// it is too big for a file.
#include <gtest/gtest.h>

#include <string>

#include "ioas/core/json.hpp"
#include "ioas/core/state.hpp"
#include "kept_inputs.hpp"

namespace ioas::state {
namespace {

const std::filesystem::path kRegressions = IOAS_FUZZ_REGRESSIONS_DIR;

TEST(FuzzRegressions, EveryKeptInputKeepsTheFuzzTargetsPropertiesAndGetsTheAnswerItsNameStates) {
  // This part has kept inputs: a missing folder is a wrong path, not "none yet".
  fuzz::expect_kept_inputs(
      kRegressions, [](const std::string& text, const std::string& name) { return from_json_text(text, name); },
      /*must_exist=*/true);
}

TEST(FuzzRegressions, EveryShippedSeedKeepsTheFuzzTargetsProperties) {
  EXPECT_GT(fuzz::check_seeds({IOAS_FUZZ_SEEDS_DIR}), 0) << "no seed read";
}

// 200,000 keys: once quadratic in the duplicate check (over a minute); the
// ctest timeout of this target (120 s) is the guard, no clock is read here.
TEST(FuzzRegressions, AnObjectOfManyKeysReadsAndADuplicateAtTheEndIsFound) {
  constexpr int kKeys = 200000;
  std::string text = "{";
  for (int i = 0; i < kKeys; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  text += "}";
  auto v = json::parse(text, "keys.json");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->object.size(), static_cast<std::size_t>(kKeys));
  // A duplicate at the very end is still found.
  text.back() = ',';
  text += "\"k0\":1}";
  auto dup = json::parse(text, "keys.json");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("duplicate key \"k0\""), std::string::npos) << dup.error().message;
}

}  // namespace
}  // namespace ioas::state
