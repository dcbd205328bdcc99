// ioas_campaign: the long lockstep campaign. Runs batches of RapidCheck cases
// with consecutive seeds until the case budget or the time budget is spent,
// printing a progress line per batch (cases, operations per second, seed),
// and stops at the first disagreement with the shrunk trace's path.
//
//   ioas_campaign [--seed N] [--cases N] [--minutes M] [--batch N] [--max-size N] [--whole-every N] [--z3-every N]
//
// Reproduce a failure with the seed it printed: ioas_campaign --seed N --cases <batch>.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lockstep.hpp"
#include "sut.hpp"

namespace {

void usage() {
  std::puts(
      "usage: ioas_campaign [--seed N] [--cases N] [--minutes M] [--batch N] [--max-size N] [--whole-every N] [--z3-every N]\n"
      "  Runs the model and the engine under test in lockstep on random operation\n"
      "  sequences (RapidCheck). Defaults: seed from the clock, cases 100000, minutes 10,\n"
      "  batch 200 cases per seed, max-size 100 operations per case. After each\n"
      "  operation the parts of the state it touched are compared, and whole states\n"
      "  after every whole-every-th operation (default 32) and the last of each case;\n"
      "  the Z3 invariant checker runs on one whole comparison in z3-every (default\n"
      "  1024; 0: never).\n"
      "  Exit status: 0 all agreed, 1 a disagreement (its shrunk trace is written to\n"
      "  differential/corpus/), 2 bad usage.");
}

bool number(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  out = std::strtoull(s, &end, 0);
  return end && *end == '\0' && end != s;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ioas::lockstep;
  std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::uint64_t cases = 100000, minutes = 10, batch = 200, max_size = 100, z3_every = 1024, whole_every = 32;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::uint64_t* target = nullptr;
    if (a == "--help" || a == "-h") { usage(); return 0; }
    if (a == "--seed") target = &seed;
    else if (a == "--cases") target = &cases;
    else if (a == "--minutes") target = &minutes;
    else if (a == "--batch") target = &batch;
    else if (a == "--max-size") target = &max_size;
    else if (a == "--z3-every") target = &z3_every;
    else if (a == "--whole-every") target = &whole_every;
    if (!target || i + 1 >= argc || !number(argv[i + 1], *target) || (target != &seed && target != &z3_every && *target == 0)) {
      std::fprintf(stderr, "ioas_campaign: bad argument '%s'\n", a.c_str());
      usage();
      return 2;
    }
    ++i;
  }
  set_z3_check_every(z3_every);
  if (!kHaveImpl) std::puts("NOTE: impl/ is not built: checking the model against itself.");
  const auto t0 = std::chrono::steady_clock::now();
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
                static_cast<unsigned long long>(ops), ops / std::max(secs, 1e-9), static_cast<unsigned long long>(s));
    std::fflush(stdout);
    if (!r.passed) {
      std::printf("DISAGREEMENT at seed %llu (reproduce: ioas_campaign --seed %llu --cases %d)\n%s\n",
                  static_cast<unsigned long long>(s), static_cast<unsigned long long>(s), cfg.cases, r.message.c_str());
      if (!r.counterexample.empty()) std::printf("shrunk trace: %s\n", r.counterexample.c_str());
      return 1;
    }
    if (secs > 60.0 * static_cast<double>(minutes)) break;
  }
  std::printf("all %llu cases agreed\n", static_cast<unsigned long long>(done));
  return 0;
}
