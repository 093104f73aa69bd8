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

}  // namespace goro
