// differential/fuzz/trace_fuzz.cpp: libFuzzer target for the .trace reader
// (TRACE.md) and its lexical pieces.
//
// Besides "no crash, no sanitizer report, no leak, no hang", every input must
// keep these properties; a breach prints what broke and aborts, so libFuzzer
// keeps the input:
//   - parse_trace returns a Trace or EINVAL "fuzz.trace:LINE:COLUMN: what",
//     LINE a line of the input and COLUMN inside it or just past its end;
//   - a Trace keeps its invariants: one raw line per input line, and for
//     each operation line raw[pos.line - 1] == text, with "=>" at `arrow`;
//   - every operation line round-trips: its canonical text (format_line)
//     parses back to an equal Operation and Outcome, and the canonical text
//     of that is the same text (a fixed point);
//   - parse_number and parse_range, on the first words of the input (and on
//     the value of each key=value word), return a value or EINVAL with a
//     message, and the value round-trips through the writer (hex, to_string).
//     Only the first words: the fuzzer can put anything there, and each call
//     on a bad word builds a message, which is most of the time under ASan.
//
// The same function runs in the ordinary build on every file of
// differential/fuzz/regressions (differential/tests/fuzz_regressions_test.cpp).
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "trace.hpp"
#include "property.hpp"

namespace ioas::trace {
namespace {

constexpr std::string_view kFile = "fuzz.trace";

[[noreturn]] void broken(const std::string& what) { fuzz::property_broken("trace_fuzz", what); }

// The lines of `text` as parse_trace sees them: split at '\n', one '\r'
// dropped from the end of each.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t nl = text.find('\n', at);
    std::string_view l = text.substr(at, nl == std::string_view::npos ? text.npos : nl - at);
    at = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out.push_back(l);
  }
  return out;
}

// An error of parse_trace must be EINVAL "fuzz.trace:L:C: what" with L a
// line of the input and C in [1, length of that line + 1].
void check_error(const Error& e, const std::vector<std::string_view>& lines) {
  if (e.code != EINVAL) broken("parse_trace failed with errno " + std::to_string(e.code) + ": " + e.message);
  std::string_view m = e.message;
  const std::string prefix = std::string(kFile) + ":";
  if (m.rfind(prefix, 0) != 0) broken("error without the file name: " + e.message);
  m.remove_prefix(prefix.size());
  long line = 0, column = 0;
  if (!fuzz::take_int(m, line) || m.empty() || m[0] != ':') broken("error without a line number: " + e.message);
  m.remove_prefix(1);
  if (!fuzz::take_int(m, column) || m.rfind(": ", 0) != 0) broken("error without a column: " + e.message);
  if (m.size() <= 2) broken("error without a message: " + e.message);
  if (line < 1 || static_cast<std::size_t>(line) > lines.size())
    broken("error names line " + std::to_string(line) + " of " + std::to_string(lines.size()) + ": " + e.message);
  const std::size_t len = lines[static_cast<std::size_t>(line) - 1].size();
  if (column < 1 || static_cast<std::size_t>(column) > len + 1)
    broken("error names column " + std::to_string(column) + " of a line of " + std::to_string(len) +
           " bytes: " + e.message);
}

void check_trace(const Trace& t, std::string_view text, const std::vector<std::string_view>& lines) {
  if (t.file != kFile) broken("the trace lost its file name");
  if (t.raw.size() != lines.size())
    broken(std::to_string(t.raw.size()) + " raw lines for " + std::to_string(lines.size()) + " input lines");
  if (t.final_newline != (text.empty() || text.back() == '\n')) broken("final_newline is wrong");
  int previous = 0;
  for (const Line& l : t.lines) {
    if (l.pos.line <= previous || static_cast<std::size_t>(l.pos.line) > t.raw.size())
      broken("operation lines out of order or out of the file: line " + std::to_string(l.pos.line));
    previous = l.pos.line;
    if (t.raw[static_cast<std::size_t>(l.pos.line) - 1] != l.text) broken("raw[pos.line - 1] != text");
    if (l.expect.has_value() != (l.arrow != std::string::npos)) broken("arrow set without an expectation");
    if (l.expect && l.text.compare(l.arrow, 2, "=>") != 0) broken("arrow does not point at '=>'");
  }
}

// The canonical text of `l` parses back to the same line, and is a fixed point.
void check_round_trip(const Line& l) {
  const std::string canonical = format_line(l.op, l.expect);
  auto again = parse_trace(canonical, "canonical.trace");
  if (!again.ok()) broken("canonical text '" + canonical + "' of '" + l.text + "' does not parse: " + again.error().message);
  if (again->lines.size() != 1) broken("canonical text '" + canonical + "' is not one operation line");
  const Line& back = again->lines[0];
  if (!(back.op == l.op)) broken("'" + l.text + "' -> '" + canonical + "' parses to another operation");
  if (!(back.expect == l.expect)) broken("'" + l.text + "' -> '" + canonical + "' parses to another result");
  const std::string twice = format_line(back.op, back.expect);
  if (twice != canonical) broken("canonical text is not a fixed point: '" + canonical + "' -> '" + twice + "'");
}

constexpr int kWordsChecked = 16;

void check_words(std::string_view text) {
  std::size_t i = 0;
  for (int words = 0; words < kWordsChecked && i < text.size(); ++words) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
    std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') ++i;
    if (start == i) break;
    const std::string_view w = text.substr(start, i - start);
    // A key=value word: try its value too.
    const std::size_t eq = w.find('=');
    for (std::string_view s : {w, eq == std::string_view::npos ? w : w.substr(eq + 1)}) {
      auto n = parse_number(s);
      if (n.ok()) {
        auto back = parse_number(hex(*n));
        if (!back.ok() || *back != *n) broken("number '" + std::string(s) + "' does not round-trip as " + hex(*n));
      } else if (n.error().code != EINVAL || n.error().message.empty()) {
        broken("parse_number('" + std::string(s) + "') failed without EINVAL and a message");
      }
      auto r = parse_range(s);
      if (r.ok()) {
        auto back = parse_range(ioas::to_string(*r));
        if (!back.ok() || !(*back == *r)) broken("range '" + std::string(s) + "' does not round-trip");
      } else if (r.error().code != EINVAL || r.error().message.empty()) {
        broken("parse_range('" + std::string(s) + "') failed without EINVAL and a message");
      }
    }
  }
}

}  // namespace
}  // namespace ioas::trace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ioas::trace;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_words(text);
  const std::vector<std::string_view> lines = split_lines(text);
  auto t = parse_trace(text, kFile);
  if (!t.ok()) {
    check_error(t.error(), lines);
    return 0;
  }
  check_trace(*t, text, lines);
  for (const Line& l : t->lines) check_round_trip(l);
  return 0;
}
