// The JSON reader and writer of json.hpp over nlohmann::json.
//
// Reading goes through nlohmann's SAX interface, which validates the syntax
// (RFC 8259, UTF-8 included) and reports each value as it is read; the
// Builder assembles our Values from those events and adds what nlohmann does
// not keep: where each value starts, and the restrictions of json.hpp
// (unsigned 64-bit integers only, no duplicate keys, nesting at most 64).
// Positions come from a cursor that follows nlohmann through the text: when
// an event arrives, the text before its token has been read and is valid, so
// the token starts at the first byte after the cursor that is not
// whitespace, ',' or ':', and ends where its own syntax says.
#include "ioas/core/json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <string>
#include <unordered_set>

namespace ioas::json {
namespace {

constexpr std::size_t kMaxDepth = 64;

class Builder {
 public:
  Builder(std::string_view text, std::string_view file) : t_(text), file_(file) {}

  // ---- nlohmann's SAX interface ----
  bool null() { return scalar(Value::null()); }
  bool boolean(bool b) { return scalar(Value::of(b)); }
  bool number_unsigned(std::uint64_t n) { return scalar(Value::of(n)); }
  bool number_integer(std::int64_t) {
    start_token();
    return fail("negative numbers are not supported (ioas numbers are unsigned)");
  }
  bool number_float(double, const std::string& raw) {
    start_token();
    if (!raw.empty() && raw[0] == '-') return fail("negative numbers are not supported (ioas numbers are unsigned)");
    if (raw.find_first_of(".eE") != std::string::npos) return fail("only integers are supported (no fraction or exponent)");
    return fail("number does not fit in 64 bits");
  }
  bool string(std::string& s) {
    Value v;
    v.kind = Value::Kind::kString;
    v.string = std::move(s);
    return scalar(std::move(v));
  }
  bool binary(nlohmann::json::binary_t&) { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return open(Value::obj()); }
  bool start_array(std::size_t) { return open(Value::arr()); }
  bool key(std::string& k) {
    start_token();
    const int line = line_, column = column_;
    advance(string_length());
    if (!keys_.back().insert(k).second) {
      line_ = line;
      column_ = column;
      return fail("duplicate key \"" + k + "\"");
    }
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception& e) {
    // nlohmann's byte counts the bytes read, the offending one last.
    at(byte == 0 ? 0 : byte - 1);
    std::string what = e.what();
    const std::size_t col = what.find(", column ");
    const std::size_t colon = col == std::string::npos ? std::string::npos : what.find(": ", col);
    if (colon != std::string::npos) what = what.substr(colon + 2);
    return fail(what);
  }

  Result<Value> document() {
    const bool ok = nlohmann::json::sax_parse(t_.begin(), t_.end(), this);
    if (!ok || !error_.empty()) return make_error(EINVAL, error_.empty() ? file_ + ":1:1: not JSON" : error_);
    return std::move(root_);
  }

 private:
  bool fail(const std::string& what) {
    if (error_.empty()) error_ = file_ + ":" + std::to_string(line_) + ":" + std::to_string(column_) + ": " + what;
    return false;
  }
  // Moves the cursor (and its line and column) to byte `to` of the text.
  void at(std::size_t to) {
    to = std::min(to, t_.size());
    for (; i_ < to; ++i_) {
      if (t_[i_] == '\n') {
        ++line_;
        column_ = 1;
      } else {
        ++column_;
      }
    }
  }
  void advance(std::size_t n) { at(i_ + n); }
  // Puts the cursor on the first byte of the token nlohmann just read.
  void start_token() {
    std::size_t j = i_;
    while (j < t_.size() && (t_[j] == ' ' || t_[j] == '\t' || t_[j] == '\n' || t_[j] == '\r' || t_[j] == ',' || t_[j] == ':'))
      ++j;
    at(j);
  }
  // The length of the string literal at the cursor (quotes included).
  std::size_t string_length() const {
    std::size_t j = i_ + 1;
    while (j < t_.size() && t_[j] != '"') j += t_[j] == '\\' ? 2 : 1;
    return j + 1 - i_;
  }
  std::size_t number_length() const {
    std::size_t j = i_;
    while (j < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[j])) || t_[j] == '-' || t_[j] == '+' ||
                             t_[j] == '.' || t_[j] == 'e' || t_[j] == 'E'))
      ++j;
    return j - i_;
  }
  // Places `v` (positioned at the cursor) in the container being read, or
  // as the document; false when it is nested too deep.
  Value* place(Value v) {
    if (stack_.size() > kMaxDepth) {
      fail("nesting deeper than 64");
      return nullptr;
    }
    v.line = line_;
    v.column = column_;
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Value& parent = *stack_.back();
    if (parent.kind == Value::Kind::kArray) {
      parent.array.push_back(std::move(v));
      return &parent.array.back();
    }
    parent.object.emplace_back(std::move(key_), std::move(v));
    return &parent.object.back().second;
  }
  bool scalar(Value v) {
    start_token();
    const std::size_t length = v.kind == Value::Kind::kString ? string_length()
                               : v.kind == Value::Kind::kNumber ? number_length()
                               : v.kind == Value::Kind::kBool && !v.boolean ? 5
                                                                            : 4;  // null, true
    if (!place(std::move(v))) return false;
    advance(length);
    return true;
  }
  bool open(Value v) {
    start_token();
    Value* placed = place(std::move(v));
    if (!placed) return false;
    advance(1);
    stack_.push_back(placed);
    keys_.emplace_back();
    return true;
  }
  bool close() {
    start_token();
    advance(1);
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  std::string_view t_;
  std::string file_;
  std::size_t i_ = 0;
  int line_ = 1, column_ = 1;
  std::string error_;
  Value root_;
  // The containers being read, innermost last. A pointer stays valid while
  // its container is read: only the innermost container grows.
  std::vector<Value*> stack_;
  std::vector<std::unordered_set<std::string>> keys_;  // the keys read so far, per object (arrays: unused)
  std::string key_;                                     // the key of the next member
};

nlohmann::ordered_json to_nlohmann(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull: return nullptr;
    case Value::Kind::kBool: return v.boolean;
    case Value::Kind::kNumber: return v.number;
    case Value::Kind::kString: return v.string;
    case Value::Kind::kArray: {
      nlohmann::ordered_json a = nlohmann::ordered_json::array();
      for (const Value& x : v.array) a.push_back(to_nlohmann(x));
      return a;
    }
    case Value::Kind::kObject: {
      nlohmann::ordered_json o = nlohmann::ordered_json::object();
      for (const auto& [k, x] : v.object) o[k] = to_nlohmann(x);
      return o;
    }
  }
  return nullptr;
}

// Bytes that are not UTF-8 (never read from JSON, but a Value may be built
// from other text) are written as U+FFFD instead of throwing.
std::string dump(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : object)
    if (k == key) return &v;
  return nullptr;
}

const char* Value::kind_name() const {
  switch (kind) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "a boolean";
    case Kind::kNumber: return "a number";
    case Kind::kString: return "a string";
    case Kind::kArray: return "an array";
    case Kind::kObject: return "an object";
  }
  return "?";
}

Result<Value> parse(std::string_view text, std::string_view file) { return Builder(text, file).document(); }

std::string quote(std::string_view s) { return dump(nlohmann::ordered_json(std::string(s)), -1); }

std::string write(const Value& v, bool pretty) { return dump(to_nlohmann(v), pretty ? 2 : -1); }

}  // namespace ioas::json
