// x86-64 and arm-lpae tables: the same behaviours, one TEST_P per rule (the
// random maps and unmaps against the leaf rule are radix_random_test.cpp).
#include <gtest/gtest.h>

#include <cstring>

#include "heap_hook.hpp"
#include "ioas/core/text.hpp"
#include "radix_fixture.hpp"
#include "test_util.hpp"
#include "walker.hpp"

namespace ioas::hw {
namespace {

using testing::Fixture;
using testing::leaves;
using testing::radix_config;

// drivers/iommu/io-pgtable-arm-selftests.c, for our sizes: map each size at
// a distinct 1G-apart iova, refuse the overlap, translate iova+42, split on a
// partial unmap (<= v6.12), unmap returns the size, remap, top of the IAS.
TEST_P(Radix, KernelSelftestPattern) {
  Fixture f = make();
  PageTable& pt = *f.pt;
  for (u64 a : {u64{42}, k1G + 42, 2 * k1G + 42}) EXPECT_FALSE(pt.translate(a));
  const u64 sizes[] = {k4K, k2M, k1G};
  for (int i = 0; i < 3; ++i) {
    const u64 iova = i * k1G;
    ASSERT_TRUE(pt.map({iova, iova, sizes[i], Prot::kReadWrite}).ok()) << i;
    EXPECT_EQ(pt.map({iova, iova + sizes[i], sizes[i], Prot::kRead}).code(), EEXIST) << i;
    auto t = pt.translate(iova + 42);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->pa, iova + 42);
  }
  // Partial unmap: one page out of the 2M leaf at 1G.
  auto u = pt.unmap(k1G + k4K, k4K);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(*u, k4K);
  EXPECT_FALSE(pt.translate(k1G + k4K + 42));
  ASSERT_TRUE(pt.map({k1G + k4K, k4K, k4K, Prot::kRead}).ok());
  EXPECT_EQ(pt.translate(k1G + k4K + 42)->pa, k4K + 42);
  EXPECT_EQ(pt.translate(k1G + 2 * k4K + 42)->pa, k1G + 2 * k4K + 42);
  for (int i = 0; i < 3; ++i) {
    const u64 iova = i * k1G;
    auto r = pt.unmap(iova, sizes[i]);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, sizes[i]);
    EXPECT_FALSE(pt.translate(iova + 42));
    ASSERT_TRUE(pt.map({iova, iova, sizes[i], Prot::kReadWrite}).ok());
    EXPECT_EQ(pt.translate(iova + 42)->pa, iova + 42);
  }
  // The largest page at the very top of the 48-bit input range.
  const u64 top = (u64{1} << 48) - k1G;
  ASSERT_TRUE(pt.map({top, k1G, k1G, Prot::kReadWrite}).ok());
  EXPECT_EQ(pt.translate(top + 42)->pa, k1G + 42);
  EXPECT_EQ(*pt.unmap(top, k1G), k1G);
  pt.verify();
}

struct LeafRunOf {
  u64 size;
  u64 count;
};
std::vector<LeafRunOf> runs(const PageTable& pt) {
  std::vector<LeafRunOf> out;
  for (const Leaf& l : leaves(pt)) {
    if (!out.empty() && out.back().size == l.size)
      ++out.back().count;
    else
      out.push_back({l.size, 1});
  }
  return out;
}
bool operator==(const LeafRunOf& a, const LeafRunOf& b) { return a.size == b.size && a.count == b.count; }

// generic_pt's test_mixed: VA = PA = 0x3fe400000 .. 0x4c0600000.
TEST_P(Radix, MapChoosesTheLargestSizeThatDividesAndFits) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({0x3fe400000, 0x3fe400000, 0x4c0600000 - 0x3fe400000, Prot::kReadWrite}).ok());
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k2M, 14}, {k1G, 3}, {k2M, 3}}));
  EXPECT_EQ(f.pt->stats().leaf_writes, 20u);
}

// test_pgsize_boundary: VA and PA differently offset within 2M: all 4K.
TEST_P(Radix, MapUsesSmallPagesWhenIovaAndPaDisagreeModuloTheLargeSize) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({0xfef80000, 0x208b95d000, 0x20000, Prot::kReadWrite}).ok());
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k4K, 32}}));
}

// 1G + 2M at VA 0x200000, PA 0x80200000: the 1G boundary is reached with
// less than 1G left, so 513 x 2M.
TEST_P(Radix, MapStaysSmallWhenTheLargerSizeNoLongerFits) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({0x200000, 0x80200000, k1G + k2M, Prot::kReadWrite}).ok());
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k2M, 513}}));
}

// 4K short of a 2M boundary with 4K + 2M to map: after one 4K leaf exactly
// one whole 2M page is left, and the rule takes it (not 513 x 4K).
TEST_P(Radix, MapTakesTheLargerSizeWhenExactlyOnePageOfItIsLeftAfterTheBoundary) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k2M - k4K, 3 * k2M - k4K, k4K + k2M, Prot::kReadWrite}).ok());
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k4K, 1}, {k2M, 1}}));
  // One 4K page less after the boundary: the 2M page no longer fits.
  Fixture g = make();
  ASSERT_TRUE(g.pt->map({k2M - k4K, 3 * k2M - k4K, k2M, Prot::kReadWrite}).ok());
  EXPECT_EQ(runs(*g.pt), (std::vector<LeafRunOf>{{k4K, 512}}));
}

TEST_P(Radix, MapRejectsWhatTheSmallestPageCannotAlign) {
  Fixture f = make(k2M | k1G);
  EXPECT_EQ(f.pt->map({0x1000, 0, k2M, Prot::kReadWrite}).code(), EINVAL);
  EXPECT_EQ(f.pt->map({0, 0x1000, k2M, Prot::kReadWrite}).code(), EINVAL);
  EXPECT_EQ(f.pt->map({0, 0, k2M + k4K, Prot::kReadWrite}).code(), EINVAL);
  EXPECT_EQ(f.pt->map({0, 0, 0, Prot::kReadWrite}).code(), EINVAL);
  EXPECT_EQ(f.pt->map({0, 0, k2M, Prot::kNone}).code(), EINVAL);
  EXPECT_EQ(f.pt->map({0, 0, k2M, Prot::kReadWrite, 0, k4K}).code(), EINVAL);  // not our size
  EXPECT_EQ(f.pt->map({u64{1} << 48, 0, k2M, Prot::kReadWrite}).code(), ERANGE);
  EXPECT_EQ(f.pt->unmap(0x1000, k2M).code(), EINVAL);
  EXPECT_EQ(f.pt->table_pages(), 1u);
}

TEST_P(Radix, OverlappingMapIsRefusedAndChangesNothing) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k1G + 5 * k2M + 3 * k4K, 0x5000, k4K, Prot::kRead}).ok());
  const auto before = f.pt->image();
  const u64 flushes = f.pt->iotlb().flushes();
  const u64 live = f.mem.live_pages();
  // The first leaf would cover the 4K leaf's table: refused before any write, no flush.
  EXPECT_EQ(f.pt->map({k1G, k1G, 4 * k1G, Prot::kReadWrite}).code(), EEXIST);
  EXPECT_EQ(f.pt->image(), before);
  EXPECT_EQ(f.pt->iotlb().flushes(), flushes);
  // Starts before, runs into it: a 1G leaf and tables written, then undone.
  EXPECT_EQ(f.pt->map({0, 0, 2 * k1G, Prot::kReadWrite}).code(), EEXIST);
  EXPECT_EQ(f.pt->map({k1G - k2M, 0, 7 * k2M, Prot::kReadWrite}).code(), EEXIST);
  EXPECT_EQ(f.pt->image(), before);
  EXPECT_EQ(f.mem.live_pages(), live);
  // Leaves were briefly present: each rollback is flushed, once.
  EXPECT_EQ(f.pt->iotlb().flushes(), flushes + 2);
  // Inside a large leaf.
  ASSERT_TRUE(f.pt->map({4 * k1G, 0, k1G, Prot::kRead}).ok());
  const auto before2 = f.pt->image();
  EXPECT_EQ(f.pt->map({4 * k1G + k2M, 0, k4K, Prot::kRead}).code(), EEXIST);
  EXPECT_EQ(f.pt->image(), before2);
}

// The leaves of a run are written a cache line (8 entries) at a time and the
// rest one by one: every length from 1 to 19, starting at a line's first
// slot, inside a line and near a table's end (the run then goes on in the
// next table), maps each page to its own pa and nothing after it.
TEST_P(Radix, EveryLeafOfARunOfAnyLengthMapsItsOwnPage) {
  Fixture f = make();
  const u64 base = 3 * k1G, pa = 0x40000000;
  for (u64 slot : {u64{0}, u64{5}, u64{503}}) {
    for (u64 n = 1; n <= 19; ++n) {
      const u64 iova = base + slot * k4K;
      ASSERT_TRUE(f.pt->map({iova, pa, n * k4K, Prot::kReadWrite}).ok()) << slot << " " << n;
      for (u64 i = 0; i < n; ++i) {
        auto t = f.pt->translate(iova + i * k4K + 42);
        ASSERT_TRUE(t) << slot << " " << n << " " << i;
        EXPECT_EQ(t->pa, pa + i * k4K + 42) << slot << " " << n << " " << i;
      }
      EXPECT_FALSE(f.pt->translate(iova + n * k4K)) << slot << " " << n;
      ASSERT_EQ(f.pt->unmap(iova, n * k4K).value(), n * k4K);
    }
  }
}

// A run whose scan finds a present 4K leaf in the middle of a cache line:
// refused, and every entry written before it is undone.
TEST_P(Radix, ARunThatMeetsAPresentLeafInsideALineChangesNothing) {
  Fixture f = make();
  const u64 base = 3 * k1G;
  ASSERT_TRUE(f.pt->map({base + 11 * k4K, 0x9000, k4K, Prot::kRead}).ok());
  const auto before = f.pt->image();
  EXPECT_EQ(f.pt->map({base, 0x40000000, 20 * k4K, Prot::kReadWrite}).code(), EEXIST);
  EXPECT_EQ(f.pt->image(), before);
  EXPECT_FALSE(f.pt->translate(base + 10 * k4K));
  EXPECT_EQ(f.pt->translate(base + 11 * k4K)->pa, 0x9000u);
}

TEST_P(Radix, LargeLeafReplacesAnEmptyTableAndFreesIt) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k2M, 0, k4K, Prot::kRead}).ok());
  ASSERT_EQ(*f.pt->unmap(k2M, k4K), k4K);
  const u64 pages = f.pt->table_pages();  // the emptied level-0 table stays
  const u64 flushes = f.pt->iotlb().flushes();
  ASSERT_TRUE(f.pt->map({k2M, k2M, k2M, Prot::kRead}).ok());
  EXPECT_EQ(f.pt->table_pages(), pages - 1);
  EXPECT_EQ(f.mem.live_pages(), pages - 1);
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k2M, 1}}));
  // The unlinked table's span is flushed before its page is freed.
  EXPECT_EQ(f.pt->iotlb().flushes(), flushes + 1);
  EXPECT_EQ(f.pt->iotlb().last_flush(), (Range{k2M, 2 * k2M - 1}));
}

// The empty table sits in the middle of a run of large leaves: the leaves
// before it, in its place and after it all land where they belong.
TEST_P(Radix, LargeLeavesReplaceAnEmptyTableInTheMiddleOfARun) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({2 * k2M, 0, k4K, Prot::kRead}).ok());
  ASSERT_EQ(*f.pt->unmap(2 * k2M, k4K), k4K);
  const u64 pages = f.pt->table_pages();
  const u64 flushes = f.pt->iotlb().flushes();
  ASSERT_TRUE(f.pt->map({k2M, k1G + k2M, 4 * k2M, Prot::kRead}).ok());
  EXPECT_EQ(f.pt->table_pages(), pages - 1);
  // One flush, over the whole run (the unlinked table's span inside it).
  EXPECT_EQ(f.pt->iotlb().flushes(), flushes + 1);
  EXPECT_EQ(f.pt->iotlb().last_flush(), (Range{k2M, 5 * k2M - 1}));
  const std::vector<Leaf> got = leaves(*f.pt);
  ASSERT_EQ(got.size(), 4u);
  for (u64 i = 0; i < 4; ++i) {
    EXPECT_EQ(got[i].iova, (i + 1) * k2M) << "leaf " << i;
    EXPECT_EQ(got[i].pa, k1G + (i + 1) * k2M) << "leaf " << i;
    EXPECT_EQ(got[i].size, k2M) << "leaf " << i;
  }
  EXPECT_EQ(f.pt->stats().leaf_writes, 1u + 4u);
  f.pt->verify();
}

// The empty table is the run's last slot: the flush still reaches through
// its span, whose page is freed after it.
TEST_P(Radix, TheFlushCoversAnUnlinkedTableAtTheEndOfARun) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({2 * k2M, 0, k4K, Prot::kRead}).ok());
  ASSERT_EQ(*f.pt->unmap(2 * k2M, k4K), k4K);
  const u64 flushes = f.pt->iotlb().flushes();
  ASSERT_TRUE(f.pt->map({k2M, k1G + k2M, 2 * k2M, Prot::kRead}).ok());
  EXPECT_EQ(f.pt->iotlb().flushes(), flushes + 1);
  EXPECT_EQ(f.pt->iotlb().last_flush(), (Range{k2M, 3 * k2M - 1}));
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k2M, 2}}));
}

// Small maps and unmaps start in the level-0 table the previous one walked
// to. Every way that table can leave the tree (an unmap of its whole span, a
// large leaf over it once empty, a merge, the rollback of the map that
// made it) is followed by a 4K map and unmap in its span: they must land in
// a table of the tree, as on a table that never held the old one.
TEST_P(Radix, SmallMapsAfterTheirLastLevel0TableLeftTheTreeLandInTheTree) {
  const u64 blk = 3 * k2M;  // the span of one level-0 table
  auto check = [&](Fixture& f, const char* how) {
    SCOPED_TRACE(how);
    ASSERT_TRUE(f.pt->map({blk + 5 * k4K, 0x77000, k4K, Prot::kRead}).ok());
    ASSERT_TRUE(f.pt->translate(blk + 5 * k4K).has_value());
    EXPECT_EQ(f.pt->translate(blk + 5 * k4K)->pa, 0x77000u);
    ASSERT_TRUE(f.pt->map({blk + 6 * k4K, 0x78000, k4K, Prot::kRead}).ok());
    EXPECT_EQ(*f.pt->unmap(blk + 6 * k4K, k4K), k4K);
    EXPECT_FALSE(f.pt->translate(blk + 6 * k4K).has_value());
    const std::vector<Leaf> got = leaves(*f.pt, Range{blk, blk + k2M - 1});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].iova, blk + 5 * k4K);
    f.pt->verify();
    // Two tables below the root lead to the level-0 one.
    EXPECT_EQ(f.pt->table_pages(), 4u);
    EXPECT_EQ(f.mem.live_pages(), 4u);
  };
  {
    Fixture f = make();
    ASSERT_TRUE(f.pt->map({blk + k4K, 0x1000, k4K, Prot::kRead}).ok());
    ASSERT_EQ(*f.pt->unmap(blk, k2M), k4K);  // unlinks and frees the table
    check(f, "unmap of the table's whole span");
  }
  {
    Fixture f = make();
    ASSERT_TRUE(f.pt->map({blk + k4K, 0x1000, k4K, Prot::kRead}).ok());
    ASSERT_EQ(*f.pt->unmap(blk + k4K, k4K), k4K);
    ASSERT_TRUE(f.pt->map({blk, k2M, k2M, Prot::kRead}).ok());  // replaces the empty table
    ASSERT_EQ(*f.pt->unmap(blk, k2M), k2M);
    check(f, "a large leaf over the emptied table");
  }
  {
    Fixture f = make(k4K | k2M);
    ASSERT_TRUE(f.pt->map({blk, k2M, k2M, Prot::kRead, 0, k4K}).ok());  // 512 4K leaves
    f.pt->merge_blocks(Range{blk, blk + k2M - 1}, k2M);
    ASSERT_EQ(leaves(*f.pt).size(), 1u);
    ASSERT_EQ(*f.pt->unmap(blk, k2M), k2M);
    check(f, "a merge");
  }
  {
    Fixture f = make();
    ASSERT_TRUE(f.pt->map({blk + k2M, 0x1000, k4K, Prot::kRead}).ok());
    // Its first leaf goes into a new level-0 table, its second meets the
    // leaf above: undone, that table freed.
    ASSERT_EQ(f.pt->map({blk + k2M - k4K, 0x2000, 2 * k4K, Prot::kRead}).code(), EEXIST);
    ASSERT_EQ(*f.pt->unmap(blk + k2M, k4K), k4K);
    ASSERT_EQ(*f.pt->unmap(blk + k2M, k2M), 0u);  // the table above goes too
    check(f, "the rollback of the map that made it");
  }
}

// A 4K map or unmap in the level-0 table the previous one walked to starts
// there: it writes what a run of the same leaves from the root writes,
// refuses a present leaf as the walk does, and flushes as often.
TEST_P(Radix, A4KMapOrUnmapNextToThePreviousOneActsAsAWalkFromTheRoot) {
  const u64 blk = 3 * k2M;
  for (bool preset : {true, false}) {
    for (Prot prot : {Prot::kRead, Prot::kWrite, Prot::kReadWrite}) {
      SCOPED_TRACE(std::string(preset ? "preset A, " : "") + to_string(prot));
      Fixture run = make(k4K | k2M | k1G, preset), steps = make(k4K | k2M | k1G, preset);
      ASSERT_TRUE(run.pt->map({blk + 7 * k4K, 0x40000, 3 * k4K, prot}).ok());
      for (u64 i = 0; i < 3; ++i) ASSERT_TRUE(steps.pt->map({blk + (7 + i) * k4K, 0x40000 + i * k4K, k4K, prot}).ok());
      EXPECT_EQ(steps.pt->image(), run.pt->image());
      EXPECT_EQ(steps.pt->stats().leaf_writes, run.pt->stats().leaf_writes);
      EXPECT_EQ(steps.pt->iotlb().flushes(), 3u);
      // Unmap: the bytes it held, then 0 for the hole, which flushes nothing.
      EXPECT_EQ(*steps.pt->unmap(blk + 8 * k4K, k4K), k4K);
      EXPECT_EQ(steps.pt->iotlb().last_flush(), (Range{blk + 8 * k4K, blk + 9 * k4K - 1}));
      EXPECT_EQ(*steps.pt->unmap(blk + 8 * k4K, k4K), 0u);
      EXPECT_EQ(steps.pt->iotlb().flushes(), 4u);
      EXPECT_FALSE(steps.pt->translate(blk + 8 * k4K).has_value());
      ASSERT_TRUE(steps.pt->map({blk + 8 * k4K, 0x41000, k4K, prot}).ok());
      EXPECT_EQ(steps.pt->image(), run.pt->image());
      // A present leaf: EEXIST naming it, nothing written, no flush.
      const auto before = steps.pt->image();
      const Status st = steps.pt->map({blk + 9 * k4K, 0x90000, k4K, prot});
      EXPECT_EQ(st.code(), EEXIST);
      EXPECT_NE(st.error().message.find(hex(blk + 9 * k4K) + " is already mapped"), std::string::npos) << st.error().message;
      EXPECT_EQ(steps.pt->image(), before);
      EXPECT_EQ(steps.pt->iotlb().flushes(), 5u);
      steps.pt->verify();
    }
  }
}

// With the caller's gather, a 4K map or unmap in the level-0 table the
// previous one walked to is decided beside the general path: it must refuse
// what that path refuses (each argument check, a present leaf) with the
// same error, and otherwise write, count and flush as it does. One table
// takes every operation with a gather of its own (synced after each), a
// twin the same ones without; the aperture ends inside the cached table.
TEST_P(Radix, A4KMapOrUnmapWithTheCallersGatherDecidesAsWithout) {
  const u64 blk = 3 * k2M;
  TableConfig cfg = testing::radix_config(GetParam(), k4K | k2M | k1G);
  cfg.aperture = Range{0, blk + 10 * k4K - 1};
  Fixture gathered(cfg), direct(cfg);
  struct Op {
    const char* what;
    bool map;
    MapArgs a;  // an unmap's iova and len
  };
  const std::vector<Op> ops = {
      {"a map that makes the level-0 table", true, {blk + k4K, 0x1000, k4K, Prot::kRead}},
      {"a map beside it", true, {blk + 2 * k4K, 0x2000, k4K, Prot::kReadWrite}},
      {"no permission", true, {blk + 3 * k4K, 0x3000, k4K, Prot::kNone}},
      {"page sizes without 4K", true, {blk + 3 * k4K, 0x3000, k4K, Prot::kRead, 0, k2M}},
      {"page sizes beyond the table's", true, {blk + 3 * k4K, 0x3000, k4K, Prot::kRead, 0, k4K | (k4K << 1)}},
      {"a physical address not 4K aligned", true, {blk + 3 * k4K, 0x3800, k4K, Prot::kRead}},
      {"past the aperture", true, {blk + 10 * k4K, 0x3000, k4K, Prot::kRead}},
      {"a physical address past the output size", true, {blk + 3 * k4K, u64{1} << 60, k4K, Prot::kRead}},
      {"a physical address that wraps", true, {blk + 3 * k4K, ~u64{0} & ~(k4K - 1), k4K, Prot::kRead}},
      {"a present leaf", true, {blk + 2 * k4K, 0x5000, k4K, Prot::kRead}},
      {"a map after the refusals", true, {blk + 3 * k4K, 0x3000, k4K, Prot::kWrite}},
      {"an unmap of a leaf", false, {blk + 2 * k4K, 0, k4K}},
      {"an unmap of a hole", false, {blk + 2 * k4K, 0, k4K}},
      {"an unmap not 4K aligned", false, {blk + 3 * k4K + 8, 0, k4K}},
      {"an unmap past the input size", false, {u64{1} << 60, 0, k4K}},
      {"an unmap of the first leaf", false, {blk + k4K, 0, k4K}},
      {"a map into the emptied table", true, {blk + 9 * k4K, 0x9000, k4K, Prot::kRead}},
  };
  for (const Op& op : ops) {
    SCOPED_TRACE(op.what);
    auto outcome = [&](Fixture& f, IotlbGather* g) -> std::pair<int, std::string> {
      if (op.map) {
        const Status st = f.pt->map(op.a, g);
        return {st.ok() ? 0 : st.code(), st.ok() ? "" : st.error().message};
      }
      const Result<u64> r = f.pt->unmap(op.a.iova, op.a.len, g);
      return {r.ok() ? 0 : r.code(), r.ok() ? hex(*r) : r.error().message};
    };
    std::pair<int, std::string> with;
    {
      IotlbGather g(gathered.pt->iotlb(), gathered.mem);
      with = outcome(gathered, &g);
    }
    EXPECT_EQ(with, outcome(direct, nullptr));
    EXPECT_EQ(gathered.pt->image(), direct.pt->image());
    EXPECT_EQ(gathered.pt->stats().leaf_writes, direct.pt->stats().leaf_writes);
    EXPECT_EQ(gathered.pt->iotlb().flushes(), direct.pt->iotlb().flushes());
    EXPECT_EQ(gathered.pt->iotlb().last_flush(), direct.pt->iotlb().last_flush());
    EXPECT_EQ(gathered.mem.live_pages(), direct.mem.live_pages());
    gathered.pt->verify();
  }
}

TEST_P(Radix, UnmapOfPartOfALargeLeafSplitsIt) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k1G, 3 * k1G, k1G, Prot::kReadWrite}).ok());
  auto r = f.pt->unmap(k1G + 7 * k2M + 5 * k4K, 2 * k4K);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2 * k4K);
  // 511 x 2M around one 2M region made of 510 x 4K.
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k2M, 7}, {k4K, 510}, {k2M, 504}}));
  EXPECT_EQ(f.pt->translate(k1G + 7 * k2M + 4 * k4K + 1)->pa, 3 * k1G + 7 * k2M + 4 * k4K + 1);
  EXPECT_FALSE(f.pt->translate(k1G + 7 * k2M + 6 * k4K));
  EXPECT_EQ(f.pt->translate(k1G + 100 * k2M)->pa, 3 * k1G + 100 * k2M);
  f.pt->verify();
}

TEST_P(Radix, UnmapSplitsToTheNextSizeTheTableUses) {
  Fixture f = make(k4K | k1G);  // no 2M: a 1G leaf splits straight to 4K
  ASSERT_TRUE(f.pt->map({k1G, k1G, k1G, Prot::kRead}).ok());
  ASSERT_EQ(*f.pt->unmap(k1G, k4K), k4K);
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k4K, 512 * 512 - 1}}));
  f.pt->verify();
}

TEST_P(Radix, UnmapReturnsMappedBytesAndSkipsHoles) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k2M, 0, 3 * k4K, Prot::kRead}).ok());
  ASSERT_TRUE(f.pt->map({k1G, k1G, k1G, Prot::kRead}).ok());
  ASSERT_TRUE(f.pt->map({5 * k1G, 0, k2M, Prot::kRead}).ok());
  EXPECT_EQ(*f.pt->unmap(0, 8 * k1G), 3 * k4K + k1G + k2M);
  EXPECT_TRUE(leaves(*f.pt).empty());
  EXPECT_EQ(*f.pt->unmap(0, 8 * k1G), 0u);
}

// A translate beside the table's writer reads the object's first cache
// line (its vtable pointer and configuration): maps and unmaps, which
// count leaf writes and flushes, must not write there, or every one of
// them costs the reader a cache miss on another CPU.
TEST_P(Radix, MapAndUnmapLeaveTheLineATranslateReadsUnwritten) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k2M, 0, k4K, Prot::kRead}).ok());  // the tables below stay
  const auto* line = static_cast<const unsigned char*>(dynamic_cast<const void*>(f.pt.get()));
  unsigned char before[64];
  std::memcpy(before, line, sizeof before);
  const u64 flushes = f.pt->iotlb().flushes(), writes = f.pt->stats().leaf_writes;
  for (u64 i = 1; i <= 8; ++i) {
    ASSERT_TRUE(f.pt->map({k2M + i * k4K, i * k4K, k4K, Prot::kReadWrite}).ok());
    ASSERT_EQ(*f.pt->unmap(k2M + i * k4K, k4K), k4K);
  }
  ASSERT_GT(f.pt->iotlb().flushes(), flushes);  // the counters did move
  ASSERT_GT(f.pt->stats().leaf_writes, writes);
  EXPECT_EQ(std::memcmp(before, line, sizeof before), 0);
}

// translate's walk finds a table page by arithmetic in the first region of
// heap pages and through the memory's lookup elsewhere: over a memory
// whose region 0 holds only the top table (every lower table in later
// regions), over an arena, and past the pages handed out when an earlier
// translate looked, it answers as over the default memory.
TEST_P(Radix, TranslateAnswersAlikeWhereverTheTablePagesLie) {
  const TableConfig cfg = testing::radix_config(GetParam());
  HeapPageMemory heap, one_page_regions(0x4000'0000, ~u64{0}, 1);
  std::vector<unsigned char> buf(64 * kGranule);
  ArenaPageMemory arena(buf.data(), 0x2000'0000, buf.size());
  std::vector<std::unique_ptr<PageTable>> tables;
  for (PageMemory* m : std::initializer_list<PageMemory*>{&heap, &one_page_regions, &arena}) {
    auto t = make_page_table(cfg, *m);
    ASSERT_TRUE(t.ok()) << t.error().message;
    tables.push_back(std::move(t).value());
  }
  const std::vector<MapArgs> maps = {{k1G + 5 * k4K, 0x8000'0000, 3 * k4K, Prot::kReadWrite},
                                     {2 * k1G, 4 * k1G, k1G + k2M, Prot::kRead},
                                     {600 * k1G + k2M, 0x7000'0000, k4K, Prot::kRead}};
  const std::vector<u64> probes = {0,           k1G + 5 * k4K + 9, k1G + 7 * k4K + 4095, k1G + 8 * k4K,
                                   2 * k1G + 7, 3 * k1G + k2M - 1,  3 * k1G + k2M,       600 * k1G + k2M + 1,
                                   k4K * 513};
  for (const MapArgs& a : maps) {
    for (auto& t : tables) ASSERT_TRUE(t->map(a).ok());
    for (u64 iova : probes) {
      const auto want = tables[0]->translate(iova);
      for (std::size_t k = 1; k < tables.size(); ++k)
        EXPECT_EQ(tables[k]->translate(iova), want) << "table " << k << " at " << std::hex << iova;
    }
  }
  EXPECT_GE(one_page_regions.regions(), 3u);
  ASSERT_TRUE(tables[0]->translate(k1G + 6 * k4K).has_value());
  EXPECT_EQ(tables[0]->translate(k1G + 6 * k4K)->pa, 0x8000'0000 + k4K);
}

// The input size is 48 bits: an unmap that starts above it finds nothing,
// one that runs past it stops at its top.
TEST_P(Radix, UnmapPastTheInputSizeStopsAtItsTop) {
  Fixture f = make();
  const u64 top = u64{1} << 48;
  ASSERT_TRUE(f.pt->map({top - k2M, k1G, k2M, Prot::kRead}).ok());
  EXPECT_EQ(*f.pt->unmap(top, k1G), 0u);
  EXPECT_EQ(*f.pt->unmap(top + k1G, k2M), 0u);
  EXPECT_EQ(leaves(*f.pt).size(), 1u);
  EXPECT_EQ(*f.pt->unmap(top - k2M, k1G), k2M);
  EXPECT_TRUE(leaves(*f.pt).empty());
}

// image() holds every table page, each as its address and its 512 entries,
// the ones under the last slot of a table too.
TEST_P(Radix, ImageHoldsEveryTableUpToTheLastSlot) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({0, k1G, k4K, Prot::kRead}).ok());
  ASSERT_TRUE(f.pt->map({(u64{1} << 48) - k4K, k2M, k4K, Prot::kRead}).ok());
  const std::vector<u64> image = f.pt->image();
  EXPECT_EQ(f.pt->table_pages(), 7u);  // the root, then three tables down each end
  EXPECT_EQ(image.size(), f.pt->table_pages() * 513);
  ASSERT_TRUE(f.pt->map({(u64{1} << 48) - 2 * k4K, k2M, k4K, Prot::kRead}).ok());
  EXPECT_NE(f.pt->image(), image) << "a leaf under the last slots is not in the image";
}

TEST_P(Radix, UnmapAllFreesEveryTableButTheRoot) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({0x1000, 0x1000, 0x3000, Prot::kRead}).ok());
  ASSERT_TRUE(f.pt->map({0x7f0000000000, 0, k2M, Prot::kRead}).ok());
  EXPECT_GT(f.mem.live_pages(), 1u);
  ASSERT_TRUE(f.pt->unmap(0, u64{1} << 48).ok());
  EXPECT_EQ(f.pt->table_pages(), 1u);
  EXPECT_EQ(f.mem.live_pages(), 1u);
}

TEST_P(Radix, OneTerabyteAlignedMapWrites1024OneGigLeaves) {
  Fixture f = make();
  const u64 tib = u64{1} << 40;
  ASSERT_TRUE(f.pt->map({tib, 0, tib, Prot::kReadWrite}).ok());
  EXPECT_EQ(f.pt->stats().leaf_writes, 1024u);
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k1G, 1024}}));
  EXPECT_EQ(f.pt->iotlb().flushes(), 1u);
}

TEST_P(Radix, SplitBlocksMakesSmallestLeavesWithOneFlushAndMergeRestores) {
  Fixture f = make();
  const Range m{k1G, 2 * k1G + 2 * k2M - 1};
  ASSERT_TRUE(f.pt->map({m.start, 5 * k1G, m.length(), Prot::kReadWrite}).ok());
  Walker w(*f.pt);
  ASSERT_EQ(w.dma(DmaDir::kWrite, Range{2 * k1G + 5, 2 * k1G + 5}), DmaOutcome{});  // dirties one 2M leaf
  const auto before = leaves(*f.pt);
  const u64 flushes = f.pt->iotlb().flushes();
  ASSERT_TRUE(f.pt->split_blocks(m).ok());
  EXPECT_EQ(f.pt->iotlb().flushes(), flushes + 1);
  auto small = leaves(*f.pt);
  ASSERT_EQ(small.size(), 512u * 512 + 1024);
  u64 dirty = 0;
  for (const Leaf& l : small) {
    EXPECT_EQ(l.size, k4K);
    EXPECT_EQ(l.pa, 5 * k1G + (l.iova - m.start));
    dirty += l.dirty;
  }
  EXPECT_EQ(dirty, 512u);  // the dirty 2M leaf became 512 dirty pieces
  f.pt->verify();
  f.pt->merge_blocks(m, k4K | k2M | k1G);
  EXPECT_EQ(f.pt->iotlb().flushes(), flushes + 2);
  EXPECT_EQ(leaves(*f.pt), before);
  EXPECT_EQ(f.pt->table_pages(), f.mem.live_pages());  // the small tables went back
  f.pt->verify();
}

TEST_P(Radix, MergeStaysInsideItsRangeAndWithinTheGivenSizes) {
  Fixture f = make();
  // Two adjacent mappings of contiguous memory, mapped with 4K only.
  ASSERT_TRUE(f.pt->map({0, 0, k2M + k4K, Prot::kReadWrite, 0, k4K}).ok());
  ASSERT_TRUE(f.pt->map({k2M + k4K, k2M + k4K, k2M - k4K, Prot::kReadWrite, 0, k4K}).ok());
  // Merging the first mapping must not take a 2M block that crosses into the second.
  f.pt->merge_blocks(Range{0, k2M + k4K - 1}, k4K | k2M);
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k2M, 1}, {k4K, 512}}));
  // Read-only next to read-write never merges.
  Fixture g = make();
  ASSERT_TRUE(g.pt->map({0, 0, k4K, Prot::kRead}).ok());
  ASSERT_TRUE(g.pt->map({k4K, k4K, k2M - k4K, Prot::kReadWrite, 0, k4K}).ok());
  g.pt->merge_blocks(Range{0, k2M - 1}, k4K | k2M);
  EXPECT_EQ(runs(*g.pt), (std::vector<LeafRunOf>{{k4K, 512}}));
  // Merge with 4K only leaves 4K leaves.
  f.pt->merge_blocks(Range{k2M + k4K, 2 * k2M - 1}, k4K);
  EXPECT_EQ(runs(*f.pt), (std::vector<LeafRunOf>{{k2M, 1}, {k4K, 512}}));
}

TEST_P(Radix, ReadAndClearDirtyReportsWrittenLeavesAndCleansThem) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k1G, 0, k2M + 4 * k4K, Prot::kReadWrite}).ok());  // one 2M + 4 x 4K
  Walker w(*f.pt);
  ASSERT_EQ(w.dma(DmaDir::kWrite, Range{k1G + k2M + k4K + 8, k1G + k2M + k4K + 8}), DmaOutcome{});
  ASSERT_EQ(w.dma(DmaDir::kWrite, Range{k1G + 3 * k4K, k1G + 3 * k4K}), DmaOutcome{});
  const u64 flushes = f.pt->iotlb().flushes();
  {
    DirtyBitmap bm(k1G, k2M + 4 * k4K, k4K);
    EXPECT_EQ(f.pt->read_and_clear_dirty(Range{k1G, k1G + k2M + 4 * k4K - 1}, &bm, /*keep=*/true), 2u);
    EXPECT_EQ(bm.ranges(), (std::vector<Range>{{k1G, k1G + k2M - 1},
                                               {k1G + k2M + k4K, k1G + k2M + 2 * k4K - 1}}));
    EXPECT_EQ(f.pt->iotlb().flushes(), flushes);  // keep: nothing changed, nothing flushed
  }
  {
    // Reading part of the dirty 2M leaf reports that part and cleans the whole leaf.
    DirtyBitmap bm(k1G + 8 * k4K, 2 * k4K, k4K);
    EXPECT_EQ(f.pt->read_and_clear_dirty(Range{k1G + 8 * k4K, k1G + 10 * k4K - 1}, &bm, false), 1u);
    EXPECT_EQ(bm.count(), 2u);
    EXPECT_EQ(f.pt->iotlb().flushes(), flushes + 1);
  }
  DirtyBitmap bm(k1G, k2M + 4 * k4K, k4K);
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range{k1G, k1G + k2M + 4 * k4K - 1}, &bm, false), 1u);
  EXPECT_EQ(bm.ranges(), (std::vector<Range>{{k1G + k2M + k4K, k1G + k2M + 2 * k4K - 1}}));
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range::all(), nullptr, false), 0u);
  // Cleaning keeps the leaf writable: the next write dirties it again.
  EXPECT_EQ(f.pt->translate(k1G)->prot, Prot::kReadWrite);
  ASSERT_EQ(w.dma(DmaDir::kWrite, Range{k1G, k1G + 1}), DmaOutcome{});
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range::all(), nullptr, false), 1u);
}

TEST_P(Radix, OneFlushPerOperationAndOneForAGatherOfMany) {
  Fixture f = make();
  auto& tlb = f.pt->iotlb();
  ASSERT_TRUE(f.pt->map({k1G, 0, k1G + 3 * k2M + 5 * k4K, Prot::kReadWrite}).ok());
  EXPECT_EQ(tlb.flushes(), 1u);
  EXPECT_EQ(tlb.last_flush(), (Range{k1G, 2 * k1G + 3 * k2M + 5 * k4K - 1}));
  ASSERT_TRUE(f.pt->unmap(k1G, k1G + 3 * k2M + 5 * k4K).ok());
  EXPECT_EQ(tlb.flushes(), 2u);
  EXPECT_EQ(*f.pt->unmap(k1G, k1G), 0u);
  EXPECT_EQ(tlb.flushes(), 2u);  // nothing unmapped, nothing flushed
  {
    IotlbGather g(tlb, f.mem);
    for (u64 i = 0; i < 8; ++i) ASSERT_TRUE(f.pt->map({i * k1G, 0, k2M, Prot::kRead}, &g).ok());
    ASSERT_TRUE(f.pt->unmap(0, k2M, &g).ok());
    EXPECT_EQ(tlb.flushes(), 2u);
  }
  EXPECT_EQ(tlb.flushes(), 3u);
  EXPECT_EQ(tlb.last_flush(), (Range{0, 7 * k1G + k2M - 1}));
}

// Fails the Nth page allocation of an operation for N = 1, 2, ... until the
// operation succeeds; next to every failure the table is byte-for-byte as it
// was and no page leaked.
template <class Op>
void fail_every_allocation(Fixture& f, Op op, u64 expect_allocs_at_least) {
  const auto before = f.pt->image();
  const u64 live = f.mem.live_pages();
  u64 n = 1;
  for (;; ++n) {
    f.mem.fail_nth_alloc(n);
    const int code = op();
    f.mem.fail_nth_alloc(0);
    if (code == 0) break;
    ASSERT_EQ(code, ENOMEM) << "N=" << n;
    ASSERT_EQ(f.pt->image(), before) << "N=" << n;
    ASSERT_EQ(f.mem.live_pages(), live) << "N=" << n;
    f.pt->verify();
  }
  EXPECT_GE(n, expect_allocs_at_least + 1);
  f.pt->verify();
}

TEST_P(Radix, MapAllocationFailureAtEveryNLeavesTheTableUnchanged) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k1G - k4K, 0, k4K, Prot::kRead}).ok());
  // Crosses a 512G boundary: new level-2, level-1 and level-0 tables on both sides.
  const u64 iova = (u64{1} << 39) - 2 * k2M - 3 * k4K;
  fail_every_allocation(f, [&] { return f.pt->map({iova, iova, 4 * k2M + 6 * k4K, Prot::kReadWrite}).code(); }, 5);
  EXPECT_EQ(f.pt->translate(iova + 4 * k2M)->pa, iova + 4 * k2M);
}

TEST_P(Radix, UnmapSplitAllocationFailureAtEveryNLeavesTheTableUnchanged) {
  Fixture f = make(k4K | k1G);
  ASSERT_TRUE(f.pt->map({k1G, 0, 2 * k1G, Prot::kReadWrite}).ok());
  // Cuts both 1G leaves: each splits into 513 pages (512 tables of 4K leaves).
  fail_every_allocation(f, [&] { return f.pt->unmap(k1G + k1G / 2, k1G).code(); }, 2 * 513);
  EXPECT_FALSE(f.pt->translate(2 * k1G));
  EXPECT_EQ(f.pt->translate(k1G + k1G / 2 - 1)->pa, k1G / 2 - 1);
}

// An unmap whose ends split no leaf cannot fail: it records nothing to roll
// back and frees the unlinked tables through the gather, so it makes no heap
// allocation, here with every allocation refused.
TEST_P(Radix, UnmapThatSplitsNoLeafMakesNoHeapAllocation) {
  Fixture f = make();
  // Two 4K leaves, a 1G leaf, a 2M leaf and a 4K leaf, with their tables.
  const u64 iova = k1G - 2 * k4K;
  const u64 len = 2 * k4K + k1G + k2M + k4K;
  ASSERT_TRUE(f.pt->map({iova, iova, len, Prot::kReadWrite}).ok());
  ASSERT_TRUE(f.pt->map({4 * k1G, 4 * k1G, k2M + k4K, Prot::kRead}).ok());
  Result<u64> whole = make_error(EFAULT, "not run");
  Result<u64> leaf = make_error(EFAULT, "not run");
  u64 allocations = 0;
  {
    ioas::testing::HeapExhaustion refuse_all(1);
    whole = f.pt->unmap(iova, len);
    leaf = f.pt->unmap(4 * k1G + k2M, k4K);
    allocations = refuse_all.count();
  }
  EXPECT_EQ(allocations, 0u);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(*whole, len);
  ASSERT_TRUE(leaf.ok()) << leaf.error().message;
  EXPECT_EQ(*leaf, k4K);
  EXPECT_FALSE(f.pt->translate(iova));
  EXPECT_FALSE(f.pt->translate(k1G + k1G / 2));
  EXPECT_FALSE(f.pt->translate(4 * k1G + k2M));
  EXPECT_EQ(f.pt->translate(4 * k1G + k2M - 1)->pa, 4 * k1G + k2M - 1);
  f.pt->verify();
}

TEST_P(Radix, SplitBlocksAllocationFailureAtEveryNLeavesTheTableUnchanged) {
  Fixture f = make();
  ASSERT_TRUE(f.pt->map({k1G, 0, k1G + 3 * k2M, Prot::kReadWrite}).ok());
  fail_every_allocation(f, [&] { return f.pt->split_blocks(Range{k1G, 2 * k1G + 3 * k2M - 1}).code(); },
                        1 + 512 + 3);
  for (const Leaf& l : leaves(*f.pt)) EXPECT_EQ(l.size, k4K);
}

TEST_P(Radix, FactoryRejectsWhatTheFormatCannotDo) {
  HeapPageMemory mem;
  EXPECT_EQ(make_page_table(radix_config(GetParam(), k4K | (u64{1} << 16)), mem).code(), EINVAL);
  EXPECT_EQ(make_page_table(radix_config(GetParam(), 0), mem).code(), EINVAL);
  TableConfig c = radix_config(GetParam());
  c.aperture = Range{0, u64{1} << 48};
  EXPECT_EQ(make_page_table(c, mem).code(), EINVAL);
  mem.fail_nth_alloc(1);
  EXPECT_EQ(make_page_table(radix_config(GetParam()), mem).code(), ENOMEM);
  EXPECT_EQ(mem.live_pages(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Formats, Radix, ::testing::Values(Format::kX86_64, Format::kArmLpae),
                         testing::fmt_name);

}  // namespace
}  // namespace ioas::hw
