// The `ioas` executable. All behaviour is in cli.cpp (tested in process);
// this is the boundary where an exception from the standard library (an
// allocation failure) is turned into an exit status instead of an abort.
// Out of memory, `ioas` says so, naming what failed where it knows it.
#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "checker_process.hpp"
#include "cli.hpp"

namespace {

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
    return ioas::cli::run(args, std::cout, std::cerr, ioas::trace::EngineRegistry::builtin());
  } catch (const ioas::cli::OutOfMemory& e) {
    return out_of_memory(e.what());
  } catch (const std::bad_alloc& e) {
    return out_of_memory("an allocation failed (std::bad_alloc)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ioas: internal error: %s\n", e.what());
    return ioas::cli::kExitUsage;
  }
}
