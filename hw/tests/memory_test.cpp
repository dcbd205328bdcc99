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

// A page never moves while the memory lives, however far the directory
// grows, and a lookup made before the growth still answers for the pages
// it knew and for those allocated since (a lock-free reader holds one).
TEST(Memory, HeapPagesStayPutWhileTheDirectoryGrows) {
  HeapPageMemory mem(kBase);
  const auto first = mem.alloc_page();
  ASSERT_TRUE(first.has_value());
  std::uint64_t* const host = mem.page(*first);
  host[7] = 0x1234;
  const HeapPageMemory::Lookup before(mem);
  std::vector<u64> later;
  for (int i = 0; i < 1000; ++i) {  // the directory grows 9 times
    const auto pa = mem.alloc_page();
    ASSERT_TRUE(pa.has_value());
    later.push_back(*pa);
  }
  EXPECT_EQ(mem.page(*first), host) << "the first page moved when the directory grew";
  EXPECT_EQ(before.page(*first), host);
  EXPECT_EQ(host[7], 0x1234u);
  for (u64 pa : {later.front(), later[500], later.back()}) {
    EXPECT_NE(before.page(pa), nullptr) << "a lookup made before " << pa << " was allocated";
    EXPECT_EQ(before.page(pa), mem.page(pa));
  }
  EXPECT_EQ(before.page(later.back() + kGranule), nullptr);
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
