// The Z3 invariant checker, the state files and the JSON reader: one TEST per
// behaviour. States are built by running the model, then broken by hand, so
// each invariant's clause is seen failing with its name and witness.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "checker.hpp"
#include "ioas/engine.hpp"
#include "ioas/core/json.hpp"
#include "ioas/core/state.hpp"
#include "ioas/core/text.hpp"

namespace ioas {
namespace {

// A state with one IOAS, a device with an MSI window, two areas, a pin.
state::StateDump sample_state() {
  auto e = make_model_engine();
  EXPECT_TRUE(e->create_ioas("io", {}).ok());
  EXPECT_TRUE(e->add_memory({"buf", 0x7f0000000000, 16 << 20, 0x7f0000000000, true}).ok());
  EXPECT_TRUE(e->attach("io", {"nic", "d0", std::nullopt, std::nullopt, std::nullopt,
                               {{{0xfee00000, 0xfeefffff}, ResvType::kMsi}}, {}})
                  .ok());
  EXPECT_TRUE(e->map("io", {0x200000, 0x200000, "buf", 0, Prot::kReadWrite}).ok());
  EXPECT_TRUE(e->map("io", {0x1000000, 0x2000, "buf", 0x200000, Prot::kRead}).ok());
  EXPECT_TRUE(e->pin("io", {0x200000, 0x1000, false, true}).ok());
  return state::dump_engine(*e);
}

bool names(const checker::Report& r, Invariant inv) {
  return std::any_of(r.violations.begin(), r.violations.end(), [&](const Violation& v) { return v.invariant == inv; });
}
std::optional<u64> witness(const checker::Report& r, Invariant inv) {
  for (const auto& v : r.violations)
    if (v.invariant == inv) return v.witness;
  return std::nullopt;
}
// Every detail the report gives for inv, one a line: what broke the rule,
// not the rule.
std::string says(const checker::Report& r, Invariant inv) {
  std::string out;
  for (const auto& v : r.violations)
    if (v.invariant == inv) out += v.detail + "\n";
  return out;
}

TEST(Checker, AStateFromTheModelSatisfiesEveryInvariant) {
  checker::Report r = checker::check_state(sample_state());
  EXPECT_TRUE(r.violations.empty()) << r.violations.front().detail;
  EXPECT_GT(r.clauses, 10);
}

TEST(Checker, UnsortedAreasAreNamedSortedWithAWitnessInBoth) {
  auto d = sample_state();
  d.ioases[0].areas[1].iova = Range{0x3ff000, 0x400fff};  // overlaps the first area's last page
  auto r = checker::check_state(d);
  ASSERT_TRUE(names(r, Invariant::kSorted));
  auto w = witness(r, Invariant::kSorted);
  ASSERT_TRUE(w);
  EXPECT_GE(*w, 0x3ff000u);
  EXPECT_LE(*w, 0x3fffffu);
  EXPECT_EQ(says(r, Invariant::kSorted), "areas: 0x200000-0x3fffff overlaps 0x3ff000-0x400fff\n");
}

TEST(Checker, AreasOutOfOrderAreNamedAsSuch) {
  auto d = sample_state();
  std::swap(d.ioases[0].areas[0], d.ioases[0].areas[1]);
  auto r = checker::check_state(d);
  EXPECT_EQ(says(r, Invariant::kSorted),
            "areas: 0x1000000-0x1001fff comes before 0x200000-0x3fffff, which starts lower\n");
}

TEST(Checker, AnAreaOverAReservedRangeIsNamedWithAWitnessInBoth) {
  auto d = sample_state();
  d.ioases[0].areas[1].iova = Range{0xfeeff000, 0xfef00fff};
  auto r = checker::check_state(d);
  ASSERT_TRUE(names(r, Invariant::kAreaReserved));
  auto w = *witness(r, Invariant::kAreaReserved);
  EXPECT_TRUE(w >= 0xfeeff000u && w <= 0xfeefffffu);
  EXPECT_EQ(says(r, Invariant::kAreaReserved),
            "area 0xfeeff000-0xfef00fff overlaps reserved 0xfee00000-0xfeefffff of device nic\n");
}

TEST(Checker, AnAllowedRangeOverAReservedRangeIsNamed) {
  auto d = sample_state();
  d.ioases[0].allowed = {Range{0xfe000000, 0xfee00000}};
  auto r = checker::check_state(d);
  ASSERT_TRUE(names(r, Invariant::kAllowedReserved));
  EXPECT_EQ(witness(r, Invariant::kAllowedReserved), std::optional<u64>(0xfee00000));
}

TEST(Checker, AnAreaAtZeroIsNamedWithWitnessZero) {
  auto d = sample_state();
  d.ioases[0].areas[0].iova = Range{0, 0x1fffff};
  auto r = checker::check_state(d);
  ASSERT_TRUE(names(r, Invariant::kZeroIova));
  EXPECT_EQ(witness(r, Invariant::kZeroIova), std::optional<u64>(0));
}

TEST(Checker, AWrongAlignmentAndAMisalignedAreaAreNamed) {
  auto d = sample_state();
  d.ioases[0].iova_alignment = 0x2000;  // SPEC: 4K (the domain's smallest page)
  auto r = checker::check_state(d);
  EXPECT_TRUE(names(r, Invariant::kAlignment));
  EXPECT_NE(says(r, Invariant::kAlignment).find("iova_alignment is 0x2000, the spec derives 0x1000 for this state\n"),
            std::string::npos)
      << says(r, Invariant::kAlignment);
  d = sample_state();
  d.ioases[0].areas[1].iova = Range{0x1000800, 0x10027ff};
  r = checker::check_state(d);
  EXPECT_TRUE(names(r, Invariant::kAlignment));
  EXPECT_EQ(says(r, Invariant::kAlignment),
            "area 0x1000800-0x10027ff starts at 0x1000800, not a multiple of iova_alignment 0x1000\n");
}

TEST(Checker, AnAreaOutsideTheApertureIsNamedWithAWitnessOutside) {
  auto d = sample_state();
  d.ioases[0].domains[0].aperture = Range{0, 0xffffff};
  auto r = checker::check_state(d);
  ASSERT_TRUE(names(r, Invariant::kAperture));
  EXPECT_GT(*witness(r, Invariant::kAperture), 0xffffffu);
  EXPECT_EQ(says(r, Invariant::kAperture),
            "area 0x1000000-0x1001fff lies outside the aperture 0x0-0xffffff of domain d0\n");
}

TEST(Checker, AWrongSampledTranslationIsNamedAtItsIova) {
  auto d = sample_state();
  ASSERT_FALSE(d.translations.empty());
  auto it = std::find_if(d.translations.begin(), d.translations.end(), [](auto& t) { return t.result.has_value(); });
  it->result->pa += 0x1000;
  const u64 at = it->iova;
  auto r = checker::check_state(d);
  ASSERT_TRUE(names(r, Invariant::kTranslation));
  EXPECT_EQ(witness(r, Invariant::kTranslation), std::optional<u64>(at));
  EXPECT_NE(says(r, Invariant::kTranslation).find(" translates to " + hex(it->result->pa)), std::string::npos)
      << says(r, Invariant::kTranslation);
  EXPECT_NE(says(r, Invariant::kTranslation).find(", the area gives " + hex(it->result->pa - 0x1000)),
            std::string::npos)
      << says(r, Invariant::kTranslation);
  d = sample_state();
  it = std::find_if(d.translations.begin(), d.translations.end(), [](auto& t) { return !t.result.has_value(); });
  it->result = Translation{0x1234000, Prot::kRead};  // something maps outside every area
  r = checker::check_state(d);
  EXPECT_TRUE(names(r, Invariant::kTranslation));
  EXPECT_NE(says(r, Invariant::kTranslation).find(" translates to 0x1234000, but no area is there"), std::string::npos)
      << says(r, Invariant::kTranslation);
}

TEST(Checker, AWrongUseCountIsNamed) {
  auto d = sample_state();
  d.memories[0].use_count = 2;  // two areas and one pin: 3
  auto r = checker::check_state(d);
  EXPECT_TRUE(names(r, Invariant::kUseCount));
  EXPECT_EQ(says(r, Invariant::kUseCount), "memory source buf counts 2 uses, its areas and pins make 3\n");
  EXPECT_EQ(r.violations.size(), 1u);
}

TEST(Checker, EveryBrokenClauseIsNamedNotOnlyTheFirstCore) {
  auto d = sample_state();
  d.ioases[0].areas[0].iova = Range{0, 0x1fffff};             // zero-iova
  d.ioases[0].domains[0].aperture = Range{0x100000, 0xffffff};  // aperture (both areas... the second)
  d.memories[0].use_count = 7;                                  // use-count
  auto r = checker::check_state(d);
  EXPECT_TRUE(names(r, Invariant::kZeroIova));
  EXPECT_TRUE(names(r, Invariant::kAperture));
  EXPECT_TRUE(names(r, Invariant::kUseCount));
  EXPECT_TRUE(std::is_sorted(r.violations.begin(), r.violations.end(),
                             [](const Violation& a, const Violation& b) { return a.invariant < b.invariant; }));
}

// A kernel-mode IOAS (SPEC "Kernel mode") with an area at IOVA 0 and a mock
// domain (2K pages: alignment 0x800).
state::StateDump kernel_mock_state() {
  auto e = make_model_engine();
  IoasOptions kernel;
  kernel.mode = IoasMode::kKernel;
  EXPECT_TRUE(e->create_ioas("k", kernel).ok());
  EXPECT_TRUE(e->add_memory({"buf", 0x7f0000000000, 16 << 20, 0x7f0000000000, true}).ok());
  EXPECT_TRUE(e->map("k", {0, 0x1000, "buf", 0, Prot::kReadWrite}).ok());
  EXPECT_TRUE(e->create_ioas("m", kernel).ok());
  AttachArgs mock;
  mock.dev = "m0";
  mock.dom = "mk";
  mock.fmt = Format::kMock;
  EXPECT_TRUE(e->attach("m", mock).ok());
  EXPECT_TRUE(e->map("m", {0x1000800, 0x800, "buf", 0x800, Prot::kRead}).ok());
  return state::dump_engine(*e);
}

TEST(Checker, KernelModeAndMockStatesSatisfyEveryInvariant) {
  const auto d = kernel_mock_state();
  ASSERT_EQ(d.ioases.size(), 2u);
  EXPECT_EQ(d.ioases[1].iova_alignment, 0x800u);
  checker::Report r = checker::check_state(d);
  EXPECT_TRUE(r.violations.empty()) << r.violations.front().detail;
}

TEST(Checker, KernelModeZeroPageIsTheKernelsWhateverTheFileSays) {
  auto d = kernel_mock_state();
  d.ioases[0].options.zero_page = ZeroPage::kReserved;  // mode=kernel decides
  EXPECT_FALSE(names(checker::check_state(d), Invariant::kZeroIova));
  d.ioases[0].options.mode = IoasMode::kDefault;  // now the area at 0 is a violation
  EXPECT_TRUE(names(checker::check_state(d), Invariant::kZeroIova));
}

TEST(Checker, AMockAreaOffItsTwoKilobyteSlotsIsNamed) {
  auto d = kernel_mock_state();
  d.ioases[1].areas[0].iova = Range{0x1000400, 0x1000bff};
  EXPECT_TRUE(names(checker::check_state(d), Invariant::kAlignment));
}

TEST(StateFile, KernelModeAndMockRoundTripThroughJson) {
  const auto d = kernel_mock_state();
  const std::string text = state::to_json_text(d);
  EXPECT_NE(text.find("\"kernel\""), std::string::npos);
  EXPECT_NE(text.find("\"mock\""), std::string::npos);
  auto back = state::from_json_text(text, "k.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, d);
}

// Write-only areas (kernel mode) in an x86-64 domain, whose leaves make them
// rw, and in a mock domain, whose slots keep w (leaf_prot).
state::StateDump write_only_state() {
  auto e = make_model_engine();
  IoasOptions kernel;
  kernel.mode = IoasMode::kKernel;
  EXPECT_TRUE(e->create_ioas("x", kernel).ok());
  EXPECT_TRUE(e->create_ioas("m", kernel).ok());
  EXPECT_TRUE(e->add_memory({"buf", 0x7f0000000000, 16 << 20, 0x7f0000000000, true}).ok());
  EXPECT_TRUE(e->attach("x", {"nic", "d0", std::nullopt, std::nullopt, std::nullopt, {}, {}}).ok());
  EXPECT_TRUE(e->map("x", {0x200000, 0x1000, "buf", 0, Prot::kWrite}).ok());
  AttachArgs mock;
  mock.dev = "m0";
  mock.dom = "mk";
  mock.fmt = Format::kMock;
  EXPECT_TRUE(e->attach("m", mock).ok());
  EXPECT_TRUE(e->map("m", {0x1000800, 0x800, "buf", 0x800, Prot::kWrite}).ok());
  return state::dump_engine(*e);
}

TEST(Checker, WriteOnlyAreasSatisfyEveryInvariantAndRoundTripThroughJson) {
  const auto d = write_only_state();
  ASSERT_EQ(d.ioases.size(), 2u);
  ASSERT_EQ(d.ioases[1].areas.size(), 1u);
  EXPECT_EQ(d.ioases[1].areas[0].prot, Prot::kWrite);
  std::set<Prot> seen;
  for (const auto& t : d.translations)
    if (t.result) seen.insert(t.result->prot);
  EXPECT_EQ(seen, (std::set<Prot>{Prot::kWrite, Prot::kReadWrite}));  // mock w, x86-64 rw
  checker::Report r = checker::check_state(d);
  EXPECT_TRUE(r.violations.empty()) << r.violations.front().detail;
  const std::string text = state::to_json_text(d);
  EXPECT_NE(text.find("\"w\""), std::string::npos) << text;  // no name is w: the prot
  auto back = state::from_json_text(text, "w.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, d);
}

TEST(Checker, AWriteOnlyAreaTranslatedWithTheWrongLeafProtIsNamed) {
  auto d = write_only_state();
  // An x86-64 leaf cannot be write-only: a sample that says w is wrong, as
  // is a mock slot that says rw.
  for (auto& t : d.translations)
    if (t.result) t.result->prot = t.result->prot == Prot::kReadWrite ? Prot::kWrite : Prot::kReadWrite;
  auto r = checker::check_state(d);
  std::set<std::string> where;
  for (const auto& v : r.violations)
    if (v.invariant == Invariant::kTranslation) where.insert(v.ioas);
  EXPECT_EQ(where, (std::set<std::string>{"x", "m"}));
}

TEST(Checker, ChecksBothEnginesThroughThePublicInterface) {
  auto e = make_model_engine();
  ASSERT_TRUE(e->create_ioas("io", {}).ok());
  EXPECT_TRUE(checker::check_engine(*e).empty());
}

TEST(StateFile, RoundTripsThroughJson) {
  auto d = sample_state();
  auto back = state::from_json_text(state::to_json_text(d), "x.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, d);
}

TEST(StateFile, SchemaErrorsNameFileLineColumnAndPath) {
  auto r = state::from_json_text("{\"ioas-state\": 1, \"memories\": [],\n \"ioases\": [{\"name\": \"a\", \"iova_alignment\": \"0x1\",\n"
                                 "  \"areas\": [{\"iova\": \"5-zz\", \"prot\": \"rw\", \"source\": \"m\"}], \"reserved\": []}]}",
                                 "s.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("s.json:3:"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("$.ioases[0].areas[0].iova"), std::string::npos) << r.error().message;
  r = state::from_json_text("{\"ioas-state\": 2}", "v.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unsupported version"), std::string::npos);
  r = state::from_json_text("{\"ioas-state\": 1, \"memories\": []}", "m.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing key \"ioases\""), std::string::npos);
  r = state::from_json_text("{\"ioas-state\": 1, \"memories\": [], \"ioases\": [{\"name\": \"a\", \"iova_alignment\": 1, "
                            "\"areas\": [{\"iova\": \"0-1\", \"prot\": \"x\", \"source\": \"m\"}], \"reserved\": []}]}",
                            "p.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\"x\" is not one of r, rw, w, none"), std::string::npos) << r.error().message;
}

TEST(Json, ParsesWhatItWritesAndKeepsPositions) {
  auto v = json::parse("{\n  \"a\": [1, true, null, \"x\\n\\u00e9\"],\n  \"b\": {}\n}", "t.json");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_NE(v->find("a"), nullptr);
  EXPECT_EQ(v->find("a")->line, 2);
  EXPECT_EQ(v->find("a")->array[3].string, "x\n\xc3\xa9");
  auto again = json::parse(json::write(*v), "t2.json");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(json::write(*again), json::write(*v));
  EXPECT_EQ(json::parse("18446744073709551615", "n").value().number, ~0ull);
}

TEST(Json, MalformedInputIsAnErrorWithFileLineColumn) {
  const char* bad[] = {"", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,\"a\":2}", "18446744073709551616", "-1", "1.5",
                       "\"abc", "\"\\q\"", "[1] x", "nul", "{1: 2}", "\"\\ud800\"", "\"a\nb\""};
  for (const char* b : bad) {
    auto r = json::parse(b, "bad.json");
    ASSERT_FALSE(r.ok()) << b;
    EXPECT_EQ(r.error().message.rfind("bad.json:", 0), 0u) << r.error().message;
  }
  std::string deep(100, '[');
  EXPECT_FALSE(json::parse(deep, "d").ok());
  auto r = json::parse("{\n  \"a\": [1,\n  2,,]}", "p.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("p.json:3:5:", 0), 0u) << r.error().message;
}

}  // namespace
}  // namespace ioas
