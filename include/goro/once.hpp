// goro/once.hpp — goro::once: run a function exactly once.
//
// call(f) runs f the first time; concurrent callers wait until it has finished; later
// callers return at once. If f throws, the exception reaches that caller and the once
// is not done, so the next call runs f again — std::call_once's rule, not Go's (Go's
// Once counts a panicking f as done).
//
// Blocking: a caller that finds f running parks (goroutine) or blocks (thread) until
//   it finishes. Thread-safety: call may be used concurrently from anywhere.
// Panics: none of its own; f's exceptions propagate to the caller that ran it.
//
// Example:
//   goro::once init;
//   init.call([] { load_config(); });
#pragma once

#include <atomic>
#include <mutex>
#include <utility>

#include "goro/mutex.hpp"

namespace goro {

class once {
 public:
  once() = default;
  once(const once&) = delete;
  once& operator=(const once&) = delete;

  template <class F>
  void call(F&& f) {
    if (done_.load(std::memory_order_acquire)) return;
    std::lock_guard lk(mu_);
    if (done_.load(std::memory_order_relaxed)) return;
    std::forward<F>(f)();  // an exception leaves done_ false
    done_.store(true, std::memory_order_release);
  }

  // Whether f has completed.
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> done_{false};
  mutex mu_;
};

}  // namespace goro
