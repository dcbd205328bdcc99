// `ioas show`: the SVG picture of an IOAS and the command's exit statuses.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "show.hpp"

namespace ioas::cli {
namespace {

IoasState sample() {
  IoasState s;
  s.name = "vm<0>";
  s.iova_alignment = 0x1000;
  s.areas = {{{0x2000, 0x3fff}, Prot::kReadWrite, "buf", 0, 0}, {{0x100000, 0x2fffff}, Prot::kRead, "buf", 0x200000, 1}};
  s.reserved = {{{0, 0xfff}, {OwnerKind::kZeroPage, ""}},
                {{0xfee00000, 0xfeefffff}, {OwnerKind::kDevice, "nic"}},
                {{u64{1} << 48, kMaxIova}, {OwnerKind::kDomain, "d0"}}};
  s.allowed = {{0x1000, 0xffffffff}};
  return s;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

double x_of(const std::string& svg, const std::string& title) {
  // <rect class="shape" x="X" ...><title>TITLE</title>
  const auto t = svg.find("<title>" + title);
  EXPECT_NE(t, std::string::npos) << title;
  const auto r = svg.rfind("<rect class=\"shape\" x=\"", t);
  return std::stod(svg.substr(r + 23));
}

TEST(Show, DrawsEveryLaneAndShapeWithExactTooltips) {
  const std::string svg = render_svg(sample());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("reserved: device nic"), std::string::npos);
  EXPECT_NE(svg.find("reserved: domain d0"), std::string::npos);
  EXPECT_NE(svg.find("reserved: zero-page"), std::string::npos);
  EXPECT_NE(svg.find("<title>area 0x2000-0x3fff rw buf+0x0</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>area 0x100000-0x2fffff r buf+0x200000 pinned</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>allowed 0x1000-0xffffffff</title>"), std::string::npos);
  // 1 allowed + 3 reserved + 2 areas + free holes (0x1000-0x1fff, 0x4000-0xfffff,
  // 0x300000-0xfedfffff, 0xfef00000-0xffffffffffff) = 10 shapes.
  EXPECT_EQ(count(svg, "<rect class=\"shape\""), 10);
  EXPECT_NE(svg.find("vm&lt;0&gt;"), std::string::npos) << "names are escaped";
}

TEST(Show, TheAxisKeepsTheOrderOfAddresses) {
  const std::string svg = render_svg(sample());
  const double zero = x_of(svg, "reserved 0x0-0xfff");
  const double a1 = x_of(svg, "area 0x2000-0x3fff");
  const double a2 = x_of(svg, "area 0x100000-0x2fffff");
  const double msi = x_of(svg, "reserved 0xfee00000-0xfeefffff");
  const double top = x_of(svg, "reserved 0x1000000000000-0xffffffffffffffff");
  EXPECT_LT(zero, a1);
  EXPECT_LT(a1, a2);
  EXPECT_LT(a2, msi);
  EXPECT_LT(msi, top);
}

TEST(Show, AnEmptyIoasIsOneFreeHole) {
  IoasState s;
  s.name = "e";
  const std::string svg = render_svg(s);
  EXPECT_EQ(count(svg, "<rect class=\"shape\""), 1);
  EXPECT_NE(svg.find("<title>free 0x0-0xffffffffffffffff</title>"), std::string::npos);
}

struct Run {
  int status;
  std::string out, err;
};
Run show(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int st = show_command(args, out, err, trace::EngineRegistry::builtin());
  return {st, out.str(), err.str()};
}

TEST(Show, CommandWritesTheDemoPicture) {
  const std::string out = ::testing::TempDir() + "/demo.svg";
  auto r = show({IOAS_CORPUS_DIR "/demo.trace", "--svg", out});
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(out);
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_NE(text.str().find("reserved: device nic"), std::string::npos);
  EXPECT_NE(r.out.find("wrote"), std::string::npos);
}

TEST(Show, BadUsageAndInputExitTwo) {
  EXPECT_EQ(show({}).status, 2);
  EXPECT_EQ(show({IOAS_CORPUS_DIR "/demo.trace"}).status, 2) << "no --svg";
  EXPECT_EQ(show({"/nonexistent.trace", "--svg", "/tmp/x.svg"}).status, 2);
  auto r = show({IOAS_CORPUS_DIR "/demo.trace", "--svg", ::testing::TempDir() + "/x.svg", "--ioas", "nope"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  EXPECT_EQ(show({IOAS_CORPUS_DIR "/demo.trace", "--svg", "/nonexistent-dir/x.svg"}).status, 2);
  EXPECT_EQ(show({"--bogus"}).status, 2);
  EXPECT_EQ(show({"--help"}).status, 0);
}

}  // namespace
}  // namespace ioas::cli
