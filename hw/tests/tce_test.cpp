// The POWER TCE table: one entry per IOMMU page of the window, with the
// userspace view beside it.
#include <gtest/gtest.h>

#include "tce.hpp"
#include "test_util.hpp"
#include "walker.hpp"

namespace ioas::hw {
namespace {

using testing::Fixture;

TableConfig tce_config(u64 page = k4K, Range window = Range{0, 0x7fffffff}) {
  return TableConfig{Format::kTce, page, window};
}

// The selftest pattern, TCE style: one page size, distinct addresses.
TEST(Tce, SelftestPatternAndUserspaceView) {
  Fixture f(tce_config());
  PageTable& pt = *f.pt;
  EXPECT_FALSE(pt.translate(42));
  ASSERT_TRUE(pt.map({0x10000, 0x990000, 0x3000, Prot::kReadWrite, 0x7fff00010000}).ok());
  EXPECT_EQ(pt.map({0x12000, 0x5000, 0x1000, Prot::kRead}).code(), EEXIST);
  EXPECT_EQ(pt.translate(0x11000 + 42)->pa, 0x991000u + 42);
  EXPECT_EQ(pt.translate(0x11000 + 42)->prot, Prot::kReadWrite);
  EXPECT_EQ(*pt.uaddr(0x12000 + 7), 0x7fff00012000u + 7);
  EXPECT_EQ(*pt.unmap(0x11000, 0x1000), 0x1000u);
  EXPECT_FALSE(pt.translate(0x11000));
  EXPECT_FALSE(pt.uaddr(0x11000));
  ASSERT_TRUE(pt.map({0x11000, 0x5000, 0x1000, Prot::kRead, 0x1000}).ok());
  EXPECT_EQ(pt.translate(0x11000 + 42)->pa, 0x5000u + 42);
  EXPECT_EQ(*pt.uaddr(0x11000), 0x1000u);
  EXPECT_EQ(*pt.unmap(0, 0x80000000), 0x3000u);
  EXPECT_EQ(pt.verify(), 0u);
}

TEST(Tce, WindowOffsetAndPageShift) {
  // A 64K-page window starting at 2G: entry e maps bus address e << 16.
  Fixture f(tce_config(u64{1} << 16, Range{0x80000000, 0x80000000 + (u64{256} << 16) - 1}));
  auto& t = static_cast<TceTable&>(*f.pt);
  EXPECT_EQ(t.page_shift(), 16u);
  EXPECT_EQ(t.window_offset(), 0x80000000u >> 16);
  EXPECT_EQ(t.window_entries(), 256u);
  ASSERT_TRUE(t.map({0x80000000 + (u64{5} << 16), 0x40000000, u64{2} << 16, Prot::kRead}).ok());
  EXPECT_EQ(tce::from_be(t.raw_entry(5)), 0x40000000u | tce::kRead);
  EXPECT_EQ(tce::from_be(t.raw_entry(6)), 0x40010000u | tce::kRead);
  EXPECT_EQ(t.map({0x1000'0000, 0, u64{1} << 16, Prot::kRead}).code(), ERANGE);  // below the window
  EXPECT_EQ(t.map({0x80000000 + (u64{255} << 16), 0, u64{2} << 16, Prot::kRead}).code(), ERANGE);
  EXPECT_EQ(t.map({0x80000000, 0x1000, u64{1} << 16, Prot::kRead}).code(), EINVAL);  // pa unaligned
  EXPECT_EQ(t.map({0x80000000, 0, u64{1} << 16, Prot::kWrite}).code(), EINVAL);
}

TEST(Tce, CreateChecksPageSizeWindowAndMemory) {
  HeapPageMemory mem;
  EXPECT_EQ(make_page_table(tce_config(k4K | k2M), mem).code(), EINVAL);
  EXPECT_EQ(make_page_table(tce_config(0x800), mem).code(), EINVAL);
  EXPECT_EQ(make_page_table(tce_config(k4K, Range{0x800, 0x7fffffff}), mem).code(), EINVAL);
  // 2G of 4K pages = 512K entries = 1024 pages; fail each of the first few
  // allocations and the last: nothing leaks.
  for (u64 n : {1, 2, 3, 1024}) {
    mem.fail_nth_alloc(n);
    EXPECT_EQ(make_page_table(tce_config(), mem).code(), ENOMEM);
    mem.fail_nth_alloc(0);
    EXPECT_EQ(mem.live_pages(), 0u);
  }
  auto t = make_page_table(tce_config(), mem);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value()->table_pages(), 1024u);
}

TEST(Tce, OverlapRefusedBeforeAnyWriteAndOneKillPerOperation) {
  Fixture f(tce_config());
  ASSERT_TRUE(f.pt->map({0x5000, 0x5000, 0x1000, Prot::kRead}).ok());
  EXPECT_EQ(f.pt->iotlb().flushes(), 1u);
  const auto before = f.pt->image();
  EXPECT_EQ(f.pt->map({0x1000, 0x1000, 0x8000, Prot::kReadWrite}).code(), EEXIST);
  EXPECT_EQ(f.pt->image(), before);
  EXPECT_EQ(f.pt->iotlb().flushes(), 1u);
  ASSERT_TRUE(f.pt->map({0x10000, 0, 0x10000, Prot::kRead}).ok());
  EXPECT_EQ(f.pt->iotlb().flushes(), 2u);
  EXPECT_EQ(*f.pt->unmap(0, 0x100000), 0x11000u);
  EXPECT_EQ(f.pt->iotlb().flushes(), 3u);
  EXPECT_EQ(f.pt->iotlb().last_flush(), (Range{0x5000, 0x1ffff}));
}

TEST(Tce, SoftwareDirtyBitsBesideTheTable) {
  Fixture f(tce_config());
  ASSERT_TRUE(f.pt->map({0x10000, 0x20000, 0x4000, Prot::kReadWrite}).ok());
  ASSERT_TRUE(f.pt->map({0x14000, 0x30000, 0x1000, Prot::kRead}).ok());
  Walker w(*f.pt);
  EXPECT_EQ(w.dma(DmaDir::kWrite, Range{0x10ff0, 0x11010}), DmaOutcome{});
  EXPECT_EQ(w.dma(DmaDir::kWrite, Range{0x13ff0, 0x14010}), (DmaOutcome{true, 0x14000}));
  EXPECT_EQ(w.dma(DmaDir::kRead, Range{0x14000, 0x14fff}), DmaOutcome{});
  EXPECT_EQ(w.dma(DmaDir::kRead, Range{0x14000, 0x15000}), (DmaOutcome{true, 0x15000}));
  DirtyBitmap bm(0x10000, 0x8000, k4K);
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range{0x10000, 0x17fff}, &bm, true), 3u);
  EXPECT_EQ(bm.ranges(), (std::vector<Range>{{0x10000, 0x11fff}, {0x13000, 0x13fff}}));
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range{0x10000, 0x17fff}, nullptr, false), 3u);
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range{0x10000, 0x17fff}, nullptr, false), 0u);
  f.pt->verify();
  EXPECT_TRUE(f.pt->split_blocks(Range::all()).ok());  // one size: nothing to do
}

}  // namespace
}  // namespace ioas::hw
