// The replayer's trace-level semantics, --rewrite, and the CLI's exit
// statuses. Engine answers come from the model (make_model_engine) and, where
// a test needs two engines that disagree or a `check` that finds something,
// from FakeEngine.
#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "cli.hpp"
#include "fake_engine.hpp"
#include "replay.hpp"

namespace ioas::trace {
namespace {

EngineFactory model_factory() { return EngineFactory{"model", [] { return make_model_engine(); }}; }

// Replays `text` on the model; every line's outcome in order.
std::vector<Outcome> run_model(std::string_view text) {
  auto t = parse_trace(text, "t.trace");
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  if (!t.ok()) return {};
  auto r = replay(t.value(), {model_factory()});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return {};
  std::vector<Outcome> out;
  for (const auto& l : r->lines) out.push_back(l.answers.at(0).outcome);
  return out;
}

Outcome iova(u64 v) { return Outcome::with_value(OutcomeKind::kIova, v); }

// A scratch directory, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "ioas-trace-XXXXXX").string();
    path = mkdtemp(templ.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

std::string slurp(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CliRun {
  int status = -1;
  std::string out, err;
};
CliRun cli(const std::vector<std::string>& args, const EngineRegistry& reg) {
  std::ostringstream out, err;
  CliRun r;
  r.status = cli::run(args, out, err, reg);
  r.out = out.str();
  r.err = err.str();
  return r;
}
EngineRegistry model_only() {
  EngineRegistry r;
  r.add(model_factory());
  return r;
}

// ---- trace-level semantics ----

TEST(Replay, DefaultIoasExistsAndIsCurrent) {
  auto out = run_model(
      "mem b va=0x100000 len=16K\n"
      "map iova=0x4000 len=4K src=b prot=r\n"
      "ioas default\n"
      "uva iova=0x4000\n");
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[1], Outcome::ok());
  EXPECT_EQ(out[2], Outcome::ok());
  EXPECT_EQ(out[3], Outcome::with_value(OutcomeKind::kVa, 0x100000));
}

TEST(Replay, IoasLineCreatesAndSelects) {
  auto out = run_model(
      "mem b va=0x100000 len=16K\n"
      "map iova=0x4000 len=4K src=b prot=r\n"
      "ioas other\n"
      "uva iova=0x4000\n"       // not mapped in `other`
      "ioas default\n"
      "uva iova=0x4000\n");
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[3], Outcome::err(ENOENT));
  EXPECT_EQ(out[5], Outcome::with_value(OutcomeKind::kVa, 0x100000));
}

TEST(Replay, IoasOptionsApplyAtCreationOnly) {
  auto out = run_model(
      "ioas z zero-page=allowed\n"
      "ioas default\n"
      "ioas z zero-page=reserved\n"  // differs from its own: EINVAL
      "ioas z huge-pages=off\n"      // differs (default on): EINVAL
      "ioas z zero-page=allowed huge-pages=on\n"  // same as its own: selects
      "ioas default zero-page=allowed\n");        // default was made reserved
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0], Outcome::ok());
  EXPECT_EQ(out[2], Outcome::err(EINVAL));
  EXPECT_EQ(out[3], Outcome::err(EINVAL));
  EXPECT_EQ(out[4], Outcome::ok());
  EXPECT_EQ(out[5], Outcome::err(EINVAL));
}

TEST(Replay, FailedIoasSelectionKeepsTheCurrentOne) {
  auto out = run_model(
      "mem b va=0x100000 len=16K\n"
      "ioas z zero-page=allowed\n"
      "map iova=0 len=4K src=b prot=r\n"    // allowed at 0 in z only
      "ioas default\n"
      "ioas z zero-page=reserved\n"         // EINVAL: stays in default
      "uva iova=0\n");
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[2], Outcome::ok());
  EXPECT_EQ(out[4], Outcome::err(EINVAL));
  EXPECT_EQ(out[5], Outcome::err(ENOENT));
}

TEST(Replay, MemPaDefaultsToVa) {
  auto out = run_model(
      "mem a va=0x200000 len=2M\n"
      "mem b va=0x400000 len=2M pa=0x10400000\n"
      "attach dev=n dom=d\n"
      "map iova=0x200000 len=4K src=a prot=rw\n"
      "map iova=0x400000 len=4K src=b prot=r\n"
      "translate dom=d iova=0x200010\n"
      "translate dom=d iova=0x400010\n");
  ASSERT_EQ(out.size(), 7u);
  Outcome a = Outcome::with_value(OutcomeKind::kPa, 0x200010);
  a.prot = Prot::kReadWrite;
  Outcome b = Outcome::with_value(OutcomeKind::kPa, 0x10400010);
  b.prot = Prot::kRead;
  EXPECT_EQ(out[5], a);
  EXPECT_EQ(out[6], b);
}

TEST(Replay, UnmapAllCoversTheWholeSpace) {
  auto out = run_model(
      "unmap all\n"
      "mem b va=0x100000 len=1M\n"
      "map iova=0x1000 len=4K src=b prot=r\n"
      "map iova=0xfffffffffffff000 len=4K src=b prot=r\n"
      "unmap all\n"
      "unmap all\n");
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0], Outcome::with_value(OutcomeKind::kUnmapped, 0));
  EXPECT_EQ(out[4], Outcome::with_value(OutcomeKind::kUnmapped, 0x2000));
  EXPECT_EQ(out[5], Outcome::with_value(OutcomeKind::kUnmapped, 0));
}

TEST(Replay, FixedMapGivesOkAutomaticGivesIova) {
  auto out = run_model(
      "mem b va=0x100000 len=1M\n"
      "map iova=0x10000 len=4K src=b prot=r\n"
      "map len=4K src=b prot=r\n");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1], Outcome::ok());
  EXPECT_EQ(out[2].kind, OutcomeKind::kIova);
}

TEST(Replay, ExpectationsAreCountedAndComparedByValue) {
  auto t = parse_trace(
      "mem b va=0x100000 len=1M\n"
      "map len=4K src=b prot=r => iova 4K\n"        // held (0x1000 by value)
      "map len=4K src=b prot=r => iova 0x9000\n"    // fails
      "ranges\n",                                   // no expectation
      "t.trace");
  ASSERT_TRUE(t.ok());
  auto r = replay(t.value(), {model_factory()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->expectations, 2);
  EXPECT_EQ(r->held, 1);
  EXPECT_EQ(r->mismatched, 1);
  EXPECT_EQ(r->disagreements, 0);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->lines[1].held, std::optional<bool>{true});
  EXPECT_EQ(r->lines[2].held, std::optional<bool>{false});
  EXPECT_FALSE(r->lines[3].held.has_value());
}

TEST(Replay, EnginesThatDisagreeFailTheLine) {
  auto t = parse_trace("mem b va=0 len=1M\nmap len=4K src=b prot=r\nranges\n", "t.trace");
  ASSERT_TRUE(t.ok());
  auto a = EngineFactory{"a", [] { return std::unique_ptr<Engine>(new testing::FakeEngine); }};
  auto b = EngineFactory{"b", [] {
                           auto e = std::make_unique<testing::FakeEngine>();
                           e->map_iova = 0x2000;
                           return std::unique_ptr<Engine>(std::move(e));
                         }};
  auto r = replay(t.value(), {a, b});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->disagreements, 1);
  EXPECT_TRUE(r->lines[0].agree);
  EXPECT_FALSE(r->lines[1].agree);
  EXPECT_TRUE(r->lines[1].failed());
  ASSERT_EQ(r->lines[1].answers.size(), 2u);
  EXPECT_EQ(r->lines[1].answers[0].engine, "a");
  EXPECT_EQ(r->lines[1].answers[0].outcome, iova(0x1000));
  EXPECT_EQ(r->lines[1].answers[1].outcome, iova(0x2000));
  EXPECT_FALSE(r->ok());
}

TEST(Replay, CheckNamesEachBrokenInvariantOnceInSpecOrder) {
  auto t = parse_trace("check => violated alignment use-count\n", "t.trace");
  ASSERT_TRUE(t.ok());
  auto f = EngineFactory{"fake", [] {
                           auto e = std::make_unique<testing::FakeEngine>();
                           e->violations = {{Invariant::kUseCount, "", "mem b: 2 != 1", {}},
                                            {Invariant::kAlignment, "default", "area", 0x1001},
                                            {Invariant::kUseCount, "", "mem c", {}}};
                           return std::unique_ptr<Engine>(std::move(e));
                         }};
  auto r = replay(t.value(), {f});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(to_string(r->lines[0].answers[0].outcome), "violated alignment use-count");
  EXPECT_EQ(r->lines[0].held, std::optional<bool>{true});
  EXPECT_NE(r->lines[0].answers[0].note.find("mem b: 2 != 1"), std::string::npos);
}

TEST(Replay, AFactoryWithoutEngineIsAnError) {
  auto t = parse_trace("ranges\n", "t.trace");
  ASSERT_TRUE(t.ok());
  auto r = replay(t.value(), {EngineFactory{"stub", [] { return std::unique_ptr<Engine>(); }}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("engine stub could not be created"), std::string::npos);
  EXPECT_FALSE(replay(t.value(), {}).ok());
}

// ---- the engine registry ----

TEST(Registry, AnUnknownNameIsEinvalNamingTheChoices) {
  EngineRegistry reg = model_only();
  auto typo = reg.select("modle");
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.code(), EINVAL);
  EXPECT_NE(typo.error().message.find("unknown engine 'modle' (choose model, both,"), std::string::npos)
      << typo.error().message;
}

TEST(Registry, DefaultIsEveryBuiltEngine) {
  EngineRegistry reg = model_only();
  reg.add(EngineFactory{"impl", [] { return std::unique_ptr<Engine>(new testing::FakeEngine); }});
  auto all = reg.select("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "model");
  EXPECT_EQ((*all)[1].name, "impl");
  auto both = reg.select("both");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->size(), 2u);
}

// ---- --rewrite ----

TEST(Rewrite, FillsEveryExpectationFromTheModelKeepingCommentsAndLayout) {
  TempDir dir;
  std::string file = dir.write("r.trace",
                               "# header comment\n"
                               "\n"
                               "mem b va=0x100000 len=1M   => ok\n"
                               "ioas default\n"
                               "map len=4K src=b prot=r          => iova 0x9999000\n"
                               "map iova=0x1000 len=4K src=b prot=r\n"
                               "  # indented comment\n"
                               "unmem b\n"
                               "ioas x huge-pages=off\n"
                               "ioas x huge-pages=on\n"
                               "ranges\n");
  CliRun r = cli({"replay", "--engine", "model", "--rewrite", file}, model_only());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(slurp(file),
            "# header comment\n"
            "\n"
            "mem b va=0x100000 len=1M\n"
            "ioas default\n"
            "map len=4K src=b prot=r          => iova 0x1000\n"
            "map iova=0x1000 len=4K src=b prot=r => error EEXIST\n"
            "  # indented comment\n"
            "unmem b => error EBUSY\n"
            "ioas x huge-pages=off\n"
            "ioas x huge-pages=on => error EINVAL\n"
            "ranges => ranges 0x1000-0xffffffffffffffff align 0x1000\n");
  // The rewritten file now passes as it stands.
  CliRun again = cli({"replay", "--engine", "model", file}, model_only());
  EXPECT_EQ(again.status, 0) << again.out << again.err;
}

TEST(Rewrite, MalformedFileIsLeftUntouched) {
  TempDir dir;
  std::string text = "ranges\nmap len=4K prot=r\n";
  std::string file = dir.write("m.trace", text);
  CliRun r = cli({"replay", "--rewrite", file}, model_only());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(slurp(file), text);
}

// ---- the CLI ----

TEST(Cli, ExitZeroWhenEveryExpectationHeld) {
  TempDir dir;
  std::string f = dir.write("ok.trace", "mem b va=0x100000 len=1M\nmap len=4K src=b prot=r => iova 0x1000\n");
  CliRun r = cli({"replay", "--engine", "model", f}, model_only());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(f + ":2: map len=4K src=b prot=r => iova 0x1000\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 line(s), 1 expectation(s): 1 held, 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS"), std::string::npos);
}

TEST(Cli, ExitOneWhenAnExpectationFailedAndTheRestStillRuns) {
  TempDir dir;
  std::string f = dir.write("bad.trace",
                            "mem b va=0x100000 len=1M\n"
                            "map len=4K src=b prot=r => iova 0x5000\n"
                            "check => ok\n");
  CliRun r = cli({"replay", f}, model_only());
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find(f + ":2: MISMATCH\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("expected: iova 0x5000\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("got:      iova 0x1000\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(f + ":3: check => ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 held, 1 failed"), std::string::npos) << r.out;
}

TEST(Cli, ExitOneAndBothAnswersWhenEnginesDisagree) {
  TempDir dir;
  std::string f = dir.write("d.trace", "mem b va=0 len=1M\nmap len=4K src=b prot=r\n");
  EngineRegistry reg;
  reg.add(EngineFactory{"model", [] { return std::unique_ptr<Engine>(new testing::FakeEngine); }});
  reg.add(EngineFactory{"impl", [] {
                          auto e = std::make_unique<testing::FakeEngine>();
                          e->map_iova = 0x3000;
                          return std::unique_ptr<Engine>(std::move(e));
                        }});
  CliRun r = cli({"replay", "--engine=both", f}, reg);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find(f + ":2: map len=4K src=b prot=r => DISAGREE\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  model: iova 0x1000\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  impl: iova 0x3000\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 disagreement(s)"), std::string::npos) << r.out;
}

TEST(Cli, ExitTwoOnMalformedInputNamingFileLineColumn) {
  TempDir dir;
  std::string good = dir.write("good.trace", "ranges\n");
  std::string bad = dir.write("bad.trace", "ranges\n\nmap len=4K src=b prot=x\n");
  CliRun r = cli({"replay", good, bad}, model_only());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find(bad + ":3:23: map: prot 'x' is not one of r|w|rw"), std::string::npos) << r.err;
  // Nothing ran: the good file before it was not replayed either.
  EXPECT_EQ(r.out.find("good.trace:1"), std::string::npos) << r.out;
}

TEST(Cli, ExitTwoOnBadUsage) {
  EngineRegistry reg = model_only();
  EXPECT_EQ(cli({}, reg).status, 2);
  EXPECT_EQ(cli({"frob"}, reg).status, 2);
  EXPECT_EQ(cli({"replay"}, reg).status, 2);
  EXPECT_EQ(cli({"replay", "--engine"}, reg).status, 2);
  EXPECT_EQ(cli({"replay", "--frob", "x.trace"}, reg).status, 2);
  CliRun missing = cli({"replay", "/nonexistent/x.trace"}, reg);
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("/nonexistent/x.trace: cannot open"), std::string::npos) << missing.err;
}

TEST(Cli, AnUnknownEngineIsBadUsageAndRunsNothing) {
  TempDir dir;
  std::string f = dir.write("x.trace", "ranges\n");
  CliRun r = cli({"replay", "--engine", "modle", f}, model_only());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown engine 'modle'"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(Cli, ExitTwoWhenAnEngineCannotBeCreated) {
  TempDir dir;
  std::string f = dir.write("x.trace", "ranges\n");
  EngineRegistry reg;
  reg.add(EngineFactory{"model", [] { return std::unique_ptr<Engine>(); }});
  CliRun r = cli({"replay", f}, reg);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("engine model could not be created"), std::string::npos) << r.err;
}

TEST(Cli, HelpSaysTheDefaultIsEveryBuiltEngine) {
  CliRun top = cli({"--help"}, model_only());
  EXPECT_EQ(top.status, 0);
  EXPECT_NE(top.out.find("ioas replay --help"), std::string::npos);
  CliRun r = cli({"replay", "--help"}, model_only());
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("every engine built"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(now: model)"), std::string::npos) << r.out;
}

TEST(Cli, RewriteNeedsTheModel) {
  TempDir dir;
  std::string f = dir.write("x.trace", "ranges\n");
  EngineRegistry reg = model_only();
  reg.add(EngineFactory{"impl", [] { return std::unique_ptr<Engine>(new testing::FakeEngine); }});
  CliRun r = cli({"replay", "--engine", "impl", "--rewrite", f}, reg);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--rewrite fills expectations from the model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ioas::trace
