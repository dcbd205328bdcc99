// The software page table: leaves by the iommu_pgsize rule (its check
// against a literal leaf-by-leaf greedy walk is leaf_runs_random_test.cpp),
// translation, DMA faults and dirty bookkeeping.
#include <gtest/gtest.h>

#include "domain.hpp"
#include "formats.hpp"
#include "walker.hpp"

namespace ioas::impl {
namespace {

constexpr u64 kSizes = k4K | k2M | k1G;

TEST(LeafRuns, ImpossibleMappingHasNoLeaves) {
  EXPECT_TRUE(leaf_runs(Range{0x1000, 0x17ff}, 0x1000, k4K).empty());  // length not 4K multiple
  EXPECT_TRUE(leaf_runs(Range{0x1000, 0x1fff}, 0x1800, k4K).empty());  // pa offset differs
  EXPECT_FALSE(leaf_runs(Range{0x1000, 0x1fff}, 0x5000, k4K).empty());
}

TEST(LeafRuns, LargestPageThatDividesBothAddressesAndFits) {
  // 2M-aligned iova and pa, 4M+8K long: two 2M leaves then two 4K leaves.
  auto runs = leaf_runs(Range{k2M, k2M + 2 * k2M + 2 * k4K - 1}, 3 * k2M, kSizes);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].size, k2M);
  EXPECT_EQ(runs[0].iova, (Range{k2M, 3 * k2M - 1}));
  EXPECT_EQ(runs[1].size, k4K);
  // pa only 4K aligned: 4K leaves throughout.
  auto small = leaf_runs(Range{k2M, 3 * k2M - 1}, 3 * k2M + k4K, kSizes);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].size, k4K);
}

struct Table {
  hw::HeapPageMemory mem;
  std::unique_ptr<HwPageTable> pt;
  explicit Table(Format f = Format::kX86_64, u64 sizes = kSizes, Range ap = Range{0, (u64{1} << 48) - 1}) {
    auto t = HwPageTable::create(f, ap, sizes, mem);
    EXPECT_TRUE(t.ok());
    pt = std::move(t).value();
  }
  std::vector<LeafInfo> leaves(Range r = Range::all()) const {
    std::vector<LeafInfo> out;
    pt->leaves(r, [&](const LeafInfo& l) { out.push_back(l); });
    return out;
  }
  // Each leaf's size, in order.
  std::vector<u64> sizes(Range r = Range::all()) const {
    std::vector<u64> out;
    for (const auto& l : leaves(r)) out.push_back(l.iova.length());
    return out;
  }
};

TEST(HwPageTable, TranslatesMappedBytesAndFaultsElsewhere) {
  for (Format f : {Format::kX86_64, Format::kArmLpae}) {
    Table t(f);
    ASSERT_TRUE(t.pt->map(Range{0x10000, 0x1ffff}, 0x800000, 0x7f0000010000, Prot::kRead, kSizes).ok());
    EXPECT_EQ(t.pt->translate(0x10123), (Translation{0x800123, Prot::kRead}));
    EXPECT_EQ(t.pt->translate(0x20000), std::nullopt);
    EXPECT_EQ(t.pt->dma(DmaDir::kRead, Range{0x1f000, 0x20fff}), (DmaOutcome{true, 0x20000}));
    // A write to a read-only mapping faults at its first byte.
    EXPECT_EQ(t.pt->dma(DmaDir::kWrite, Range{0x10010, 0x10020}), (DmaOutcome{true, 0x10010}));
    EXPECT_EQ(t.pt->verify(), 1u);
    const auto l = t.leaves();
    ASSERT_EQ(l.size(), 16u);
    EXPECT_EQ(l[1], (LeafInfo{Range{0x11000, 0x11fff}, 0x801000, Prot::kRead, false, 0x7f0000011000}));
  }
}

// leaves_into lists what leaves() visits, in one call: on every format, over
// the whole space and over a window that starts and ends inside leaves; and
// IoPageTable's own leaves_into (a back end that does not override it) too.
TEST(HwPageTable, LeavesIntoListsWhatLeavesVisits) {
  struct ThroughLeaves final : IoPageTable {
    const IoPageTable& t;
    explicit ThroughLeaves(const IoPageTable& x) : t(x) {}
    Status map(Range, u64, u64, Prot, u64) override { return ok_status(); }
    void unmap(Range) override {}
    Status split(u64) override { return ok_status(); }
    void unsplit(u64) override {}
    Status relayout(u64) override { return ok_status(); }
    std::optional<Translation> translate(u64) const override { return std::nullopt; }
    DmaOutcome dma(DmaDir, Range) override { return {}; }
    std::vector<Range> read_dirty(Range, u64, bool) override { return {}; }
    void clear_dirty() override {}
    void leaves(Range r, const std::function<void(const LeafInfo&)>& f) const override { t.leaves(r, f); }
    void flush_iotlb() override {}
    u64 flushes() const override { return 0; }
    u64 table_pages() const override { return 0; }
    std::size_t mapping_count() const override { return 0; }
    void for_each_mapping(const std::function<void(const PtMapping&)>&) const override {}
    std::size_t verify() const override { return 0; }
  };
  for (Format f : {Format::kX86_64, Format::kArmLpae, Format::kTce, Format::kMock}) {
    const formats::FormatFacts& ff = formats::facts(f);
    Table t(f, ff.default_pgsizes, ff.default_aperture);
    const u64 pg = arith::lowest_bit(ff.default_pgsizes);
    const u64 base = arith::align_up(ff.default_aperture.start, u64{1} << 21).value + (u64{1} << 21);
    ASSERT_TRUE(t.pt->map(Range{base, base + 40 * pg - 1}, base, 0x7f0000000000, Prot::kReadWrite, ff.default_pgsizes).ok())
        << to_string(f);
    ASSERT_TRUE(t.pt->map(Range{base + 64 * pg, base + 70 * pg - 1}, base + 64 * pg, 0x7f0000100000, Prot::kRead,
                          ff.default_pgsizes)
                    .ok());
    EXPECT_FALSE(t.pt->dma(DmaDir::kWrite, Range{base + 3 * pg, base + 3 * pg}).faulted);
    for (const Range r : {Range::all(), Range{base + 2 * pg + 1, base + 66 * pg}}) {
      const std::vector<LeafInfo> want = t.leaves(r);
      ASSERT_FALSE(want.empty());
      std::vector<LeafInfo> got{LeafInfo{}};  // cleared first
      t.pt->leaves_into(r, got);
      EXPECT_EQ(got, want) << to_string(f) << " " << to_string(r);
      ThroughLeaves base_impl(*t.pt);
      got.assign(3, LeafInfo{});
      base_impl.leaves_into(r, got);
      EXPECT_EQ(got, want) << to_string(f) << " " << to_string(r);
    }
  }
}

// The listing reports the walker's verdict leaf by leaf: an entry changed
// behind the table's back (one leaf made read-only, then the table entry
// above a table page of leaves) shows in that leaf alone, then in every
// leaf below, as a fresh walk of each leaf says; once restored, nothing
// stale remains. The leaves straddle two table pages.
TEST(HwPageTable, ListingFollowsEachLeafsEntryNotItsNeighbours) {
  for (Format f : {Format::kX86_64, Format::kArmLpae}) {
    Table t(f);
    const u64 base = 3 * k2M - 8 * k4K;
    ASSERT_TRUE(t.pt->map(Range{base, base + 16 * k4K - 1}, 0x40000000, 0x7f0000000000, Prot::kReadWrite, k4K).ok());
    // The entry at `level` (0: the leaf's) on the walk to iova.
    auto entry = [&](u64 iova, unsigned level) {
      u64 table = f == Format::kX86_64 ? hw::x86::Fmt::addr(t.pt->table().root()) : hw::arm::Fmt::addr(t.pt->table().root());
      for (unsigned l = formats::kRadixTopLevel;; --l) {
        u64* e = &t.mem.page(table)[arith::pt_index(iova, l)];
        if (l == level) return e;
        table = f == Format::kX86_64 ? hw::x86::Fmt::addr(*e) : hw::arm::Fmt::addr(*e);
      }
    };
    const u64 leaf_no_write = f == Format::kX86_64 ? hw::x86::kRW : hw::arm::kDBM;  // clearing it: read-only
    const u64 table_bit = f == Format::kX86_64 ? hw::x86::kRW : hw::arm::kApTableNoWrite;
    // What the listing must say: each leaf's own walk.
    auto check = [&](const char* what, const std::vector<Prot>& want) {
      std::vector<LeafInfo> got;
      t.pt->leaves_into(Range::all(), got);
      ASSERT_EQ(got.size(), 16u) << what;
      EXPECT_EQ(got, t.leaves()) << what;
      hw::Walker w(const_cast<hw::PageTable&>(t.pt->table()));
      for (u64 i = 0; i < 16; ++i) {
        const u64 iova = base + i * k4K;
        EXPECT_EQ(got[i].iova, (Range{iova, iova + k4K - 1})) << what << " " << i;
        EXPECT_EQ(got[i].pa, 0x40000000 + i * k4K) << what << " " << i;
        EXPECT_EQ(got[i].uaddr, 0x7f0000000000 + i * k4K) << what << " " << i;
        EXPECT_EQ(got[i].prot, want[i]) << to_string(f) << " " << what << " leaf " << i;
        EXPECT_EQ(w.access(iova, true, false).fault == hw::Fault::kNone, want[i] == Prot::kReadWrite) << what << i;
      }
    };
    std::vector<Prot> want(16, Prot::kReadWrite);
    check("as mapped", want);
    // Leaf 5 (first table page) and leaf 10 (second) read-only, alone.
    for (u64 i : {5, 10}) {
      *entry(base + i * k4K, 0) ^= leaf_no_write;
      if (f == Format::kArmLpae) *entry(base + i * k4K, 0) |= hw::arm::kApRdonly;
      want[i] = Prot::kRead;
    }
    check("two leaves read-only", want);
    for (u64 i : {5, 10}) {
      *entry(base + i * k4K, 0) ^= leaf_no_write;
      want[i] = Prot::kReadWrite;
    }
    check("restored", want);
    // The second table page's entry forbids writes: its 8 leaves read.
    *entry(3 * k2M, 1) ^= table_bit;
    for (u64 i = 8; i < 16; ++i) want[i] = Prot::kRead;
    check("second table page read-only", want);
    *entry(3 * k2M, 1) ^= table_bit;
    for (u64 i = 8; i < 16; ++i) want[i] = Prot::kReadWrite;
    check("restored again", want);
  }
}

TEST(HwPageTable, PhysicalAddressBeyondTheFormatIsEinvalAndChangesNothing) {
  Table arm(Format::kArmLpae);
  const auto before = arm.pt->table().image();
  EXPECT_EQ(arm.pt->map(Range{0x10000, 0x1ffff}, u64{1} << 48, 0, Prot::kRead, kSizes).code(), EINVAL);
  EXPECT_EQ(arm.pt->table().image(), before);
  EXPECT_EQ(arm.pt->mapping_count(), 0u);
  Table x86(Format::kX86_64);
  EXPECT_TRUE(x86.pt->map(Range{0x10000, 0x1ffff}, u64{1} << 48, 0, Prot::kRead, kSizes).ok());
  EXPECT_EQ(x86.pt->map(Range{0x20000, 0x2ffff}, u64{1} << 52, 0, Prot::kRead, kSizes).code(), EINVAL);
}

TEST(HwPageTable, WriteDirtiesWholeLeavesAndReadCleansThem) {
  Table t;
  ASSERT_TRUE(t.pt->map(Range{0, k2M + k4K - 1}, k2M * 8, 0, Prot::kReadWrite, kSizes).ok());
  // One byte in the 2M leaf.
  EXPECT_FALSE(t.pt->dma(DmaDir::kWrite, Range{5, 5}).faulted);
  EXPECT_EQ(t.pt->read_dirty(Range{0, 2 * k4K - 1}, k4K, true), (std::vector<Range>{{0, 2 * k4K - 1}}));
  // Reading part of the leaf reports that part and cleans the whole leaf.
  EXPECT_EQ(t.pt->read_dirty(Range{k4K, 2 * k4K - 1}, k4K, false), (std::vector<Range>{{k4K, 2 * k4K - 1}}));
  EXPECT_TRUE(t.pt->read_dirty(Range{0, k2M + k4K - 1}, k4K, false).empty());
  EXPECT_EQ(t.pt->verify(), 1u);
}

// A cut inside a 1G leaf: the crossing leaf is split and each side merges
// back to the largest leaves its own start allows; the rest is untouched.
TEST(HwPageTable, SplitLaysOutEachSideByTheRuleAndUnsplitRestores) {
  Table t;
  const Range m{k1G, 3 * k1G - 1};
  ASSERT_TRUE(t.pt->map(m, 4 * k1G, 0, Prot::kReadWrite, kSizes).ok());
  EXPECT_FALSE(t.pt->dma(DmaDir::kWrite, Range{k1G, k1G}).faulted);
  t.pt->flush_iotlb();
  const auto before = t.pt->table().image();
  const u64 flushes = t.pt->flushes();
  const u64 cut = k1G + k2M + 3 * k4K - 1;
  ASSERT_TRUE(t.pt->split(cut).ok());
  t.pt->flush_iotlb();
  EXPECT_EQ(t.pt->flushes(), flushes + 1);  // one flush for the whole split
  EXPECT_EQ(t.pt->mapping_count(), 2u);
  EXPECT_EQ(t.pt->verify(), 2u);
  // Left: one 2M leaf, three 4K. Right: 4K up to 2M, 2M leaves up to 2G, the second 1G as it was.
  std::vector<u64> want{k2M, k4K, k4K, k4K};
  for (int i = 0; i < 509; ++i) want.push_back(k4K);
  for (int i = 0; i < 510; ++i) want.push_back(k2M);
  want.push_back(k1G);
  EXPECT_EQ(t.sizes(), want);
  // The dirty 1G leaf became dirty pieces.
  for (const auto& l : t.leaves(Range{k1G, 2 * k1G - 1})) EXPECT_TRUE(l.dirty) << to_string(l.iova);
  t.pt->unsplit(cut);
  t.pt->flush_iotlb();
  EXPECT_EQ(t.pt->mapping_count(), 1u);
  EXPECT_EQ(t.sizes(), (std::vector<u64>{k1G, k1G}));
  EXPECT_EQ(t.pt->verify(), 1u);
  (void)before;
}

TEST(HwPageTable, SplitAndRelayoutFailAtomicallyOnEnomem) {
  Table t;
  ASSERT_TRUE(t.pt->map(Range{k1G, 2 * k1G - 1}, k1G, 0, Prot::kReadWrite, kSizes).ok());
  t.pt->flush_iotlb();
  const auto before = t.pt->table().image();
  t.mem.fail_nth_alloc(1);
  EXPECT_EQ(t.pt->split(k1G + k4K - 1).code(), ENOMEM);
  t.mem.fail_nth_alloc(3);  // the 2M level is allocated; its first 4K table is not
  EXPECT_EQ(t.pt->relayout(k4K).code(), ENOMEM);
  t.mem.fail_nth_alloc(0);
  EXPECT_EQ(t.pt->table().image(), before);
  EXPECT_EQ(t.pt->mapping_count(), 1u);
  ASSERT_TRUE(t.pt->relayout(k4K).ok());
  EXPECT_EQ(t.leaves().size(), 262144u);
  ASSERT_TRUE(t.pt->relayout(kSizes).ok());
  EXPECT_EQ(t.sizes(), (std::vector<u64>{k1G}));
  EXPECT_EQ(t.pt->verify(), 1u);
}

TEST(HwPageTable, CloneOntoACopyOfTheMemoryIsIndependent) {
  Table t(Format::kTce, k4K, Range{0, 0x7fffffff});
  ASSERT_TRUE(t.pt->map(Range{0x10000, 0x11fff}, 0x50000, 0x7f0000000000, Prot::kReadWrite, k4K).ok());
  hw::HeapPageMemory copy(t.mem);
  auto c = t.pt->clone_onto(copy);
  c->unmap(Range{0x10000, 0x11fff});
  EXPECT_EQ(c->mapping_count(), 0u);
  EXPECT_EQ(t.pt->translate(0x11000), (Translation{0x51000, Prot::kReadWrite}));
  EXPECT_EQ(t.leaves()[1].uaddr, 0x7f0000001000u);  // tce: from its userspace view
  EXPECT_EQ(t.pt->verify(), 1u);
  EXPECT_EQ(c->verify(), 0u);
}

// The mapping list: the latest mapping waits beside the tree until the next
// one comes; every reader sees both as one list in IOVA order.
std::vector<Range> listed(const MappingList& l) {
  std::vector<Range> out;
  l.for_each([&](const PtMapping& m) { out.push_back(m.iova); });
  return out;
}
PtMapping at(u64 start, u64 last, u64 pa) { return PtMapping{Range{start, last}, pa, Prot::kRead, k4K, pa + 0x100000}; }

TEST(MappingList, TheLatestMappingIsListedInItsPlaceAndHeld) {
  MappingList l;
  for (const PtMapping& m : {at(0x5000, 0x5fff, 0x15000), at(0x1000, 0x1fff, 0x11000), at(0x3000, 0x3fff, 0x13000)})
    l.add(m, l.reserve(m.uaddr, m.pa, m.pgsizes));
  // 0x3000 is the latest: between the two others, in order.
  EXPECT_EQ(listed(l), (std::vector<Range>{{0x1000, 0x1fff}, {0x3000, 0x3fff}, {0x5000, 0x5fff}}));
  EXPECT_EQ(l.size(), 3u);
  EXPECT_EQ(l.verify(), 3u);
  EXPECT_EQ(l.holding(0x3abc), at(0x3000, 0x3fff, 0x13000));
  EXPECT_EQ(l.holding(0x1fff), at(0x1000, 0x1fff, 0x11000));
  EXPECT_EQ(l.holding(0x2000), std::nullopt);
  // The latest mapping first or last in the list.
  const PtMapping first = at(0x0, 0xfff, 0x10000);
  l.add(first, l.reserve(first.uaddr, first.pa, first.pgsizes));
  EXPECT_EQ(listed(l).front(), (Range{0x0, 0xfff}));
  const PtMapping last = at(0x9000, 0x9fff, 0x19000);
  l.add(last, l.reserve(last.uaddr, last.pa, last.pgsizes));
  EXPECT_EQ(listed(l).back(), (Range{0x9000, 0x9fff}));
  EXPECT_EQ(l.verify(), 5u);
}

TEST(MappingList, RemoveTakesExactlyAMappingWhereverItIs) {
  MappingList l;
  for (const PtMapping& m : {at(0x1000, 0x1fff, 0x11000), at(0x3000, 0x4fff, 0x13000)})
    l.add(m, l.reserve(m.uaddr, m.pa, m.pgsizes));
  // Not exactly a mapping (the latest, or one in the tree): nothing changes.
  EXPECT_FALSE(l.remove(Range{0x3000, 0x3fff}));
  EXPECT_FALSE(l.remove(Range{0x1000, 0x2fff}));
  EXPECT_EQ(l.verify(), 2u);
  EXPECT_TRUE(l.remove(Range{0x3000, 0x4fff}));
  EXPECT_TRUE(l.remove(Range{0x1000, 0x1fff}));
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.pgsizes_used(), 0u);  // no kind is used any more
  EXPECT_EQ(l.verify(), 0u);
}

TEST(MappingList, SetLastMovesTheLatestMappingsEndUpToTheNextMapping) {
  MappingList l;
  for (const PtMapping& m : {at(0x6000, 0x6fff, 0x16000), at(0x1000, 0x1fff, 0x11000)})
    l.add(m, l.reserve(m.uaddr, m.pa, m.pgsizes));
  l.set_last(0x1000, 0x5fff);  // the latest mapping grows up to the next one
  EXPECT_EQ(listed(l), (std::vector<Range>{{0x1000, 0x5fff}, {0x6000, 0x6fff}}));
  EXPECT_EQ(l.holding(0x5000)->iova, (Range{0x1000, 0x5fff}));
  EXPECT_DEATH(l.set_last(0x1000, 0x6000), "would overlap the next mapping");
  l.set_last(0x1000, 0x2fff);
  EXPECT_EQ(l.holding(0x3000), std::nullopt);
  EXPECT_EQ(l.verify(), 2u);
}

TEST(MappingList, AMappingOfTheTreeCannotGrowOverTheLatestOne) {
  MappingList l;
  for (const PtMapping& m : {at(0x1000, 0x1fff, 0x11000), at(0x3000, 0x3fff, 0x13000)})
    l.add(m, l.reserve(m.uaddr, m.pa, m.pgsizes));
  EXPECT_DEATH(l.set_last(0x1000, 0x3000), "would overlap the next mapping");
  l.set_last(0x1000, 0x2fff);
  EXPECT_EQ(listed(l), (std::vector<Range>{{0x1000, 0x2fff}, {0x3000, 0x3fff}}));
  EXPECT_EQ(l.verify(), 2u);
}

TEST(MappingList, AddOverTheLatestMappingAborts) {
  MappingList l;
  const PtMapping m = at(0x1000, 0x2fff, 0x11000);
  l.add(m, l.reserve(m.uaddr, m.pa, m.pgsizes));
  const PtMapping over = at(0x2000, 0x3fff, 0x12000);
  EXPECT_DEATH(l.add(over, l.reserve(over.uaddr, over.pa, over.pgsizes)), "add over a mapping");
}

}  // namespace
}  // namespace ioas::impl
