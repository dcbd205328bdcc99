// ioas/result.hpp: errors as values. No exception crosses the public API.
//
// An Error carries an errno value (EINVAL, ENOENT, ...: the names SPEC.md
// uses) and a message a user can act on, naming the range, owner or object
// that caused it. Result<T> holds either a T or an Error; Status is
// Result<void>.
#pragma once

#include <cassert>
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace ioas {

struct Error {
  int code = 0;         // an errno value, never 0 in a real error
  std::string message;  // for a human: what was wrong, with which range/owner
};

// "EINVAL" for EINVAL, ...; "E?<n>" for a code SPEC.md does not use.
const char* errno_name(int code);
// The errno value for a name ("EINVAL" -> EINVAL); 0 when unknown.
int errno_from_name(std::string_view name);

// "EINVAL: map 0xfee00000+0x1000: overlaps reserved ..." — for logs.
std::string to_string(const Error& e);

inline Error make_error(int code, std::string message) {
  return Error{code, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {     // NOLINT
    assert(std::get<Error>(v_).code != 0 && "an Error needs an errno");
  }
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& {
    assert(ok() && "value() of a failed Result");
    return std::get<T>(v_);
  }
  T& value() & {
    assert(ok() && "value() of a failed Result");
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok() && "value() of a failed Result");
    return std::get<T>(std::move(v_));
  }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const {
    assert(!ok() && "error() of a successful Result");
    return std::get<Error>(v_);
  }
  int code() const { return ok() ? 0 : error().code; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {  // NOLINT
    assert(error_.code != 0 && "an Error needs an errno");
  }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_ && "error() of a successful Status");
    return error_;
  }
  int code() const { return ok_ ? 0 : error_.code; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }

}  // namespace ioas
