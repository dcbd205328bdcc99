// uapi/iommufd_testing.hpp: what tests see of an iommufd context beyond the
// C API (ioas/iommufd.h). Not installed, not part of the public API; used by
// uapi/fuzz (the state digest that "a refused ioctl changes nothing" is
// checked against) and by uapi/tests (fail_nth through the engine).
//
// Both take the layer's lock for the call only: the caller must not run
// other calls on the same handle meanwhile (tests are single-threaded).
#pragma once

#include <string>

#include "ioas/engine.hpp"

namespace ioas::uapi::testing {

// The engine that serves `handle`, nullptr for no such handle.
Engine* engine_of(int handle);

// The layer's own state of `handle`, as text, one line per item: every
// object of the table (id, type, users, engine name, links, flags, reserved
// owners), every access (by its object id: its items and next
// item id), the VFIO compatibility IOAS, the RLIMIT mode and the selftest's
// memory limit. Two contexts in the same state give the same text. The
// engine's own state is not in it (see engine_of). "" for no such handle.
std::string table_of(int handle);

}  // namespace ioas::uapi::testing
