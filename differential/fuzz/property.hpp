// differential/fuzz/property.hpp: how every fuzz target reports a broken
// property: one line on stderr naming the target and the property, then
// abort() (libFuzzer keeps the input; a regression test run dies loudly).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ioas::fuzz {

[[noreturn]] inline void property_broken(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: property broken: %s\n", target, what.c_str());
  std::abort();
}

}  // namespace ioas::fuzz
