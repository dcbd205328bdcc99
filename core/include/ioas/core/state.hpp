// ioas/core/state.hpp: a concrete ioas state as a value, from an engine or from
// a state JSON file (README "State files"), for the invariant checker.
//
// A StateDump is what the public Engine interface shows: every IOAS's
// snapshot, the memory sources with their use counts, and translations of
// each domain sampled at every area's first and last byte and the bytes just
// outside it (where "nothing else maps" can break). It is read and written as
// JSON version 1 (`"ioas-state": 1`); numbers that are addresses or sizes are
// hex strings, ranges are "START-LAST" strings as in traces.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ioas/engine.hpp"
#include "ioas/result.hpp"
#include "ioas/core/json.hpp"

namespace ioas::state {

struct TranslationSample {
  std::string domain;
  u64 iova = 0;
  std::optional<Translation> result;  // nullopt: the domain faults there
  friend bool operator==(const TranslationSample&, const TranslationSample&) = default;
};

struct StateDump {
  std::vector<MemoryInfo> memories;         // sorted by name
  std::vector<IoasState> ioases;            // sorted by name
  std::vector<TranslationSample> translations;
  friend bool operator==(const StateDump&, const StateDump&) = default;
};

// The IOVAs at which translations of a domain of `s` are sampled: each
// area's first and last byte and the bytes just before and after it.
std::vector<u64> sample_points(const IoasState& s);

// Everything the public interface shows of `e` (snapshots, memories, and the
// sampled translations of every domain).
StateDump dump_engine(const Engine& e);

// JSON version 1 (README "State files").
json::Value to_json(const StateDump& d);
std::string to_json_text(const StateDump& d);
// EINVAL "file:line:column: what" for malformed JSON or a value that does not
// fit the schema.
Result<StateDump> from_json_text(std::string_view text, std::string_view file);

}  // namespace ioas::state
