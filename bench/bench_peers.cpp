// ioas_bench_peers: automatic map + unmap of one 4 KiB area among N live
// areas, for ioas (the engine and the spec) and for what a user would pick
// instead, each implemented here from its published algorithm:
//   - FirstFitMap: a std::map of [start, last] scanned from the bottom for
//     the first gap that fits (the usual hand-written allocator);
//   - IclSet: boost::icl::separate_interval_set, its intervals walked in
//     order for the first gap that fits;
//   - GTreeWalk: QEMU's iova-tree (util/iova-tree.c, iova_tree_alloc_map):
//     an in-order foreach over a balanced tree with a callback that checks
//     the hole between the previous mapping and this one, stopping at the
//     first fit.
// The scenario is the same for all: N areas of 4 KiB packed from PAGE with
// the middle one free, so every allocator must find that hole; the answer is
// checked on every iteration.
//
// Results for the README: bench/plot.sh runs this with JSON output and draws
// bench/results/peers.svg (time per operation against N, log-log).
#include <benchmark/benchmark.h>

#include <boost/icl/separate_interval_set.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "ioas/engine.hpp"
#include "ioas/impl.hpp"

namespace {

using ioas::u64;
constexpr u64 P = ioas::kPage;
constexpr u64 kVa = u64{1} << 40;

u64 hole_of(u64 n) { return P + (n / 2) * P; }

// ---- ioas through its public interface ----

void populate(ioas::Engine& e, u64 n) {
  (void)e.create_ioas("a", ioas::IoasOptions{});
  (void)e.add_memory(ioas::MemorySource{"m", kVa, (n + 16) * P, kVa, true});
  (void)e.map("a", ioas::MapArgs{P, P, "m", 0, ioas::Prot::kReadWrite});
  for (u64 count = 1; count < n;) {
    const u64 k = std::min(count, n - count);
    (void)e.copy("a", ioas::CopyArgs{"a", P, k * P, P + count * P, ioas::Prot::kReadWrite});
    count += k;
  }
  (void)e.unmap("a", hole_of(n), P);
}

void Ioas(benchmark::State& state, std::unique_ptr<ioas::Engine> (*make)()) {
  const u64 n = static_cast<u64>(state.range(0));
  auto e = make();
  populate(*e, n);
  const ioas::MapArgs args{std::nullopt, P, "m", 0, ioas::Prot::kReadWrite};
  for (auto _ : state) {
    auto r = e->map("a", args);
    if (!r.ok() || *r != hole_of(n)) {
      state.SkipWithError("did not choose the middle hole");
      break;
    }
    benchmark::DoNotOptimize(e->unmap("a", *r, P));
  }
}

// ---- first fit over std::map ----

struct FirstFitMap {
  std::map<u64, u64> used;  // start -> last
  std::optional<u64> alloc(u64 len) {
    u64 next = P;  // lowest candidate, above the zero page
    for (const auto& [s, l] : used) {
      if (s > next && s - next >= len) break;
      next = std::max(next, l + 1);
    }
    used.emplace(next, next + len - 1);
    return next;
  }
  void free(u64 iova) { used.erase(iova); }
  void insert(u64 iova, u64 len) { used.emplace_hint(used.end(), iova, iova + len - 1); }
};

// ---- boost::icl::separate_interval_set ----

struct IclSet {
  using Set = boost::icl::separate_interval_set<u64>;
  Set used;
  std::optional<u64> alloc(u64 len) {
    u64 next = P;
    for (const auto& iv : used) {
      const u64 s = boost::icl::first(iv), l = boost::icl::last(iv);
      if (s > next && s - next >= len) break;
      next = std::max(next, l + 1);
    }
    used += boost::icl::discrete_interval<u64>::closed(next, next + len - 1);
    return next;
  }
  void free(u64 iova) { used -= boost::icl::discrete_interval<u64>::closed(iova, iova + P - 1); }
  void insert(u64 iova, u64 len) { used += boost::icl::discrete_interval<u64>::closed(iova, iova + len - 1); }
};

// ---- a GTree-style foreach with a callback, as QEMU's iova-tree ----

struct GTreeWalk {
  struct Mapping {
    u64 iova, size;  // size - 1, as QEMU's DMAMap stores it
  };
  std::map<u64, Mapping> tree;
  struct AllocArgs {
    u64 new_size;
    u64 iova_begin;
    const Mapping* prev;
    u64 iova_result;
    bool found;
  };
  // Returns true to stop the walk (GTraverseFunc's convention).
  static bool traverse(const Mapping* m, AllocArgs* a) {
    const u64 hole_start = a->prev ? a->prev->iova + a->prev->size + 1 : a->iova_begin;
    const u64 hole_last = m ? m->iova - 1 : ~u64{0};
    if ((!m || m->iova > hole_start) && hole_last - hole_start + 1 >= a->new_size + 1) {
      a->iova_result = hole_start;
      a->found = true;
      return true;
    }
    a->prev = m;
    return false;
  }
  template <typename F>
  void foreach (F f) {
    for (const auto& [k, m] : tree)
      if (f(&m)) return;
  }
  std::optional<u64> alloc(u64 len) {
    AllocArgs a{len - 1, P, nullptr, 0, false};
    foreach ([&](const Mapping* m) { return traverse(m, &a); });
    if (!a.found && !traverse(nullptr, &a)) return std::nullopt;
    tree.emplace(a.iova_result, Mapping{a.iova_result, len - 1});
    return a.iova_result;
  }
  void free(u64 iova) { tree.erase(iova); }
  void insert(u64 iova, u64 len) { tree.emplace_hint(tree.end(), iova, Mapping{iova, len - 1}); }
};

template <typename Alloc>
void Peer(benchmark::State& state) {
  const u64 n = static_cast<u64>(state.range(0));
  Alloc a;
  // Setup by direct insertion (allocating N times would be quadratic here).
  for (u64 i = 0; i < n; ++i)
    if (P + i * P != hole_of(n)) a.insert(P + i * P, P);
  for (auto _ : state) {
    auto r = a.alloc(P);
    if (!r || *r != hole_of(n)) {
      state.SkipWithError("did not choose the middle hole");
      break;
    }
    a.free(*r);
  }
}

std::unique_ptr<ioas::Engine> make_impl() { return ioas::make_engine(); }
std::unique_ptr<ioas::Engine> make_model() { return ioas::make_model_engine(); }

}  // namespace

BENCHMARK_CAPTURE(Ioas, impl, &make_impl)->RangeMultiplier(10)->Range(1000, 1000000);
BENCHMARK_CAPTURE(Ioas, model, &make_model)->RangeMultiplier(10)->Range(1000, 100000);
BENCHMARK_TEMPLATE(Peer, FirstFitMap)->RangeMultiplier(10)->Range(1000, 1000000);
BENCHMARK_TEMPLATE(Peer, IclSet)->RangeMultiplier(10)->Range(1000, 1000000);
BENCHMARK_TEMPLATE(Peer, GTreeWalk)->RangeMultiplier(10)->Range(1000, 1000000);
BENCHMARK_MAIN();
