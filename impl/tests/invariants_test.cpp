// check() on states broken on purpose: each breach is reported with the
// invariant it breaks, the IOAS, what broke it and a witness IOVA. (Engines
// never reach such states; the lockstep tests compare check() on the states
// they do reach, where it finds nothing.)
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine_impl.hpp"

namespace ioas::impl {

struct ImplEngineProbe {
  static Ioas& ioas(ImplEngine& e, std::string_view name) { return *e.find_ioas(name); }
};

namespace {

const Violation* find(const std::vector<Violation>& vs, Invariant inv) {
  auto it = std::find_if(vs.begin(), vs.end(), [&](const Violation& v) { return v.invariant == inv; });
  return it == vs.end() ? nullptr : &*it;
}

class BrokenState : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(e.create_ioas("a", IoasOptions{ZeroPage::kAllowed}).ok());
    ASSERT_TRUE(e.add_memory(MemorySource{"m", 0x7f0000000000, 0x400000, 0x40000000, true}).ok());
    ASSERT_TRUE(e.map("a", MapArgs{0x0, 0x2000, "m", 0, Prot::kReadWrite}).ok());
    ASSERT_TRUE(e.map("a", MapArgs{0x5000, 0x1000, "m", 0x3000, Prot::kRead}).ok());
    ASSERT_TRUE(e.check().empty());
  }
  ImplEngine e{ImplOptions{}};
};

TEST_F(BrokenState, AnAreaAtZeroWhereIovaZeroIsReservedIsReportedAtZero) {
  ImplEngineProbe::ioas(e, "a").options.zero_page = ZeroPage::kReserved;
  const auto vs = e.check();
  const Violation* v = find(vs, Invariant::kZeroIova);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->ioas, "a");
  EXPECT_EQ(v->witness, std::optional<u64>(0));
  EXPECT_NE(v->detail.find("0x0-0x1fff"), std::string::npos) << v->detail;
}

TEST_F(BrokenState, EachAreaOffTheIovaAlignmentIsReportedAtItsStart) {
  ImplEngineProbe::ioas(e, "a").iova_alignment = 0x4000;
  std::vector<u64> at;
  for (const Violation& v : e.check())
    if (v.invariant == Invariant::kAlignment && v.witness) {
      EXPECT_EQ(v.ioas, "a");
      at.push_back(*v.witness);
    }
  EXPECT_EQ(at, (std::vector<u64>{0x0, 0x5000}));
}

TEST_F(BrokenState, AUseCountOffItsIoasReferencesIsReportedInThatIoasOnly) {
  ASSERT_TRUE(e.create_ioas("b", IoasOptions{ZeroPage::kAllowed}).ok());
  ASSERT_TRUE(e.map("b", MapArgs{0x0, 0x1000, "m", 0, Prot::kReadWrite}).ok());
  ASSERT_TRUE(e.check().empty());
  ++ImplEngineProbe::ioas(e, "a").source_uses[0];  // "a" maps m twice; its count says 3
  std::vector<const Violation*> vs;
  const auto all = e.check();
  for (const Violation& v : all)
    if (v.invariant == Invariant::kUseCount) vs.push_back(&v);
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0]->ioas, "a");
  EXPECT_NE(vs[0]->detail.find("memory source m use count 3 here, references 2"), std::string::npos)
      << vs[0]->detail;
}

}  // namespace
}  // namespace ioas::impl
