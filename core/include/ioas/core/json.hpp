// ioas/core/json.hpp: JSON values for ioas's state files and the CLI's --json
// output, read and written with nlohmann::json (which this header does not
// expose).
//
// What it accepts is RFC 8259 JSON (UTF-8) with one restriction: numbers must
// be non-negative integers that fit in 64 bits (ioas has no other numbers;
// addresses are written as "0x..." strings so every consumer reads them
// exactly). Duplicate keys in an object, nesting deeper than 64 and trailing
// garbage are errors. Every error is EINVAL with "file:line:column: what";
// every value remembers where it was read so later checks can say where too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ioas/result.hpp"

namespace ioas::json {

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  // Declared here, defaulted below the class: with clang and libstdc++, an
  // implicit constructor makes std::pair<std::string, Value> (the type of
  // `object`) ask whether Value is default-constructible while Value is still
  // incomplete, and the header does not compile.
  Value();
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::uint64_t number = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in the order written
  int line = 0, column = 0;                            // where it was read (1-based)

  static Value null() { return Value{}; }
  static Value of(bool b) { Value v; v.kind = Kind::kBool; v.boolean = b; return v; }
  static Value of(std::uint64_t n) { Value v; v.kind = Kind::kNumber; v.number = n; return v; }
  static Value of(std::string s) { Value v; v.kind = Kind::kString; v.string = std::move(s); return v; }
  static Value of(const char* s) { return of(std::string(s)); }
  static Value arr() { Value v; v.kind = Kind::kArray; return v; }
  static Value obj() { Value v; v.kind = Kind::kObject; return v; }

  // Builders (for objects and arrays): return *this for chaining.
  Value& set(std::string key, Value v) { object.emplace_back(std::move(key), std::move(v)); return *this; }
  Value& push(Value v) { array.push_back(std::move(v)); return *this; }

  // The member `key` of an object, or nullptr.
  const Value* find(std::string_view key) const;
  const char* kind_name() const;
};

inline Value::Value() = default;

// Parses a whole document. `file` names the input in error messages.
Result<Value> parse(std::string_view text, std::string_view file);

// The text of `v`, pretty-printed with two-space indentation when `pretty`,
// else on one line; ends without a newline.
std::string write(const Value& v, bool pretty = true);

// `s` as a JSON string literal (quotes and escapes).
std::string quote(std::string_view s);

}  // namespace ioas::json
