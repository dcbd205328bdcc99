#include "json.hpp"

#include <cerrno>
#include <cstdio>
#include <unordered_set>

namespace ioas::json {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  Parser(std::string_view text, std::string_view file) : t_(text), file_(file) {}

  Result<Value> document() {
    skip_ws();
    Value v;
    if (!value(v, 0)) return make_error(EINVAL, error_);
    skip_ws();
    if (i_ != t_.size()) return fail_r("unexpected text after the JSON value");
    return v;
  }

 private:
  Result<Value> fail_r(const std::string& what) {
    fail(what);
    return make_error(EINVAL, error_);
  }
  bool fail(const std::string& what) {
    if (error_.empty()) error_ = std::string(file_) + ":" + std::to_string(line_) + ":" + std::to_string(col_) + ": " + what;
    return false;
  }
  bool at_end() const { return i_ >= t_.size(); }
  char peek() const { return at_end() ? '\0' : t_[i_]; }
  void advance() {
    if (t_[i_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++i_;
  }
  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) advance();
  }
  bool literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return fail("expected '" + std::string(word) + "'");
    for (std::size_t k = 0; k < word.size(); ++k) advance();
    return true;
  }

  bool value(Value& v, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than 64");
    v.line = line_;
    v.column = col_;
    if (at_end()) return fail("unexpected end of input, expected a value");
    const char c = peek();
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v.kind = Value::Kind::kString;
      return string(v.string);
    }
    if (c == 't') { v = Value::of(true); v.line = line_; v.column = col_; return literal("true"); }
    if (c == 'f') { v = Value::of(false); v.line = line_; v.column = col_; return literal("false"); }
    if (c == 'n') { int l = line_, k = col_; v = Value::null(); v.line = l; v.column = k; return literal("null"); }
    if (c == '-') return fail("negative numbers are not supported (ioas numbers are unsigned)");
    if (c >= '0' && c <= '9') return number(v);
    return fail(std::string("unexpected character '") + c + "'");
  }

  bool number(Value& v) {
    v.kind = Value::Kind::kNumber;
    if (peek() == '0' && i_ + 1 < t_.size() && t_[i_ + 1] >= '0' && t_[i_ + 1] <= '9')
      return fail("a number must not have a leading zero");
    std::uint64_t n = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      const std::uint64_t d = static_cast<std::uint64_t>(peek() - '0');
      if (n > (~std::uint64_t{0} - d) / 10) return fail("number does not fit in 64 bits");
      n = n * 10 + d;
      advance();
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E')
      return fail("only integers are supported (no fraction or exponent)");
    v.number = n;
    return true;
  }

  static void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool hex4(std::uint32_t& cp) {
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = peek();
      std::uint32_t d;
      if (h >= '0' && h <= '9') d = static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') d = static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') d = static_cast<std::uint32_t>(h - 'A' + 10);
      else return fail("\\u needs four hex digits");
      cp = cp * 16 + d;
      advance();
    }
    return true;
  }

  bool string(std::string& out) {
    advance();  // "
    for (;;) {
      if (at_end()) return fail("unterminated string");
      const char c = peek();
      if (c == '"') {
        advance();
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string (escape it)");
      if (c != '\\') {
        out += c;
        advance();
        continue;
      }
      advance();
      if (at_end()) return fail("unterminated escape");
      const char e = peek();
      advance();
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00) {
            if (peek() != '\\') return fail("unpaired surrogate in \\u escape");
            advance();
            if (peek() != 'u') return fail("unpaired surrogate in \\u escape");
            advance();
            std::uint32_t lo;
            if (!hex4(lo)) return false;
            if (lo < 0xdc00 || lo >= 0xe000) return fail("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return fail("unpaired surrogate in \\u escape");
          }
          put_utf8(out, cp);
          break;
        }
        default: return fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  bool array(Value& v, int depth) {
    v.kind = Value::Kind::kArray;
    advance();  // [
    skip_ws();
    if (peek() == ']') {
      advance();
      return true;
    }
    for (;;) {
      skip_ws();
      Value item;
      if (!value(item, depth + 1)) return false;
      v.array.push_back(std::move(item));
      skip_ws();
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == ']') {
        advance();
        return true;
      }
      return fail("expected ',' or ']' in an array");
    }
  }

  bool object(Value& v, int depth) {
    v.kind = Value::Kind::kObject;
    advance();  // {
    skip_ws();
    if (peek() == '}') {
      advance();
      return true;
    }
    // The keys read so far, for the duplicate check: searching v.object
    // instead makes an object of n keys cost n^2/2 comparisons.
    std::unordered_set<std::string> keys;
    for (;;) {
      skip_ws();
      if (peek() != '"') return fail("expected a string key in an object");
      const int kl = line_, kc = col_;
      std::string key;
      if (!string(key)) return false;
      if (!keys.insert(key).second) {
        line_ = kl;
        col_ = kc;
        return fail("duplicate key \"" + key + "\"");
      }
      skip_ws();
      if (peek() != ':') return fail("expected ':' after a key");
      advance();
      skip_ws();
      Value item;
      if (!value(item, depth + 1)) return false;
      v.object.emplace_back(std::move(key), std::move(item));
      skip_ws();
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == '}') {
        advance();
        return true;
      }
      return fail("expected ',' or '}' in an object");
    }
  }

  std::string_view t_;
  std::string_view file_;
  std::size_t i_ = 0;
  int line_ = 1, col_ = 1;
  std::string error_;
};

void write_to(std::string& out, const Value& v, bool pretty, int indent) {
  auto nl = [&](int level) {
    if (!pretty) return;
    out += '\n';
    out.append(static_cast<std::size_t>(level) * 2, ' ');
  };
  switch (v.kind) {
    case Value::Kind::kNull: out += "null"; return;
    case Value::Kind::kBool: out += v.boolean ? "true" : "false"; return;
    case Value::Kind::kNumber: out += std::to_string(v.number); return;
    case Value::Kind::kString: out += quote(v.string); return;
    case Value::Kind::kArray:
      if (v.array.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t i = 0; i < v.array.size(); ++i) {
        if (i) out += pretty ? "," : ", ";
        nl(indent + 1);
        write_to(out, v.array[i], pretty, indent + 1);
      }
      nl(indent);
      out += ']';
      return;
    case Value::Kind::kObject:
      if (v.object.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (std::size_t i = 0; i < v.object.size(); ++i) {
        if (i) out += pretty ? "," : ", ";
        nl(indent + 1);
        out += quote(v.object[i].first);
        out += ": ";
        write_to(out, v.object[i].second, pretty, indent + 1);
      }
      nl(indent);
      out += '}';
      return;
  }
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

Result<Value> parse(std::string_view text, std::string_view file) { return Parser(text, file).document(); }

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string write(const Value& v, bool pretty) {
  std::string out;
  write_to(out, v, pretty, 0);
  return out;
}

}  // namespace ioas::json
