// The reserved_regions fuzzer's checks (cli/fuzz/reserved_regions_fuzz.cpp,
// compiled into this test; a broken property aborts) in the ordinary build,
// on:
//   - every input that once broke the reader, kept forever in
//     cli/fuzz/regressions/, whose name states parse_reserved_regions's
//     answer: error-* must be rejected with EINVAL "file:line: what", ok-*
//     must read;
//   - every shipped input the fuzzer starts from (the *.reserved_regions of
//     proofs/testdata, and cli/fuzz/seeds), so the target keeps compiling
//     and its properties keep holding on them between fuzzing runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "reserved_regions.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace ioas::cli {
namespace {

namespace fs = std::filesystem;

const fs::path kRegressions = IOAS_FUZZ_REGRESSIONS_DIR;
const fs::path kSeeds[] = {IOAS_TESTDATA_DIR, IOAS_FUZZ_SEEDS_DIR};

// The files of `dir`; of proofs/testdata, only the reserved_regions samples
// (the *.expected files are the CLI's output for them).
std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() != ".expected") out.push_back(e.path());
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
  if (!fs::exists(kRegressions)) {
    GTEST_SKIP() << "no regression input kept yet in " << kRegressions;
  }
  const bool folder_has_files = !fs::is_empty(kRegressions);
  int read_files = 0;
  for (const auto& p : files_in(kRegressions)) {
    SCOPED_TRACE(p.string());
    EXPECT_EQ(run_fuzz_target(p), 0);
    const std::string name = p.filename().string();
    auto r = parse_reserved_regions(read(p), name);
    if (name.rfind("error-", 0) == 0) {
      ASSERT_FALSE(r.ok()) << "read";
      EXPECT_EQ(r.error().code, EINVAL);
      EXPECT_EQ(r.error().message.rfind(name + ":", 0), 0u) << r.error().message;
    } else if (name.rfind("ok-", 0) == 0) {
      EXPECT_TRUE(r.ok()) << r.error().message;
    } else {
      ADD_FAILURE() << "a regression input's name starts with error- or ok-";
    }
    ++read_files;
  }
  if (folder_has_files) {
    EXPECT_GT(read_files, 0);
  }
}

TEST(FuzzRegressions, EveryShippedSeedKeepsTheFuzzTargetsProperties) {
  int read_files = 0;
  for (const auto& dir : kSeeds)
    for (const auto& p : files_in(dir)) {
      SCOPED_TRACE(p.string());
      EXPECT_EQ(run_fuzz_target(p), 0);
      ++read_files;
    }
  EXPECT_GT(read_files, 0) << "no seed read";
}

}  // namespace
}  // namespace ioas::cli
