// after_func.cpp — goro::sleep(ctx, d) and goro::after_func(d, f), built on a timer, a
// select and a deadline context.
//
// after_func(d, f): a timer entry on the caller's heap (a synctest bubble's clock
// inside one) whose firing starts f's goroutine. The heap owns the entry until it
// fires, so dropping the stop function does not stop f (Go: dropping the *Timer does not
// stop AfterFunc); stop() takes the entry out of the heap if it has not fired.
#include <atomic>
#include <chrono>
#include <memory>

#include "goro/context.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/time.hpp"
#include "runtime/bubble.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

error sleep_ctx(const context& ctx, std::int64_t ns) {
  if (error err = ctx.err()) return err;
  if (ns <= 0) return {};
  timer t{std::chrono::nanoseconds(ns)};
  if (select(case_recv(ctx.done()), case_recv(t.c())) == 0) return ctx.err();
  return {};
}

namespace {

// One after_func: its timer entry and f's task. Two owners (the timer heap until the
// entry fires, is discarded or is removed; the stop function's copies), counted in
// `owners`; the last one frees it, with the task if it never started.
struct after_arm {
  timer_entry entry;
  std::atomic<task*> fn;
  std::source_location where;
  std::atomic<int> owners{2};
  // The synctest bubble whose clock and heap it is on (a reference), or null.
  bubble* const clock = current_bubble();

  after_arm(task* f, const std::source_location& w) noexcept : fn(f), where(w) {
    if (clock != nullptr) bubble_retain(clock);
  }
  ~after_arm() {
    delete fn.load(std::memory_order_relaxed);
    if (clock != nullptr) bubble_release(clock);
  }
  after_arm(const after_arm&) = delete;
  after_arm& operator=(const after_arm&) = delete;
};

void release(after_arm* a) noexcept {
  if (a->owners.fetch_sub(1, std::memory_order_acq_rel) == 1) delete a;
}

void fire_after(timer_entry* e) {
  auto* a = static_cast<after_arm*>(e->arg);
  if (task* t = a->fn.exchange(nullptr, std::memory_order_acq_rel)) {
    spawn(spawn_options{}, t, a->where);
  }
  release(a);  // the heap's share
}

// A synctest bubble's heap went away with the call pending: it never runs (f and what
// it captured are destroyed with the arm), as a bubble's timers end with it.
void discard_after(timer_entry* e) { release(static_cast<after_arm*>(e->arg)); }

// The stop function's share, released when its last copy goes.
struct stop_share {
  after_arm* arm;
  explicit stop_share(after_arm* a) noexcept : arm(a) {}
  ~stop_share() { release(arm); }
  stop_share(const stop_share&) = delete;
  stop_share& operator=(const stop_share&) = delete;
};

}  // namespace

std::function<bool()> after_func_ns(std::int64_t ns, task* f, const std::source_location& where) {
  sched();  // workers fire the timer
  auto* a = new after_arm(f, where);
  auto share = std::make_shared<stop_share>(a);
  a->entry.fire = &fire_after;
  a->entry.discard = &discard_after;
  a->entry.arg = a;
  std::int64_t now = clock_now(a->clock);
  std::int64_t latest = timer_heap::no_deadline - 1;
  a->entry.when = ns > latest - now ? latest : now + (ns > 0 ? ns : 0);
  clock_timers(a->clock).add(&a->entry);
  return [share] {
    after_arm* arm = share->arm;
    // Out of the heap before it fired: f never starts (its task is destroyed now).
    if (!timer_heap::remove(&arm->entry)) return false;
    delete arm->fn.exchange(nullptr, std::memory_order_acq_rel);
    release(arm);  // the heap's share
    return true;
  };
}

}  // namespace goro::detail
