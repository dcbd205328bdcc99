// The POWER TCE table: one entry per IOMMU page of the window, with the
// userspace view beside it.
#include <gtest/gtest.h>

#include <bit>

#include "heap_hook.hpp"
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
  EXPECT_EQ(t.last_index(), 255u);
  EXPECT_EQ(t.levels(), 1u);
  ASSERT_TRUE(t.map({0x80000000 + (u64{5} << 16), 0x40000000, u64{2} << 16, Prot::kRead}).ok());
  EXPECT_EQ(tce::from_be(t.raw_entry(5)), 0x40000000u | tce::kRead);
  EXPECT_EQ(tce::from_be(t.raw_entry(6)), 0x40010000u | tce::kRead);
  EXPECT_EQ(t.map({0x1000'0000, 0, u64{1} << 16, Prot::kRead}).code(), ERANGE);  // below the window
  EXPECT_EQ(t.map({0x80000000 + (u64{255} << 16), 0, u64{2} << 16, Prot::kRead}).code(), ERANGE);
  EXPECT_EQ(t.map({0x80000000, 0x1000, u64{1} << 16, Prot::kRead}).code(), EINVAL);  // pa unaligned
  EXPECT_EQ(t.map({0x80000000, 0, u64{1} << 16, Prot::kNone}).code(), EINVAL);
}

TEST(Tce, CreateChecksPageSizeWindowAndMemory) {
  HeapPageMemory mem;
  EXPECT_EQ(make_page_table(tce_config(k4K | k2M), mem).code(), EINVAL);
  EXPECT_EQ(make_page_table(tce_config(0), mem).code(), EINVAL);
  EXPECT_EQ(make_page_table(tce_config(k4K, Range{0x800, 0x7fffffff}), mem).code(), EINVAL);
  EXPECT_EQ(make_page_table(tce_config(k4K, Range{0, 0x7ffff800}), mem).code(), EINVAL);
  // The two top-level pages (TCEs and userspace view) come at creation;
  // failing either leaks nothing.
  for (u64 n : {1, 2}) {
    mem.fail_nth_alloc(n);
    EXPECT_EQ(make_page_table(tce_config(), mem).code(), ENOMEM);
    mem.fail_nth_alloc(0);
    EXPECT_EQ(mem.live_pages(), 0u);
  }
  auto t = make_page_table(tce_config(), mem);
  ASSERT_TRUE(t.ok());
  // 2G of 4K pages = 512K entries: 3 levels (512^2 < 512K <= 512^3), and
  // nothing below the top until something is mapped.
  EXPECT_EQ(static_cast<TceTable&>(*t.value()).levels(), 3u);
  EXPECT_EQ(t.value()->table_pages(), 2u);
  t.value().reset();
  EXPECT_EQ(mem.live_pages(), 0u);
}

// The indirect levels, walked from the root by the software walker: every
// indirect entry is the next page's address | READ | WRITE, big-endian.
TEST(Tce, IndirectLevelsAreAllocatedOnFirstUseAndWalked) {
  Fixture f(tce_config());
  auto& t = static_cast<TceTable&>(*f.pt);
  ASSERT_TRUE(t.map({0x40000000, 0x7000000, 0x3000, Prot::kReadWrite, 0x7f0000000000}).ok());
  // One page per level below the top, in each of the two trees.
  EXPECT_EQ(t.table_pages(), 2u + 2 * 2);
  const u64 slot = 0x40000000 >> 12;
  const u64 top = tce::from_be(f.mem.page(t.root())[(slot >> 18) & 511]);
  EXPECT_EQ(top & 3, 3u);
  const u64 mid = tce::from_be(f.mem.page(top & ~u64{0xfff})[(slot >> 9) & 511]);
  EXPECT_EQ(mid & 3, 3u);
  EXPECT_EQ(tce::from_be(f.mem.page(mid & ~u64{0xfff})[slot & 511]), 0x7000000u | 3);
  EXPECT_EQ(tce::from_be(t.raw_entry(slot + 2)), 0x7002000u | 3);
  Walker w(t);
  EXPECT_EQ(w.access(0x40002000 + 5, true).pa, 0x7002005u);
  EXPECT_EQ(w.access(0x40003000, false).fault, Fault::kNotPresent);   // same last-level page, empty TCE
  EXPECT_EQ(w.access(0x10000000, false).fault, Fault::kNotPresent);   // no page on the way
  EXPECT_EQ(w.access(0x80000000, false).fault, Fault::kOutOfRange);
  // Pages stay after unmap, as the kernel's do; the entries are empty.
  EXPECT_EQ(*t.unmap(0x40000000, 0x3000), 0x3000u);
  EXPECT_EQ(t.table_pages(), 6u);
  EXPECT_EQ(t.verify(), 0u);
}

// The listing carries each leaf's user address as uaddr() reads it, from
// the userspace view walked beside the TCEs; and verify() still finds a
// userspace entry whose TCE is empty (here: the TCE cleared by hand).
TEST(Tce, ListingCarriesTheUserAddressAndVerifyChecksTheViewBesideIt) {
  Fixture f(tce_config());
  auto& t = static_cast<TceTable&>(*f.pt);
  ASSERT_TRUE(t.map({0x40000000, 0x7000000, 0x3000, Prot::kReadWrite, 0x7f0000000000}).ok());
  ASSERT_TRUE(t.map({0x40200000, 0x8000000, 0x1000, Prot::kRead, 0x7f0000100000}).ok());
  std::vector<Leaf> leaves;
  t.for_each_leaf(Range{0, 0x7fffffff}, [&](const Leaf& l) { leaves.push_back(l); });
  ASSERT_EQ(leaves.size(), 4u);
  for (const Leaf& l : leaves) {
    SCOPED_TRACE(l.iova);
    ASSERT_TRUE(l.uaddr.has_value());
    EXPECT_EQ(l.uaddr, t.uaddr(l.iova));
  }
  EXPECT_EQ(*leaves[1].uaddr, 0x7f0000001000u);
  EXPECT_EQ(*leaves[3].uaddr, 0x7f0000100000u);
  EXPECT_EQ(t.verify(), 4u);
  const u64 slot = 0x40200000 >> 12;
  u64* e = f.mem.page(tce::from_be(f.mem.page(tce::from_be(f.mem.page(t.root())[(slot >> 18) & 511]) & ~u64{0xfff})[(slot >> 9) & 511]) & ~u64{0xfff}) + (slot & 511);
  *e = 0;
  EXPECT_DEATH((void)t.verify(), "userspace view on an empty TCE");
}

// A listing over a table whose userspace view lacks a page the TCEs have
// (its top entry cleared by hand) reports those leaves without a user
// address, never one read from elsewhere: the memory here is an arena from
// physical address 0 whose first page is taken before the table, so an
// absent entry followed as if it were a page address would land on a real
// page (of zeros) and read a user address of 0.
TEST(Tce, ListingBesideAMissingUserspacePageGivesNoUserAddress) {
  struct alignas(4096) Page4K {
    std::uint64_t e[512] = {};
  };
  constexpr u64 kPages = 16;
  std::vector<Page4K> buf(kPages);
  ArenaPageMemory mem(buf.data(), 0, kPages * k4K);
  ASSERT_EQ(mem.alloc_page(), std::optional<u64>(0));
  auto made = make_page_table(tce_config(), mem);
  ASSERT_TRUE(made.ok());
  auto& t = static_cast<TceTable&>(**made);
  ASSERT_EQ(t.levels(), 3u);
  ASSERT_TRUE(t.map({0x40000000, 0x7000000, 0x2000, Prot::kReadWrite, 0x7f0000000000}).ok());
  const u64 slot = 0x40000000 >> 12;
  u64& top = mem.page(t.user_root())[(slot >> 18) & 511];
  const u64 kept = top;
  top = 0;
  std::vector<Leaf> leaves;
  t.for_each_leaf(Range{0, 0x7fffffff}, [&](const Leaf& l) { leaves.push_back(l); });
  ASSERT_EQ(leaves.size(), 2u);
  for (const Leaf& l : leaves) {
    SCOPED_TRACE(l.iova);
    EXPECT_EQ(l.pa, 0x7000000 + (l.iova - 0x40000000));
    EXPECT_FALSE(l.uaddr.has_value());
  }
  top = kept;  // whole again, so the table frees both trees
  EXPECT_EQ(t.verify(), 2u);
}

// A window as large as the 64-bit space (SPEC allows any window of whole
// pages): 8 levels of 4K... and map at the very top.
TEST(Tce, WholeSixtyFourBitWindowWithTinyPages) {
  for (u64 ps : {u64{1}, u64{2}, u64{4}, u64{0x800}, k4K}) {
    SCOPED_TRACE(ps);
    Fixture f(tce_config(ps, Range::all()));
    auto& t = static_cast<TceTable&>(*f.pt);
    EXPECT_EQ(t.last_index(), kMaxIova >> std::countr_zero(ps));
    const u64 top = kMaxIova - (4 * ps - 1);
    ASSERT_TRUE(t.map({top, 0xabc000, 4 * ps, Prot::kReadWrite, 0x1000}).ok());
    ASSERT_TRUE(t.map({0, TceTable::kMaxOa - (ps - 1), ps, Prot::kRead}).ok());
    EXPECT_EQ(t.translate(top + 3 * ps)->pa, 0xabc000u + 3 * ps);
    EXPECT_EQ(t.translate(0)->pa, TceTable::kMaxOa - (ps - 1));
    EXPECT_EQ(*t.uaddr(kMaxIova), 0x1000u + 4 * ps - 1);
    Walker w(t);
    EXPECT_EQ(w.access(kMaxIova, true).pa, 0xabc000u + 4 * ps - 1);
    EXPECT_EQ(w.access(0, true).fault, Fault::kReadOnly);
    EXPECT_EQ(w.access(0, false).pa, TceTable::kMaxOa - (ps - 1));
    EXPECT_EQ(t.map({ps, TceTable::kMaxOa + 1, ps, Prot::kRead}).code(), ERANGE);  // beyond 52 bits
    EXPECT_EQ(t.verify(), 5u);
    EXPECT_EQ(*t.unmap(0, 0 - ps), ps + 3 * ps);  // everything but the last page
  }
}

// ENOMEM on any page of a map: nothing written, nothing leaked.
TEST(Tce, MapFailsAtomicallyWhenAPageCannotBeAllocated) {
  Fixture f(tce_config());
  ASSERT_TRUE(f.pt->map({0x1000, 0x1000, 0x1000, Prot::kRead}).ok());
  const auto before = f.pt->image();
  const u64 live = f.mem.live_pages();
  // Crosses two last-level pages in a fresh second-level subtree: 2 + 2*2 pages.
  const MapArgs big{0x40000000 - 0x2000, 0x5000000, 0x4000, Prot::kReadWrite, 0x10000};
  u64 n = 1;
  for (;; ++n) {
    f.mem.fail_nth_alloc(n);
    Status st = f.pt->map(big);
    f.mem.fail_nth_alloc(0);
    if (st.ok()) break;
    EXPECT_EQ(st.code(), ENOMEM);
    EXPECT_EQ(f.pt->image(), before) << "after failing allocation " << n;
    EXPECT_EQ(f.mem.live_pages(), live);
  }
  EXPECT_EQ(n, 7u);  // the 6 allocations it needs, then success
  EXPECT_EQ(f.pt->verify(), 5u);
}

TEST(Tce, CloneOntoACopyOfTheMemoryIsIndependent) {
  Fixture f(tce_config());
  ASSERT_TRUE(f.pt->map({0x10000, 0x20000, 0x2000, Prot::kReadWrite, 0x9000}).ok());
  Walker(*f.pt).dma(DmaDir::kWrite, Range{0x10000, 0x10000});
  HeapPageMemory copy(f.mem);
  auto c = f.pt->clone_onto(copy);
  EXPECT_EQ(c->image(), f.pt->image());
  ASSERT_TRUE(c->map({0x20000, 0x30000, 0x1000, Prot::kRead}).ok());
  EXPECT_EQ(*c->unmap(0x10000, 0x1000), 0x1000u);
  EXPECT_EQ(f.pt->translate(0x10000)->pa, 0x20000u);
  EXPECT_FALSE(f.pt->translate(0x20000));
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range::all(), nullptr, true), 1u);
  EXPECT_EQ(c->read_and_clear_dirty(Range::all(), nullptr, true), 0u);
  EXPECT_EQ(c->verify(), 2u);
  EXPECT_EQ(f.pt->verify(), 2u);
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

// reserve_dirty() allocates ahead the records a write DMA adds, so the DMA
// itself makes no heap allocation; a range outside the window holds no slot,
// and reserving for it allocates nothing.
TEST(Tce, AWriteDmaPreparedByReserveDirtyMakesNoHeapAllocation) {
  const u64 base = 0x80000000;
  Fixture f(tce_config(k4K, Range{base, base + 0xfffff}));
  auto& t = static_cast<TceTable&>(*f.pt);
  ASSERT_TRUE(t.map({base, 0x20000, 0x4000, Prot::kReadWrite}).ok());
  ASSERT_TRUE(t.map({base + 0x4000, 0x30000, 0x1000, Prot::kRead}).ok());
  Walker w(t);
  const Range written{base + 0x800, base + 0x3fff};
  t.reserve_dirty(written);
  DmaOutcome out{true, 0};
  u64 allocations = 1;
  {
    ioas::testing::HeapExhaustion refuse_all(1);
    out = w.dma(DmaDir::kWrite, written);
    allocations = refuse_all.count();
  }
  t.drop_dirty_reserve();
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(out, DmaOutcome{});
  EXPECT_EQ(t.read_and_clear_dirty(Range{base, base + 0xfffff}, nullptr, false), 4u);

  // All four writable slots are clean again: a reservation over the window
  // would allocate, one outside it must not.
  {
    ioas::testing::HeapExhaustion refuse_all(1);
    t.reserve_dirty(Range{0x1000, 0x1fff});                      // below the window
    t.reserve_dirty(Range{base + 0x100000, base + 0x100fff});    // above it
    allocations = refuse_all.count();
  }
  EXPECT_EQ(allocations, 0u);
  t.drop_dirty_reserve();
  t.verify();
}

}  // namespace
}  // namespace ioas::hw
