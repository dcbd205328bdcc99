// The `ioas` executable. All behaviour is in cli.cpp (tested in process);
// this is the boundary where an exception from the standard library (an
// allocation failure) is turned into an exit status instead of an abort.
// It also adds the kernel engine (`--engine kernel`, chosen only by name):
// /dev/iommu, or ioas's own userspace iommufd when
// IOAS_KERNEL_ENGINE_IOMMUFD=userspace (a machine without one).
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "ioas/kernel_engine.hpp"

namespace {

std::unique_ptr<ioas::Engine> make_kernel() {
  const char* which = std::getenv("IOAS_KERNEL_ENGINE_IOMMUFD");
  const bool userspace = which && std::string(which) == "userspace";
  auto port = userspace ? ioas::open_userspace_iommufd("impl") : ioas::open_dev_iommu();
  if (!port.ok()) {
    std::cerr << "ioas: the kernel engine: " << port.error().message
              << (userspace ? "" : " (IOAS_KERNEL_ENGINE_IOMMUFD=userspace uses ioas's own iommufd)") << "\n";
    return nullptr;
  }
  auto e = ioas::make_kernel_engine(std::move(port).value());
  if (!e.ok()) {
    std::cerr << "ioas: the kernel engine: " << e.error().message << "\n";
    return nullptr;
  }
  return std::move(e).value();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto registry = ioas::trace::EngineRegistry::builtin();
    registry.add(ioas::trace::EngineFactory{"kernel", make_kernel, true});
    return ioas::cli::run(args, std::cout, std::cerr, registry);
  } catch (const std::exception& e) {
    std::cerr << "ioas: internal error: " << e.what() << "\n";
    return ioas::cli::kExitUsage;
  }
}
