// ioas_bench: automatic map + unmap at N live areas, for the production
// engine (impl) and the executable spec (model), and memory per area.
//
// Setup (the same for both engines, through the public interface): IOAS
// "a", one memory source; one 4K area at PAGE, then copies of the areas onto
// the space right after them double the count (copy makes one area per
// source piece) until there are N contiguous 4K areas; then the area in the
// middle is unmapped. The timed loop is one automatic 4K map, which must land
// in that middle hole (the lowest fitting one, so the search descends into
// the middle of the tree), and the unmap of it; the benchmark checks the
// chosen IOVA every time.
//
// Memory: a counting global operator new/delete (usable size of every live
// block) measures the bytes an engine holds after the setup, per area.
//
// TreeMapUnmap: the engine's space tree (the B+tree) alone, doing what the
// engine's loop asks of it (lowest_fit, insert, erase_area) on the same
// layout.
//
//   ioas_bench --benchmark_filter=Impl       the impl sizes (1k .. 1M)
//   ioas_bench --benchmark_filter=Model      the model (1k .. 100k; slow setup)
//   ioas_bench --benchmark_filter=Tree       the space tree alone (1k .. 1M)
//   ioas_bench --benchmark_filter=BytesPerArea/Impl   bytes per area at 1M and 10M
// AutoMapUnmap/Impl is the thread-safe engine (its lock taken per call);
// ImplUnlocked the same without the lock.
// Medians: --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "ioas/engine.hpp"
#include "ioas/impl.hpp"
#include "space_tree.hpp"

// ---- a counting allocator: live bytes, as malloc sees them ----
// The replaced global operator new/delete are built on malloc/free, which GCC
// flags as mismatched when it inlines them; here the pairing is intended.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<long long> g_live_bytes{0};
}
void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  g_live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept {
  if (!p) return;
  g_live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }

namespace ioas {
namespace {

constexpr u64 kVa = u64{1} << 40;

void die(const char* what, int code) {
  std::fprintf(stderr, "bench setup: %s failed: %s\n", what, errno_name(code));
  std::abort();
}

// N contiguous 4K areas from PAGE, minus the one in the middle; returns the
// IOVA of the hole. The copies take the first areas again and again.
u64 populate(Engine& e, u64 n) {
  if (auto s = e.create_ioas("a", IoasOptions{}); !s.ok()) die("create_ioas", s.code());
  if (auto s = e.add_memory(MemorySource{"m", kVa, (n + 16) * kPage, kVa, true}); !s.ok()) die("mem", s.code());
  if (auto r = e.map("a", MapArgs{kPage, kPage, "m", 0, Prot::kReadWrite}); !r.ok()) die("map", r.code());
  // At most kCopyAreas per copy: a copy reserves tree nodes for each of
  // its areas up front, which at 10M areas would be gigabytes at once.
  constexpr u64 kCopyAreas = 4096;
  u64 count = 1;
  while (count < n) {
    const u64 k = std::min({count, n - count, kCopyAreas});
    auto r = e.copy("a", CopyArgs{"a", kPage, k * kPage, kPage + count * kPage, Prot::kReadWrite});
    if (!r.ok()) die("copy", r.code());
    count += k;
  }
  const u64 hole = kPage + (n / 2) * kPage;
  if (auto r = e.unmap("a", hole, kPage); !r.ok()) die("unmap", r.code());
  return hole;
}

// One automatic map + unmap among n live areas; with `domain`, an x86-64
// domain is attached, so each map and unmap also writes the hardware table
// (4K leaves) and gathers one IOTLB flush.
void map_unmap_loop(benchmark::State& state, std::unique_ptr<Engine> (*make)(), bool domain) {
  const u64 n = static_cast<u64>(state.range(0));
  auto e = make();
  const u64 hole = populate(*e, n);
  if (domain)
    if (auto s = e->attach("a", AttachArgs{"dev", "d", Format::kX86_64, {}, {}, {}, {}}); !s.ok()) die("attach", s.code());
  const MapArgs args{std::nullopt, kPage, "m", 0, Prot::kReadWrite};
  for (auto _ : state) {
    auto r = e->map("a", args);
    if (!r.ok() || r.value() != hole) {
      state.SkipWithError("automatic map did not choose the middle hole");
      break;
    }
    auto u = e->unmap("a", r.value(), kPage);
    benchmark::DoNotOptimize(u);
  }
  state.counters["live_areas"] = static_cast<double>(n - 1);
}
void AutoMapUnmap(benchmark::State& state, std::unique_ptr<Engine> (*make)()) { map_unmap_loop(state, make, false); }
void AutoMapUnmapX86Domain(benchmark::State& state, std::unique_ptr<Engine> (*make)()) {
  map_unmap_loop(state, make, true);
}

void BytesPerArea(benchmark::State& state, std::unique_ptr<Engine> (*make)()) {
  const u64 n = static_cast<u64>(state.range(0));
  double per_area = 0;
  for (auto _ : state) {
    malloc_trim(0);
    const long long before = g_live_bytes.load();
    auto e = make();
    populate(*e, n);
    const long long after = g_live_bytes.load();
    per_area = static_cast<double>(after - before) / static_cast<double>(n);
    state.PauseTiming();
    e.reset();
    state.ResumeTiming();
  }
  state.counters["bytes_per_area"] = per_area;
}

// N contiguous 4K intervals from PAGE minus the middle one, then the
// engine's automatic map + unmap of one 4K area, on the tree alone.
void TreeMapUnmap(benchmark::State& state) {
  const u64 n = static_cast<u64>(state.range(0));
  impl::SpaceTree t;
  for (u64 i = 0; i < n; ++i) t.insert(impl::SpaceEntry{kPage + i * kPage, kPage + i * kPage + kPage - 1, 0, i * kPage, 3});
  const u64 hole = kPage + (n / 2) * kPage;
  if (!t.erase(hole)) std::abort();
  for (auto _ : state) {
    auto c = t.lowest_fit(kPage, kMaxIova - kPage, kPage, kPage, 0);
    if (!c || *c != hole) {
      state.SkipWithError("lowest_fit did not choose the middle hole");
      break;
    }
    t.insert(impl::SpaceEntry{*c, *c + kPage - 1, 0, 0, 3});
    impl::SpaceNode gone;
    bool ok = t.erase_area(*c, *c + kPage - 1, &gone);
    benchmark::DoNotOptimize(ok);
  }
  state.counters["live"] = static_cast<double>(n - 1);
}

std::unique_ptr<Engine> impl_engine() { return make_engine(ImplOptions{}); }
std::unique_ptr<Engine> impl_engine_unlocked() {
  ImplOptions o;
  o.thread_safe = false;
  return make_engine(o);
}
std::unique_ptr<Engine> model_engine() { return make_model_engine(); }

BENCHMARK_CAPTURE(AutoMapUnmap, Impl, &impl_engine)
    ->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kNanosecond);
BENCHMARK_CAPTURE(AutoMapUnmap, ImplUnlocked, &impl_engine_unlocked)
    ->Arg(1000)->Arg(1000000)->Unit(benchmark::kNanosecond);
BENCHMARK_CAPTURE(AutoMapUnmapX86Domain, Impl, &impl_engine)
    ->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kNanosecond);
BENCHMARK_CAPTURE(AutoMapUnmapX86Domain, Model, &model_engine)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(AutoMapUnmap, Model, &model_engine)
    ->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BytesPerArea, Impl, &impl_engine)
    ->Arg(1000000)->Arg(10000000)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BytesPerArea, Model, &model_engine)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(TreeMapUnmap)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace ioas

BENCHMARK_MAIN();
