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

class errgroup;

namespace detail {
// One errgroup task: f(args...) as an error (nil for void).
class group_task : public pool_allocated {  // from the runtime's task pools, as tasks
 public:
  virtual ~group_task() = default;
  virtual error run() = 0;
};

template <class F, class... Args>
class group_task_impl final : public group_task {
 public:
  template <class... U>
  explicit group_task_impl(U&&... u) : call_(std::forward<U>(u)...) {}
  error run() override {
    if constexpr (std::is_void_v<decltype(call_())>) {
      call_();
      return {};
    } else {
      return error(call_());
    }
  }

 private:
  bound_call<F, Args...> call_;
};

// What errgroup::go starts: a task whose result is an error.
struct errgroup_go {
  using target = errgroup*;
  template <class F, class... Args>
  static constexpr bool check() {
    using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
    if constexpr (!std::is_void_v<R> && !std::is_convertible_v<R, error>) {
      static_assert(always_false<F>,
                    "errgroup::go: the task must return goro::error (nil for success) or void");
      return false;
    } else {
      return true;
    }
  }
  template <class F, class... Args>
  static void launch(errgroup* g, const std::source_location& where, F&& f, Args&&... args);
};
}  // namespace detail

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

  // Runs f(args...) in a new goroutine (Go's Group.Go); at the limit, first parks the
  // caller (or blocks the thread) until a running task returns. f returns goro::error,
  // or void (then only an exception is an error). f and the arguments are
  // decay-copied, as goro::go does (same compile-time checks; move-only callables and
  // arguments by std::move), and destroyed when the task returns, before wait() can
  // return. An exception escaping f becomes its error (error::from).
  template <class... Args>
  void go(detail::go_call<detail::errgroup_go, std::type_identity_t<Args>...> f,
          Args&&... args) {
    acquire_slot();
    start_or_release(f, std::forward<Args>(args)...);
  }
  // As go, but returns false instead of blocking when the limit is reached (Go's
  // TryGo); f and the arguments are then not copied. Never blocks.
  template <class... Args>
  bool try_go(detail::go_call<detail::errgroup_go, std::type_identity_t<Args>...> f,
              Args&&... args) {
    if (!try_acquire_slot()) return false;
    start_or_release(f, std::forward<Args>(args)...);
    return true;
  }

  // Waits for every task started so far (Go's Wait); returns the first error (nil if
  // none). Cancels the group's context. May be called more than once.
  [[nodiscard]] error wait();

  struct state;  // shared by the copies of one group (defined in the library)

 private:
  friend struct detail::errgroup_go;
  template <class Call, class... Args>
  void start_or_release(const Call& f, Args&&... args) {
    try {
      f.start(this, std::forward<Args>(args)...);
    } catch (...) {
      release_slot();  // copying f or an argument threw: nothing started
      throw;
    }
  }
  void acquire_slot();
  void release_slot() noexcept;
  bool try_acquire_slot();
  // Starts `task` (which owns f and its arguments) with the slot acquired.
  void start(std::unique_ptr<detail::group_task> task, const std::source_location& where);

  std::shared_ptr<state> state_;
};

namespace detail {
template <class F, class... Args>
void errgroup_go::launch(errgroup* g, const std::source_location& where, F&& f, Args&&... args) {
  g->start(std::make_unique<group_task_impl<std::decay_t<F>, std::decay_t<Args>...>>(
               std::forward<F>(f), std::forward<Args>(args)...),
           where);
}
}  // namespace detail

}  // namespace goro
