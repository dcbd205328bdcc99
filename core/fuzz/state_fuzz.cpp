// core/fuzz/state_fuzz.cpp: libFuzzer target for the state file reader
// (README "State files"): the JSON reader of json.hpp and the schema reader
// state::from_json_text on top of it.
//
// Besides "no crash, no sanitizer report, no leak, no hang", every input must
// keep these properties; a breach prints what broke and aborts, so libFuzzer
// keeps the input:
//   - json::parse and state::from_json_text return a value or EINVAL
//     "fuzz.json:LINE:COLUMN: what", LINE a line of the input;
//   - a parsed JSON value round-trips: write(v) parses back to a value that
//     writes the same text, pretty or on one line;
//   - a read StateDump round-trips: to_json_text(d) reads back to an equal
//     StateDump.
//
// The same function runs in the ordinary build on every file of
// core/fuzz/state_regressions (core/tests/state_fuzz_regressions_test.cpp).
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ioas/core/json.hpp"
#include "ioas/core/state.hpp"
#include "property.hpp"

namespace ioas::state {
namespace {

constexpr std::string_view kFile = "fuzz.json";

[[noreturn]] void broken(const std::string& what) { fuzz::property_broken("state_fuzz", what); }

// EINVAL "fuzz.json:L:C: what", L in [1, lines of the input], C >= 1.
void check_error(const char* who, const Error& e, std::string_view text) {
  if (e.code != EINVAL) broken(std::string(who) + " failed with errno " + std::to_string(e.code) + ": " + e.message);
  std::string_view m = e.message;
  const std::string prefix = std::string(kFile) + ":";
  if (m.rfind(prefix, 0) != 0) broken(std::string(who) + ": error without the file name: " + e.message);
  m.remove_prefix(prefix.size());
  long line = 0, column = 0;
  if (!fuzz::take_int(m, line) || m.empty() || m[0] != ':') broken(std::string(who) + ": error without a line: " + e.message);
  m.remove_prefix(1);
  if (!fuzz::take_int(m, column) || m.rfind(": ", 0) != 0 || m.size() <= 2)
    broken(std::string(who) + ": error without a column or a message: " + e.message);
  const long lines = 1 + static_cast<long>(std::count(text.begin(), text.end(), '\n'));
  if (line < 1 || line > lines || column < 1)
    broken(std::string(who) + ": error names line " + std::to_string(line) + " column " + std::to_string(column) +
           " of an input of " + std::to_string(lines) + " lines: " + e.message);
}

void check_json_round_trip(const json::Value& v) {
  for (bool pretty : {true, false}) {
    const std::string text = json::write(v, pretty);
    auto back = json::parse(text, "written.json");
    if (!back.ok()) broken("json::write's text does not parse: " + back.error().message + "\n" + text);
    if (json::write(*back, pretty) != text) broken("json::write's text reads back to another value:\n" + text);
  }
}

void check_state_round_trip(const StateDump& d) {
  const std::string text = to_json_text(d);
  auto back = from_json_text(text, "written.json");
  if (!back.ok()) broken("to_json_text's text does not read: " + back.error().message + "\n" + text);
  if (!(*back == d)) broken("to_json_text's text reads back to another state:\n" + text);
}

}  // namespace
}  // namespace ioas::state

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ioas::state;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = ioas::json::parse(text, kFile);
  if (v.ok()) check_json_round_trip(*v);
  else check_error("json::parse", v.error(), text);
  auto d = from_json_text(text, kFile);
  if (d.ok()) check_state_round_trip(*d);
  else check_error("from_json_text", d.error(), text);
  return 0;
}
