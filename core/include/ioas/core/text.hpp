// ioas/core/text.hpp: numbers and ranges as ioas writes and reads them, in
// traces, state files, the CLI's options and sysfs files.
//
//   number  decimal or 0x hex (either case of digit), with an optional binary
//           suffix K, M, G or T; at most 2^64-1.
//   range   START-LAST (inclusive; start > last parses, the operation that
//           receives it decides) or START+LEN (LEN > 0, not past 2^64-1).
//   hex     the canonical form of a number: "0x" and lowercase digits, "0x0"
//           for zero. Parsing it gives the number back.
//
// read_number/read_range report the byte offset within their text that is
// wrong, so a caller that knows where the text sits (a line's column) can
// point at it; parse_number/parse_range turn the same failure into EINVAL.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "ioas/range.hpp"
#include "ioas/result.hpp"

namespace ioas {

// Why a text is not a number or range: the offset of the first wrong byte
// within the text, and a message naming the text and the rule it breaks.
struct TextError {
  std::size_t offset = 0;
  std::string message;
};
template <typename T>
using Parsed = std::variant<T, TextError>;

Parsed<u64> read_number(std::string_view s);
Parsed<Range> read_range(std::string_view s);

Result<u64> parse_number(std::string_view s);   // EINVAL with read_number's message
Result<Range> parse_range(std::string_view s);  // EINVAL with read_range's message

std::string hex(u64 v);  // "0x1f", "0x0"
// before + hex(v) + after, built in one allocation: for a message made on
// a path a caller takes often and mostly drops (a query's ENOENT).
std::string hex_within(std::string_view before, u64 v, std::string_view after);

}  // namespace ioas
