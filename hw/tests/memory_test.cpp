// The page allocators (hw/memory.hpp): page(pa) answers exactly for the
// pages of the allocator, nothing below its base or past its last page;
// pages come zeroed, and an arena runs out after its last page.
#include <gtest/gtest.h>

#include <future>
#include <thread>
#include <vector>

#include "memory.hpp"

namespace ioas::hw {
namespace {

constexpr u64 kBase = 0x4000'0000;

TEST(Memory, ArenaAnswersForItsPagesOnly) {
  constexpr u64 kPages = 3;
  std::vector<unsigned char> buf(kPages * kGranule, 0xab);
  ArenaPageMemory mem(buf.data(), kBase, buf.size());
  EXPECT_EQ(mem.page(kBase - kGranule), nullptr);
  EXPECT_EQ(mem.page(kBase - 1), nullptr);
  for (u64 i = 0; i < kPages; ++i) {
    const auto pa = mem.alloc_page();
    ASSERT_TRUE(pa.has_value());
    EXPECT_EQ(*pa, kBase + i * kGranule);
    EXPECT_EQ(mem.page(*pa), reinterpret_cast<std::uint64_t*>(buf.data() + i * kGranule));
    EXPECT_EQ(mem.page(*pa + kGranule - 1), mem.page(*pa)) << "the last byte of page " << i;
    EXPECT_EQ(mem.page(*pa)[0], 0u);
    EXPECT_EQ(mem.page(*pa)[511], 0u);
  }
  EXPECT_EQ(mem.page(kBase + kPages * kGranule), nullptr) << "the first byte past the arena";
  EXPECT_EQ(mem.page(kBase + (kPages + 1) * kGranule), nullptr);
  EXPECT_FALSE(mem.alloc_page().has_value()) << "an arena of 3 pages handed out a 4th";
  EXPECT_EQ(mem.live_pages(), kPages);
  mem.free_page(kBase + kGranule);
  EXPECT_EQ(mem.alloc_page(), kBase + kGranule);  // the freed page comes back
}

TEST(Memory, HeapAnswersForItsPagesOnly) {
  HeapPageMemory mem(kBase, 2);
  const auto a = mem.alloc_page(), b = mem.alloc_page();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_FALSE(mem.alloc_page().has_value()) << "max_pages 2 handed out a 3rd";
  EXPECT_EQ(mem.page(kBase - kGranule), nullptr);
  EXPECT_NE(mem.page(*a), nullptr);
  EXPECT_NE(mem.page(*b), nullptr);
  EXPECT_NE(mem.page(*a), mem.page(*b));
  EXPECT_EQ(mem.page(std::max(*a, *b) + kGranule), nullptr);
}

// Memories that share an injection (an engine's per-IOAS memories) fail
// "the nth allocation from now" counted over all of them; each counts its
// own allocations, and a copy has an injection of its own.
TEST(Memory, SharedInjectionFailsTheNthAllocationOverEveryMemory) {
  HeapPageMemory a(kBase), b(kBase);
  b.share_injection(a);
  ASSERT_TRUE(a.alloc_page().has_value());  // before arming: counted, not a ticket
  a.fail_nth_alloc(3);
  EXPECT_TRUE(a.alloc_page().has_value());
  EXPECT_TRUE(b.alloc_page().has_value());
  EXPECT_FALSE(b.alloc_page().has_value()) << "the 3rd allocation from arming, made in b";
  EXPECT_TRUE(a.alloc_page().has_value());
  EXPECT_EQ(a.alloc_calls(), 3u);
  EXPECT_EQ(b.alloc_calls(), 2u);  // the failed one too
  b.fail_nth_alloc(1);  // armed through b: a's next allocation is the one
  EXPECT_FALSE(a.count_allocation());
  EXPECT_TRUE(b.count_allocation());
  a.fail_nth_alloc(2);
  HeapPageMemory c(a);  // armed as a is, on its own
  EXPECT_EQ(c.alloc_calls(), a.alloc_calls());
  EXPECT_TRUE(c.alloc_page().has_value());
  EXPECT_FALSE(c.alloc_page().has_value());
  EXPECT_TRUE(b.alloc_page().has_value()) << "c's allocations are not a's and b's";
  EXPECT_FALSE(a.alloc_page().has_value());
  a.fail_nth_alloc(0);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(b.count_allocation());
}

// A page never moves while the memory lives, however many regions are
// added, and a lookup made before the growth still answers for the pages
// it knew and for those allocated since (a lock-free reader holds one).
TEST(Memory, HeapPagesStayPutWhileRegionsAreAdded) {
  HeapPageMemory mem(kBase, ~u64{0}, 4);  // regions of 4, 8, 16, 32, 64 pages
  const auto first = mem.alloc_page();
  ASSERT_TRUE(first.has_value());
  std::uint64_t* const host = mem.page(*first);
  host[7] = 0x1234;
  const HeapPageMemory::Lookup before(mem);
  std::vector<u64> later;
  for (int i = 1; i < 100; ++i) {
    const auto pa = mem.alloc_page();
    ASSERT_TRUE(pa.has_value());
    EXPECT_EQ(*pa, kBase + static_cast<u64>(i) * kGranule) << "pages are handed out in order";
    later.push_back(*pa);
  }
  EXPECT_EQ(mem.regions(), 5u) << "4 + 8 + 16 + 32 + 64 pages hold 100";
  EXPECT_EQ(mem.page(*first), host) << "the first page moved when regions were added";
  EXPECT_EQ(before.page(*first), host);
  EXPECT_EQ(host[7], 0x1234u);
  for (u64 pa : {later.front(), later[10], later[50], later.back()}) {
    EXPECT_NE(before.page(pa), nullptr) << "a lookup made before " << pa << " was allocated";
    EXPECT_EQ(before.page(pa), mem.page(pa));
  }
  EXPECT_EQ(before.page(later.back() + kGranule), nullptr);
  EXPECT_EQ(mem.page(later.back() + kGranule), nullptr) << "past the last page handed out";
}

// Every page has a view of its own, zeroed, addressed by any byte of the
// page; two pages never share a byte, in one region or across two.
TEST(Memory, EveryHeapPageHasItsOwnZeroedView) {
  HeapPageMemory mem(kBase, ~u64{0}, 2);
  std::vector<u64> pas;
  for (int i = 0; i < 40; ++i) {
    const auto pa = mem.alloc_page();
    ASSERT_TRUE(pa.has_value());
    pas.push_back(*pa);
  }
  for (std::size_t i = 0; i < pas.size(); ++i) {
    std::uint64_t* p = mem.page(pas[i]);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(mem.page(pas[i] + kGranule - 1), p) << "the last byte of page " << i;
    for (int w = 0; w < 512; ++w) ASSERT_EQ(p[w], 0u) << "page " << i << " word " << w;
    for (int w = 0; w < 512; ++w) p[w] = pas[i] + static_cast<u64>(w);
  }
  for (std::size_t i = 0; i < pas.size(); ++i)
    for (int w = 0; w < 512; ++w) ASSERT_EQ(mem.page(pas[i])[w], pas[i] + static_cast<u64>(w)) << "page " << i;
}

// The walk's own lookup (FastLookup) covers exactly region 0's pages handed
// out when it was made, and finds them where page() does.
TEST(Memory, TheFastLookupCoversRegionZerosPagesHandedOut) {
  EXPECT_FALSE(HeapPageMemory::FastLookup(HeapPageMemory::kNoFastPages).covers(0));
  HeapPageMemory mem(kBase, ~u64{0}, 4);
  EXPECT_FALSE(HeapPageMemory::FastLookup(mem.fast_pages()).covers(kBase)) << "nothing handed out yet";
  std::vector<u64> pas;
  for (int i = 0; i < 3; ++i) pas.push_back(*mem.alloc_page());
  const HeapPageMemory::FastLookup three(mem.fast_pages());
  for (int i = 3; i < 6; ++i) pas.push_back(*mem.alloc_page());
  const HeapPageMemory::FastLookup six(mem.fast_pages());
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(three.covers(pas[i]), i < 3) << "page " << i;
    EXPECT_EQ(six.covers(pas[i]), i < 4) << "page " << i << ": region 0 holds 4";
    if (six.covers(pas[i])) {
      EXPECT_EQ(six.page(pas[i]), mem.page(pas[i]));
      EXPECT_EQ(six.word_at(six.offset(pas[i]), 5), mem.page(pas[i]) + 5);
    }
  }
  EXPECT_FALSE(six.covers(kBase - kGranule));
  EXPECT_FALSE(six.covers(0));
}

// A copy has every page (freed ones too) at the same physical address, in
// memory of its own with the same bytes; what either writes later the
// other does not see, and both hand out the same next pages.
TEST(Memory, ACopyHoldsEveryPageAtItsPhysicalAddress) {
  HeapPageMemory mem(kBase, ~u64{0}, 4);
  std::vector<u64> pas;
  for (int i = 0; i < 30; ++i) {
    const auto pa = mem.alloc_page();
    ASSERT_TRUE(pa.has_value());
    pas.push_back(*pa);
    mem.page(*pa)[3] = 0xc0de0000u + static_cast<u64>(i);
  }
  mem.free_page(pas[5]);
  mem.free_page(pas[20]);
  HeapPageMemory copy(mem);
  EXPECT_EQ(copy.live_pages(), mem.live_pages());
  EXPECT_EQ(copy.regions(), mem.regions());
  for (int i = 0; i < 30; ++i) {
    ASSERT_NE(copy.page(pas[i]), nullptr) << "page " << i;
    EXPECT_NE(copy.page(pas[i]), mem.page(pas[i])) << "page " << i << " is shared";
    EXPECT_EQ(copy.page(pas[i])[3], 0xc0de0000u + static_cast<u64>(i)) << "page " << i;
  }
  EXPECT_EQ(copy.page(pas.back() + kGranule), nullptr);
  copy.page(pas[0])[3] = 1;
  EXPECT_EQ(mem.page(pas[0])[3], 0xc0de0000u) << "a write in the copy reached the original";
  for (HeapPageMemory* m : {&mem, &copy}) {
    EXPECT_EQ(m->alloc_page(), pas[20]);
    EXPECT_EQ(m->page(pas[20])[3], 0u) << "a reused page comes zeroed";
    EXPECT_EQ(m->alloc_page(), pas[5]);
    const auto fresh = m->alloc_page();
    EXPECT_EQ(fresh, kBase + 30 * kGranule);
    EXPECT_EQ(m->page(*fresh)[3], 0u);
  }
  EXPECT_NE(copy.page(kBase + 30 * kGranule), mem.page(kBase + 30 * kGranule));
}

// The heap refusing a region is this memory running out: nullopt, and
// nothing changed (the next allocation hands out the page the refused one
// would have).
TEST(Memory, ARefusedRegionIsOutOfMemoryAndChangesNothing) {
  HeapPageMemory mem(kBase, ~u64{0}, 16);
  mem.fail_nth_region(1);  // region 0
  EXPECT_FALSE(mem.alloc_page().has_value());
  EXPECT_EQ(mem.regions(), 0u);
  EXPECT_EQ(mem.live_pages(), 0u);
  EXPECT_EQ(mem.alloc_calls(), 1u);
  EXPECT_EQ(mem.page(kBase), nullptr);
  for (u64 i = 0; i < 16; ++i) EXPECT_EQ(mem.alloc_page(), kBase + i * kGranule);
  EXPECT_EQ(mem.regions(), 1u);
  mem.fail_nth_region(1);  // region 1
  EXPECT_FALSE(mem.alloc_page().has_value());
  EXPECT_EQ(mem.regions(), 1u);
  EXPECT_EQ(mem.live_pages(), 16u);
  EXPECT_EQ(mem.page(kBase + 16 * kGranule), nullptr);
  mem.free_page(kBase + 3 * kGranule);
  mem.fail_nth_region(1);  // a freed page needs no region
  EXPECT_EQ(mem.alloc_page(), kBase + 3 * kGranule);
  EXPECT_EQ(mem.alloc_page(), std::nullopt) << "the armed refusal is the next region's";
  EXPECT_EQ(mem.alloc_page(), kBase + 16 * kGranule);
  EXPECT_EQ(mem.regions(), 2u);
  EXPECT_EQ(mem.page(kBase + 16 * kGranule)[0], 0u);
}

// max_pages cuts the last region short: the memory hands out exactly
// max_pages pages, then runs out.
TEST(Memory, MaxPagesEndsTheLastRegion) {
  HeapPageMemory mem(kBase, 11, 4);  // regions of 4 and 7 (not 8)
  for (u64 i = 0; i < 11; ++i) ASSERT_EQ(mem.alloc_page(), kBase + i * kGranule);
  EXPECT_FALSE(mem.alloc_page().has_value());
  EXPECT_EQ(mem.regions(), 2u);
  for (u64 i = 0; i < 11; ++i) mem.page(kBase + i * kGranule)[511] = i;  // every page writable to its end
  HeapPageMemory copy(mem);
  for (u64 i = 0; i < 11; ++i) EXPECT_EQ(copy.page(kBase + i * kGranule)[511], i);
}

// Epoch-deferred reclamation: a page freed while a reader may be inside
// it is not handed out again until that reader has left; then it is.
TEST(Memory, AFreedPageWaitsForTheReaderInsideIt) {
  HeapPageMemory mem(kBase);
  const auto a = mem.alloc_page();
  ASSERT_TRUE(a.has_value());
  std::optional<u64> b;
  {
    const HeapPageMemory::Reading reader(mem);
    mem.free_page(*a);
    EXPECT_EQ(mem.retired_pages(), 1u);
    b = mem.alloc_page();
    ASSERT_TRUE(b.has_value());
    EXPECT_NE(*b, *a) << "the freed page was handed out while a reader was inside";
    EXPECT_EQ(mem.retired_pages(), 1u);
  }
  const auto c = mem.alloc_page();
  EXPECT_EQ(c, a) << "the reader left: the freed page comes back";
  EXPECT_EQ(mem.retired_pages(), 0u);
  EXPECT_EQ(mem.live_pages(), 2u);
}

// The same with the reader on another thread (its own slot), and without
// any reader a freed page comes straight back, last freed first.
TEST(Memory, AFreedPageWaitsForAReaderOnAnotherThread) {
  HeapPageMemory mem(kBase);
  const auto a = mem.alloc_page(), b = mem.alloc_page();
  ASSERT_TRUE(a.has_value() && b.has_value());
  mem.free_page(*a);
  mem.free_page(*b);
  EXPECT_EQ(mem.alloc_page(), b);
  EXPECT_EQ(mem.alloc_page(), a);

  std::promise<void> inside, leave;
  std::thread reader([&] {
    const HeapPageMemory::Reading r(mem);
    inside.set_value();
    leave.get_future().wait();
  });
  inside.get_future().wait();
  mem.free_page(*a);
  const auto fresh = mem.alloc_page();
  EXPECT_NE(fresh, a) << "reused beside a reader on another thread";
  leave.set_value();
  reader.join();
  EXPECT_EQ(mem.alloc_page(), a);
}

// A copy made while pages wait for readers has them free (it has no
// readers), and reuses them as the original would once its readers left.
TEST(Memory, ACopyHasTheWaitingPagesFree) {
  HeapPageMemory mem(kBase);
  const auto a = mem.alloc_page();
  ASSERT_TRUE(a.has_value());
  {
    const HeapPageMemory::Reading reader(mem);
    mem.free_page(*a);
  }
  HeapPageMemory copy(mem);
  EXPECT_EQ(copy.retired_pages(), 0u);
  EXPECT_EQ(copy.alloc_page(), a);
  EXPECT_EQ(mem.alloc_page(), a);
}

}  // namespace
}  // namespace ioas::hw
