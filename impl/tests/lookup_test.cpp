// Name lookups that a thread remembers (find_remembered in
// impl/engine_impl.hpp): a call on a name answers for the engine it was
// made on, whatever other engines of the same names the thread used before,
// locked (the lock's lookup) or not (the IOAS's).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine_impl.hpp"
#include "ioas/impl.hpp"

namespace ioas {
namespace {

constexpr u64 kVa = u64{1} << 40;

std::unique_ptr<Engine> engine_with(bool locked, const std::vector<std::string>& ioases) {
  ImplOptions o;
  o.thread_safe = locked;
  auto e = make_engine(o);
  for (const auto& n : ioases) EXPECT_TRUE(e->create_ioas(n, IoasOptions{}).ok()) << n;
  EXPECT_TRUE(e->add_memory(MemorySource{"m", kVa, 64 * kPage, kVa, true}).ok());
  return e;
}

u64 map_at(Engine& e, const std::string& ioas, u64 iova) {
  auto r = e.map(ioas, MapArgs{iova, kPage, "m", 0, Prot::kReadWrite});
  EXPECT_TRUE(r.ok()) << ioas << " " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : 0;
}

std::vector<u64> area_starts(const Engine& e, const std::string& ioas) {
  std::vector<u64> out;
  auto s = e.snapshot(ioas);
  EXPECT_TRUE(s.ok());
  if (s.ok())
    for (const auto& a : s->areas) out.push_back(a.iova.start);
  return out;
}

class Lookup : public ::testing::TestWithParam<bool> {};

TEST_P(Lookup, TwoEnginesWithOneNameInOneThreadEachGetTheirOwnCalls) {
  auto a = engine_with(GetParam(), {"x"});
  auto b = engine_with(GetParam(), {"x"});
  map_at(*a, "x", 1 * kPage);
  map_at(*b, "x", 2 * kPage);
  map_at(*a, "x", 3 * kPage);
  map_at(*b, "x", 4 * kPage);
  EXPECT_EQ(area_starts(*a, "x"), (std::vector<u64>{1 * kPage, 3 * kPage}));
  EXPECT_EQ(area_starts(*b, "x"), (std::vector<u64>{2 * kPage, 4 * kPage}));
}

TEST_P(Lookup, AnEngineMadeAfterOneIsDestroyedDoesNotSeeItsIoases) {
  for (int round = 0; round < 4; ++round) {
    auto e = engine_with(GetParam(), {"x"});
    map_at(*e, "x", kPage);  // the same call each round: an engine may reuse the last one's address
    EXPECT_EQ(area_starts(*e, "x"), (std::vector<u64>{kPage})) << "round " << round;
  }
}

TEST_P(Lookup, ACloneIsAnotherEngine) {
  auto a = engine_with(GetParam(), {"x"});
  map_at(*a, "x", kPage);
  auto c = a->clone();
  ASSERT_NE(c, nullptr);
  map_at(*c, "x", 2 * kPage);
  map_at(*a, "x", 3 * kPage);
  EXPECT_EQ(area_starts(*a, "x"), (std::vector<u64>{kPage, 3 * kPage}));
  EXPECT_EQ(area_starts(*c, "x"), (std::vector<u64>{kPage, 2 * kPage}));
}

TEST_P(Lookup, NamesSwitchAndAMissingNameIsNotFound) {
  auto e = engine_with(GetParam(), {"x", "y"});
  map_at(*e, "x", kPage);
  auto r = e->map("z", MapArgs{kPage, kPage, "m", 0, Prot::kReadWrite});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ENOENT);
  map_at(*e, "y", 2 * kPage);
  ASSERT_TRUE(e->create_ioas("z", IoasOptions{}).ok());
  map_at(*e, "z", 3 * kPage);
  map_at(*e, "x", 4 * kPage);
  EXPECT_EQ(area_starts(*e, "x"), (std::vector<u64>{kPage, 4 * kPage}));
  EXPECT_EQ(area_starts(*e, "y"), (std::vector<u64>{2 * kPage}));
  EXPECT_EQ(area_starts(*e, "z"), (std::vector<u64>{3 * kPage}));
}

// Longer than what a thread remembers, and alike up to there.
TEST_P(Lookup, LongNamesThatShareAPrefixAreToldApart) {
  const std::string p(60, 'n');
  auto e = engine_with(GetParam(), {p + "1", p + "2", p.substr(0, 44), p.substr(0, 43)});
  map_at(*e, p + "1", 1 * kPage);
  map_at(*e, p + "2", 2 * kPage);
  map_at(*e, p.substr(0, 44), 3 * kPage);
  map_at(*e, p.substr(0, 43), 4 * kPage);
  map_at(*e, p.substr(0, 44), 5 * kPage);
  map_at(*e, p + "1", 6 * kPage);
  EXPECT_EQ(area_starts(*e, p + "1"), (std::vector<u64>{1 * kPage, 6 * kPage}));
  EXPECT_EQ(area_starts(*e, p + "2"), (std::vector<u64>{2 * kPage}));
  EXPECT_EQ(area_starts(*e, p.substr(0, 44)), (std::vector<u64>{3 * kPage, 5 * kPage}));
  EXPECT_EQ(area_starts(*e, p.substr(0, 43)), (std::vector<u64>{4 * kPage}));
}

INSTANTIATE_TEST_SUITE_P(LockedAndNot, Lookup, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "Locked" : "Unlocked"; });

TEST(LookupOwner, ACopyOrAnAssignmentGetsAFreshId) {
  impl::LookupOwner a;
  impl::LookupOwner b(a);
  impl::LookupOwner c;
  const auto before = c.id();
  c = a;
  EXPECT_NE(a.id(), b.id());
  EXPECT_NE(a.id(), c.id());
  EXPECT_NE(b.id(), c.id());
  EXPECT_NE(c.id(), before) << "an assigned owner's map changed: what was remembered for it is stale";
  EXPECT_NE(a.id(), 0u);
}

}  // namespace
}  // namespace ioas
