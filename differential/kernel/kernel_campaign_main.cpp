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
#include <cstdlib>
#include <iostream>
#include <string>

#include "ioas/kernel_engine.hpp"
#include "kernel_campaign.hpp"

namespace {

void usage() {
  std::puts(
      "usage: ioas_kernel_campaign [--iommufd dev|userspace] [--seed N] [--cases N] [--ops N]\n"
      "                            [--minutes M] [--max-size N] [--out DIR]\n"
      "  Random traces from iommufd's operations, replayed on the model, the engine\n"
      "  (both in kernel mode) and an iommufd: /dev/iommu (dev, the default) or ioas's\n"
      "  own userspace iommufd on the impl engine (userspace). Answers and IOVA ranges\n"
      "  are compared after every operation. Defaults: seed from the clock, cases\n"
      "  1000000, ops and minutes unlimited (cases then bound the run), max-size 40\n"
      "  operations drawn per trace, out '.'.\n"
      "  Exit status: 0 all agreed, 1 a disagreement (its shrunk trace is written to\n"
      "  DIR), 2 bad usage, 3 the iommufd cannot be opened.");
}

bool number(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  out = std::strtoull(s, &end, 0);
  return end && *end == '\0' && end != s;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ioas;
  kernel_campaign::Config cfg;
  cfg.seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007;
  cfg.cases = 1000000;
  cfg.progress = true;
  std::string iommufd = "dev";
  std::uint64_t minutes = 0, max_size = 40;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "ioas_kernel_campaign: %s needs a value\n", a.c_str());
      return 2;
    }
    const char* v = argv[++i];
    bool good = true;
    if (a == "--iommufd") {
      iommufd = v;
      good = iommufd == "dev" || iommufd == "userspace";
    } else if (a == "--out") {
      cfg.out_dir = v;
    } else if (a == "--seed") {
      good = number(v, cfg.seed);
    } else if (a == "--cases") {
      good = number(v, cfg.cases) && cfg.cases > 0;
    } else if (a == "--ops") {
      good = number(v, cfg.max_ops) && cfg.max_ops > 0;
    } else if (a == "--minutes") {
      good = number(v, minutes) && minutes > 0;
    } else if (a == "--max-size") {
      good = number(v, max_size) && max_size > 0 && max_size < 100000;
    } else {
      good = false;
    }
    if (!good) {
      std::fprintf(stderr, "ioas_kernel_campaign: bad argument %s %s\n", a.c_str(), v);
      usage();
      return 2;
    }
  }
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
