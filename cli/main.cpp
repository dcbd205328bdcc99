// The `ioas` executable. All behaviour is in cli.cpp (tested in process);
// this is the boundary where an exception from the standard library (an
// allocation failure) is turned into an exit status instead of an abort.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    return ioas::cli::run(args, std::cout, std::cerr, ioas::trace::EngineRegistry::builtin());
  } catch (const std::exception& e) {
    std::cerr << "ioas: internal error: " << e.what() << "\n";
    return ioas::cli::kExitUsage;
  }
}
