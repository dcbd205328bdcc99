// The failure path of IOAS_CHECK (ioas/core/check.hpp).
#include "ioas/core/check.hpp"

#include <cstdio>
#include <cstdlib>

namespace ioas::detail {

void check_failed(const char* file, int line, const char* cond, std::string_view why) noexcept {
  std::fprintf(stderr, "%s:%d: IOAS_CHECK(%s) failed: %.*s\n", file, line, cond, static_cast<int>(why.size()),
               why.data());
  std::abort();
}

}  // namespace ioas::detail
