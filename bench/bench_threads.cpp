// ioas_bench_threads: the thread-safe engine (make_engine, thread_safe) under
// concurrent use.
//
// Translate/writer:0, :1, :2: one reader translating IOVAs of a domain (of
// IOAS s0) that maps kAreas 4K areas; writer:1 runs a second thread that maps
// and unmaps (automatic 4K maps, then their unmaps) in the same IOAS the
// whole time, writer:2 the same in another IOAS (s1). The items/s ratio
// writer:1 / writer:0 is how much a writer slows a reader of its IOAS down;
// writer:2 / writer:0 how much a writer elsewhere does.
//
// MapTwoIoases/threads:1 and :2: each benchmark thread maps and unmaps 4K
// areas (automatic IOVA) in an IOAS of its own, each with an x86-64 domain
// attached. Their items/s ratio (threads:2 / threads:1) is how far writers on
// different IOASes run in parallel.
//
// Every answer is checked: a translation must give the area's pa, a map must
// succeed; a wrong answer stops the benchmark with SkipWithError.
//
//   ioas_bench_threads --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ioas/impl.hpp"

namespace ioas {
namespace {

constexpr u64 kAreas = 4096;
constexpr u64 kSrcVa = 0x7f0000000000;
constexpr u64 kSrcPa = 0x40000000;
constexpr u64 kSrcLen = 0x10000000;  // 256 MiB
// The reader's areas sit at kReadBase + i * 8K (a hole between each, so
// each stays its own 4K leaf); the writer's automatic maps land above them.
constexpr u64 kReadBase = 0x100000;

std::unique_ptr<Engine> engine_with(int ioases) {
  auto e = make_engine();
  if (!e->add_memory(MemorySource{"m", kSrcVa, kSrcLen, kSrcPa, true}).ok()) return nullptr;
  for (int i = 0; i < ioases; ++i) {
    const std::string n = std::to_string(i);
    if (!e->create_ioas("s" + n, {}).ok()) return nullptr;
    if (!e->attach("s" + n, AttachArgs{"dev" + n, "d" + n, Format::kX86_64, {}, {}, {}, {}}).ok()) return nullptr;
  }
  return e;
}

// Maps the reader's areas into s0 (domain d0).
bool map_reader_areas(Engine& e) {
  for (u64 i = 0; i < kAreas; ++i)
    if (!e.map("s0", MapArgs{kReadBase + i * 2 * k4K, k4K, "m", i * k4K, Prot::kReadWrite}).ok()) return false;
  return true;
}

// One automatic 4K map and its unmap in `ioas`; false on a wrong answer.
bool map_unmap(Engine& e, const std::string& ioas, u64 offset) {
  auto r = e.map(ioas, MapArgs{std::nullopt, k4K, "m", offset, Prot::kReadWrite});
  if (!r.ok()) return false;
  auto u = e.unmap(ioas, *r, k4K);
  return u.ok() && *u == k4K;
}

void Translate(benchmark::State& state) {
  const bool writer = state.range(0) != 0;
  const std::string writer_ioas = state.range(0) == 2 ? "s1" : "s0";
  auto e = engine_with(2);
  if (!e || !map_reader_areas(*e)) {
    state.SkipWithError("setup failed");
    return;
  }
  std::atomic<bool> stop{false}, writer_bad{false};
  std::atomic<u64> writes{0};
  std::thread w;
  if (writer)
    w = std::thread([&] {
      u64 k = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!map_unmap(*e, writer_ioas, (k++ % 1024) * k4K)) {
          writer_bad = true;
          return;
        }
        writes.fetch_add(1, std::memory_order_relaxed);
      }
    });
  u64 i = 0;
  for (auto _ : state) {
    const u64 a = (i * 2654435761u) % kAreas;
    ++i;
    auto t = e->translate("d0", kReadBase + a * 2 * k4K + 0x10);
    if (!t.ok() || !*t || (*t)->pa != kSrcPa + a * k4K + 0x10) {
      state.SkipWithError("wrong translation");
      break;
    }
  }
  stop = true;
  if (w.joinable()) w.join();
  if (writer_bad) state.SkipWithError("the writer's map or unmap failed");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["writer_ops"] = static_cast<double>(writes.load());
}
BENCHMARK(Translate)->ArgName("writer")->Arg(0)->Arg(1)->Arg(2)->UseRealTime();

// One engine for every thread of a run: thread 0 makes it, the others wait
// for it at the first iteration (Google Benchmark starts the timed loops of
// all threads together).
std::mutex g_mu;
std::shared_ptr<Engine> g_engine;

void MapTwoIoases(benchmark::State& state) {
  std::shared_ptr<Engine> e;
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (!g_engine) g_engine = engine_with(2);
    e = g_engine;
  }
  if (!e) {
    state.SkipWithError("setup failed");
    return;
  }
  const std::string ioas = "s" + std::to_string(state.thread_index());
  u64 k = 0;
  for (auto _ : state) {
    if (!map_unmap(*e, ioas, (k++ % 1024) * k4K)) {
      state.SkipWithError("map or unmap failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  e.reset();
  std::lock_guard<std::mutex> g(g_mu);
  g_engine.reset();  // the last thread out frees it (shared ownership)
}
BENCHMARK(MapTwoIoases)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace ioas

BENCHMARK_MAIN();
