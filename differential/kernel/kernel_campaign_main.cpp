// ioas_kernel_campaign: random traces on the model, the engine and an iommufd
// (kernel_campaign.hpp), with a progress line; stops at the first
// disagreement and writes it, shrunk, as a .trace.
//
//   ioas_kernel_campaign [--iommufd dev|userspace] [--seed N] [--cases N] [--ops N]
//                        [--minutes M] [--max-size N] [--out DIR]
//
// Exit status: 0 all agreed, 1 a disagreement, 2 bad usage, 3 the iommufd
// cannot be opened (no /dev/iommu: say so, run nothing).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "ioas/core/cmdline.hpp"
#include "ioas/kernel_engine.hpp"
#include "kernel_campaign.hpp"

int main(int argc, char** argv) {
  using namespace ioas;
  kernel_campaign::Config cfg;
  cfg.seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007;
  cfg.cases = 1000000;
  cfg.progress = true;
  std::string iommufd = "dev";
  std::uint64_t minutes = 0, max_size = 40;

  cmdline::Parser cl(
      "Random traces from iommufd's operations, replayed on the model, the engine (both in\n"
      "kernel mode) and an iommufd, answers and IOVA ranges compared after every operation.\n"
      "Exit status: 0 all agreed, 1 a disagreement (its shrunk trace is written to --out),\n"
      "2 bad usage, 3 the iommufd cannot be opened.",
      "ioas_kernel_campaign");
  const cmdline::Bounds positive = cmdline::positive();
  cl.top().text("--iommufd", iommufd, "dev: /dev/iommu; userspace: ioas's own iommufd on the impl engine", true,
          {"dev", "userspace"});
  cl.top().number("--seed", cfg.seed, "the generator's seed (default: from the clock)", false);
  cl.top().number("--cases", cfg.cases, "traces to run at most", true, positive);
  cl.top().number("--ops", cfg.max_ops, "operations to compare at most (default: unbounded)", false, positive);
  cl.top().number("--minutes", minutes, "wall time at most (default: unbounded)", false, positive);
  cl.top().number("--max-size", max_size, "operations drawn per trace", true, cmdline::Bounds{1, 99999, ""});
  cl.top().text("--out", cfg.out_dir, "where a disagreement's shrunk trace is written", true);
  if (const std::optional<int> status = cl.parse(argc, argv)) return *status;
  cfg.minutes = static_cast<double>(minutes);
  cfg.max_size = static_cast<int>(max_size);
  cfg.make_kernel = [iommufd]() -> Result<std::unique_ptr<Engine>> {
    auto port = iommufd == "dev" ? open_dev_iommu() : open_userspace_iommufd("impl");
    if (!port.ok()) return port.error();
    return make_kernel_engine(std::move(port).value());
  };
  if (auto probe = cfg.make_kernel(); !probe.ok()) {
    std::fprintf(stderr, "ioas_kernel_campaign: cannot open the iommufd: %s\n", probe.error().message.c_str());
    return 3;
  }
  std::printf("kernel campaign: seed %llu, iommufd %s\n", static_cast<unsigned long long>(cfg.seed),
              iommufd == "dev" ? "/dev/iommu" : "userspace (impl)");
  std::fflush(stdout);
  auto r = kernel_campaign::run(cfg, std::cout);
  if (!r.ok()) {
    std::fprintf(stderr, "ioas_kernel_campaign: %s\n", r.error().message.c_str());
    return 2;
  }
  std::printf("traces %llu, operations compared %llu\n", static_cast<unsigned long long>(r->traces),
              static_cast<unsigned long long>(r->compared));
  for (const auto& [why, n] : r->dropped) std::printf("  dropped %llu: %s\n", static_cast<unsigned long long>(n), why.c_str());
  for (const auto& [name, n] : r->known)
    std::printf("  known difference %llu: %s (differential/kernel/differences/ or kernel-findings/%s.trace)\n",
                static_cast<unsigned long long>(n), name.c_str(), name.c_str());
  for (const auto& [cls, n] : r->coverage) std::printf("  compared %llu: %s\n", static_cast<unsigned long long>(n), cls.c_str());
  if (!r->failure.empty()) {
    std::printf("DISAGREEMENT (seed %llu): %s\nshrunk trace: %s\n%s", static_cast<unsigned long long>(cfg.seed),
                r->failure.c_str(), r->trace_path.c_str(), r->trace_text.c_str());
    return 1;
  }
  std::printf("all operations agreed\n");
  return 0;
}
