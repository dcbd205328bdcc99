// ioas/core/check.hpp: IOAS_CHECK(cond, why) for the data structures'
// verify() and preconditions, in every part. Always on (verify() is only
// called by tests and by an engine's debug mode, so it costs nothing in
// production paths); a breach is a bug in ioas, so it aborts with the reason
// instead of returning an error. `why` is a C string or a std::string, built
// only when the check fails.
#pragma once

#include <string_view>

namespace ioas::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, std::string_view why) noexcept;
}  // namespace ioas::detail

#define IOAS_CHECK(cond, why)                                              \
  do {                                                                     \
    if (!(cond)) ::ioas::detail::check_failed(__FILE__, __LINE__, #cond, (why)); \
  } while (0)
