// goro/once.hpp — goro::once: run a function exactly once.
//
// call(f) runs f the first time; concurrent callers wait until it has finished; later
// callers return at once. If f throws, the exception reaches that caller and the once
// is not done, so the next call runs f again — std::call_once's rule, not Go's (Go's
// Once counts a panicking f as done).
//
// Blocking: a caller that finds f running parks (goroutine, "sync.Mutex.Lock") or
//   blocks (thread) until it finishes. Thread-safety: call may be used concurrently
//   from anywhere. f must not call call() on the same once: it would wait forever.
// Panics: none of its own; f's exceptions propagate to the caller that ran it.
//
// once_func(f) and once_value(f) are Go 1.21's sync.OnceFunc and sync.OnceValue: a
// copyable function that runs f on its first call only. Unlike once::call, an f that
// throws counts as done, as in Go: every call then rethrows that exception.
//
// Example:
//   goro::once init;
//   init.call([] { load_config(); });
//   auto config = goro::once_value([] { return read_config(); });   // config() -> a copy
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <source_location>
#include <type_traits>
#include <utility>
#include <variant>

#include "goro/mutex.hpp"

namespace goro {

class once {
 public:
  // `where` (the declaration's line) is named if the once is destroyed while a caller
  // waits for f (its mutex's lifetime check).
  constexpr once(std::source_location where = std::source_location::current()) noexcept
      : mu_(where) {}
  once(const once&) = delete;
  once& operator=(const once&) = delete;

  // Runs f() on the calling goroutine or thread if no call has completed yet (Go's
  // Do); once one has, returns at once. A caller that finds a call in progress waits
  // for it, and runs f itself if that call threw. An exception from f propagates to
  // its caller and leaves the once not done.
  template <class F>
  void call(F&& f) {
    if (done_.load(std::memory_order_acquire)) return;
    std::lock_guard lk(mu_);
    if (done_.load(std::memory_order_relaxed)) return;
    std::forward<F>(f)();  // an exception leaves done_ false
    done_.store(true, std::memory_order_release);
  }

  // Whether a call's f has returned normally. Never blocks.
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> done_{false};
  mutex mu_;
};

namespace detail {
// The state a once_func / once_value's copies share: f until it has run (then
// released, as Go drops it), its value, or the exception it threw.
template <class F, class T>
struct once_state {
  explicit once_state(F f) : fn(std::move(f)) {}
  once gate;
  std::optional<F> fn;
  std::optional<T> value;
  std::exception_ptr failure;

  void run() {
    gate.call([this] {
      try {
        if constexpr (std::is_void_v<T> || std::is_same_v<T, std::monostate>) {
          (*fn)();
        } else {
          value.emplace((*fn)());
        }
      } catch (...) {
        failure = std::current_exception();
      }
      fn.reset();
    });
    if (failure) std::rethrow_exception(failure);
  }
};
}  // namespace detail

// A function that calls f() the first time it is called and does nothing after (Go's
// sync.OnceFunc). Copies share one state: f runs once across all of them. Concurrent
// callers wait for the first call to finish. If f throws, every call (the first
// included) throws that exception; f is not run again. f is decay-copied and
// destroyed after it has run.
template <class F>
[[nodiscard]] std::function<void()> once_func(F&& f) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "once_func: f must be callable with no arguments");
  auto state = std::make_shared<detail::once_state<std::decay_t<F>, std::monostate>>(
      std::decay_t<F>(std::forward<F>(f)));
  return [state] { state->run(); };
}

// A function that calls f() the first time it is called and returns a copy of its
// result on every call (Go's sync.OnceValue). As once_func otherwise: one state for
// all copies; if f throws, every call throws that exception.
template <class F>
[[nodiscard]] auto once_value(F&& f) {
  using fn_type = std::decay_t<F>;
  static_assert(std::is_invocable_v<fn_type&>, "once_value: f must be callable with no arguments");
  using T = std::decay_t<std::invoke_result_t<fn_type&>>;
  static_assert(!std::is_void_v<T>, "once_value: f must return a value (use once_func for void)");
  auto state = std::make_shared<detail::once_state<fn_type, T>>(fn_type(std::forward<F>(f)));
  return std::function<T()>([state]() -> T {
    state->run();
    return *state->value;
  });
}

}  // namespace goro
