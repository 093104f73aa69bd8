// timer.cpp — timer channels (after, tick, timer, ticker) on the runtime's timer heaps.
//
// Each arming of a timer is an `arm`: a heap entry that owns a reference to its timer,
// so a pending timer stays alive even when nobody else holds it (after(), tick()), and
// is released as soon as it fires for good or is stopped.
//
// Invariants (under timer_impl::lock):
//   - `current` is the arm that may deliver a value; any other arm still in flight
//     (popped by a heap, its fire() not yet run) is marked `cancelled` and only frees
//     itself.
//   - Lock order: timer_impl::lock, then a timer heap's lock, then a channel's lock.
#include <chrono>
#include <memory>
#include <mutex>

#include "goro/time.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/sys.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

struct timer_arm;

struct timer_impl {
  spinlock lock;
  chan<time_point> ch = make_chan<time_point>(1);
  std::int64_t period = 0;       // under lock; 0 = one-shot
  timer_arm* current = nullptr;  // under lock
};

struct timer_arm {
  timer_entry entry;
  std::shared_ptr<timer_impl> owner;
  bool cancelled = false;  // under owner->lock
};

namespace {

void fire(timer_entry* e);

// Arms `t` to fire after delay_ns. Called with t->lock held.
void arm_locked(const std::shared_ptr<timer_impl>& t, std::int64_t delay_ns) {
  auto* a = new timer_arm;
  a->owner = t;
  a->entry.fire = &fire;
  a->entry.arg = a;
  std::int64_t now = nanotime();
  a->entry.when =
      delay_ns > timer_heap::no_deadline - now ? timer_heap::no_deadline - 1 : now + delay_ns;
  t->current = a;
  local_timers().add(&a->entry);
}

// Takes the current arm out; frees it if it was still in a heap, else leaves it to
// its in-flight fire(). Returns true if a pending arm was cancelled. Lock held.
bool disarm_locked(timer_impl& t, std::shared_ptr<timer_impl>* release) {
  // Go 1.23: no value from the old schedule is received after stop/reset returns,
  // even one delivered before the call.
  (void)t.ch.try_recv();
  timer_arm* a = t.current;
  if (a == nullptr) return false;
  t.current = nullptr;
  if (timer_heap::remove(&a->entry)) {
    *release = std::move(a->owner);  // dropped by the caller after unlocking
    delete a;
  } else {
    a->cancelled = true;  // popped, fire() in flight: it frees itself
  }
  return true;
}

void fire(timer_entry* e) {
  auto* a = static_cast<timer_arm*>(e->arg);
  std::shared_ptr<timer_impl> t = a->owner;  // keeps the timer alive through this call
  std::unique_lock lk(t->lock);
  if (a->cancelled || t->current != a) {
    lk.unlock();
    delete a;
    return;
  }
  (void)t->ch.try_send(std::chrono::steady_clock::now());  // a full buffer drops the tick
  if (t->period > 0) {
    // Next tick; ticks a slow reader or a late processor missed are skipped.
    std::int64_t now = nanotime();
    std::int64_t next = a->entry.when + t->period;
    if (next <= now) next = now + t->period;
    a->entry.when = next;
    local_timers().add(&a->entry);
    return;
  }
  t->current = nullptr;
  lk.unlock();
  delete a;
}

}  // namespace

std::shared_ptr<timer_impl> timer_start(std::int64_t delay_ns, std::int64_t period_ns) {
  sched();  // timers from plain threads need workers to fire them
  auto t = std::make_shared<timer_impl>();
  std::lock_guard lk(t->lock);
  t->period = period_ns;
  arm_locked(t, delay_ns);
  return t;
}

recv_chan<time_point> timer_channel(const timer_impl& t) { return t.ch; }

bool timer_stop(timer_impl& t) {
  std::shared_ptr<timer_impl> release;
  std::lock_guard lk(t.lock);
  return disarm_locked(t, &release);
}

bool timer_reset(const std::shared_ptr<timer_impl>& t, std::int64_t delay_ns,
                 std::int64_t period_ns) {
  std::shared_ptr<timer_impl> release;
  std::lock_guard lk(t->lock);
  bool was = disarm_locked(*t, &release);
  t->period = period_ns;
  arm_locked(t, delay_ns);
  return was;
}

}  // namespace goro::detail
