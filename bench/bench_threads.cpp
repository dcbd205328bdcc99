// ioas_bench_threads: the thread-safe engine (make_engine, thread_safe) under
// concurrent use.
//
// Translate/neighbor:N: one reader translating IOVAs of a domain (of IOAS
// s0) that maps kAreas 4K areas, beside a second thread doing, the whole
// time:
//   0  nothing (no second thread);
//   1  automatic 4K maps and their unmaps in the reader's IOAS (s0);
//   2  the same in another IOAS of the engine (s1);
//   3  the same in an engine of its own: the same work, sharing nothing
//      with the reader but the machine (the heap allocator aside);
//   4  a loop of arithmetic on registers: a busy CPU and nothing else.
// MapTwoIoases/threads:1 and :2: each benchmark thread maps and unmaps 4K
// areas (automatic IOVA) in an IOAS of its own, each with an x86-64 domain,
// all in one engine; MapTwoEngines/threads:2 the same with each thread in an
// engine of its own (nothing shared but the machine).
//
// What the figures mean on a small, shared machine. Real-time rates (items/s
// with UseRealTime) are what a user sees, and need two idle CPUs: on two
// vCPUs with anything else running, a second busy thread takes CPU time
// from the first whatever the code does, and two vCPUs may be hyperthreads
// of one core. So every run also reports, per thread:
//   cpu_ns_per_op  the thread's own CPU time (CLOCK_THREAD_CPUTIME_ID) per
//                  operation: what the code costs it, however the machine
//                  shares its CPUs. Code that makes threads interfere
//                  (a cache line both write, a lock one waits at by
//                  spinning or yielding) raises it;
//   cpu_share      the thread's CPU time / the run's real time: below 1, the
//                  machine gave it less than a CPU (the real-time rate then
//                  measures the machine);
//   invol_switches involuntary context switches per second (getrusage):
//                  preemption by other threads of the machine.
// The code's figures are then ratios of CPU time per operation: a reader
// beside a writer / alone (the reader's rate were it given its CPU), and two
// threads on two IOASes / one (1.8x throughput on two free CPUs is
// cpu_ns_per_op(2 threads) <= 2/1.8 cpu_ns_per_op(1 thread)). The
// neighbors 3 and 4 and MapTwoEngines are controls: what a thread costs
// another when the code shares nothing; if neighbor 1 costs the reader no
// more than neighbor 3 does, what is left is the machine, not the engine.
//
// IOAS_BENCH_PIN=1 pins benchmark thread i (and the neighbor, as thread 1)
// to CPU i, to keep threads from migrating. Every map, unmap and
// translation is checked to succeed; a wrong answer stops the benchmark
// with SkipWithError.
//
//   ioas_bench_threads --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
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
// each stays its own 4K leaf); a writer's automatic 4K maps in s0 land in
// the lowest hole, from PAGE up below kReadBase: in the leaf table the
// reader walks, on lines of it the reader does not read.
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

void pin_to_cpu(int cpu) {
  const char* v = std::getenv("IOAS_BENCH_PIN");
  if (!v || *v != '1') return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % static_cast<int>(std::thread::hardware_concurrency()), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// The calling thread's CPU time, real time and involuntary context switches
// from construction to stop().
class ThreadClock {
 public:
  ThreadClock() { now(cpu0_, wall0_, invol0_); }
  void stop() { now(cpu_, wall_, invol_); }
  double cpu_s() const { return cpu_ - cpu0_; }
  double wall_s() const { return wall_ - wall0_; }
  double invol() const { return static_cast<double>(invol_ - invol0_); }

 private:
  static void now(double& cpu, double& wall, long& invol) {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    cpu = static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
    clock_gettime(CLOCK_MONOTONIC, &t);
    wall = static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
    rusage u{};
    getrusage(RUSAGE_THREAD, &u);
    invol = u.ru_nivcsw;
  }
  double cpu0_ = 0, wall0_ = 0, cpu_ = 0, wall_ = 0;
  long invol0_ = 0, invol_ = 0;
};

// The per-thread counters above, averaged over the run's threads.
void report(benchmark::State& state, const ThreadClock& c, u64 ops, const std::string& prefix = "") {
  using C = benchmark::Counter;
  const double wall = c.wall_s() > 0 ? c.wall_s() : 1;
  state.counters[prefix + "cpu_ns_per_op"] = C(ops ? c.cpu_s() * 1e9 / static_cast<double>(ops) : 0, C::kAvgThreads);
  state.counters[prefix + "cpu_share"] = C(c.cpu_s() / wall, C::kAvgThreads);
  state.counters[prefix + "invol_switches"] = C(c.invol() / wall, C::kAvgThreads);
}

void Translate(benchmark::State& state) {
  const int neighbor = static_cast<int>(state.range(0));
  auto e = engine_with(2);
  auto own = neighbor == 3 ? engine_with(1) : nullptr;
  if (!e || !map_reader_areas(*e) || (neighbor == 3 && !own)) {
    state.SkipWithError("setup failed");
    return;
  }
  // Where the writer's maps in s0 land (see kReadBase).
  if (auto probe = e->map("s0", MapArgs{std::nullopt, k4K, "m", 0, Prot::kReadWrite});
      !probe.ok() || *probe >= kReadBase || !e->unmap("s0", *probe, k4K).ok()) {
    state.SkipWithError("an automatic map in s0 does not land below the reader's areas");
    return;
  }
  std::atomic<bool> stop{false}, neighbor_bad{false}, neighbor_started{false};
  std::atomic<u64> neighbor_ops{0};
  ThreadClock neighbor_clock;
  std::thread w;
  if (neighbor != 0)
    w = std::thread([&] {
      pin_to_cpu(1);
      neighbor_started = true;
      ThreadClock c;
      u64 k = 0;
      if (neighbor == 4) {
        u64 x = 1;
        while (!stop.load(std::memory_order_relaxed)) {
          for (int i = 0; i < 256; ++i) x = x * 6364136223846793005u + 1442695040888963407u;
          benchmark::DoNotOptimize(x);
          ++k;
        }
      } else {
        Engine& target = neighbor == 3 ? *own : *e;
        const std::string ioas = neighbor == 2 ? "s1" : "s0";
        while (!stop.load(std::memory_order_relaxed)) {
          if (!map_unmap(target, ioas, (k++ % 1024) * k4K)) {
            neighbor_bad = true;
            break;
          }
        }
      }
      c.stop();
      neighbor_ops = k;
      neighbor_clock = c;
    });
  // Pinned after the neighbor is made (a thread starts with its maker's
  // CPUs), and timed once it runs: under a real-time policy a thread that
  // started on the reader's CPU would otherwise wait there for the whole run.
  pin_to_cpu(0);
  while (neighbor != 0 && !neighbor_started.load()) std::this_thread::yield();
  ThreadClock c;
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
  c.stop();
  stop = true;
  if (w.joinable()) w.join();
  if (neighbor_bad) state.SkipWithError("the neighbor's map or unmap failed");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  report(state, c, i);
  if (neighbor != 0) {
    state.counters["neighbor_ops"] = static_cast<double>(neighbor_ops.load());
    state.counters["neighbor_cpu_share"] = neighbor_clock.cpu_s() / (neighbor_clock.wall_s() > 0 ? neighbor_clock.wall_s() : 1);
  }
}
BENCHMARK(Translate)->ArgName("neighbor")->DenseRange(0, 4)->UseRealTime();

// One engine for every thread of a run: thread 0 makes it, the others wait
// for it at the first iteration (Google Benchmark starts the timed loops of
// all threads together). With `own`, every thread makes an engine of its
// own.
std::mutex g_mu;
std::shared_ptr<Engine> g_engine;

void map_threads(benchmark::State& state, bool own) {
  std::shared_ptr<Engine> e;
  if (own) {
    e = engine_with(1);
  } else {
    std::lock_guard<std::mutex> g(g_mu);
    if (!g_engine) g_engine = engine_with(2);
    e = g_engine;
  }
  if (!e) {
    state.SkipWithError("setup failed");
    return;
  }
  pin_to_cpu(state.thread_index());
  const std::string ioas = own ? "s0" : "s" + std::to_string(state.thread_index());
  u64 k = 0;
  std::optional<ThreadClock> c;
  for (auto _ : state) {
    if (!c) c.emplace();  // from the first iteration: after every thread's setup
    if (!map_unmap(*e, ioas, (k++ % 1024) * k4K)) {
      state.SkipWithError("map or unmap failed");
      break;
    }
  }
  if (c) {
    c->stop();
    report(state, *c, k);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  e.reset();
  if (!own) {
    std::lock_guard<std::mutex> g(g_mu);
    g_engine.reset();  // the last thread out frees it (shared ownership)
  }
}
void MapTwoIoases(benchmark::State& state) { map_threads(state, false); }
void MapTwoEngines(benchmark::State& state) { map_threads(state, true); }
BENCHMARK(MapTwoIoases)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(MapTwoEngines)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace ioas

BENCHMARK_MAIN();
