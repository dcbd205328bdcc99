// The `ioas` executable. All behaviour is in cli.cpp (tested in process);
// this is the boundary where an exception from the standard library (an
// allocation failure) is turned into an exit status instead of an abort.
// Out of memory, `ioas` says so, naming what failed where it knows it.
// It also adds the kernel engine (`--engine kernel`, chosen only by name):
// /dev/iommu, or ioas's own userspace iommufd when
// IOAS_KERNEL_ENGINE_IOMMUFD=userspace (a machine without one).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "checker_process.hpp"
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

// Without allocating: there may be no memory for a string.
int out_of_memory(const char* what) {
  std::fputs("ioas: out of memory: ", stderr);
  std::fputs(what, stderr);
  std::fputs("\n", stderr);
  return ioas::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto registry = ioas::trace::EngineRegistry::builtin();
    registry.add(ioas::trace::EngineFactory{"kernel", make_kernel, true});
    return ioas::cli::run(args, std::cout, std::cerr, registry);
  } catch (const ioas::cli::OutOfMemory& e) {
    return out_of_memory(e.what());
  } catch (const std::bad_alloc& e) {
    return out_of_memory("an allocation failed (std::bad_alloc)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ioas: internal error: %s\n", e.what());
    return ioas::cli::kExitUsage;
  }
}
