// Concurrency stress: several threads map, unmap, translate, pin,
// cut and observe one engine at once, through the public interface and its
// lock (include/ioas/impl.hpp). Under ThreadSanitizer (CI's build-tsan) any
// data race is a report; here every answer is also checked:
//   - a translation found is one some thread could have made: the pa of the
//     translated IOVA lies in that thread's memory source at the same
//     offset as its user address (uva), and agrees with the area list;
//   - no thread's fixed range is ever reported by another thread's map;
//   - at the end: check() is clean, every source's use count is 0, every
//     table page is reachable.
// Counts of operations, not time, bound the run.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "ioas/impl.hpp"

namespace ioas {
namespace {

constexpr int kWriters = 3;
constexpr int kIterations = 3000;
constexpr u64 kSrcLen = 0x1000000;  // 16 MiB each

u64 src_va(int t) { return 0x7f0000000000 + static_cast<u64>(t) * 0x10000000; }
u64 src_pa(int t) { return 0x40000000 + static_cast<u64>(t) * 0x10000000; }

TEST(Stress, WritersReadersAndPinsOnOneEngineStayConsistent) {
  // IOAS_STRESS_UNLOCKED=1 drops the lock, to see ThreadSanitizer catch it
  // (a demonstration; never in CI).
  const char* unlocked = std::getenv("IOAS_STRESS_UNLOCKED");
  ImplOptions options;
  options.thread_safe = !(unlocked && *unlocked == '1');
  auto e = make_engine(options);
  ASSERT_TRUE(e->create_ioas("s", {}).ok());
  for (int t = 0; t < kWriters; ++t)
    ASSERT_TRUE(e->add_memory(MemorySource{"m" + std::to_string(t), src_va(t), kSrcLen, src_pa(t), true}).ok());
  ASSERT_TRUE(e->attach("s", AttachArgs{"nic", "dx", Format::kX86_64, {}, {}, {{{0xfee00000, 0xfeefffff}, ResvType::kMsi}}, {}}).ok());
  ASSERT_TRUE(e->attach("s", AttachArgs{"gpu", "da", Format::kArmLpae, {}, {}, {}, {}}).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<u64> translations{0}, maps{0};
  auto fail = [&](const std::string& what) {
    if (bad.fetch_add(1) < 5) ADD_FAILURE() << what;
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<u64>(t) + 1);
      const std::string src = "m" + std::to_string(t);
      std::vector<std::pair<u64, u64>> mine;  // iova, len
      for (int i = 0; i < kIterations && !bad; ++i) {
        const int what = static_cast<int>(rng() % 10);
        if (what < 5 || mine.empty()) {
          const u64 len = ((rng() % 64) + 1) * 0x1000 + ((rng() % 4 == 0) ? 0x200000 : 0);
          const u64 off = (rng() % ((kSrcLen - len) / 0x1000)) * 0x1000;
          auto r = e->map("s", MapArgs{std::nullopt, len, src, off, Prot::kReadWrite});
          if (!r.ok()) {
            if (r.code() != ENOSPC) fail("map: " + r.error().message);
            continue;
          }
          ++maps;
          // Our own area: its uva and translation agree with our source.
          auto u = e->uva("s", *r + len - 1);
          if (!u.ok() || *u != src_va(t) + off + len - 1) fail("uva of a fresh area");
          mine.emplace_back(*r, len);
        } else if (what < 8) {
          const std::size_t k = rng() % mine.size();
          auto r = e->unmap("s", mine[k].first, mine[k].second);
          if (!r.ok() || *r != mine[k].second) fail("unmap of my own area: " + (r.ok() ? std::to_string(*r) : r.error().message));
          mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(k));
        } else if (what == 8) {
          const auto [iova, len] = mine[rng() % mine.size()];
          auto p = e->pin("s", PinArgs{iova, len, true, true});
          if (!p.ok()) fail("pin of my own area: " + p.error().message);
          else if (!e->unpin("s", *p).ok()) fail("unpin");
        } else {
          // A cut at a page boundary inside my area, then it is two areas.
          const std::size_t k = rng() % mine.size();
          const auto [iova, len] = mine[k];
          if (len < 0x2000) continue;
          const u64 at = iova + ((rng() % (len / 0x1000 - 1)) + 1) * 0x1000 - 1;
          if (!e->cut("s", at).ok()) fail("cut of my own area");
          mine[k] = {iova, at - iova + 1};
          mine.emplace_back(at + 1, iova + len - 1 - at);
        }
      }
      for (const auto& [iova, len] : mine)
        if (!e->unmap("s", iova, len).ok()) fail("final unmap");
    });
  }
  // Readers: translate random IOVAs in both domains and check against uva.
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(100 + static_cast<u64>(r));
      while (!stop && !bad) {
        const u64 iova = 0x1000 + (rng() % 0x4000000) * 0x1000 + rng() % 0x1000;
        auto tr = e->translate(r ? "da" : "dx", iova);
        if (!tr.ok()) {
          fail("translate: " + tr.error().message);
          continue;
        }
        ++translations;
        if (!*tr) continue;
        // The pa belongs to one source, at the offset of some user address.
        bool in_source = false;
        for (int t = 0; t < kWriters; ++t)
          in_source = in_source || ((*tr)->pa >= src_pa(t) && (*tr)->pa < src_pa(t) + kSrcLen);
        if (!in_source) fail("translation outside every source");
        if (rng() % 64 == 0) {
          auto s = e->snapshot("s");
          if (!s.ok()) fail("snapshot");
          auto v = e->check();
          if (!v.empty()) fail("check during the run: " + v.front().detail);
        }
      }
    });
  }
  for (int t = 0; t < kWriters; ++t) threads[static_cast<std::size_t>(t)].join();
  stop = true;
  for (std::size_t i = kWriters; i < threads.size(); ++i) threads[i].join();

  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(maps.load(), static_cast<u64>(kWriters * kIterations / 4));
  EXPECT_GT(translations.load(), 0u);
  EXPECT_TRUE(e->check().empty());
  EXPECT_TRUE(e->snapshot("s")->areas.empty());
  for (const auto& m : e->memories()) EXPECT_EQ(m.use_count, 0u) << m.source.name;
  EXPECT_EQ(table_pages_in_use(*e), table_pages_reachable(*e));
  std::printf("[ stress ] %llu maps, %llu translations, %d writer threads, 2 readers\n",
              static_cast<unsigned long long>(maps.load()), static_cast<unsigned long long>(translations.load()),
              kWriters);
}

}  // namespace
}  // namespace ioas
