// ioas_hw_bench: hw/ page-table costs.
//   Map256x4K:      one map call of 256 x 4 KiB leaves into existing tables;
//                   reported per entry against PlainStore256, a plain store of
//                   the same 256 PTE values into one page (always in L1), and
//                   PlainStore256Tables, the same stores into the tables
//                   Map256x4K writes (its footprint), both in the same run.
//   Map1TiB:        a 1 TiB aligned map; counts the leaf writes (1024 x 1G).
//   TranslateWarm:  translate of a mapped IOVA, tables warm in cache.
// After the runs, main prints the ratio map / plain store.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "formats.hpp"
#include "pagetable.hpp"

using ioas::Prot;
using ioas::u64;
using namespace ioas::hw;

namespace {

std::unique_ptr<PageTable> table(HeapPageMemory& mem, Format f = Format::kX86_64) {
  TableConfig c;
  c.format = f;
  return std::move(make_page_table(c, mem)).value();
}

constexpr u64 kBatch = 256;  // maps per untimed unmap sweep

void Map256x4K(benchmark::State& st) {
  HeapPageMemory mem;
  auto pt = table(mem, static_cast<Format>(st.range(0)));
  // Tables for kBatch distinct 1 MiB targets exist beforehand (mapped once,
  // unmapped leaf by leaf, so the level-0 tables stay).
  for (u64 k = 0; k < kBatch; ++k) {
    (void)pt->map({k * k2M, 0x80000000, 256 * k4K, Prot::kReadWrite});
    for (u64 i = 0; i < 256; ++i) (void)pt->unmap(k * k2M + i * k4K, k4K);
  }
  u64 k = 0;
  for (auto _ : st) {
    auto s = pt->map({k * k2M, 0x80000000, 256 * k4K, Prot::kReadWrite, 0, k4K});
    benchmark::DoNotOptimize(s);
    if (++k == kBatch) {
      st.PauseTiming();
      for (u64 j = 0; j < kBatch; ++j)
        for (u64 i = 0; i < 256; ++i) (void)pt->unmap(j * k2M + i * k4K, k4K);
      k = 0;
      st.ResumeTiming();
    }
  }
  st.counters["ns_per_entry"] =
      benchmark::Counter(static_cast<double>(st.iterations()) * 256, benchmark::Counter::kIsRate |
                                                                         benchmark::Counter::kInvert);
}
BENCHMARK(Map256x4K)->Arg(static_cast<int>(Format::kX86_64))->Arg(static_cast<int>(Format::kArmLpae));

void PlainStore256(benchmark::State& st) {
  alignas(4096) static std::uint64_t page[512];
  std::uint64_t* out = page;
  benchmark::DoNotOptimize(out);
  u64 n = 0;
  for (auto _ : st) {
    benchmark::ClobberMemory();
    const u64 pa = 0x80000000 + ((n++ & 255) << 20);
    for (u64 i = 0; i < 256; ++i) out[i] = (pa + i * k4K) | x86::kP | x86::kRW | x86::kUS | x86::kA;
    benchmark::ClobberMemory();
  }
  st.counters["ns_per_entry"] =
      benchmark::Counter(static_cast<double>(st.iterations()) * 256, benchmark::Counter::kIsRate |
                                                                         benchmark::Counter::kInvert);
}
BENCHMARK(PlainStore256);

// The same 256 PTE values stored into the level-0 tables Map256x4K writes,
// in the same rotation over kBatch tables (the same memory traffic, with no
// walk, no check and no journal): the baseline with Map256x4K's footprint.
void PlainStore256Tables(benchmark::State& st) {
  HeapPageMemory mem;
  auto pt = table(mem);
  std::vector<std::uint64_t*> leaves;  // the level-0 table of each target
  for (u64 k = 0; k < kBatch; ++k) {
    (void)pt->map({k * k2M, 0x80000000, k4K, Prot::kReadWrite});
    (void)pt->unmap(k * k2M, k4K);
    u64 pa = pt->root();
    for (int l = 3; l > 0; --l) pa = mem.page(pa)[(k * k2M >> (12 + 9 * l)) & 511] & x86::kAddrMask;
    leaves.push_back(mem.page(pa));
  }
  u64 k = 0;
  for (auto _ : st) {
    std::uint64_t* out = leaves[k];
    benchmark::DoNotOptimize(out);
    for (u64 i = 0; i < 256; ++i) out[i] = (0x80000000 + i * k4K) | x86::kP | x86::kRW | x86::kUS | x86::kA;
    benchmark::ClobberMemory();
    if (++k == kBatch) {
      st.PauseTiming();
      for (std::uint64_t* t : leaves) std::fill(t, t + 256, 0);
      k = 0;
      st.ResumeTiming();
    }
  }
  st.counters["ns_per_entry"] =
      benchmark::Counter(static_cast<double>(st.iterations()) * 256, benchmark::Counter::kIsRate |
                                                                         benchmark::Counter::kInvert);
}
BENCHMARK(PlainStore256Tables);

void Map1TiB(benchmark::State& st) {
  HeapPageMemory mem;
  auto pt = table(mem);
  const u64 tib = u64{1} << 40;
  u64 writes = 0;
  for (auto _ : st) {
    const u64 before = pt->stats().leaf_writes;
    auto s = pt->map({tib, 0, tib, Prot::kReadWrite});
    benchmark::DoNotOptimize(s);
    writes = pt->stats().leaf_writes - before;
    st.PauseTiming();
    (void)pt->unmap(tib, tib);
    st.ResumeTiming();
  }
  st.counters["leaf_writes"] = static_cast<double>(writes);
}
BENCHMARK(Map1TiB);

void TranslateWarm(benchmark::State& st) {
  HeapPageMemory mem;
  auto pt = table(mem, static_cast<Format>(st.range(0)));
  (void)pt->map({k1G, 0x40000000, 64 * k4K, Prot::kReadWrite, 0, k4K});
  u64 i = 0;
  for (auto _ : st) {
    auto t = pt->translate(k1G + ((i++ & 63) << 12) + 42);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(TranslateWarm)->Arg(static_cast<int>(Format::kX86_64))->Arg(static_cast<int>(Format::kArmLpae));

// Remembers each run's time per iteration for the ratio line.
class Reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Iteration) ns_[r.benchmark_name()] = r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> ns_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  Reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  for (const char* base : {"PlainStore256", "PlainStore256Tables"}) {
    auto it = rep.ns_.find(base);
    if (it == rep.ns_.end()) continue;
    for (const char* name : {"Map256x4K/0", "Map256x4K/1"}) {
      auto m = rep.ns_.find(name);
      if (m == rep.ns_.end()) continue;
      std::printf("%s: %.3f ns/entry vs %s %.3f ns/entry (CPU time): ratio %.2f (same run)\n", name,
                  m->second / 256, base, it->second / 256, m->second / it->second);
    }
  }
  benchmark::Shutdown();
  return 0;
}
