// impl/check.hpp: IOAS_CHECK(cond, "why") for the data structures' verify()
// and preconditions. Always on (verify() is only called by tests and by the
// engine's debug mode, so it costs nothing in production paths); a breach is
// a bug in ioas, so it aborts with the reason instead of returning an error.
#pragma once

#include <cstdio>
#include <cstdlib>

#define IOAS_CHECK(cond, why)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: IOAS_CHECK(%s) failed: %s\n", __FILE__,      \
                   __LINE__, #cond, why);                                       \
      std::abort();                                                             \
    }                                                                           \
  } while (0)
