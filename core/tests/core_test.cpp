// The shared vocabulary: Range helpers, list helpers, errno names, arith.
#include <gtest/gtest.h>

#include <cerrno>
#include <random>

#include "ioas/arith.hpp"
#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"

namespace ioas {
namespace {

TEST(Range, FromLenRejectsZeroAndOverflow) {
  EXPECT_FALSE(Range::from_len(0x1000, 0));
  EXPECT_FALSE(Range::from_len(kMaxIova, 2));
  ASSERT_TRUE(Range::from_len(kMaxIova, 1));
  EXPECT_EQ(*Range::from_len(kMaxIova, 1), (Range{kMaxIova, kMaxIova}));
  EXPECT_EQ(*Range::from_len(0, kMaxIova), (Range{0, kMaxIova - 1}));
  EXPECT_EQ(*Range::from_len(0x1000, 0x1000), (Range{0x1000, 0x1fff}));
}

TEST(Range, OverlapIsSharingAByteAdjacencyIsNot) {
  Range a{0x1000, 0x1fff};
  EXPECT_TRUE(a.overlaps(Range{0x1fff, 0x2fff}));
  EXPECT_FALSE(a.overlaps(Range{0x2000, 0x2fff}));
  EXPECT_TRUE(a.precedes_adjacent(Range{0x2000, 0x2fff}));
  EXPECT_FALSE((Range{0, kMaxIova}).precedes_adjacent(Range{0, 0}));
  EXPECT_TRUE(Range::all().contains(a));
  EXPECT_EQ(Range::all().length(), 0u) << "2^64 does not fit: length() documents 0";
}

TEST(RangeList, NormalizeMergesOverlappingAndAdjacent) {
  auto n = normalize({{0x3000, 0x3fff}, {0x1000, 0x1fff}, {0x2000, 0x2fff}, {0x5000, 0x6000}, {0x5800, 0x5900}});
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0], (Range{0x1000, 0x3fff}));
  EXPECT_EQ(n[1], (Range{0x5000, 0x6000}));
}

TEST(RangeList, ComplementCoversTheSpaceExactly) {
  EXPECT_EQ(complement({}), (std::vector<Range>{Range::all()}));
  EXPECT_EQ(complement({Range::all()}), (std::vector<Range>{}));
  EXPECT_EQ(complement({{0, 0xfff}}), (std::vector<Range>{{0x1000, kMaxIova}}));
  EXPECT_EQ(complement({{0x1000, kMaxIova}}), (std::vector<Range>{{0, 0xfff}}));
  EXPECT_EQ(complement({{0xfee00000, 0xfeefffff}, {0, 0xfff}}),
            (std::vector<Range>{{0x1000, 0xfedfffff}, {0xfef00000, kMaxIova}}));
}

// Brute force over a small universe: the complement and the ranges partition it.
TEST(RangeList, ComplementAgreesWithBruteForceOnSmallSets) {
  std::mt19937_64 rng(42);
  for (int iter = 0; iter < 500; ++iter) {
    std::vector<Range> rs;
    for (int i = 0, n = rng() % 5; i < n; ++i) {
      u64 s = rng() % 64, l = s + rng() % 8;
      rs.push_back({s, l});
    }
    auto c = complement(rs);
    for (u64 x = 0; x < 80; ++x) {
      bool in_rs = false, in_c = false;
      for (auto& r : rs) in_rs |= r.contains(x);
      for (auto& r : c) in_c |= r.contains(x);
      ASSERT_NE(in_rs, in_c) << "x=" << x;
    }
  }
}

TEST(Errno, NamesRoundTrip) {
  for (int e : {EINVAL, ENOENT, EEXIST, EBUSY, EPERM, ENOSPC, EOVERFLOW, EADDRINUSE, ENOMEM}) {
    EXPECT_EQ(errno_from_name(errno_name(e)), e) << errno_name(e);
  }
  EXPECT_STREQ(errno_name(EADDRINUSE), "EADDRINUSE");
  EXPECT_EQ(errno_from_name("ENOTANERRNO"), 0);
  EXPECT_EQ(to_string(Error{EINVAL, "bad"}), "EINVAL: bad");
}

TEST(Result, CarriesValueOrError) {
  Result<u64> ok = u64{7};
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 7u);
  Result<u64> bad = Error{ENOENT, "x"};
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), ENOENT);
  Status s = Error{EBUSY, "y"};
  EXPECT_EQ(s.code(), EBUSY);
  EXPECT_TRUE(ok_status().ok());
}

TEST(Arith, RangeLastDetectsOverflowExactly) {
  EXPECT_FALSE(arith::range_last<u64>(0, kMaxIova).overflow);
  EXPECT_FALSE(arith::range_last<u64>(1, kMaxIova).overflow);  // 1 + 2^64-2 = 2^64-1
  EXPECT_TRUE(arith::range_last<u64>(2, kMaxIova).overflow);
  EXPECT_EQ(arith::range_last<u64>(0x1000, 0x1000).last, 0x1fffu);
}

TEST(Arith, AutoAlignmentFollowsSpec) {
  const u64 cap = kMaxAutoAlignment;
  EXPECT_EQ(arith::auto_alignment<u64>(0x3000, 0, cap), 0x4000u);          // round up to pow2
  EXPECT_EQ(arith::auto_alignment<u64>(0x3000, 0x7f0000001000, cap), 0x1000u);  // lowest set bit
  EXPECT_EQ(arith::auto_alignment<u64>(u64{1} << 40, 0, cap), cap);        // capped at 2 MiB
  EXPECT_EQ(arith::auto_alignment<u64>(1, 0, cap), 1u);
  EXPECT_EQ(arith::auto_alignment<u64>(0x2000, 0x3, cap), 1u);
}

TEST(Arith, HoleCandidateKeepsPageOffsetAndRejectsWrap) {
  auto c = arith::hole_candidate<u64>(0x1001, 0xffff, 0x1000, 0x10, 0x1000);
  EXPECT_EQ(c.iova, 0x2010u);
  EXPECT_TRUE(c.fits);
  auto w = arith::hole_candidate<u64>(kMaxIova - 0x1000, kMaxIova, 0x200000, 0, 0x1000);
  EXPECT_FALSE(w.fits) << "align_up wraps past 2^64";
  auto e = arith::hole_candidate<u64>(0x1000, 0x1fff, 0x1000, 0, 0x1001);
  EXPECT_FALSE(e.fits) << "does not fit in the hole";
}

}  // namespace
}  // namespace ioas
