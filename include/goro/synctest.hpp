// goro/synctest.hpp — virtual time for tests of concurrent code (Go's testing/synctest).
//
// synctest::run(f) runs f as the root goroutine of a "bubble" and returns once every
// goroutine started in the bubble (transitively) has exited. Inside the bubble, goro's
// time is a fake clock: goro::now(), sleep, after, tick, timer, ticker, with_timeout,
// with_deadline and after_func read and wait on it. It starts at a fixed instant
// (2000-01-01 00:00:00 UTC, as seconds of steady_clock's epoch) and moves only when
// every goroutine of the bubble is durably blocked; then a synctest::wait caller is
// released, or else the clock jumps to the next timer and fires it. A test that
// waits for a one-hour timeout takes microseconds.
//
// Durably blocked means parked on something only another goroutine of the bubble can
// release:
//   - a send, receive or select on channels created in the bubble (a select is
//     durable when all its channels are the bubble's; `select` with no cases too);
//   - cond::wait; wait_group::wait and semaphore::acquire on a wait_group or
//     semaphore created in the bubble;
//   - sleep, and receiving from the bubble's timers and tickers;
//   - synctest::wait.
// Not durable, as in Go: mutex and rw_mutex waits, network I/O, goro::blocking, and
// operations on channels created outside the bubble. While a goroutine waits on one of
// those, the clock stands still.
//
// Not faked: std::chrono::steady_clock::now() and the other std clocks (use
// goro::now()); plain threads; real I/O. Network deadlines set inside a bubble are read
// in the bubble's time and counted on the real clock (I/O is not durable, so the fake
// clock could not reach them).
//
// Blocking: run blocks its caller (a plain thread, or a goroutine outside any bubble)
//   until the bubble is empty; wait parks the calling bubble goroutine.
// Thread-safety: run may be called from several threads at once (separate bubbles).
//   A bubble's channels and timers belong to it: sending, receiving, stopping or
//   resetting them from outside throws.
// Panics (goro::panic_error):
//   - a deadlock: every goroutine of the bubble durably blocked with no timer left —
//     run throws "synctest: deadlock: ..." followed by a dump of the bubble's
//     goroutines (each header says "(durable)"). Those goroutines stay parked for good.
//   - run called inside a bubble; wait called outside one, or by two goroutines of one
//     bubble at once; a bubble's channel or timer used from outside it.
//   What the root function throws is rethrown by run once the bubble is empty. An
//   exception escaping any other goroutine of the bubble is fatal, as everywhere.
//
// Go counterpart: synctest.Test / synctest.Run, synctest.Wait (Go 1.25).
//
// Example:
//   goro::synctest::run([] {
//     auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
//     goro::sleep(59min);
//     goro::synctest::wait();
//     assert(!ctx.err());            // an hour has not passed yet
//     goro::sleep(1min);
//     goro::synctest::wait();        // the deadline's goroutines have run
//     assert(ctx.err().is(goro::deadline_exceeded));
//     cancel();
//   });                              // microseconds of real time
#pragma once

#include <source_location>
#include <type_traits>
#include <utility>

#include "goro/detail/spawn.hpp"
#include "goro/time.hpp"

namespace goro {

namespace detail {
void synctest_run(task* t, const std::source_location& where);
void synctest_wait();
}  // namespace detail

namespace synctest {

// Runs f in a new bubble and returns when every goroutine of the bubble has exited.
template <class F>
void run(F&& f, const std::source_location& where = std::source_location::current()) {
  static_assert(std::is_invocable_v<std::decay_t<F>&&>,
                "goro::synctest::run: f must be callable with no arguments");
  using impl = detail::task_impl<std::decay_t<F>>;
  detail::synctest_run(new impl(std::forward<F>(f)), where);
}

// Blocks until every other goroutine of the caller's bubble is durably blocked.
inline void wait() { detail::synctest_wait(); }

}  // namespace synctest

}  // namespace goro
