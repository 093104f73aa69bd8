// goro/result.hpp — goro::result<T>, Go's (value, error) pair as one value.
//
// A result holds a T and a goro::error, both always present, as Go's two return values
// are: on failure the value is whatever the call had (T{} for most, the bytes done for a
// short read or write), and a result may hold a value and an error at once, as Go's
// (n, err) does. It unpacks with structured bindings as the pair it replaces, and reads
// like std::expected where that is clearer:
//
//   auto [c, err] = goro::net::dial(ctx, "tcp", addr);      // Go's c, err := net.Dial(...)
//   if (err) return err;
//
//   goro::result<goro::net::conn> r = goro::net::dial(ctx, "tcp", addr);
//   if (!r) return r.error();                               // bool: success
//   r->write("hello");
//
// Polarity: `if (r)` and r.ok() are true on success (no error), as std::expected and
// absl::StatusOr; a goro::error is true on failure. So `if (r)` and `if (r.error())`
// test opposite things; see goro/error.hpp.
//
// The class is [[nodiscard]]: every function returning a result warns when the result
// is dropped, as an unchecked (value, err) is a bug in Go too (`_ = ` says it is meant:
// here `(void)`).
//
// Blocking: none. Thread-safety: as T (a result is a plain value).
// Panics: value() on a result holding an error throws goro::bad_result_access (a
// goro::panic_error). * and -> never throw: they give the value whatever the error.
#pragma once

#include <concepts>
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "goro/error.hpp"
#include "goro/panic.hpp"

namespace goro {

// Thrown by result<T>::value() when the result holds an error. what() is
// "goro::result::value: " and the error's message; error() is the error itself, which
// error::from(std::exception_ptr) gives back (so a value() escaping an errgroup task
// makes wait() return the original error).
class bad_result_access : public panic_error {
 public:
  explicit bad_result_access(goro::error err)
      : panic_error("goro::result::value: " + err.message()), error_(std::move(err)) {}
  const goro::error& error() const noexcept { return error_; }

 private:
  goro::error error_;
};

template <class T>
class [[nodiscard]] result {
  static_assert(std::is_object_v<T> && !std::is_array_v<T>, "result<T>: T is an object type");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, goro::error>,
                "result<goro::error>: return a goro::error");

 public:
  using value_type = T;

  // Success with T{}.
  result() requires std::default_initializable<T> : value_() {}
  // Success with `value`.
  result(T value) : value_(std::move(value)) {}  // NOLINT: implicit, as `return value;`
  // From anything T is made from (as std::expected): `result<std::string> r = "x";`,
  // `return "x";`. Explicit when T's own constructor is.
  template <class U>
    requires(!std::same_as<std::remove_cvref_t<U>, result> &&
             !std::same_as<std::remove_cvref_t<U>, T> &&
             !std::same_as<std::remove_cvref_t<U>, goro::error> && std::constructible_from<T, U>)
  explicit(!std::is_convertible_v<U, T>) result(U&& value) : value_(std::forward<U>(value)) {}
  // Failure with `err` and T{} (success if err is nil).
  result(goro::error err) requires std::default_initializable<T>  // NOLINT: `return err;`
      : value_(), error_(std::move(err)) {}
  // Both: `value` and `err` (Go's `return n, err`).
  result(T value, goro::error err) : value_(std::move(value)), error_(std::move(err)) {}

  // True when there is no error (then the value is the answer), as std::expected.
  explicit operator bool() const noexcept { return !error_; }
  // The same, by name: `if (r.ok())` cannot be read as "if it failed".
  bool ok() const noexcept { return !error_; }

  // The error, nil on success.
  const goro::error& error() const& noexcept { return error_; }
  goro::error error() && noexcept { return std::move(error_); }

  // The value if there is no error; throws bad_result_access (carrying the error)
  // otherwise, even when a value came with it (a short read's n: use * for that).
  T& value() & {
    check();
    return value_;
  }
  const T& value() const& {
    check();
    return value_;
  }
  T&& value() && {
    check();
    return std::move(value_);
  }
  // The value if there is no error, else `fallback`.
  template <class U>
  T value_or(U&& fallback) const& {
    return error_ ? static_cast<T>(std::forward<U>(fallback)) : value_;
  }
  template <class U>
  T value_or(U&& fallback) && {
    return error_ ? static_cast<T>(std::forward<U>(fallback)) : std::move(value_);
  }

  // The value, whatever the error (never throws): Go's `n` beside a non-nil `err`.
  T& operator*() & noexcept { return value_; }
  const T& operator*() const& noexcept { return value_; }
  T&& operator*() && noexcept { return std::move(value_); }
  T* operator->() noexcept { return &value_; }
  const T* operator->() const noexcept { return &value_; }

  // Tuple access for structured bindings: get<0> is the value, get<1> the error.
  template <std::size_t I>
  friend decltype(auto) get(result& r) noexcept {
    static_assert(I < 2, "result has two elements: the value and the error");
    if constexpr (I == 0) {
      return (r.value_);
    } else {
      return (r.error_);
    }
  }
  template <std::size_t I>
  friend decltype(auto) get(const result& r) noexcept {
    static_assert(I < 2, "result has two elements: the value and the error");
    if constexpr (I == 0) {
      return (r.value_);
    } else {
      return (r.error_);
    }
  }
  template <std::size_t I>
  friend decltype(auto) get(result&& r) noexcept {
    static_assert(I < 2, "result has two elements: the value and the error");
    if constexpr (I == 0) {
      return std::move(r.value_);
    } else {
      return std::move(r.error_);
    }
  }
  template <std::size_t I>
  friend decltype(auto) get(const result&& r) noexcept {
    static_assert(I < 2, "result has two elements: the value and the error");
    if constexpr (I == 0) {
      return std::move(r.value_);
    } else {
      return std::move(r.error_);
    }
  }

 private:
  void check() const {
    if (error_) throw bad_result_access(error_);
  }

  T value_;
  goro::error error_;
};

}  // namespace goro

template <class T>
struct std::tuple_size<goro::result<T>> : std::integral_constant<std::size_t, 2> {};
template <class T>
struct std::tuple_element<0, goro::result<T>> {
  using type = T;
};
template <class T>
struct std::tuple_element<1, goro::result<T>> {
  using type = goro::error;
};
