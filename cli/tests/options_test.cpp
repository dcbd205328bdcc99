// The command line's one parser (cli.cpp): the generated help of every
// command names every option; a bad option is named with exit status 2;
// words after `--` are files; `--opt=` with nothing after '=' is refused
// instead of swallowing the next word.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "cli.hpp"

namespace ioas::cli {
namespace {

struct Outcome {
  int status;
  std::string out, err;
};
Outcome ioas(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int st = run(args, out, err, trace::EngineRegistry::builtin());
  return {st, out.str(), err.str()};
}

const std::string kDemo = IOAS_CORPUS_DIR "/demo.trace";
const std::string kUva = IOAS_CORPUS_DIR "/uva.trace";

TEST(Options, EveryCommandsHelpNamesEachOfItsOptions) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"replay", {"--engine", "--rewrite", "--json", "--dump-state", "FILE"}},
      {"check", {"--engine", "--json", "FILE"}},
      {"ranges", {"--aperture", "--json", "FILE"}},
      {"show", {"--svg", "--ioas", "--engine", "FILE.trace"}}};
  Outcome top = ioas({"--help"});
  EXPECT_EQ(top.status, 0);
  for (const auto& [command, options] : commands) {
    EXPECT_NE(top.out.find("  " + command + " "), std::string::npos) << command << " missing from ioas --help";
    for (const char* h : {"--help", "-h"}) {
      Outcome r = ioas({command, h});
      EXPECT_EQ(r.status, 0) << command << " " << h;
      EXPECT_NE(r.out.find("usage: ioas " + command), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("exit status:"), std::string::npos) << r.out;
      for (const auto& o : options) EXPECT_NE(r.out.find(o), std::string::npos) << command << " " << o;
    }
  }
}

TEST(Options, ABadOptionIsNamedWithStatusTwo) {
  for (const char* command : {"replay", "check", "ranges", "show"}) {
    Outcome r = ioas({command, "--frobnicate", kDemo});
    EXPECT_EQ(r.status, 2) << command;
    EXPECT_NE(r.err.find("--frobnicate"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(std::string("ioas ") + command), std::string::npos) << r.err;
  }
  Outcome missing = ioas({"replay", kDemo, "--engine"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("--engine"), std::string::npos) << missing.err;
  Outcome unknown = ioas({"frobnicate"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos) << unknown.err;
}

TEST(Options, OptionsGoAnywhereAndTheLastValueCounts) {
  Outcome r = ioas({kDemo, "replay"});  // the command comes first
  EXPECT_EQ(r.status, 2);
  Outcome after = ioas({"replay", kDemo, "--engine", "both", "--engine=model"});
  EXPECT_EQ(after.status, 0) << after.err;
  EXPECT_NE(after.out.find("engines: model\n"), std::string::npos) << after.out;
}

TEST(Options, WordsAfterDoubleDashAreFiles) {
  Outcome r = ioas({"replay", kDemo, "--", kUva});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("summary: 2 file(s)"), std::string::npos) << r.out;
  Outcome dashed = ioas({"replay", "--", "--engine=impl"});
  EXPECT_EQ(dashed.status, 2);
  EXPECT_NE(dashed.err.find("--engine=impl: cannot open the trace file"), std::string::npos) << dashed.err;
}

TEST(Options, AnEmptyValueAfterEqualsDoesNotTakeTheNextWord) {
  const auto dir = std::filesystem::temp_directory_path() / ("ioas-options-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string victim = (dir / "a.trace").string();
  std::filesystem::copy_file(kDemo, victim, std::filesystem::copy_options::overwrite_existing);
  const auto before = std::filesystem::file_size(victim);
  Outcome r = ioas({"replay", "--dump-state=", victim, kDemo});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--dump-state= needs a value"), std::string::npos) << r.err;
  EXPECT_EQ(std::filesystem::file_size(victim), before) << "the trace was overwritten by a state file";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ioas::cli
