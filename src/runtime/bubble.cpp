// bubble.cpp — synctest bubbles: accounting, the fake clock, and synctest::run/wait.
// The design and its invariants are in bubble.hpp.
#include "runtime/bubble.hpp"

#include <chrono>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>

#include "debug/dump.hpp"
#include "goro/panic.hpp"
#include "goro/runtime.hpp"
#include "goro/synctest.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

namespace {

thread_local bubble* tls_acting = nullptr;
std::atomic<std::uint64_t> next_bubble_id{1};

// Wraps the bubble's root function: keeps what it threw, for run() to rethrow, and
// marks the root's return (the bubble's time stops then, as Go's).
struct root_task final : task {
  task* inner;
  std::exception_ptr* thrown;
  bubble* b = nullptr;
  root_task(task* t, std::exception_ptr* e) : inner(t), thrown(e) {}
  ~root_task() override { delete inner; }
  void run() override {
    try {
      inner->run();
    } catch (...) {
      *thrown = std::current_exception();
    }
    b->root_done.store(true, std::memory_order_release);
  }
};

}  // namespace

std::string deadlock_report(bubble* b, const char* what) {
  std::ostringstream os;
  os << "synctest: deadlock: " << what << "\n\n";
  write_bubble_dump(os, b->id);
  return os.str();
}

void bubble_retain(bubble* b) noexcept { b->refs.fetch_add(1, std::memory_order_relaxed); }

void bubble_release(bubble* b) noexcept {
  if (b->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete b;
}

// Acting is kept on the goroutine when the driver is one (it may park and resume on
// another thread), else on the thread.
bubble* current_bubble() noexcept {
  goroutine* g = current_goroutine();
  if (g == nullptr) return tls_acting;
  // The flags first: the bubble fields sit in the descriptor's cold end.
  if (g->park.acting.load(std::memory_order_relaxed)) return g->acting;
  if (!g->park.bubbled.load(std::memory_order_relaxed)) return nullptr;
  return g->in_bubble.load(std::memory_order_relaxed);
}

bubble* bubble_for_child(goroutine* parent) noexcept {
  if (parent == nullptr) return tls_acting;
  // The flags first: they share the line spawning reads anyway.
  if (parent->park.acting.load(std::memory_order_relaxed)) return parent->acting;
  if (!parent->park.bubbled.load(std::memory_order_relaxed)) return nullptr;
  return parent->in_bubble.load(std::memory_order_relaxed);
}

void bubble_joined(bubble* b, goroutine* g) noexcept {
  bubble_retain(b);
  b->live.fetch_add(1, std::memory_order_acq_rel);
  b->running.fetch_add(1, std::memory_order_acq_rel);
  if (b->explore != nullptr) explore_spawned(b->explore, g);
}

void bubble_exited(bubble* b) noexcept {
  b->live.fetch_sub(1, std::memory_order_acq_rel);
  if (b->running.fetch_sub(1, std::memory_order_acq_rel) == 1) unpark(b->driver);
  bubble_release(b);
}

void bubble_parked(bubble* b) noexcept {
  if (b->running.fetch_sub(1, std::memory_order_acq_rel) == 1) unpark(b->driver);
}

void park_durable(parker* self, wait_reason reason, bubble* owner) noexcept {
  goroutine* g = self->g;
  if (owner == nullptr || g == nullptr || g->in_bubble.load(std::memory_order_relaxed) != owner) {
    park(self, reason);
    return;
  }
  self->durable.store(true, std::memory_order_relaxed);  // published by the park
  park(self, reason);
  self->durable.store(false, std::memory_order_relaxed);
}

std::int64_t clock_now(bubble* b) noexcept {
  return b ? b->now.load(std::memory_order_acquire) : nanotime();
}

timer_heap& clock_timers(bubble* b) noexcept { return b ? b->timers : local_timers(); }

void check_bubble(bubble* owner, const char* what_op) {
  if (owner != nullptr && current_bubble() != owner) {
    throw panic_error(std::string(what_op) + " from outside its bubble");
  }
}

acting_for::acting_for(bubble* b) noexcept {
  if (goroutine* g = current_goroutine()) {
    prev_ = std::exchange(g->acting, b);
    g->park.acting.store(b != nullptr, std::memory_order_relaxed);
  } else {
    prev_ = std::exchange(tls_acting, b);
  }
}

acting_for::~acting_for() {
  if (goroutine* g = current_goroutine()) {
    g->acting = prev_;
    g->park.acting.store(prev_ != nullptr, std::memory_order_relaxed);
  } else {
    tls_acting = prev_;
  }
}

bubble_outcome run_bubble(task* t, const std::source_location& where, explorer* ex) {
  if (current_bubble() != nullptr) {
    delete t;
    explorer_delete(ex);
    throw panic_error("synctest::run: called from inside a bubble (bubbles do not nest)");
  }
  bubble_outcome out;
  auto* root = new root_task(t, &out.root_thrown);
  sched();
  auto* b = new bubble;
  b->id = next_bubble_id.fetch_add(1, std::memory_order_relaxed);
  b->driver = current_parker();
  b->explore = ex;
  if (ex != nullptr) explore_attach(ex, b);
  root->b = b;
  {
    acting_for act(b);
    spawn(spawn_options{}, root, where);
  }
  for (;;) {
    if (ex != nullptr) {
      explore_action a = explore_next(ex, b);
      if (a == explore_action::done || a == explore_action::failed) break;
      if (a == explore_action::granted) continue;
    } else {
      while (b->running.load(std::memory_order_acquire) != 0) {
        park(b->driver, wait_reason::synctest_run);
      }
      if (b->live.load(std::memory_order_acquire) == 0) break;
    }
    // Idle: every goroutine of the bubble is durably blocked. What the driver wakes
    // now it wakes as the bubble (an explored run sees it in order).
    acting_for act(b);
    if (b->root_done.load(std::memory_order_acquire)) {
      // Time stops once the root function has returned (Go's rule): what is left can
      // only wait for good.
      out.deadlock = deadlock_report(
          b,
          "the root function has returned, and goroutines of the bubble remain blocked "
          "(its time stops when the root returns)");
      break;
    }
    std::int64_t now = b->now.load(std::memory_order_relaxed);
    if (b->timers.next_deadline() <= now) {
      // Timers already due (after(0), a reset into the past) fire before a waiter is
      // released, as Go's.
      b->skip_horizon.store(timer_heap::no_deadline, std::memory_order_relaxed);
      b->timers.run_due(now);
      continue;
    }
    parker* waiter = nullptr;
    {
      std::lock_guard lk(b->lock);
      if (b->waiter != nullptr) {
        waiter = std::exchange(b->waiter, nullptr);
        b->waiter_released = true;
      }
    }
    if (waiter != nullptr) {
      unpark(waiter);
      continue;
    }
    // Only a timer that can wake a goroutine moves the clock on: one on whose channel
    // nobody waits (a ticker nobody reads) cannot, and alone it is a deadlock.
    std::int64_t waking = b->timers.next_waking_deadline();
    if (waking == timer_heap::no_deadline) {
      out.deadlock = deadlock_report(b, "all goroutines in the bubble are durably blocked");
      break;
    }
    std::int64_t next = b->timers.next_deadline();
    b->skip_horizon.store(waking, std::memory_order_relaxed);
    if (next > now) b->now.store(next, std::memory_order_release);
    b->timers.run_due(next);
  }
  if (ex != nullptr) explore_finish(ex, b, out);
  // Pending timers (an unstopped ticker, a timeout never reached) go with the bubble.
  b->timers.discard_all();
  // A deadlocked or failed bubble's goroutines stay parked for good (they hold the
  // bubble); they are what the report shows.
  bubble_release(b);
  return out;
}

void synctest_run(task* t, const std::source_location& where) {
  bubble_outcome out = run_bubble(t, where, nullptr);
  // What the root threw is the test's own failure: it comes first, also when the
  // goroutines it left behind deadlocked.
  if (out.root_thrown) std::rethrow_exception(out.root_thrown);
  if (!out.deadlock.empty()) throw panic_error(out.deadlock);
}

void synctest_wait() {
  goroutine* g = current_goroutine();
  bubble* b = g ? g->in_bubble.load(std::memory_order_relaxed) : nullptr;
  if (b == nullptr) throw panic_error("synctest::wait: called from outside a bubble");
  {
    std::lock_guard lk(b->lock);
    if (b->waiter != nullptr) {
      throw panic_error("synctest::wait: called by two goroutines of one bubble at once");
    }
    b->waiter = &g->park;
    b->waiter_released = false;
  }
  for (;;) {
    {
      std::lock_guard lk(b->lock);
      if (b->waiter_released) return;
    }
    park_durable(&g->park, wait_reason::synctest_wait, b);
  }
}

}  // namespace goro::detail

namespace goro {

time_point now() noexcept {
  if (detail::bubble* b = detail::current_bubble()) {
    return time_point(std::chrono::nanoseconds(b->now.load(std::memory_order_acquire)));
  }
  return std::chrono::steady_clock::now();
}

}  // namespace goro
