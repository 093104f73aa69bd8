// goro/time.hpp — Go's package time for goroutines: sleep, after, tick, timer, ticker.
//
// Times are std::chrono::steady_clock::time_point (goro::time_point); channel
// values are the time the timer fired.
//
// Blocking: sleep() parks the calling goroutine on the runtime's timer heap (its
//   thread runs other goroutines), or sleeps the calling plain thread. Receiving from
//   a timer channel blocks like any channel receive. Nothing else blocks.
// Thread-safety: every function may be called from any goroutine or thread; a timer
//   or ticker object may be stopped/reset from any thread (not concurrently with its
//   destruction or a move). A moved-from timer or ticker may only be destroyed or
//   assigned to.
// Panics: ticker construction or ticker::reset with a non-positive interval
//   ("non-positive interval for NewTicker", for both).
//   Zero or negative durations elsewhere mean "now", as in Go: sleep returns at once,
//   after/timer fire at once; tick(d <= 0) returns the nil channel.
// Semantics of stop/reset are Go 1.23's: once they return, no value from the old
//   schedule is received from c().
//
// Example:
//   using namespace std::chrono_literals;
//   std::optional<goro::time_point> fired;
//   switch (goro::select(goro::case_recv(results, r), goro::case_recv(goro::after(1s), fired))) {
//     case 0: use(*r); break;
//     case 1: std::puts("timed out"); break;
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <source_location>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"
#include "goro/detail/spawn.hpp"
#include "goro/error.hpp"

namespace goro {

class context;

using time_point = std::chrono::steady_clock::time_point;

// The current time: steady_clock::now(), or inside a synctest bubble the bubble's fake
// time (goro/synctest.hpp). Never blocks.
time_point now() noexcept;

namespace detail {
void sleep_ns(std::int64_t ns);

// Converts to nanoseconds, saturating at about 100 years; <= 0 stays <= 0.
template <class Rep, class Period>
std::int64_t to_ns(std::chrono::duration<Rep, Period> d) {
  constexpr double max_seconds = 100.0 * 365 * 24 * 3600;
  if (!(d > d.zero())) return 0;  // also NaN
  if (std::chrono::duration<double>(d).count() >= max_seconds) {
    return static_cast<std::int64_t>(max_seconds) * 1'000'000'000;
  }
  return std::chrono::ceil<std::chrono::nanoseconds>(d).count();
}

error sleep_ctx(const context& ctx, std::int64_t ns);
std::function<bool()> after_func_ns(std::int64_t ns, task* f, const std::source_location& where);

struct timer_impl;
std::shared_ptr<timer_impl> timer_start(std::int64_t delay_ns, std::int64_t period_ns);
recv_chan<time_point> timer_channel(const timer_impl& t);
// Starts a timer owned by the handles of the returned channel: when the last copy
// goes, the timer stops and leaves its heap (after, tick).
recv_chan<time_point> timer_start_channel(std::int64_t delay_ns, std::int64_t period_ns);
bool timer_stop(timer_impl& t);
// timer_stop for destructors and move assignment: never throws (no bubble check).
void timer_drop(timer_impl& t) noexcept;
bool timer_reset(const std::shared_ptr<timer_impl>& t, std::int64_t delay_ns,
                 std::int64_t period_ns);
// Timer arms not yet released, in a heap or firing, process-wide (tests).
std::size_t timer_arm_count() noexcept;
}  // namespace detail

// Blocks for at least d (Go's time.Sleep): parks the goroutine ("sleep") or sleeps the
// plain thread. Durations <= 0 return immediately; d is rounded up to whole
// nanoseconds and capped at about 100 years.
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  std::int64_t ns = detail::to_ns(d);
  if (ns > 0) detail::sleep_ns(ns);
}

// Sleeps for d, or until ctx is done, whichever comes first: nil after the full
// sleep, ctx.err() when ctx ended it (SPEC's goro::sleep(ctx, d); Go's select on
// ctx.Done() and time.After(d)). A ctx already done returns its err at once, also for
// d <= 0; otherwise d <= 0 returns nil at once. Parks the goroutine ("select") or
// blocks the thread. Needs goro/context.hpp for the context.
template <class Rep, class Period>
[[nodiscard]] error sleep(const context& ctx, std::chrono::duration<Rep, Period> d) {
  return detail::sleep_ctx(ctx, detail::to_ns(d));
}

// Sleeps until goro::now() reaches t (steady_clock, or a synctest bubble's fake time);
// returns at once if t has passed.
inline void sleep_until(time_point t) {
  time_point n = now();
  if (t > n) sleep(t - n);  // (t - n for a t long past would overflow)
}
// As sleep_until(t), or until ctx is done: nil, or ctx.err().
[[nodiscard]] inline error sleep_until(const context& ctx, time_point t) {
  time_point n = now();
  return detail::sleep_ctx(ctx, t > n ? detail::to_ns(t - n) : 0);
}

// Runs f() in a goroutine of its own after d (Go's time.AfterFunc); d <= 0 starts it
// at once. Returns a stop function: stop() prevents the call if f has not started
// yet, and then returns true; false once f has started (or stop was called). Dropping
// the stop function does not stop f (Go code relies on that). f is decay-copied (it
// may be move-only) and takes no arguments; an exception escaping it is a goroutine
// panic. The goroutine's creation site is the caller's line. Never blocks.
template <class Rep, class Period, class F>
std::function<bool()> after_func(std::chrono::duration<Rep, Period> d, F&& f,
                                 std::source_location where = std::source_location::current()) {
  // The checks of go(f): one sentence at the caller's line, nothing instantiated after.
  if constexpr (detail::check_callable<F>()) {
    return detail::after_func_ns(detail::to_ns(d),
                                 new detail::task_impl<std::decay_t<F>>(std::forward<F>(f)), where);
  } else {
    return {};
  }
}

// A channel that receives the time once, after d (Go's time.After); d <= 0 fires at
// once. The timer is released when it fires, or as soon as the last copy of the
// channel is destroyed (Go 1.23), so an after() that lost a select holds nothing until
// it would have fired; an unreceived value waits in the channel's one-slot buffer.
// Never blocks; starts the runtime, whose processors fire timers.
template <class Rep, class Period>
recv_chan<time_point> after(std::chrono::duration<Rep, Period> d) {
  return detail::timer_start_channel(detail::to_ns(d), 0);
}

// A channel that receives the time every d, dropping ticks a slow reader misses
// (Go's time.Tick). It cannot be stopped; it keeps ticking while any copy of the
// channel exists and is released with the last one (Go 1.23). d <= 0 gives the nil
// channel. Never blocks.
template <class Rep, class Period>
recv_chan<time_point> tick(std::chrono::duration<Rep, Period> d) {
  std::int64_t ns = detail::to_ns(d);
  if (ns <= 0) return {};
  return detail::timer_start_channel(ns, ns);
}

// A single-shot timer (Go's time.Timer): c() receives the time once, after d.
class timer {
 public:
  // Starts the timer (Go's time.NewTimer); d <= 0 fires at once. Never blocks.
  template <class Rep, class Period>
  explicit timer(std::chrono::duration<Rep, Period> d)
      : impl_(detail::timer_start(detail::to_ns(d), 0)) {}
  // Stops the timer; copies of c() receive nothing more. Move assignment stops the
  // timer being replaced.
  ~timer() {
    if (impl_) detail::timer_drop(*impl_);
  }
  timer(timer&&) noexcept = default;
  timer& operator=(timer&& other) noexcept {
    if (this != &other) {
      if (impl_) detail::timer_drop(*impl_);
      impl_ = std::move(other.impl_);
    }
    return *this;
  }

  // The channel (capacity 1) the time is delivered on; the same channel for the
  // timer's whole life, across stop and reset. Never closed.
  recv_chan<time_point> c() const { return detail::timer_channel(*impl_); }
  // Stops the timer (Go 1.23's Stop): no value is received from c() after it returns.
  // True if the timer was pending (it will not fire) or had fired with its value not
  // yet received (the value is discarded), so `if (!t.stop()) t.c().recv()` never
  // blocks on an unreceived value; false if it had been stopped or its value received.
  // Releases its place in the timer heap at once. Never blocks.
  bool stop() { return detail::timer_stop(*impl_); }
  // Re-arms the timer to fire after d (Go 1.23's Reset), also after it fired or was
  // stopped; no value of the old schedule is received after it returns. Returns as
  // stop() would have: true if it was pending or a fired value not yet received was
  // discarded. Never blocks.
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) {
    return detail::timer_reset(impl_, detail::to_ns(d), 0);
  }

 private:
  std::shared_ptr<detail::timer_impl> impl_;
};

// A periodic timer (Go's time.Ticker): c() receives the time every d; a reader that
// falls behind misses ticks instead of receiving a backlog.
class ticker {
 public:
  // Starts ticking (Go's time.NewTicker); the first tick comes after d. d <= 0 throws
  // panic_error. Never blocks.
  template <class Rep, class Period>
  explicit ticker(std::chrono::duration<Rep, Period> d)
      : impl_(detail::timer_start(checked(detail::to_ns(d)), detail::to_ns(d))) {}
  // Stops the ticks; copies of c() receive nothing more. Move assignment stops the
  // ticker being replaced.
  ~ticker() {
    if (impl_) detail::timer_drop(*impl_);
  }
  ticker(ticker&&) noexcept = default;
  ticker& operator=(ticker&& other) noexcept {
    if (this != &other) {
      if (impl_) detail::timer_drop(*impl_);
      impl_ = std::move(other.impl_);
    }
    return *this;
  }

  // The channel (capacity 1) the ticks are delivered on; never closed.
  recv_chan<time_point> c() const { return detail::timer_channel(*impl_); }
  // Stops the ticks (Go's Stop); no tick is received after stop returns. The channel
  // is not closed. Never blocks.
  void stop() { detail::timer_stop(*impl_); }
  // Restarts the ticks with period d, the next one d from now (Go's Reset); d <= 0
  // throws panic_error. Never blocks.
  template <class Rep, class Period>
  void reset(std::chrono::duration<Rep, Period> d) {
    std::int64_t ns = checked(detail::to_ns(d));
    detail::timer_reset(impl_, ns, ns);
  }

 private:
  static std::int64_t checked(std::int64_t ns) {
    if (ns <= 0) throw panic_error("non-positive interval for NewTicker");
    return ns;
  }
  std::shared_ptr<detail::timer_impl> impl_;
};

}  // namespace goro
