// `ioas check`, `ioas ranges` and `ioas replay --dump-state/--json`, in
// process: every exit status, the sample reserved_regions files with their
// expected ranges, and malformed input (a clear error naming the file and
// line, never a crash).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "cli.hpp"
#include "commands.hpp"
#include "ioas/core/json.hpp"

namespace ioas::cli {
namespace {

const std::string kData = IOAS_TESTDATA_DIR;
const std::string kCorpus = IOAS_CORPUS_DIR;

struct CliRun {
  int status;
  std::string out, err;
};
CliRun ioas(std::vector<std::string> args) {
  std::ostringstream out, err;
  int st = run(args, out, err, trace::EngineRegistry::builtin());
  return CliRun{st, out.str(), err.str()};
}

std::string tmp(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / ("ioas-cli-test-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(p) << text;
  return p.string();
}

std::string valid_lines(const std::string& out) {
  std::string s;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("valid ", 0) == 0) s += l.substr(6) + "\n";
  return s;
}

// ---- ranges ----

class SampleRegions : public testing::TestWithParam<const char*> {};
TEST_P(SampleRegions, GiveTheExpectedValidRanges) {
  const std::string base = kData + "/" + GetParam();
  CliRun r = ioas({"ranges", base + ".reserved_regions"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(valid_lines(r.out), read_file(base + ".expected").value());
}
INSTANTIATE_TEST_SUITE_P(Ranges, SampleRegions, testing::Values("intel", "amd", "arm-smmu", "intel-isa"));

TEST(Ranges, DirectRelaxableIsNotExcluded) {
  CliRun r = ioas({"ranges", kData + "/intel-isa.reserved_regions"});
  EXPECT_NE(r.out.find("direct-relaxable (not excluded)"), std::string::npos);
  EXPECT_NE(r.out.find("valid 0x0-0xfedfffff"), std::string::npos);
}

TEST(Ranges, SeveralGroupsAndTheApertureCombine) {
  CliRun r = ioas({"ranges", "--aperture", "0-0xffffffffff", kData + "/intel.reserved_regions",
                kData + "/arm-smmu.reserved_regions", kData + "/amd.reserved_regions"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(valid_lines(r.out), "0x0-0x7ffffff\n0x8100000-0xfedfffff\n0xfef00000-0xfcffffffff\n");
}

TEST(Ranges, JsonOutputParsesAndListsRanges) {
  CliRun r = ioas({"ranges", "--json", kData + "/amd.reserved_regions"});
  ASSERT_EQ(r.status, 0);
  auto v = json::parse(r.out, "out");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_EQ(v->find("ranges")->array.size(), 3u);
  EXPECT_EQ(v->find("ranges")->array[1].find("last")->string, "0xfcffffffff");
  EXPECT_EQ(v->find("regions")->array[1].find("line")->number, 2u);
}

TEST(Ranges, NoValidIovaLeftExitsOne) {
  CliRun r = ioas({"ranges", "--aperture", "0xfee00000-0xfeefffff", kData + "/intel.reserved_regions"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("no valid IOVA"), std::string::npos);
}

TEST(Ranges, MalformedFilesExitTwoNamingFileAndLine) {
  CliRun r = ioas({"ranges", kData + "/malformed.reserved_regions"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("malformed.reserved_regions:2: end 'oops'"), std::string::npos) << r.err;
  const std::pair<const char*, const char*> cases[] = {
      {"0x1000 0x2000\n", ":1: expected 'START END TYPE'"},
      {"0x1000 0x2000 msi extra\n", ":1: expected 'START END TYPE'"},
      {"\n0x2000 0x1000 msi\n", ":2: start 0x2000 is above end"},
      {"0x1000 0x2000 weird\n", ":1: unknown type 'weird'"},
      {"4096 0x2000 msi\n", ":1: start '4096' is not a 64-bit 0x hex number"},
      {"0x1 0x10000000000000000 msi\n", ":1: end '0x10000000000000000'"},
  };
  for (const auto& [text, want] : cases) {
    CliRun m = ioas({"ranges", tmp("bad.rr", text)});
    EXPECT_EQ(m.status, 2) << text;
    EXPECT_NE(m.err.find(want), std::string::npos) << m.err;
  }
}

TEST(Ranges, BadUsageExitsTwo) {
  EXPECT_EQ(ioas({"ranges", "/nonexistent/reserved_regions"}).status, 2);
  EXPECT_EQ(ioas({"ranges", "--aperture", "5-1", kData + "/intel.reserved_regions"}).status, 2);
  EXPECT_EQ(ioas({"ranges", "--aperture"}).status, 2);
  EXPECT_EQ(ioas({"ranges", "--bogus"}).status, 2);
  std::ostringstream out, err;
  EXPECT_EQ(ranges_command({}, out, err, "/nonexistent-sysfs"), 2);
  EXPECT_NE(err.str().find("no IOMMU groups found"), std::string::npos);
}

TEST(Ranges, ReadsGroupsFromSysfsWhenNoFileIsGiven) {
  auto root = std::filesystem::temp_directory_path() / ("ioas-sysfs-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "kernel/iommu_groups/0");
  std::filesystem::create_directories(root / "kernel/iommu_groups/1");
  std::filesystem::copy_file(kData + "/intel.reserved_regions", root / "kernel/iommu_groups/0/reserved_regions",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(kData + "/intel-isa.reserved_regions", root / "kernel/iommu_groups/1/reserved_regions",
                             std::filesystem::copy_options::overwrite_existing);
  std::ostringstream out, err;
  EXPECT_EQ(ranges_command({}, out, err, root.string()), 0) << err.str();
  EXPECT_EQ(valid_lines(out.str()), read_file(kData + "/intel.expected").value());
  std::filesystem::remove_all(root);
}

// ---- help ----

TEST(Help, EverySubcommandHasHelpExitingZero) {
  for (const char* cmd : {"replay", "check", "ranges"}) {
    CliRun r = ioas({cmd, "--help"});
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find(std::string("usage: ioas ") + cmd), std::string::npos) << cmd;
  }
  EXPECT_EQ(ioas({"--help"}).status, 0);
}

// ---- check ----

TEST(Check, ACorpusTraceChecksOk) {
  CliRun r = ioas({"check", kCorpus + "/demo.trace"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("=> ok"), std::string::npos);
}

TEST(Check, DumpedStateChecksOkAndJsonSaysSo) {
  const std::string dump = tmp("demo-state.json", "");
  CliRun r = ioas({"replay", "--dump-state", dump, kCorpus + "/demo.trace"});
  ASSERT_EQ(r.status, 0) << r.err;
  CliRun c = ioas({"check", dump});
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  CliRun j = ioas({"check", "--json", dump});
  EXPECT_EQ(j.status, 0);
  auto v = json::parse(j.out, "out");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_TRUE(v->find("ok")->boolean);
}

TEST(Check, ABrokenStateExitsOneNamingTheInvariantAndAWitness) {
  const std::string dump = tmp("broken-state.json", "");
  const std::string tr = tmp("two-pages.trace", "mem buf va=0x7f0000000000 len=1M\nmap iova=0x2000 len=8K src=buf prot=rw\n");
  ASSERT_EQ(ioas({"replay", "--dump-state", dump, tr}).status, 0);
  std::string text = read_file(dump).value();
  // Move the zero page reservation over the first area: area-reserved.
  const std::string from = "\"range\": \"0x0-0xfff\"";
  auto at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), "\"range\": \"0x0-0x2fff\"");
  const std::string broken = tmp("broken2.json", text);
  CliRun c = ioas({"check", broken});
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("violated area-reserved in default"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("witness IOVA 0x2"), std::string::npos) << c.out;
  CliRun j = ioas({"check", "--json", broken});
  EXPECT_EQ(j.status, 1);
  auto v = json::parse(j.out, "out");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->find("files")->array[0].find("violations")->array[0].find("invariant")->string, "area-reserved");
}

TEST(Check, AViolationSaysWhatIsWrongNotTheRule) {
  const std::string dump = tmp("two-areas-state.json", "");
  const std::string tr = tmp("two-areas.trace",
                             "mem buf va=0x7f0000000000 len=1M\n"
                             "map iova=0x2000 len=8K src=buf prot=rw\n"
                             "map iova=0x4000 len=8K src=buf prot=rw\n");
  ASSERT_EQ(ioas({"replay", "--dump-state", dump, tr}).status, 0);
  std::string text = read_file(dump).value();
  // The second area moved over the first one's last page, and an
  // iova_alignment the spec does not derive (no domain, no pin, huge pages: 1).
  for (auto [from, to] : {std::pair<std::string, std::string>{"\"0x4000-0x5fff\"", "\"0x3000-0x4fff\""},
                          {"\"iova_alignment\": \"0x1\"", "\"iova_alignment\": \"0x1000\""}}) {
    auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  }
  const std::string broken = tmp("two-areas-broken.json", text);
  CliRun c = ioas({"check", broken});
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find(broken + ": violated sorted in default: areas: 0x2000-0x3fff overlaps 0x3000-0x4fff (witness IOVA 0x3000)\n"),
            std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find(broken + ": violated alignment in default: iova_alignment is 0x1000, the spec derives 0x1 for this state\n"),
            std::string::npos)
      << c.out;
}

TEST(Check, MalformedInputExitsTwoWithFileLineColumn) {
  CliRun r = ioas({"check", tmp("bad.json", "{\n  \"ioas-state\": 1,\n  \"memories\": [,\n}")});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("bad.json:3:16: syntax error while parsing value - unexpected ','"), std::string::npos) << r.err;
  r = ioas({"check", tmp("bad.trace", "map len=8K src=buf prot=bogus\n")});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("bad.trace:1:"), std::string::npos) << r.err;
  EXPECT_EQ(ioas({"check"}).status, 2);
  EXPECT_EQ(ioas({"check", "/nonexistent.trace"}).status, 2);
  EXPECT_EQ(ioas({"check", "--nope", "x"}).status, 2);
}

TEST(Check, ATraceWhoseExpectationFailsExitsOne) {
  CliRun r = ioas({"check", tmp("fail.trace", "mem buf va=0x10000 len=64K\nmap len=8K src=buf prot=rw => iova 0x999000\n")});
  EXPECT_EQ(r.status, 1) << r.out;
}

TEST(Replay, JsonOutputParsesWithEveryLine) {
  CliRun r = ioas({"replay", "--json", kCorpus + "/demo.trace"});
  EXPECT_EQ(r.status, 0) << r.err;
  auto v = json::parse(r.out, "out");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_TRUE(v->find("summary")->find("pass")->boolean);
  EXPECT_GT(v->find("lines")->array.size(), 5u);
}

}  // namespace
}  // namespace ioas::cli
