// goro/wait_group.hpp — goro::wait_group, Go's sync.WaitGroup.
//
// A wait_group counts outstanding work: add(n) before starting it, done() when each
// piece finishes, wait() until the count is zero.
//
// Blocking: wait() parks the calling goroutine ("sync.WaitGroup.Wait"), or blocks the
//   calling plain thread; add, done and go never block.
// Thread-safety: all members may be called concurrently from goroutines and threads.
//   The wait_group must outlive every goroutine started by go() and every wait().
// Panics (goro::panic_error, Go's messages): a counter that goes negative ("sync:
//   negative WaitGroup counter"; the counter is left as it was). Reuse before every
//   wait() of the previous round has returned, where it is detected: an add that
//   starts a new round while the waiters of the last one are still being released
//   ("sync: WaitGroup misuse: Add called concurrently with Wait"; the add is undone),
//   and a released wait() that finds the group in use again ("sync: WaitGroup is
//   reused before previous Wait has returned"). A waiter is never released before the
//   counter it waits for reaches zero.
//
// Example:
//   goro::wait_group wg;
//   for (int i = 0; i < 10; ++i) wg.go([i] { work(i); });
//   wg.wait();   // all ten have finished
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <source_location>
#include <type_traits>
#include <utility>

#include "goro/detail/wait_list.hpp"
#include "goro/runtime.hpp"

namespace goro {

class wait_group {
 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  // Adds delta (may be negative) to the counter (Go's Add); when it reaches zero,
  // every waiter is released. Never blocks. Throws panic_error if the counter would go
  // negative, or if it starts a new round before the last round's waiters are
  // released; the counter is then unchanged. As Go: an add that starts a round must
  // happen after every wait() of the previous round has returned.
  void add(int delta);

  // add(-1) (Go's Done); panics the same way.
  void done() { add(-1); }

  // Blocks until the counter is zero (Go's Wait); returns at once if it already is.
  // Panics if, once released, it finds the group already reused (see Panics).
  void wait();

  // add(1), then runs f() in a new goroutine that calls done() when f returns (Go
  // 1.25's WaitGroup.Go). f is decay-copied and takes no arguments; the goroutine's
  // creation site is the caller of go(). Never blocks. An exception escaping f is a
  // goroutine panic (SPEC §4).
  template <class F>
  void go(F&& f, std::source_location where = std::source_location::current()) {
    add(1);
    spawn_options opts;
    opts.where = where;
    using fn_type = std::decay_t<F>;
    goro::go(opts, [this, fn = std::optional<fn_type>(std::forward<F>(f))]() mutable {
      // As std::thread::join: once wait() returns, f and everything it captured are
      // destroyed. So f is destroyed first (after it returns or throws), then done().
      struct done_on_exit {
        wait_group* wg;
        std::optional<fn_type>* fn;
        ~done_on_exit() {
          fn->reset();
          wg->done();
        }
      } guard{this, &fn};
      (*fn)();
    });
  }

 private:
  void release_waiters();

  // High 32 bits: the counter (signed); low 32 bits: the number of waiters.
  std::atomic<std::uint64_t> state_{0};
  detail::wait_list waiters_;
  // The synctest bubble it was made in: waiting on it is a durable block there.
  detail::bubble* const bubble_ = detail::current_bubble();
};

}  // namespace goro
