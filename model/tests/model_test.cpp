// Tests of the model's own machinery: verify() names each broken invariant,
// and the leaf formula equals a literal greedy iommu_pgsize walk. The SPEC
// rules themselves are in spec_rules.cpp (run on every engine).
#include <gtest/gtest.h>

#include <random>

#include "ioas/engine.hpp"
#include "world.hpp"

namespace ioas::model {
namespace {

// A consistent world: IOAS "a" with one area of 2 MiB at 2 MiB mapped from
// source "m", one domain "d" with device "dev".
World good_world() {
  World w;
  IoasRec io;
  io.name = "a";
  io.iova_alignment = 0x1000;
  io.reserved.push_back(ResvRec{{0, 0xfff}, Owner{OwnerKind::kZeroPage, ""}});
  io.reserved.push_back(ResvRec{{u64{1} << 48, kMaxIova}, Owner{OwnerKind::kDomain, "d"}});
  io.areas.push_back(AreaRec{{0x200000, 0x3fffff}, Prot::kReadWrite, "m", 0});
  w.ioases.emplace("a", io);
  w.memories.emplace("m", MemRec{MemorySource{"m", 0x40000000, 0x400000, 0x80000000, true}, 1});
  DomainRec d;
  d.name = "d";
  d.ioas = "a";
  d.aperture = {0, (u64{1} << 48) - 1};
  d.pgsize_bitmap = k4K | k2M | k1G;
  d.devices.insert("dev");
  w.domains.emplace("d", d);
  w.devices.emplace("dev", DeviceRec{"dev", "d"});
  return w;
}

bool names(const std::vector<Violation>& v, Invariant inv) {
  for (const auto& x : v)
    if (x.invariant == inv) return true;
  return false;
}

TEST(Verify, AConsistentWorldHasNoViolation) { EXPECT_TRUE(verify(good_world()).empty()); }

TEST(Verify, NamesUnsortedOrOverlappingAreas) {
  World w = good_world();
  w.ioases.at("a").areas.push_back(AreaRec{{0x300000, 0x300fff}, Prot::kRead, "m", 0});
  w.memories.at("m").use_count = 2;
  auto v = verify(w);
  ASSERT_TRUE(names(v, Invariant::kSorted));
}

TEST(Verify, NamesAreaInReservedWithWitness) {
  World w = good_world();
  w.ioases.at("a").reserved.push_back(ResvRec{{0x3ff000, 0x3fffff}, Owner{OwnerKind::kUser, "u"}});
  auto v = verify(w);
  ASSERT_TRUE(names(v, Invariant::kAreaReserved));
  for (const auto& x : v) {
    if (x.invariant == Invariant::kAreaReserved) {
      EXPECT_EQ(x.witness, u64{0x3ff000});
    }
  }
}

TEST(Verify, NamesAllowedInReserved) {
  World w = good_world();
  w.ioases.at("a").allowed.push_back({0x800, 0x1fff});
  EXPECT_TRUE(names(verify(w), Invariant::kAllowedReserved));
}

TEST(Verify, NamesAreaAtZero) {
  World w = good_world();
  auto& io = w.ioases.at("a");
  io.reserved.erase(io.reserved.begin());
  io.areas.insert(io.areas.begin(), AreaRec{{0, 0xfff}, Prot::kRead, "m", 0});
  w.memories.at("m").use_count = 2;
  EXPECT_TRUE(names(verify(w), Invariant::kZeroIova));
}

TEST(Verify, NamesMisalignedAreaAndWrongAlignment) {
  World w = good_world();
  w.ioases.at("a").areas[0].iova.last = 0x3ffeff;
  EXPECT_TRUE(names(verify(w), Invariant::kAlignment));
  World w2 = good_world();
  w2.ioases.at("a").iova_alignment = 1;  // a 4K domain is attached
  EXPECT_TRUE(names(verify(w2), Invariant::kAlignment));
}

TEST(Verify, NamesAreaOutsideAperture) {
  World w = good_world();
  w.domains.at("d").aperture = {0x400000, (u64{1} << 48) - 1};
  EXPECT_TRUE(names(verify(w), Invariant::kAperture));
}

TEST(Verify, NamesBrokenDomainBookkeeping) {
  World w = good_world();
  w.devices.clear();
  EXPECT_TRUE(names(verify(w), Invariant::kTranslation));
}

TEST(Verify, NamesWrongUseCount) {
  World w = good_world();
  w.memories.at("m").use_count = 0;
  EXPECT_TRUE(names(verify(w), Invariant::kUseCount));
}

// The greedy iommu_pgsize walk, literally: from the area's start, the largest
// size in the bitmap dividing iova and pa that fits what remains.
std::vector<Range> greedy_leaves(u64 iova, u64 pa, u64 len, u64 bitmap) {
  std::vector<Range> out;
  while (len) {
    u64 best = 0;
    for (int b = 0; b < 64; ++b) {
      u64 p = u64{1} << b;
      if ((bitmap & p) && iova % p == 0 && pa % p == 0 && p <= len) best = p;
    }
    if (!best) return {};
    out.push_back({iova, iova + best - 1});
    iova += best;
    pa += best;
    len -= best;
  }
  return out;
}

TEST(Leaves, LeafOfEqualsTheGreedyWalk) {
  std::mt19937_64 rng(7);
  // Small page sizes (1, 4, 16, 64 "bytes") so areas hold many leaves.
  const u64 sizes[] = {1, 4, 16, 64};
  for (int iter = 0; iter < 300; ++iter) {
    u64 bitmap = 1;  // the smallest size is always there, as in every format
    for (int i = 1; i < 4; ++i)
      if (rng() & 1) bitmap |= sizes[i];
    const u64 start = rng() % 512, len = 1 + rng() % 300, pa = rng() % 512;
    World w = good_world();
    auto& io = w.ioases.at("a");
    io.options.huge_pages = true;
    io.areas = {AreaRec{{start, start + len - 1}, Prot::kRead, "m", 0}};
    w.memories.at("m").src.pa = pa;
    w.memories.at("m").src.va = pa;
    DomainRec& d = w.domains.at("d");
    d.pgsize_bitmap = bitmap;
    for (const Range& leaf : greedy_leaves(start, pa, len, bitmap)) {
      for (u64 y = leaf.start; y <= leaf.last; ++y)
        ASSERT_EQ(leaf_of(w, d, io.areas[0], y), leaf)
            << "start " << start << " len " << len << " pa " << pa << " bitmap " << bitmap << " y " << y;
    }
  }
}

TEST(Leaves, SplitModeAndHugePagesOffUseSmallPages) {
  World w = good_world();
  auto& io = w.ioases.at("a");
  DomainRec& d = w.domains.at("d");
  EXPECT_EQ(leaf_of(w, d, io.areas[0], 0x200123), (Range{0x200000, 0x3fffff}));
  d.dirty = DirtyMode::kOnSplit;
  EXPECT_EQ(leaf_of(w, d, io.areas[0], 0x200123), (Range{0x200000, 0x200fff}));
  d.dirty = DirtyMode::kOn;
  io.options.huge_pages = false;
  EXPECT_EQ(leaf_of(w, d, io.areas[0], 0x200123), (Range{0x200000, 0x200fff}));
}

}  // namespace
}  // namespace ioas::model
