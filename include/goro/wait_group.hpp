// goro/wait_group.hpp — goro::wait_group, Go's sync.WaitGroup.
//
// A wait_group counts outstanding work: add(n) before starting it, done() when each
// piece finishes, wait() until the count is zero.
//
// Blocking: wait() parks the calling goroutine ("sync.WaitGroup.Wait"), or blocks the
//   calling plain thread; add, done and go never block.
// Thread-safety: all members may be called concurrently from goroutines and threads.
//   The wait_group must outlive every goroutine started by go() and every wait(): with
//   several waiters, the first to return may not destroy it while the others are
//   still returning (join them first, or share it through a std::shared_ptr).
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

class wait_group;

namespace detail {
// What wait_group::go starts: add(1), then a goroutine that runs f(args...), destroys
// them, and calls done().
struct wait_group_go {
  struct target {
    wait_group* group;
    const spawn_options* options;
  };
  template <class F, class... Args>
  static constexpr bool check() {
    return true;
  }
  template <class F, class... Args>
  static void launch(target t, const std::source_location& where, F&& f, Args&&... args);
};
}  // namespace detail

class wait_group {
 public:
  // `where` (the declaration's line) is named if it is destroyed while in use.
  wait_group(std::source_location where = std::source_location::current()) noexcept
      : where_(where) {}
  // Destroying a wait_group whose counter is not zero, or that has waiters, is a fatal
  // error naming where it was made (the done() calls still to come would write to freed
  // memory), as destroying a joinable std::thread terminates; except while the process
  // exits (goro/detail/lifetime.hpp). Keep it alive until wait() returns.
  ~wait_group();
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

  // add(1), then runs f(args...) in a new goroutine that calls done() when f returns
  // (Go 1.25's WaitGroup.Go). f and the arguments are decay-copied, as goro::go does
  // (same compile-time checks, any number of arguments, move-only ones by std::move);
  // f and the copies are destroyed before done(), so once wait() returns nothing of
  // them is left. The goroutine's creation site is the caller of go(). Never blocks.
  // An exception escaping f is a goroutine panic (SPEC §4).
  template <class... Args>
  void go(detail::go_call<detail::wait_group_go, std::type_identity_t<Args>...> f,
          Args&&... args) {
    spawn_options options;
    f.start({this, &options}, std::forward<Args>(args)...);
  }
  // As go(f, args...), with a name, a stack size and optionally a creation site.
  template <class... Args>
  void go(const spawn_options& options,
          detail::go_call<detail::wait_group_go, std::type_identity_t<Args>...> f,
          Args&&... args) {
    f.start({this, &options}, std::forward<Args>(args)...);
  }

 private:
  void release_waiters();

  // High 32 bits: the counter (signed); low 32 bits: the number of waiters.
  std::atomic<std::uint64_t> state_{0};
  detail::wait_list waiters_;
  // The synctest bubble it was made in: waiting on it is a durable block there.
  detail::bubble* const bubble_ = detail::current_bubble();
  std::source_location where_;
};

namespace detail {
template <class F, class... Args>
void wait_group_go::launch(target t, const std::source_location& where, F&& f, Args&&... args) {
  using call = bound_call<std::decay_t<F>, std::decay_t<Args>...>;
  // Built before add(1): a copy that throws leaves the counter as it was.
  std::optional<call> c(std::in_place, std::forward<F>(f), std::forward<Args>(args)...);
  t.group->add(1);
  spawn_options options = *t.options;
  options.where = site(*t.options, where);
  auto body = [wg = t.group, c = std::move(c)]() mutable {
    // As std::thread::join: once wait() returns, f, its arguments and everything they
    // captured are destroyed. So they are destroyed first (after f returns or throws),
    // then done().
    struct done_on_exit {
      wait_group* wg;
      std::optional<call>* c;
      ~done_on_exit() {
        c->reset();
        wg->done();
      }
    } guard{wg, &c};
    (*c)();
  };
  try {
    spawn_callable(options, options.where, std::move(body));
  } catch (...) {
    t.group->done();  // nothing started (a stack_size out of range)
    throw;
  }
}
}  // namespace detail

}  // namespace goro
