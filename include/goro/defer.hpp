// goro/defer.hpp — goro::defer: run a function at scope exit (Go's defer).
//
// auto d = goro::defer(f) runs f() when d goes out of scope, whether the scope is left
// normally or by an exception — Go's `defer close(out)`, `defer wg.Done()`,
// `defer sem.Release(1)`, `defer cancel()`. Several defers in one scope run in
// reverse order, as Go's do. d.cancel() drops the call (absl::Cleanup's Cancel);
// std::move(d).run() runs it now. The result must be kept in a variable:
// `goro::defer(f);` alone would run f at once ([[nodiscard]] warns).
//
// Exceptions: an exception from f leaves the destructor (like a panic in a deferred
// call); while another exception is already unwinding the scope, that is
// std::terminate, as for any destructor.
// Blocking: only what f does. Thread-safety: a deferred is owned by its scope.
//
// Example:
//   auto out = goro::make_chan<int>();
//   goro::go([out] {
//     auto closer = goro::defer([&] { out.close(); });
//     for (int i = 0; i < 3; ++i) out.send(i);
//   });
#pragma once

#include <type_traits>
#include <utility>

namespace goro {

template <class F>
class [[nodiscard]] deferred {
 public:
  explicit deferred(F f) noexcept(std::is_nothrow_move_constructible_v<F>) : f_(std::move(f)) {}
  deferred(deferred&& other) noexcept(std::is_nothrow_move_constructible_v<F>)
      : f_(std::move(other.f_)), armed_(std::exchange(other.armed_, false)) {}
  deferred(const deferred&) = delete;
  deferred& operator=(const deferred&) = delete;
  deferred& operator=(deferred&&) = delete;

  ~deferred() noexcept(false) {
    if (armed_) {
      armed_ = false;
      f_();
    }
  }

  // The call will not happen.
  void cancel() noexcept { armed_ = false; }
  // Makes the call now (once); the destructor then does nothing.
  void run() && {
    if (armed_) {
      armed_ = false;
      f_();
    }
  }

 private:
  F f_;
  bool armed_ = true;
};

// Calls f() when the returned object goes out of scope (Go's defer). f is
// decay-copied (capture by reference to act on the scope's variables).
template <class F>
[[nodiscard]] auto defer(F&& f) {
  if constexpr (!std::is_invocable_v<std::decay_t<F>&>) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>,
                  "goro::defer: f must be callable with no arguments");
    return deferred<void (*)()>(nullptr);
  } else {
    return deferred<std::decay_t<F>>(std::forward<F>(f));
  }
}

}  // namespace goro
