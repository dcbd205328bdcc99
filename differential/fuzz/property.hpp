// differential/fuzz/property.hpp: what the fuzz targets share. A broken
// property is reported as one line on stderr naming the target and the
// property, then abort() (libFuzzer keeps the input; a regression test run
// dies loudly). take_int reads the line and column of an error message.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace ioas::fuzz {

[[noreturn]] inline void property_broken(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: property broken: %s\n", target, what.c_str());
  std::abort();
}

// Reads the decimal number at the front of `s` into `out` and drops it.
inline bool take_int(std::string_view& s, long& out) {
  std::size_t n = 0;
  out = 0;
  while (n < s.size() && n < 9 && s[n] >= '0' && s[n] <= '9') out = out * 10 + (s[n++] - '0');
  if (n == 0) return false;
  s.remove_prefix(n);
  return true;
}

}  // namespace ioas::fuzz
