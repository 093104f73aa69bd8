// goro/error.hpp — goro::error, Go's error interface as a nullable value.
//
// A default-constructed error is nil (success); `if (err)` is true for an error.
// Errors are immutable and cheap to copy (one shared pointer). wrap(err, "context")
// adds a message and keeps err as the cause; is(target) walks the chain like
// errors.Is, comparing identity (sentinels such as goro::canceled) or, for errors
// made from a std::error_code, the code.
//
// Blocking: none. Thread-safety: errors may be shared freely between threads.
// Panics: none.
//
// Example:
//   goro::error err = read_config();
//   if (err) return goro::wrap(err, "starting server");   // "starting server: open x: ..."
//   if (err.is(goro::canceled)) ...
#pragma once

#include <exception>
#include <memory>
#include <ostream>
#include <string>
#include <system_error>

namespace goro {

class error;

namespace detail {
struct error_impl {
  std::string text;                         // this link's own message
  std::error_code code;                     // set for errors from a std::error_code
  std::exception_ptr exception;             // set for errors from an exception
  std::shared_ptr<const error_impl> cause;  // wrapped error, or null
};
}  // namespace detail

class error {
 public:
  // nil: no error.
  error() noexcept = default;

  // An error from a std::error_code (nil for a zero code); message() is the code's.
  static error from(std::error_code code);
  // An error from an exception (nil for a null pointer); message() is its what()
  // ("unknown exception" for one not derived from std::exception), and a
  // std::system_error also gives its code to code() and is().
  static error from(std::exception_ptr e);

  // True for an error, false for nil.
  explicit operator bool() const noexcept { return impl_ != nullptr; }

  // The full message, including wrapped causes ("outer: inner"); "" for nil.
  std::string message() const;
  // True if this error or any error it wraps is `target` (same error value) or has
  // the same error code as `target` (Go's errors.Is). nil.is(nil) is true; a non-nil
  // error is never nil.
  bool is(const error& target) const noexcept;
  // True if this error or a wrapped one carries `code`.
  bool is(std::error_code code) const noexcept;
  // True if this error or a wrapped one carries a code equivalent to `condition`,
  // whatever its category: err.is(std::errc::connection_refused).
  bool is(std::errc condition) const noexcept;
  // The first error code in the chain, outermost first (empty if none).
  std::error_code code() const noexcept;
  // The wrapped error (Go's errors.Unwrap), or nil.
  error unwrap() const;
  // The exception this error was made from, if any (searching the chain).
  std::exception_ptr exception() const noexcept;

  // Same error value (identity), as Go's == on errors. operator<< writes message(), or
  // "<nil>" for nil.
  friend bool operator==(const error& a, const error& b) noexcept { return a.impl_ == b.impl_; }
  friend std::ostream& operator<<(std::ostream& os, const error& e) {
    return os << (e ? e.message() : std::string("<nil>"));
  }

 private:
  friend error make_error(std::string message);
  friend error wrap(const error& cause, std::string message);
  explicit error(std::shared_ptr<const detail::error_impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const detail::error_impl> impl_;
};

// A new error with `message` (Go's errors.New). Each call makes a distinct error.
error make_error(std::string message);
// `cause` with `message` in front ("message: cause"); nil if cause is nil (as
// fmt.Errorf("%w") callers usually want: wrapping success stays success).
error wrap(const error& cause, std::string message);

// Sentinels (compare with err.is(...)). Usable from any global's constructor or
// destructor: they exist before user code runs and are never destroyed.
extern const error& canceled;           // "context canceled"
extern const error& deadline_exceeded;  // "context deadline exceeded"; also I/O deadlines
extern const error& eof;                // "EOF": the end of input (Go's io.EOF)
extern const error& unexpected_eof;     // "unexpected EOF": input ended mid-record

}  // namespace goro
