// goro/errgroup.hpp — goro::errgroup, golang.org/x/sync/errgroup: run tasks in
// goroutines, wait for all, get the first error.
//
// go(f) runs f() -> goro::error in a new goroutine; wait() waits for all of them and
// returns the first non-nil error. A group made with with_context also returns a
// context that is cancelled (cause: that first error) when a task fails, or when
// wait returns. set_limit(n) bounds the tasks running at once: go blocks while n are
// running, try_go refuses. An exception escaping a task becomes its error.
//
// Blocking: go blocks only at the limit; wait parks the goroutine (or blocks the
//   thread) until every task has returned; try_go and set_limit never block.
// Thread-safety: go/try_go/wait may be called concurrently from any goroutine or
//   thread; set_limit must not run concurrently with them. An errgroup is a handle:
//   copies share one group.
// Panics: set_limit(n >= 0) while a limit is set and tasks started under it are still
//   running ("errgroup: modify limit while N goroutines in the group are still
//   active"), as x/sync.
//
// Example:
//   auto [g, gctx] = goro::errgroup::with_context(ctx);
//   g.set_limit(64);
//   for (auto& url : urls) g.go([&, url] { return fetch(gctx, url); });
//   if (goro::error err = g.wait()) report(err);
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <source_location>
#include <type_traits>
#include <utility>

#include "goro/context.hpp"
#include "goro/error.hpp"
#include "goro/runtime.hpp"

namespace goro {

class errgroup {
 public:
  // A group with no context: a failing task cancels nothing.
  errgroup();
  // A group and a context derived from ctx (Go's WithContext), cancelled on the first
  // error (cause: that error; err(): goro::canceled) or when wait returns.
  static std::pair<errgroup, context> with_context(const context& ctx);

  // Bounds the number of tasks running at once (Go's SetLimit); n < 0 means no limit,
  // n == 0 makes go wait forever and try_go fail. Panics (panic_error) when n >= 0, a
  // limit is set and tasks started under it are still running; removing the limit
  // (n < 0), or setting one while none is set, never panics. Tasks already running do
  // not count against a limit set after they started.
  void set_limit(int n);

  // Runs f in a new goroutine (Go's Group.Go); at the limit, first parks the caller
  // (or blocks the thread) until a running task returns. f takes no arguments and
  // returns goro::error, or void (then only an exception is an error); f is
  // decay-copied. An exception escaping f becomes its error (error::from).
  template <class F>
  void go(F&& f, std::source_location where = std::source_location::current()) {
    acquire_slot();
    start(wrap_task(std::forward<F>(f)), where);
  }
  // As go, but returns false instead of blocking when the limit is reached (Go's
  // TryGo); never blocks.
  template <class F>
  bool try_go(F&& f, std::source_location where = std::source_location::current()) {
    if (!try_acquire_slot()) return false;
    start(wrap_task(std::forward<F>(f)), where);
    return true;
  }

  // Waits for every task started so far (Go's Wait); returns the first error (nil if
  // none). Cancels the group's context. May be called more than once.
  error wait();

  struct state;  // shared by the copies of one group (defined in the library)

 private:
  template <class F>
  static std::function<error()> wrap_task(F&& f) {
    return [fn = std::decay_t<F>(std::forward<F>(f))]() mutable -> error {
      if constexpr (std::is_void_v<std::invoke_result_t<std::decay_t<F>&>>) {
        fn();
        return {};
      } else {
        return error(fn());
      }
    };
  }
  void acquire_slot();
  bool try_acquire_slot();
  void start(std::function<error()> task, const std::source_location& where);

  std::shared_ptr<state> state_;
};

}  // namespace goro
