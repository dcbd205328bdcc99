// Every short operation sequence over a tiny address space, on the model and
// the engine under test, compared after every operation.
//
// The tiny space: IOVA unit = PAGE, and a domain whose aperture is
// [0, 64 pages - 1] makes everything else reserved, so the valid space is 64
// pages (a 6-bit space of pages), with the zero page reserved at the bottom.
// The alphabet is small enough to run every sequence of up to four
// operations (four deep), and chosen so that each operation can meet each other's
// results: fixed and automatic maps of 1-3 pages at the low pages, unmaps
// that fit or split areas, cuts inside areas, pins that block, reservations
// and allowed ranges over the same pages, a copy, DMA and dirty reads.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "lockstep.hpp"
#include "sut.hpp"

namespace ioas::lockstep {
namespace {

using trace::Operation;
constexpr u64 P = kPage;

std::vector<Operation> alphabet() {
  std::vector<Operation> a;
  for (u64 iova : {0u, 1u, 2u, 3u, 63u})
    for (u64 len : {1u, 2u}) a.push_back(trace::MapOp{iova * P, len * P, "m", 0, Prot::kReadWrite});
  a.push_back(trace::MapOp{2 * P, P, "m", P, Prot::kRead});
  for (u64 len : {1u, 2u, 3u}) a.push_back(trace::MapOp{std::nullopt, len * P, "m", 0, Prot::kReadWrite});
  a.push_back(trace::MapOp{std::nullopt, P, "m", 0x200000, Prot::kRead});
  for (auto [iova, len] : {std::pair<u64, u64>{1, 1}, {1, 2}, {2, 1}, {1, 3}, {2, 2}})
    a.push_back(trace::UnmapOp{false, iova * P, len * P});
  a.push_back(trace::UnmapOp{true, 0, 0});
  for (u64 x : {2 * P - 1, 2 * P, 3 * P - 1}) a.push_back(trace::CutOp{x});
  a.push_back(trace::PinOp{P, P, true, false});
  a.push_back(trace::PinOp{P, 2 * P, false, true});
  a.push_back(trace::UnpinOp{1});
  a.push_back(trace::ReserveOp{Range{2 * P, 3 * P - 1}, "u"});
  a.push_back(trace::UnreserveOp{"u"});
  a.push_back(trace::AllowOp{{Range{2 * P, 4 * P - 1}}});
  a.push_back(trace::AllowOp{{}});
  a.push_back(trace::CopyOp{"default", P, P, std::nullopt, Prot::kReadWrite});
  a.push_back(trace::CopyOp{"default", P, 2 * P, 5 * P, Prot::kRead});
  a.push_back(trace::DirtyOp{"D", DirtyMode::kOnSplit});
  a.push_back(trace::DmaOp{"D", DmaDir::kWrite, P + 5, 1});
  a.push_back(trace::ReadDirtyOp{"D", P, 2 * P, P, false});
  a.push_back(trace::DetachOp{"d"});
  return a;
}

std::vector<Operation> setup() {
  return {
      trace::MemOp{"m", 0x7f0000000000, 0x400000, std::nullopt, false},
      trace::AttachOp{"d", "D", std::nullopt, Range{0, 64 * P - 1}, std::nullopt, {}, {}},
  };
}

struct Side {
  std::unique_ptr<Engine> engine;
  std::string current = "default";
};

Side fresh(std::unique_ptr<Engine> e) {
  Side s{std::move(e), "default"};
  EXPECT_TRUE(s.engine->create_ioas("default", IoasOptions{}).ok());
  return s;
}

TEST(Exhaustive, EverySequenceOfUpToFourOperationsInASixBitSpaceAgrees) {
  // ~1.9M steps: one Z3 invariant check in 8192 comparisons (~230 checks).
  set_z3_check_every(8192);
  const auto ops = alphabet();
  Side spec = fresh(make_model_engine());
  Side sut = fresh(make_sut());
  std::vector<Operation> path = setup();
  for (const auto& op : path) {
    auto r = lockstep_step(*spec.engine, spec.current, *sut.engine, sut.current, op);
    ASSERT_TRUE(r.failure.empty()) << r.failure;
  }
  std::uint64_t sequences = 0, steps = 0;
  std::string failure;
  std::function<void(const Side&, const Side&, int)> explore = [&](const Side& s, const Side& u, int depth) {
    for (const auto& op : ops) {
      if (!failure.empty()) return;
      Side s2{s.engine->clone(), s.current}, u2{u.engine->clone(), u.current};
      ASSERT_NE(u2.engine, nullptr) << "the engine under test cannot clone itself";
      path.push_back(op);
      auto r = lockstep_step(*s2.engine, s2.current, *u2.engine, u2.current, op);
      ++steps;
      if (!r.failure.empty()) {
        failure = r.failure;
        std::string file = write_counterexample(path, ::testing::TempDir(), "exhaustive-failure");
        failure += "\nsequence written to " + file;
        return;
      }
      ++sequences;
      if (depth > 1) explore(s2, u2, depth - 1);
      path.pop_back();
    }
  };
  explore(spec, sut, 4);
  set_z3_check_every(64);
  ASSERT_TRUE(failure.empty()) << failure;
  const u64 n = ops.size();
  EXPECT_EQ(sequences, n + n * n + n * n * n + n * n * n * n) << "every sequence of length 1 to 4 ran";
  std::printf("alphabet %zu operations: %llu sequences, %llu steps, all agreed\n", ops.size(),
              static_cast<unsigned long long>(sequences), static_cast<unsigned long long>(steps));
}

}  // namespace
}  // namespace ioas::lockstep
