// differential/fuzz/kept_inputs.hpp: what the fuzz targets' regression tests
// share (differential/, proofs/ and cli/ tests include it): the files of a
// folder, feeding one to the fuzz target compiled into the test, and the
// naming rule of kept inputs: error-* must be refused with EINVAL and a
// message that starts with the file's name, ok-* must be accepted.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace ioas::fuzz {

namespace fs = std::filesystem;

// The regular files of `dir`, sorted, leaving out those ending in `skip_ext`.
inline std::vector<fs::path> files_in(const fs::path& dir, std::string_view skip_ext = {}) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && (skip_ext.empty() || e.path().extension() != skip_ext)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The fuzz target's answer for the file (0; a broken property aborts).
inline int run_target(const fs::path& p) {
  const std::string text = read_file(p);
  return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

// Every kept input of `dir` through the target and through `parse(text,
// name)` (a Result), checked against its name. Returns the files read.
template <typename Parse>
int check_kept_inputs(const fs::path& dir, Parse parse) {
  int read_files = 0;
  for (const auto& p : files_in(dir)) {
    SCOPED_TRACE(p.string());
    EXPECT_EQ(run_target(p), 0);
    const std::string name = p.filename().string();
    auto r = parse(read_file(p), name);
    if (name.rfind("error-", 0) == 0) {
      EXPECT_FALSE(r.ok()) << "accepted";
      if (!r.ok()) {
        EXPECT_EQ(r.error().code, EINVAL);
        EXPECT_EQ(r.error().message.rfind(name + ":", 0), 0u) << r.error().message;
      }
    } else if (name.rfind("ok-", 0) == 0) {
      EXPECT_TRUE(r.ok()) << r.error().message;
    } else {
      ADD_FAILURE() << "a kept input's name starts with error- or ok-";
    }
    ++read_files;
  }
  return read_files;
}

// The regression test of a target's kept inputs: check_kept_inputs over
// `dir`, and at least one file read when the folder holds any. A missing
// folder means none kept yet (SKIPPED), unless `must_exist` (the part keeps
// inputs, so a missing folder is a wrong path: a failure).
template <typename Parse>
void expect_kept_inputs(const fs::path& dir, Parse parse, bool must_exist = false) {
  if (must_exist) {
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
  } else if (!fs::exists(dir)) {
    GTEST_SKIP() << "no regression input kept yet in " << dir;
  }
  const bool has_files = !fs::is_empty(dir);
  const int n = check_kept_inputs(dir, parse);
  if (has_files) {
    EXPECT_GT(n, 0);
  }
}

// Every seed of `dirs` through the target. Returns the files read.
inline int check_seeds(const std::vector<fs::path>& dirs, std::string_view skip_ext = {}) {
  int read_files = 0;
  for (const auto& dir : dirs)
    for (const auto& p : files_in(dir, skip_ext)) {
      SCOPED_TRACE(p.string());
      EXPECT_EQ(run_target(p), 0);
      ++read_files;
    }
  return read_files;
}

}  // namespace ioas::fuzz
