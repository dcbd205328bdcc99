// Numbers, ranges and hex (ioas/core/text.hpp). Every check against 2^64-1
// is made before the multiplication or shift that could pass it.
#include "ioas/core/text.hpp"

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace ioas {
namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

TextError above_max(std::string_view s) { return TextError{0, "number " + std::string(s) + " is above 2^64-1"}; }

}  // namespace

Parsed<u64> read_number(std::string_view s) {
  if (s.empty()) return TextError{0, "expected a number"};
  unsigned shift = 0;
  std::string_view digits = s;
  switch (s.back()) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: break;
  }
  if (shift != 0) digits.remove_suffix(1);
  u64 base = 10;
  std::size_t skip = 0;
  if (digits.size() >= 2 && digits[0] == '0' && digits[1] == 'x') {
    base = 16;
    skip = 2;
    digits.remove_prefix(2);
  }
  if (digits.empty()) return TextError{skip, quoted(s) + " is not a number (no digits)"};
  u64 v = 0;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    char c = digits[i];
    u64 d;
    if (c >= '0' && c <= '9') {
      d = static_cast<u64>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      d = static_cast<u64>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      d = static_cast<u64>(c - 'A' + 10);
    } else {
      return TextError{skip + i, quoted(s) + " is not a number (unexpected " + quoted(digits.substr(i, 1)) +
                                     "; numbers are 0x hex or decimal with an optional K, M, G or T suffix)"};
    }
    if (v > (kMaxIova - d) / base) return above_max(s);
    v = v * base + d;
  }
  if (shift != 0) {
    if (v > (kMaxIova >> shift)) return above_max(s);
    v <<= shift;
  }
  return v;
}

Parsed<Range> read_range(std::string_view s) {
  std::size_t sep = s.find_first_of("-+");
  if (sep == std::string_view::npos)
    return TextError{0, "expected a range START-LAST or START+LEN, got " + quoted(s)};
  auto start = read_number(s.substr(0, sep));
  if (auto* e = std::get_if<TextError>(&start)) return *e;
  const std::size_t second_at = sep + 1;
  auto second = read_number(s.substr(second_at));
  if (auto* e = std::get_if<TextError>(&second)) return TextError{second_at + e->offset, e->message};
  u64 a = std::get<u64>(start);
  u64 b = std::get<u64>(second);
  if (s[sep] == '-') return Range{a, b};  // start > last parses; the operation decides
  if (b == 0) return TextError{second_at, "range " + std::string(s) + ": LEN is 0"};
  auto r = Range::from_len(a, b);
  if (!r) return TextError{second_at, "range " + std::string(s) + ": START+LEN passes 2^64-1"};
  return *r;
}

Result<u64> parse_number(std::string_view s) {
  auto n = read_number(s);
  if (auto* e = std::get_if<TextError>(&n)) return make_error(EINVAL, e->message);
  return std::get<u64>(n);
}

Result<Range> parse_range(std::string_view s) {
  auto r = read_range(s);
  if (auto* e = std::get_if<TextError>(&r)) return make_error(EINVAL, e->message);
  return std::get<Range>(r);
}

// "0x" and the lowercase digits without leading zeros ("0x0" for zero).
// absl::Hex through StrCat, not a format string: error messages of both
// engines call it on every failed operation, and parsing "%x" each time
// costs several times as much.
std::string hex(u64 v) { return absl::StrCat("0x", absl::Hex(v)); }

std::string hex_within(std::string_view before, u64 v, std::string_view after) {
  // (absl::string_view: this Abseil does not take std::string_view.)
  return absl::StrCat(absl::string_view(before.data(), before.size()), "0x", absl::Hex(v),
                      absl::string_view(after.data(), after.size()));
}

}  // namespace ioas
