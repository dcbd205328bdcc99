// Concurrency stress: several threads map, unmap, translate, pin,
// cut and observe one engine at once, through the public interface and its
// locks (include/ioas/impl.hpp); then writers on several IOASes, each doing
// every kind of write, beside readers making every kind of read; and a map
// held inside one IOAS, which must keep no call on another IOAS waiting. Under ThreadSanitizer (CI's build-tsan) any
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
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <bit>
#include <functional>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "ioas/backend.hpp"
#include "ioas/impl.hpp"

namespace ioas {
namespace {

constexpr int kWriters = 3;
constexpr int kIterations = 3000;
constexpr u64 kSrcLen = 0x1000000;  // 16 MiB each

u64 src_va(int t) { return 0x7f0000000000 + static_cast<u64>(t) * 0x10000000; }
u64 src_pa(int t) { return 0x40000000 + static_cast<u64>(t) * 0x10000000; }

// IOAS_STRESS_UNLOCKED=1 drops the locks (thread_safe=false), to see
// ThreadSanitizer catch the races that makes: CI runs it so and expects the
// report (.ci/run).
std::unique_ptr<Engine> stress_engine() {
  const char* unlocked = std::getenv("IOAS_STRESS_UNLOCKED");
  ImplOptions options;
  options.thread_safe = !(unlocked && *unlocked == '1');
  return make_engine(options);
}

// The source of writer t whose physical range holds pa, or -1.
int source_of_pa(u64 pa, int sources) {
  for (int t = 0; t < sources; ++t)
    if (pa >= src_pa(t) && pa < src_pa(t) + kSrcLen) return t;
  return -1;
}

// At the end of a run: every SPEC invariant holds, nothing is in use, no
// table page leaked.
void expect_clean_end(const Engine& e) {
  EXPECT_TRUE(e.check().empty());
  for (const auto& m : e.memories()) EXPECT_EQ(m.use_count, 0u) << m.source.name;
  EXPECT_EQ(table_pages_in_use(e), table_pages_reachable(e));
}

TEST(Stress, WritersReadersAndPinsOnOneEngineStayConsistent) {
  auto e = stress_engine();
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
        if (source_of_pa((*tr)->pa, kWriters) < 0) fail("translation outside every source");
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
  EXPECT_TRUE(e->snapshot("s")->areas.empty());
  expect_clean_end(*e);
  std::printf("[ stress ] %llu maps, %llu translations, %d writer threads, 2 readers\n",
              static_cast<unsigned long long>(maps.load()), static_cast<unsigned long long>(translations.load()),
              kWriters);
}

// Writers on several IOASes, each doing every kind of write in its own IOAS
// (map, unmap, cut, pin, copy from its own IOAS and from another one,
// reserve, allow, attach and detach of a new domain, dirty tracking with DMA
// and read_dirty, huge pages off and on, memory sources added and removed),
// beside readers making every kind of read of all of them (translate,
// leaves, uva, ranges, snapshot, memories, ioas_names, check). Writer t owns
// IOAS w<t> and source m<t>; w0 has an x86-64 domain d0, w1 an arm-lpae
// domain d1, w2 none. Every answer is checked against what the writer knows
// of its own IOAS, every read against the sources.
constexpr int kIoases = 3;
constexpr int kMixIterations = 1500;
constexpr u64 kUserResv = 0x100000000000;  // each writer's reserve/unreserve range, far above its maps

std::string w_name(int t) { return "w" + std::to_string(t); }
std::string d_name(int t) { return t < 2 ? "d" + std::to_string(t) : std::string(); }

class MixWriter {
 public:
  MixWriter(Engine& e, int t, std::function<void(const std::string&)> fail)
      : e_(e), t_(t), ioas_(w_name(t)), dom_(d_name(t)), src_("m" + std::to_string(t)), rng_(t + 7),
        fail_(std::move(fail)) {}

  void run(int iterations, const std::atomic<int>& bad) {
    for (int i = 0; i < iterations && !bad; ++i) step(static_cast<int>(rng_() % 20));
    auto r = e_.unmap_all(ioas_);
    if (!r.ok()) fail_(ioas_ + ": final unmap all: " + r.error().message);
  }

 private:
  void expect(bool ok, const std::string& what) {
    if (!ok) fail_(ioas_ + ": " + what);
  }
  template <typename R>
  void expect_ok(const R& r, const std::string& what) {
    if (!r.ok()) fail_(ioas_ + ": " + what + ": " + r.error().message);
  }
  std::pair<u64, u64> any_area() { return mine_[rng_() % mine_.size()]; }

  void step(int what) {
    if (what < 6 || mine_.empty()) return map();
    if (what < 9) return unmap();
    switch (what) {
      case 9: return cut();
      case 10: return pin();
      case 11: return copy_from(ioas_, any_area());
      case 12: return copy_from_other();
      case 13: return reserve();
      case 14: return allow();
      case 15: return attach_detach();
      case 16: return dirty();
      case 17: return huge_pages();
      default: return memory();
    }
  }
  void map() {
    const u64 len = ((rng_() % 64) + 1) * k4K + ((rng_() % 4 == 0) ? k2M : 0);
    const u64 off = (rng_() % ((kSrcLen - len) / k4K)) * k4K;
    auto r = e_.map(ioas_, MapArgs{std::nullopt, len, src_, off, Prot::kReadWrite});
    expect_ok(r, "map");
    if (!r.ok()) return;
    auto u = e_.uva(ioas_, *r + len - 1);
    expect(u.ok() && *u == src_va(t_) + off + len - 1, "uva of a fresh area");
    mine_.emplace_back(*r, len);
  }
  void unmap() {
    const std::size_t k = rng_() % mine_.size();
    auto r = e_.unmap(ioas_, mine_[k].first, mine_[k].second);
    expect(r.ok() && *r == mine_[k].second, "unmap of one of its areas");
    mine_.erase(mine_.begin() + static_cast<std::ptrdiff_t>(k));
  }
  void cut() {
    const std::size_t k = rng_() % mine_.size();
    const auto [iova, len] = mine_[k];
    if (len < 2 * k4K) return;
    const u64 at = iova + ((rng_() % (len / k4K - 1)) + 1) * k4K - 1;
    expect_ok(e_.cut(ioas_, at), "cut");
    mine_[k] = {iova, at - iova + 1};
    mine_.emplace_back(at + 1, iova + len - 1 - at);
  }
  void pin() {
    const auto [iova, len] = any_area();
    auto p = e_.pin(ioas_, PinArgs{iova, len, true, true});
    expect_ok(p, "pin");
    if (p.ok()) expect_ok(e_.unpin(ioas_, *p), "unpin");
  }
  // A copy of [iova, iova+len) of `from` into this IOAS, at an automatic
  // IOVA. From another IOAS the range may be gone by now: ENOENT.
  void copy_from(const std::string& from, std::pair<u64, u64> area) {
    auto r = e_.copy(ioas_, CopyArgs{from, area.first, area.second, std::nullopt, Prot::kReadWrite});
    if (!r.ok() && from != ioas_ && r.code() == ENOENT) return;
    expect_ok(r, "copy from " + from);
    if (r.ok()) mine_.emplace_back(*r, area.second);
  }
  void copy_from_other() {
    const std::string other = w_name((t_ + 1) % kIoases);
    auto st = e_.snapshot(other);
    expect_ok(st, "snapshot of " + other);
    if (!st.ok() || st->areas.empty()) return;
    const AreaInfo& a = st->areas[rng_() % st->areas.size()];
    copy_from(other, {a.iova.start, a.iova.last - a.iova.start + 1});
  }
  void reserve() {
    const std::string owner = "u" + std::to_string(t_);
    expect_ok(e_.reserve(ioas_, Range{kUserResv, kUserResv + 0xffff}, owner), "reserve");
    expect_ok(e_.unreserve(ioas_, owner), "unreserve");
  }
  void allow() {
    // Everything automatic maps use; it overlaps the device's MSI region in w0.
    const Range all[] = {Range{k4K, kUserResv - 1}};
    Status st = e_.allow(ioas_, all);
    expect(st.ok() || (t_ == 0 && st.code() == EADDRINUSE), "allow: " + (st.ok() ? "" : st.error().message));
    expect_ok(e_.allow(ioas_, {}), "allow nothing (no restriction)");
  }
  void attach_detach() {
    const std::string dev = "x" + std::to_string(t_), dom = "e" + std::to_string(t_);
    expect_ok(e_.attach(ioas_, AttachArgs{dev, dom, Format::kX86_64, {}, {}, {}, {}}), "attach a new domain");
    if (!mine_.empty()) {
      const auto [iova, len] = any_area();
      auto tr = e_.translate(dom, iova + len - 1);
      auto u = e_.uva(ioas_, iova + len - 1);
      expect(tr.ok() && *tr && u.ok() && source_of_pa((*tr)->pa, kIoases) >= 0, "translate in the new domain");
    }
    expect_ok(e_.detach(dev), "detach");
  }
  void dirty() {
    if (dom_.empty()) return;
    const auto [iova, len] = any_area();
    expect_ok(e_.set_dirty_tracking(dom_, rng_() % 2 ? DirtyMode::kOn : DirtyMode::kOnSplit), "dirty on");
    auto d = e_.dma(dom_, DmaDir::kWrite, iova, len);
    expect(d.ok() && !d->faulted, "dma write into its own area");
    auto r = e_.read_dirty(dom_, iova, len, k4K, false);
    expect(r.ok() && r->size() == 1 && r->front() == Range{iova, iova + len - 1}, "read_dirty of what it wrote");
    expect_ok(e_.set_dirty_tracking(dom_, DirtyMode::kOff), "dirty off");
  }
  void huge_pages() {
    Status off = e_.set_huge_pages(ioas_, false);
    // Refused while a domain holds areas (its leaves may be large).
    expect(off.ok() || (!dom_.empty() && off.code() == EINVAL), "huge pages off");
    expect_ok(e_.set_huge_pages(ioas_, true), "huge pages on");
  }
  void memory() {
    const std::string spare = "x" + src_;
    expect_ok(e_.add_memory(MemorySource{spare, 0x10000 * (static_cast<u64>(t_) + 1), k4K, 0x10000, true}),
              "add memory");
    expect_ok(e_.remove_memory(spare), "remove memory");
    if (!mine_.empty()) expect(e_.remove_memory(src_).code() == EBUSY, "remove memory in use: EBUSY");
  }

  Engine& e_;
  const int t_;
  const std::string ioas_, dom_, src_;
  std::mt19937_64 rng_;
  std::function<void(const std::string&)> fail_;
  std::vector<std::pair<u64, u64>> mine_;  // iova, len
};

// One read of every kind, each answer checked against the sources.
void read_everything(const Engine& e, std::mt19937_64& rng, const std::function<void(const std::string&)>& fail,
                     std::atomic<u64>& found) {
  const std::string s = w_name(static_cast<int>(rng() % kIoases)), dom = d_name(static_cast<int>(rng() % 2));
  const u64 iova = 0x1000 + (rng() % 0x8000) * k4K + rng() % k4K;
  auto tr = e.translate(dom, iova);
  if (!tr.ok()) fail("translate: " + tr.error().message);
  else if (*tr && source_of_pa((*tr)->pa, kIoases) < 0) fail("translation outside every source");
  else if (*tr) ++found;
  auto lv = e.leaves(dom, Range{iova & ~(k2M - 1), (iova & ~(k2M - 1)) + 0xffff});
  if (!lv.ok()) fail("leaves: " + lv.error().message);
  else
    for (const LeafInfo& l : *lv) {
      const int src = source_of_pa(l.pa, kIoases);
      if (src < 0 || l.uaddr - src_va(src) != l.pa - src_pa(src)) fail("a leaf's pa and uaddr disagree");
    }
  auto u = e.uva(s, iova);
  if (u.ok() ? (*u < src_va(0) || *u >= src_va(kIoases)) : u.code() != ENOENT) fail("uva");
  auto rg = e.ranges(s);
  if (!rg.ok() || rg->ranges.empty() || !std::has_single_bit(rg->alignment)) fail("ranges");
  auto st = e.snapshot(s);
  if (!st.ok()) {
    fail("snapshot: " + st.error().message);
  } else {
    for (std::size_t i = 0; i < st->areas.size(); ++i) {
      const AreaInfo& a = st->areas[i];
      if (i && st->areas[i - 1].iova.last >= a.iova.start) fail("snapshot: areas overlap or are out of order");
      if (a.source.size() != 2 || a.source[0] != 'm') fail("snapshot: an area of source " + a.source);
    }
  }
  if (e.ioas_names().size() != kIoases) fail("ioas_names");
  if (e.memories().size() < kIoases) fail("memories");
  if (rng() % 64 == 0) {
    auto v = e.check();
    if (!v.empty()) fail("check during the run: " + v.front().detail);
  }
}

TEST(Stress, EveryKindOfWriteOnSeveralIoasesBesideReaders) {
  auto e = stress_engine();
  for (int t = 0; t < kIoases; ++t) {
    ASSERT_TRUE(e->create_ioas(w_name(t), {}).ok());
    ASSERT_TRUE(e->add_memory(MemorySource{"m" + std::to_string(t), src_va(t), kSrcLen, src_pa(t), true}).ok());
  }
  ASSERT_TRUE(
      e->attach("w0", AttachArgs{"nic", "d0", Format::kX86_64, {}, {}, {{{0xfee00000, 0xfeefffff}, ResvType::kMsi}}, {}})
          .ok());
  ASSERT_TRUE(e->attach("w1", AttachArgs{"gpu", "d1", Format::kArmLpae, {}, {}, {}, {}}).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<u64> reads{0}, found{0};
  std::function<void(const std::string&)> fail = [&](const std::string& what) {
    if (bad.fetch_add(1) < 5) ADD_FAILURE() << what;
  };
  std::vector<std::thread> writers, readers;
  for (int t = 0; t < kIoases; ++t)
    writers.emplace_back([&, t] { MixWriter(*e, t, fail).run(kMixIterations, bad); });
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&, r] {
      std::mt19937_64 rng(200 + static_cast<u64>(r));
      while (!stop && !bad) {
        read_everything(*e, rng, fail, found);
        ++reads;
      }
    });
  for (auto& w : writers) w.join();
  stop = true;
  for (auto& r : readers) r.join();

  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0u);
  for (int t = 0; t < kIoases; ++t) EXPECT_TRUE(e->snapshot(w_name(t))->areas.empty()) << w_name(t);
  expect_clean_end(*e);
  std::printf("[ stress ] %llu rounds of reads (%llu translations found) beside %d writers on %d IOASes\n",
              static_cast<unsigned long long>(reads.load()), static_cast<unsigned long long>(found.load()), kIoases,
              kIoases);
}


// Readers translating pages of one IOAS while its writer maps, unmaps,
// attaches and detaches there: translate takes no IOAS lock (a reader of
// the page memory instead, include/ioas/impl.hpp), so it walks tables the
// writer is changing, unlinking and freeing. Every page of the test has one
// pa and one prot whenever it is mapped (slot k always maps the same
// source bytes, with the same permission), so every answer must be "not
// mapped" or exactly that pa and prot: a torn entry, a table page reused
// while a reader was inside it, or a leaf of another slot would show. The
// writer maps a slot whole (one 2M leaf) or in pieces (4K leaves in a
// table, which the next whole map unlinks and frees), so table pages are
// freed and reused all through the run.
constexpr int kSlots = 16;
constexpr u64 kSlotBase = 0x40000000;  // slot k at kSlotBase + k * 2M
constexpr int kSlotIterations = 4000;

u64 slot_iova(int k) { return kSlotBase + static_cast<u64>(k) * k2M; }
Prot slot_prot(int k) { return k % 3 == 0 ? Prot::kRead : Prot::kReadWrite; }

TEST(Stress, TranslateBesideAWriterInTheSameIoasSeesOldOrNewPages) {
  auto e = stress_engine();
  ASSERT_TRUE(e->create_ioas("s", {}).ok());
  ASSERT_TRUE(e->add_memory(MemorySource{"m", src_va(0), kSlots * k2M, src_pa(0), true}).ok());
  ASSERT_TRUE(e->attach("s", AttachArgs{"nic", "dx", Format::kX86_64, {}, {}, {}, {}}).ok());
  ASSERT_TRUE(e->attach("s", AttachArgs{"gpu", "da", Format::kArmLpae, {}, {}, {}, {}}).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<u64> found{0}, absent{0};
  auto fail = [&](const std::string& what) {
    if (bad.fetch_add(1) < 5) ADD_FAILURE() << what;
  };
  std::thread writer([&] {
    std::mt19937_64 rng(11);
    std::vector<std::vector<std::pair<u64, u64>>> areas(kSlots);  // per slot: iova, len
    bool extra = false;  // domain dz attached
    for (int i = 0; i < kSlotIterations && !bad; ++i) {
      if (rng() % 64 == 0) {
        Status st = extra ? e->detach("z") : e->attach("s", AttachArgs{"z", "dz", Format::kX86_64, {}, {}, {}, {}});
        if (!st.ok()) fail(std::string(extra ? "detach: " : "attach: ") + st.error().message);
        extra = !extra;
        continue;
      }
      const int k = static_cast<int>(rng() % kSlots);
      if (!areas[k].empty()) {
        for (const auto& [iova, len] : areas[k]) {
          auto r = e->unmap("s", iova, len);
          if (!r.ok() || *r != len) fail("unmap of a slot's area");
        }
        areas[k].clear();
        continue;
      }
      // Whole (a 2M leaf), or cut at a page boundary into two areas, the
      // second of which may be left out (4K leaves in a table).
      std::vector<std::pair<u64, u64>> shape;
      if (rng() % 2) {
        shape.emplace_back(slot_iova(k), k2M);
      } else {
        const u64 cut = ((rng() % 511) + 1) * k4K;
        shape.emplace_back(slot_iova(k), cut);
        if (rng() % 2) shape.emplace_back(slot_iova(k) + cut, k2M - cut);
      }
      for (const auto& [iova, len] : shape) {
        auto r = e->map("s", MapArgs{iova, len, "m", iova - kSlotBase, slot_prot(k)});
        if (!r.ok() || *r != iova) {
          fail("map of a slot's area: " + (r.ok() ? std::to_string(*r) : r.error().message));
          continue;
        }
        areas[k].emplace_back(iova, len);
      }
    }
    for (auto& a : areas)
      for (const auto& [iova, len] : a)
        if (!e->unmap("s", iova, len).ok()) fail("final unmap");
    if (extra && !e->detach("z").ok()) fail("final detach");
    stop = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&, r] {
      std::mt19937_64 rng(300 + static_cast<u64>(r));
      const char* doms[] = {"dx", "da", "dz"};
      while (!stop && !bad) {
        const int k = static_cast<int>(rng() % kSlots);
        const u64 iova = slot_iova(k) + rng() % k2M;
        const char* dom = doms[rng() % 3];
        auto tr = e->translate(dom, iova);
        if (!tr.ok()) {
          // dz comes and goes.
          if (!(tr.code() == ENOENT && std::string_view(dom) == "dz")) fail("translate: " + tr.error().message);
          continue;
        }
        if (!*tr) {
          ++absent;
          continue;
        }
        ++found;
        const u64 want = src_pa(0) + (iova - kSlotBase);
        if ((*tr)->pa != want || (*tr)->prot != slot_prot(k))
          fail(std::string(dom) + " translate " + std::to_string(iova) + ": pa " + std::to_string((*tr)->pa) +
               " prot " + std::to_string(static_cast<int>((*tr)->prot)) + ", the page only ever maps pa " +
               std::to_string(want) + " prot " + std::to_string(static_cast<int>(slot_prot(k))));
      }
    });
  writer.join();
  for (auto& r : readers) r.join();

  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(found.load(), 0u) << "no reader ever saw a mapped page";
  EXPECT_GT(absent.load(), 0u) << "no reader ever saw an unmapped page";
  EXPECT_TRUE(e->snapshot("s")->areas.empty());
  expect_clean_end(*e);
  std::printf("[ stress ] %llu translations found, %llu not mapped, beside one writer in the same IOAS\n",
              static_cast<unsigned long long>(found.load()), static_cast<unsigned long long>(absent.load()));
}

// A gate a table's map() waits at while it is closed.
class Gate {
 public:
  void close() { set(true); }
  void open() { set(false); }
  void pass() {
    std::unique_lock l(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(l, [&] { return !closed_; });
    --waiting_;
  }
  // Waits (up to 30 s) until a thread waits at the gate.
  bool someone_waits() {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(30), [&] { return waiting_ > 0; });
  }

 private:
  void set(bool closed) {
    std::lock_guard l(mu_);
    closed_ = closed;
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int waiting_ = 0;
};

// The engine's own table, whose map() first passes a gate.
class GatedTable final : public IoPageTable {
 public:
  GatedTable(std::unique_ptr<IoPageTable> t, Gate& g) : t_(std::move(t)), gate_(g) {}
  Status map(Range iova, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) override {
    gate_.pass();
    return t_->map(iova, pa, uaddr, prot, pgsizes);
  }
  void unmap(Range iova) override { t_->unmap(iova); }
  Status split(u64 last) override { return t_->split(last); }
  void unsplit(u64 last) override { t_->unsplit(last); }
  Status relayout(u64 pgsizes) override { return t_->relayout(pgsizes); }
  std::optional<Translation> translate(u64 iova) const override { return t_->translate(iova); }
  DmaOutcome dma(DmaDir dir, Range iova) override { return t_->dma(dir, iova); }
  std::vector<Range> read_dirty(Range iova, u64 pgsize, bool keep) override { return t_->read_dirty(iova, pgsize, keep); }
  void clear_dirty() override { t_->clear_dirty(); }
  void leaves(Range r, const std::function<void(const LeafInfo&)>& f) const override { t_->leaves(r, f); }
  void flush_iotlb() override { t_->flush_iotlb(); }
  u64 flushes() const override { return t_->flushes(); }
  u64 table_pages() const override { return t_->table_pages(); }
  std::size_t mapping_count() const override { return t_->mapping_count(); }
  void for_each_mapping(const std::function<void(const PtMapping&)>& f) const override { t_->for_each_mapping(f); }
  std::size_t verify() const override { return t_->verify(); }

 private:
  std::unique_ptr<IoPageTable> t_;
  Gate& gate_;
};

// A thread-safe engine whose domains in IOAS "held" map through `gate`.
std::unique_ptr<Engine> engine_gating_held(Gate& gate) {
  ImplOptions o;
  o.tables = [&gate](const DomainConfig& c, const std::function<Result<std::unique_ptr<IoPageTable>>()>& builtin)
      -> Result<std::unique_ptr<IoPageTable>> {
    auto t = builtin();
    if (!t.ok() || c.ioas != "held") return t;
    return std::unique_ptr<IoPageTable>(std::make_unique<GatedTable>(std::move(t).value(), gate));
  };
  return make_engine(o);
}

// Holds a map of one page inside IOAS "held" (its domain's table waits at
// the closed gate, with the IOAS's lock held) while `calls` run on a thread
// of their own, so that a wait among them is seen as a timeout rather than
// a hang; then lets the map finish. Whether the calls finished within 10 s.
bool finish_while_a_map_is_held(Engine& e, Gate& gate, const std::function<void()>& calls) {
  gate.close();
  std::thread held([&] { EXPECT_TRUE(e.map("held", MapArgs{std::nullopt, k4K, "m0", 0, Prot::kReadWrite}).ok()); });
  const bool reached = gate.someone_waits();
  EXPECT_TRUE(reached) << "the held map never reached its table";
  std::promise<void> done;
  std::thread other([&] {
    if (reached) calls();
    done.set_value();
  });
  const bool finished = done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  gate.open();
  held.join();
  other.join();
  return reached && finished;
}

// A map held inside IOAS "held" keeps neither writers nor readers of IOAS
// "free" waiting: their calls finish while it is held.
TEST(Stress, AWriterHeldInOneIoasKeepsNoCallOnAnotherWaiting) {
  Gate gate;
  auto e = engine_gating_held(gate);
  ASSERT_TRUE(e->add_memory(MemorySource{"m0", src_va(0), kSrcLen, src_pa(0), true}).ok());
  for (const char* s : {"held", "free"}) {
    ASSERT_TRUE(e->create_ioas(s, {}).ok());
    ASSERT_TRUE(e->attach(s, AttachArgs{std::string("dev-") + s, std::string("dom-") + s, Format::kX86_64, {}, {}, {}, {}}).ok());
  }
  bool ok = false;
  EXPECT_TRUE(finish_while_a_map_is_held(*e, gate, [&] {
    auto r = e->map("free", MapArgs{std::nullopt, k4K, "m0", k4K, Prot::kReadWrite});
    ok = r.ok();
    if (ok) {
      auto t = e->translate("dom-free", *r);
      ok = t.ok() && *t && (*t)->pa == src_pa(0) + k4K;
      ok = ok && e->uva("free", *r).ok() && e->snapshot("free").ok() && e->ranges("free").ok();
      ok = ok && e->unmap("free", *r, k4K).ok();
    }
  })) << "calls on IOAS free waited for the map held in IOAS held";
  EXPECT_TRUE(ok);
  EXPECT_EQ(e->snapshot("held")->areas.size(), 1u);
}

// ranges takes no IOAS lock: with a map held inside IOAS "held", a ranges
// of "held" still answers, as before the map.
TEST(Stress, RangesNeverWaitsForAWriterHeldInItsIoas) {
  Gate gate;
  auto e = engine_gating_held(gate);
  ASSERT_TRUE(e->add_memory(MemorySource{"m0", src_va(0), kSrcLen, src_pa(0), true}).ok());
  ASSERT_TRUE(e->create_ioas("held", {}).ok());
  ASSERT_TRUE(e->attach("held", AttachArgs{"dev", "dom", Format::kX86_64, {}, {}, {{{0xfee00000, 0xfeefffff}, ResvType::kMsi}}, {}}).ok());
  const auto before = e->ranges("held");
  ASSERT_TRUE(before.ok());
  std::optional<Result<IovaRanges>> r;
  EXPECT_TRUE(finish_while_a_map_is_held(*e, gate, [&] { r = e->ranges("held"); }))
      << "ranges waited for the map held in its IOAS";
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(**r, *before);
}

// What ranges answers is one state whole: its valid ranges and its
// iova_alignment together. The writer steps through reserve, pin, unpin,
// unreserve, so the states are (all, 1), (hole, 1), (hole, 4K), (hole, 1),
// (all, 1) and again; (all, 4K) is never a state, and a reader that took
// the ranges and the alignment from two moments could answer it (rarely:
// the moments would have to straddle a reserve and a pin). Under TSan the
// test also shows that the readers, which take no IOAS lock, read nothing
// the writer changes in place.
TEST(Stress, RangesBesideReservesAndPinsAnswersOneStateWhole) {
  auto e = stress_engine();
  ASSERT_TRUE(e->add_memory(MemorySource{"m0", src_va(0), kSrcLen, src_pa(0), true}).ok());
  ASSERT_TRUE(e->create_ioas("s", {}).ok());
  ASSERT_TRUE(e->map("s", MapArgs{k1G, k2M, "m0", 0, Prot::kReadWrite}).ok());
  const auto all = e->ranges("s");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->alignment, 1u) << "the test needs an IOAS whose alignment a pin raises";
  const Range hole{2 * k1G, 2 * k1G + k4K - 1};
  constexpr int kRounds = 3000;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<u64> reads{0}, saw_hole{0}, saw_pinned{0};
  auto reader = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      auto r = e->ranges("s");
      reads.fetch_add(1, std::memory_order_relaxed);
      if (!r.ok()) {
        ++bad;
        continue;
      }
      const bool whole = r->ranges == all->ranges;
      if (!whole) saw_hole.fetch_add(1, std::memory_order_relaxed);
      if (r->alignment != 1) saw_pinned.fetch_add(1, std::memory_order_relaxed);
      if ((r->alignment != 1 && r->alignment != k4K) || (whole && r->alignment != 1)) ++bad;
    }
  };
  std::thread r1(reader), r2(reader);
  // The rounds start once both readers read: unscheduled readers would
  // otherwise see none of them.
  while (reads.load() < 2) std::this_thread::yield();
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(e->reserve("s", hole, "w").ok());
    auto id = e->pin("s", PinArgs{k1G, k4K, false, true});
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(e->unpin("s", *id).ok());
    ASSERT_TRUE(e->unreserve("s", "w").ok());
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0) << "a ranges answer that is no state of the IOAS";
  std::printf("ranges beside reserve/pin: %llu reads, %llu with the hole, %llu pinned\n",
              static_cast<unsigned long long>(reads.load()), static_cast<unsigned long long>(saw_hole.load()),
              static_cast<unsigned long long>(saw_pinned.load()));
  EXPECT_GT(reads.load(), 0u);
}

}  // namespace
}  // namespace ioas
