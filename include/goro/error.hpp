// goro/error.hpp — goro::error, Go's error interface as a nullable value.
//
// A default-constructed error is nil (success); `if (err)` is true for an error.
// Errors are immutable and cheap to copy (one shared pointer). wrap(err, "context")
// adds a message and keeps err as the cause; join(a, b, ...) makes one error of several
// (Go's errors.Join). is(target) searches the tree of causes like errors.Is, comparing
// identity (sentinels such as goro::canceled) or, for errors made from a
// std::error_code, the code; as<E>() finds the exception of type E an error was made
// from, like errors.As.
//
// Polarity: an error is true when something failed; goro::result<T> (goro/result.hpp)
// and most `bool` results are true when something succeeded. So
//   if (sem.acquire(ctx))   — true on failure: acquire returns an error
//   if (sem.try_acquire())  — true on success: try_acquire returns whether it took
//   if (auto r = dial(...)) — true on success: a result, whose bool is !r.error()
// Name what is tested to keep the reader right: `if (goro::error err = ...)`,
// `if (r.ok())`.
//
// A thrown goro::error keeps its identity: error::from(std::current_exception())
// gives back the error that was thrown, and one escaping a goroutine is reported with
// its message.
//
// Blocking: none. Thread-safety: errors may be shared freely between threads.
// Panics: none.
//
// Example:
//   goro::error err = read_config();
//   if (err) return goro::wrap(err, "starting server");   // "starting server: open x: ..."
//   if (err.is(goro::canceled)) ...
//   if (auto* se = err.as<std::system_error>()) log(se->code());
#pragma once

#include <concepts>
#include <exception>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <ranges>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>
#include <version>

#if defined(__cpp_lib_format) && __cpp_lib_format >= 201907L
#include <format>
#include <string_view>
#endif

namespace goro {

class error;

namespace detail {
struct error_impl;    // one link of an error's tree (error.cpp)
struct error_access;  // the library's constructors of special errors (error.cpp)
}  // namespace detail

class error {
 public:
  // nil: no error.
  error() noexcept = default;

  // An error from a std::error_code (nil for a zero code); message() is the code's.
  [[nodiscard]] static error from(std::error_code code);
  // An error from an exception (nil for a null pointer); message() is its what()
  // ("unknown exception" for one not derived from std::exception), and a
  // std::system_error also gives its code to code() and is(). A thrown goro::error is
  // returned as it was (the same error: is() and == hold); a thrown
  // goro::bad_result_access gives the error it carries. A thrown nil error gives an
  // error saying so, since something was thrown.
  [[nodiscard]] static error from(std::exception_ptr e);

  // True for an error, false for nil.
  explicit operator bool() const noexcept { return impl_ != nullptr; }

  // The full message, including wrapped causes ("outer: inner"); the messages of joined
  // errors on lines of their own ("first\nsecond", as Go); "" for nil.
  [[nodiscard]] std::string message() const;
  // True if this error or any error it wraps or joins is `target` (same error value) or
  // has the error code of `target` when target was made from one (Go's errors.Is,
  // searching depth first). nil.is(nil) is true; a non-nil error is never nil.
  // Sentinels match by identity only: error::from(std::errc::operation_canceled) is not
  // goro::canceled.
  [[nodiscard]] bool is(const error& target) const noexcept;
  // True if this error or one it wraps or joins carries `code`.
  [[nodiscard]] bool is(std::error_code code) const noexcept;
  // True if this error or one it wraps or joins carries a code equivalent to
  // `condition`, whatever its category: err.is(std::errc::connection_refused). The
  // sentinels carry one too: goro::canceled is std::errc::operation_canceled,
  // goro::deadline_exceeded std::errc::timed_out (so does a network timeout, which
  // wraps it).
  [[nodiscard]] bool is(std::errc condition) const noexcept;
  // The first error code in the tree, outermost first (empty if none).
  [[nodiscard]] std::error_code code() const noexcept;
  // The wrapped error (Go's errors.Unwrap), or nil; nil for a join, as in Go.
  [[nodiscard]] error unwrap() const;
  // The errors this one wraps directly (Go's Unwrap() []error): the cause of a wrap,
  // every error of a join, none for a leaf.
  [[nodiscard]] std::vector<error> unwrap_all() const;
  // The exception this error was made from, if any (searching the tree depth first).
  [[nodiscard]] std::exception_ptr exception() const noexcept;
  // The first exception in the tree (depth first, as errors.As) that is an E or derives
  // from one, or nullptr. E is an exception type: whatever error::from(exception_ptr)
  // was given (std::system_error, std::runtime_error, a type of the program's own).
  // Errors from a std::error_code hold no exception: test them with is() and code().
  // The pointer stays valid while this error or a copy of it exists.
  template <class E>
  [[nodiscard]] const E* as() const noexcept {
    static_assert(std::is_object_v<E> && !std::is_array_v<E>, "as<E>: E is an exception type");
    const E* found = nullptr;
    find_exception(&match_exception<E>, &found);
    return found;
  }

  // Same error value (identity), as Go's == on errors. operator<< writes message(), or
  // "<nil>" for nil (std::format too, where the library has it).
  friend bool operator==(const error& a, const error& b) noexcept { return a.impl_ == b.impl_; }
  friend std::ostream& operator<<(std::ostream& os, const error& e) {
    return os << (e ? e.message() : std::string("<nil>"));
  }

 private:
  friend error make_error(std::string message);
  friend error wrap(const error& cause, std::string message);
  friend error join(std::span<const error> errors);
  friend struct detail::error_access;
  explicit error(std::shared_ptr<const detail::error_impl> impl) : impl_(std::move(impl)) {}

  // Calls match(exception, out) on each exception in the tree, depth first, until one
  // returns true.
  using exception_matcher = bool (*)(const std::exception_ptr&, void* out) noexcept;
  void find_exception(exception_matcher match, void* out) const noexcept;
  template <class E>
  static bool match_exception(const std::exception_ptr& p, void* out) noexcept {
    try {
      std::rethrow_exception(p);
    } catch (const E& e) {
      // The exception object is owned by `p` (rethrow does not copy it), so the address
      // lives as long as the error.
      *static_cast<const E**>(out) = &e;
      return true;
    } catch (...) {
    }
    return false;
  }

  std::shared_ptr<const detail::error_impl> impl_;
};

// A new error with `message` (Go's errors.New). Each call makes a distinct error.
[[nodiscard]] error make_error(std::string message);
// `cause` with `message` in front ("message: cause"); nil if cause is nil (as
// fmt.Errorf("%w") callers usually want: wrapping success stays success).
[[nodiscard]] error wrap(const error& cause, std::string message);

// One error for several (Go's errors.Join): nil if every one is nil; otherwise a new
// error wrapping the non-nil ones in order, whose message is theirs joined with "\n"
// and for which is() and as() search each of them. Like Go, a join of a single error
// is a new error (not == to it), still is() it.
[[nodiscard]] error join(std::span<const error> errors);
// join over any range of errors (a std::vector<goro::error>, a std::list, a view).
template <std::ranges::input_range R>
  requires std::convertible_to<std::ranges::range_reference_t<R>, error> &&
           (!std::convertible_to<R, std::span<const error>>)
[[nodiscard]] error join(R&& errors) {
  std::vector<error> all;
  for (auto&& e : errors) all.push_back(e);
  return join(std::span<const error>(all));
}
// join(a, b, c): the errors given (Go's errors.Join(a, b, c)).
template <class... Errors>
  requires(std::same_as<std::remove_cvref_t<Errors>, error> && ...)
[[nodiscard]] error join(const Errors&... errors) {
  if constexpr (sizeof...(Errors) == 0) {
    return {};
  } else {
    const error all[] = {errors...};
    return join(std::span<const error>(all));
  }
}

// Sentinels (compare with err.is(...)). Usable from any global's constructor or
// destructor: they exist before user code runs and are never destroyed.
extern const error& canceled;           // "context canceled"; is(std::errc::operation_canceled)
extern const error& deadline_exceeded;  // "context deadline exceeded"; is(std::errc::timed_out);
                                        // also I/O deadlines ("i/o timeout")
extern const error& eof;                // "EOF": the end of input (Go's io.EOF)
extern const error& unexpected_eof;     // "unexpected EOF": input ended mid-record

}  // namespace goro

#if defined(__cpp_lib_format) && __cpp_lib_format >= 201907L
// std::format("{}", err): message(), or "<nil>" for nil, with the string format
// options ("{:>20}").
template <>
struct std::formatter<goro::error, char> : std::formatter<std::string_view, char> {
  template <class FormatContext>
  auto format(const goro::error& e, FormatContext& ctx) const {
    const std::string text = e ? e.message() : std::string("<nil>");
    return std::formatter<std::string_view, char>::format(std::string_view(text), ctx);
  }
};
#endif

// goro::result<T>, a value and an error as Go's (T, error) pair.
#include "goro/result.hpp"
