// The state fuzzer's checks (proofs/fuzz/state_fuzz.cpp, compiled into this
// test; a broken property aborts) in the ordinary build, on:
//   - every input that once broke the reader, kept forever in
//     proofs/fuzz/regressions/, whose name states state::from_json_text's
//     answer: error-* must be rejected with EINVAL "file:line:column: what",
//     ok-* must read;
//   - every seed the fuzzer starts from (proofs/fuzz/seeds), so the target
//     keeps compiling and its properties keep holding on them between
//     fuzzing runs;
// and the shape of input that was slow (an object of many keys), made here:
// it is too big for a file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json.hpp"
#include "state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace ioas::state {
namespace {

namespace fs = std::filesystem;

const fs::path kRegressions = IOAS_FUZZ_REGRESSIONS_DIR;
const fs::path kSeeds = IOAS_FUZZ_SEEDS_DIR;

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run_fuzz_target(const fs::path& p) {
  const std::string text = read(p);
  return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

TEST(FuzzRegressions, EveryKeptInputKeepsTheFuzzTargetsPropertiesAndGetsTheAnswerItsNameStates) {
  // This part has kept inputs: a missing folder is a wrong path, not "none yet".
  ASSERT_TRUE(fs::is_directory(kRegressions)) << kRegressions;
  const bool folder_has_files = !fs::is_empty(kRegressions);
  int read_files = 0;
  for (const auto& p : files_in(kRegressions)) {
    SCOPED_TRACE(p.string());
    EXPECT_EQ(run_fuzz_target(p), 0);
    const std::string name = p.filename().string();
    auto d = from_json_text(read(p), name);
    if (name.rfind("error-", 0) == 0) {
      ASSERT_FALSE(d.ok()) << "read";
      EXPECT_EQ(d.error().code, EINVAL);
      EXPECT_EQ(d.error().message.rfind(name + ":", 0), 0u) << d.error().message;
    } else if (name.rfind("ok-", 0) == 0) {
      EXPECT_TRUE(d.ok()) << d.error().message;
    } else {
      ADD_FAILURE() << "a regression input's name starts with error- or ok-";
    }
    ++read_files;
  }
  if (folder_has_files) {
    EXPECT_GT(read_files, 0);
  }
}

TEST(FuzzRegressions, EverySeedKeepsTheFuzzTargetsPropertiesAndReads) {
  int read_files = 0;
  for (const auto& p : files_in(kSeeds)) {
    SCOPED_TRACE(p.string());
    EXPECT_EQ(run_fuzz_target(p), 0);
    auto d = from_json_text(read(p), p.filename().string());
    EXPECT_TRUE(d.ok()) << d.error().message;
    ++read_files;
  }
  EXPECT_GT(read_files, 0) << "no seed read";
}

// The duplicate-key check once searched the object read so far for every
// key: an object of n keys took n^2/2 string comparisons (a 260 KB object of
// 25,000 keys: 27 s in the fuzz build; at -O2 1.2 s, and 4.7 s for 50,000).
// Too big to keep as a file, so it is made here, 200,000 keys: over a minute
// at -O2 when it was quadratic, 0.2 s now. CPU time, not wall time, so a busy
// machine does not make it fail.
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
