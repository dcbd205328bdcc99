// The CI campaign of the lockstep state machine: a fixed seed, sized to run
// in a few minutes on two cores, and the errno coverage it must reach.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "lockstep.hpp"
#include "sut.hpp"

namespace ioas::lockstep {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : dflt;
}

void print_coverage(const CampaignResult& r) {
  std::printf("%-28s %10s\n", "operation outcome", "count");
  for (const auto& [k, n] : r.coverage) std::printf("%-28s %10llu\n", k.c_str(), static_cast<unsigned long long>(n));
}

TEST(Lockstep, FixedSeedCampaignAgreesAndReachesEveryErrnoPath) {
  CampaignConfig cfg;
  cfg.seed = env_or("IOAS_LOCKSTEP_SEED", 20261122);
  cfg.cases = static_cast<int>(env_or("IOAS_LOCKSTEP_CASES", 2000));
  cfg.max_size = 100;
  cfg.make_sut = make_sut;
  cfg.inject = sut_fail_nth();
  cfg.corpus_dir = IOAS_CORPUS_DIR;
  const CampaignResult r = run_campaign(cfg);
  std::printf("seed %llu, %d cases, %llu operations checked\n", static_cast<unsigned long long>(cfg.seed), cfg.cases,
              static_cast<unsigned long long>(r.operations));
  print_coverage(r);
  ASSERT_TRUE(r.passed) << r.message << (r.counterexample.empty() ? "" : "\ncounterexample written to " + r.counterexample);
  std::string missing;
  for (const auto& k : required_coverage())
    if (!r.coverage.count(k)) missing += "\n  " + k;
  EXPECT_TRUE(missing.empty()) << "outcome paths the campaign never reached:" << missing;
  for (const auto& k : required_biases()) EXPECT_GT(r.coverage.count(k), 0u) << k << " never happened";
  // Injected allocation failures reached every operation that allocates.
  for (const char* k : {"map ENOMEM (injected)", "attach ENOMEM (injected)", "copy ENOMEM (injected)",
                        "cut ENOMEM (injected)", "pin ENOMEM (injected)", "reserve ENOMEM (injected)",
                        "allow ENOMEM (injected)", "mem ENOMEM (injected)", "ioas ENOMEM (injected)"})
    EXPECT_GT(r.coverage.count(k), 0u) << k << " never happened";
}

// The harness must catch a wrong engine: an engine that answers one
// operation differently from the model is found, shrunk and written out.
class OffByOnePage final : public Engine {
 public:
  OffByOnePage() : inner_(make_model_engine()) {}
  const char* kind() const override { return "broken"; }
  std::unique_ptr<Engine> clone() const override { return nullptr; }
  Status create_ioas(std::string_view n, const IoasOptions& o) override { return inner_->create_ioas(n, o); }
  Result<IoasOptions> ioas_options(std::string_view n) const override { return inner_->ioas_options(n); }
  std::vector<std::string> ioas_names() const override { return inner_->ioas_names(); }
  Status add_memory(const MemorySource& s) override { return inner_->add_memory(s); }
  Status remove_memory(std::string_view n) override { return inner_->remove_memory(n); }
  std::vector<MemoryInfo> memories() const override { return inner_->memories(); }
  // The planted bug: a fixed map of exactly 3 pages is refused.
  Result<u64> map(std::string_view io, const MapArgs& a) override {
    if (a.iova && a.len == 3 * kPage) return Error{ENOSPC, "planted bug"};
    return inner_->map(io, a);
  }
  Result<u64> unmap(std::string_view io, u64 i, u64 l) override { return inner_->unmap(io, i, l); }
  Status cut(std::string_view io, u64 i) override { return inner_->cut(io, i); }
  Result<u64> copy(std::string_view io, const CopyArgs& c) override { return inner_->copy(io, c); }
  Status reserve(std::string_view io, Range r, std::string_view o) override { return inner_->reserve(io, r, o); }
  Status unreserve(std::string_view io, std::string_view o) override { return inner_->unreserve(io, o); }
  Status allow(std::string_view io, std::span<const Range> r) override { return inner_->allow(io, r); }
  Result<IovaRanges> ranges(std::string_view io) const override { return inner_->ranges(io); }
  Status attach(std::string_view io, const AttachArgs& a) override { return inner_->attach(io, a); }
  Status detach(std::string_view d) override { return inner_->detach(d); }
  Result<std::uint32_t> pin(std::string_view io, const PinArgs& p) override { return inner_->pin(io, p); }
  Status unpin(std::string_view io, std::uint32_t id) override { return inner_->unpin(io, id); }
  Result<std::optional<Translation>> translate(std::string_view d, u64 i) const override {
    return inner_->translate(d, i);
  }
  Result<DmaOutcome> dma(std::string_view d, DmaDir dir, u64 i, u64 l) override { return inner_->dma(d, dir, i, l); }
  Status set_dirty_tracking(std::string_view d, DirtyMode m) override { return inner_->set_dirty_tracking(d, m); }
  Result<std::vector<Range>> read_dirty(std::string_view d, u64 i, u64 l, u64 p, bool k) override {
    return inner_->read_dirty(d, i, l, p, k);
  }
  Result<u64> uva(std::string_view io, u64 i) const override { return inner_->uva(io, i); }
  Result<std::vector<LeafInfo>> leaves(std::string_view d, Range r) const override { return inner_->leaves(d, r); }
  Result<IoasState> snapshot(std::string_view io) const override { return inner_->snapshot(io); }
  std::vector<Violation> check() const override { return inner_->check(); }

 private:
  std::unique_ptr<Engine> inner_;
};

TEST(Lockstep, FindsShrinksAndWritesAPlantedBug) {
  const std::string dir = ::testing::TempDir() + "/ioas-lockstep-planted";
  CampaignConfig cfg;
  cfg.seed = 7;
  cfg.cases = 500;
  cfg.max_size = 60;
  cfg.make_sut = [] { return std::unique_ptr<Engine>(new OffByOnePage()); };
  cfg.corpus_dir = dir;
  const CampaignResult r = run_campaign(cfg);
  ASSERT_FALSE(r.passed) << "the planted bug was not found";
  ASSERT_FALSE(r.counterexample.empty());
  std::FILE* f = std::fopen(r.counterexample.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string text;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) text.append(buf, n);
  std::fclose(f);
  EXPECT_NE(text.find("len=0x3000"), std::string::npos) << text;
  // Shrunk: a handful of lines, not the whole generated sequence.
  EXPECT_LT(std::count(text.begin(), text.end(), '\n'), 12) << text;
  std::printf("planted bug found and shrunk to:\n%s", text.c_str());
}

}  // namespace
}  // namespace ioas::lockstep
