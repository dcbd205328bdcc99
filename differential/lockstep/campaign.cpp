// ioas_campaign: the long lockstep campaign. Runs batches of cases with
// consecutive seeds until the case budget or the time budget is spent,
// printing a progress line per batch (cases, operations per second of CPU
// time, seed), and stops at the first disagreement with the shrunk trace's
// path. The last line gives the operations checked per second of CPU time.
//
//   ioas_campaign [--seed N] [--cases N] [--minutes M] [--batch N] [--max-size N] [--whole-every N]
//                 [--check-every N] [--z3-every N]
//
// Reproduce a failure with the seed it printed: ioas_campaign --seed N --cases <batch>.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <string>

#include "ioas/core/cmdline.hpp"
#include "lockstep.hpp"
#include "sut.hpp"

int main(int argc, char** argv) {
  using namespace ioas::lockstep;
  std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::uint64_t cases = 100000, minutes = 10, batch = 200, max_size = 100, z3_every = 1024, whole_every = 32,
                check_every = 4;
  ioas::cmdline::Parser cl(
      "Runs the model and the engine under test in lockstep on random operation sequences\n"
      "(each shrunk when it fails), a batch of cases per seed, seeds counting up from --seed.\n"
      "Exit status: 0 all agreed, 1 a disagreement (its shrunk trace is written to\n"
      "differential/corpus/), 2 bad usage.",
      "ioas_campaign", /*last_wins=*/true);
  const ioas::cmdline::Bounds positive = ioas::cmdline::positive();
  cl.top().number("--seed", seed, "the first batch's seed (default: from the clock)", false);
  cl.top().number("--cases", cases, "cases to run at most", true, positive);
  cl.top().number("--minutes", minutes, "wall time at most, checked after each batch", true, positive);
  cl.top().number("--batch", batch, "cases per seed", true, positive);
  cl.top().number("--max-size", max_size, "operations per case at most", true, positive);
  cl.top().number("--whole-every", whole_every,
            "whole states compared after every N-th operation and each case's last (between them, the\n"
            "parts of the state an operation touched)",
            true, positive);
  cl.top().number("--check-every", check_every,
                  "the engine's check() (its trees' and tables' verify()) on one whole comparison in N (the\n"
                  "spec's on every one; a `check` step runs both)",
                  true, positive);
  cl.top().number("--z3-every", z3_every, "the Z3 invariant checker on one whole comparison in N (0: never)", true);
  if (const std::optional<int> status = cl.parse(argc, argv)) return *status;
  set_z3_check_every(z3_every);
  set_sut_check_every(check_every);
  keep_heap_blocks();
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t cpu0 = std::clock();
  // Operations per second of this process's CPU time (the machine may be
  // shared: wall time would count the others).
  auto ops_per_cpu_second = [&](std::uint64_t n) {
    const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
    return static_cast<double>(n) / std::max(cpu, 1e-9);
  };
  std::uint64_t done = 0, ops = 0;
  for (std::uint64_t s = seed; done < cases; ++s) {
    CampaignConfig cfg;
    cfg.seed = s;
    cfg.cases = static_cast<int>(std::min<std::uint64_t>(batch, cases - done));
    cfg.max_size = static_cast<int>(max_size);
    cfg.whole_every = whole_every;
    cfg.make_sut = make_sut;
    cfg.inject = sut_fail_nth();
    cfg.corpus_dir = IOAS_CORPUS_DIR;
    const CampaignResult r = run_campaign(cfg);
    done += static_cast<std::uint64_t>(cfg.cases);
    ops += r.operations;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("cases %llu  ops %llu  ops/s %.0f  seed %llu\n", static_cast<unsigned long long>(done),
                static_cast<unsigned long long>(ops), ops_per_cpu_second(ops), static_cast<unsigned long long>(s));
    std::fflush(stdout);
    if (!r.passed) {
      std::printf("DISAGREEMENT at seed %llu (reproduce: ioas_campaign --seed %llu --cases %d)\n%s\n",
                  static_cast<unsigned long long>(s), static_cast<unsigned long long>(s), cfg.cases, r.message.c_str());
      if (!r.counterexample.empty()) std::printf("shrunk trace: %s\n", r.counterexample.c_str());
      return 1;
    }
    if (secs > 60.0 * static_cast<double>(minutes)) break;
  }
  std::printf("all %llu cases agreed: %llu operations, %.0f ops/s (CPU time)\n", static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(ops), ops_per_cpu_second(ops));
  return 0;
}
