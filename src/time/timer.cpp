// timer.cpp — timer channels (after, tick, timer, ticker) on the runtime's timer heaps.
//
// Each arming of a timer is an `arm`: a heap entry that owns a reference to its timer,
// so a pending timer stays alive while it may still deliver, and is released as soon
// as it fires for good or is stopped.
//
// after() and tick() hand out no timer object, only the channel: their handles share
// ownership of a `channel_owner`, which stops the timer when the last handle goes (Go
// 1.23 collects unreferenced timers), so an after(1h) that lost a select leaves the
// heap at once instead of an hour later. The timer itself refers to the channel
// through its own reference, which does not count as a handle.
//
// Invariants (under timer_impl::lock):
//   - `current` is the arm that may deliver a value; any other arm still in flight
//     (popped by a heap, its fire() not yet run) is marked `cancelled` and only frees
//     itself. Whether an arm is freed by the canceller or by its fire() is decided
//     under this lock: the canceller frees it only if timer_heap::remove took it out.
//   - stop and reset (Go 1.23): no value from the old schedule is received after they
//     return; they report true if the timer was pending or a fired value was still
//     waiting in the channel (which they discard), so `if (!t.stop()) t.c().recv()`
//     never blocks on a value that was not received.
//   - Lock order: timer_impl::lock, then a timer heap's lock, then a channel's lock.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include "goro/time.hpp"
#include "runtime/bubble.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/sys.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

struct timer_arm;

struct timer_impl {
  // The synctest bubble it was created in (a reference), or null: its clock and heap.
  bubble* const clock;
  spinlock lock;
  chan<time_point> ch = make_chan<time_point>(1);
  std::int64_t period = 0;       // under lock; 0 = one-shot
  timer_arm* current = nullptr;  // under lock

  timer_impl() noexcept : clock(current_bubble()) {
    if (clock != nullptr) bubble_retain(clock);
  }
  ~timer_impl() {
    if (clock != nullptr) bubble_release(clock);
  }
  timer_impl(const timer_impl&) = delete;
  timer_impl& operator=(const timer_impl&) = delete;
};

struct timer_arm {
  timer_entry entry;
  std::shared_ptr<timer_impl> owner;
  bool cancelled = false;  // under owner->lock
};

namespace {

// Arms not yet freed: in a heap or firing (timer_arm_count, for tests).
std::atomic<std::int64_t> live_arms{0};

void free_arm(timer_arm* a) {
  delete a;
  live_arms.fetch_sub(1, std::memory_order_relaxed);  // a statistic: no ordering
}

// Shared by the channel handles of after() and tick(); the last one stops the timer.
struct channel_owner {
  std::shared_ptr<timer_impl> timer;
  ~channel_owner();
};

void fire(timer_entry* e);
void discard(timer_entry* e);

// Whether firing the arm could wake a goroutine: only one blocked receiving on its
// channel (a synctest bubble's driver asks, when all its goroutines are blocked).
bool may_wake(timer_entry* e) {
  auto* a = static_cast<timer_arm*>(e->arg);
  channel_core* c = chan_access::core(a->owner->ch);
  std::lock_guard lk(c->lock);
  return !c->recvq.empty();
}

// Arms `t` to fire after delay_ns. Called with t->lock held.
void arm_locked(const std::shared_ptr<timer_impl>& t, std::int64_t delay_ns) {
  auto* a = new timer_arm;
  live_arms.fetch_add(1, std::memory_order_relaxed);  // a statistic: no ordering
  a->owner = t;
  a->entry.fire = &fire;
  a->entry.discard = &discard;
  a->entry.may_wake = &may_wake;
  a->entry.arg = a;
  std::int64_t now = clock_now(t->clock);
  a->entry.when =
      delay_ns > timer_heap::no_deadline - now ? timer_heap::no_deadline - 1 : now + delay_ns;
  t->current = a;
  clock_timers(t->clock).add(&a->entry);
}

// Takes the current arm out; frees it if it was still in a heap, else leaves it to
// its in-flight fire(). Returns true if a pending arm was cancelled. Lock held.
bool disarm_locked(timer_impl& t, std::shared_ptr<timer_impl>* release) {
  timer_arm* a = t.current;
  if (a == nullptr) return false;
  t.current = nullptr;
  if (timer_heap::remove(&a->entry)) {
    *release = std::move(a->owner);  // dropped by the caller after unlocking
    free_arm(a);
  } else {
    a->cancelled = true;  // popped, fire() in flight: it frees itself
  }
  return true;
}

// Go 1.23's Stop/Reset: disarms, and discards a fired value nobody received, so that
// none from the old schedule is received after the call; true if the timer was
// pending or such a value was discarded. Lock held.
bool stop_locked(timer_impl& t, std::shared_ptr<timer_impl>* release) {
  bool pending = disarm_locked(t, release);
  // The timer's own drain (also from a destructor outside its bubble), under its lock:
  // not a scheduling point.
  std::optional<time_point> stale;
  bool drained = chan_access::core(t.ch)->recv(&stale, false, /*internal=*/true) ==
                 channel_core::recv_status::value;
  return pending || drained;
}

void fire(timer_entry* e) {
  auto* a = static_cast<timer_arm*>(e->arg);
  std::shared_ptr<timer_impl> t = a->owner;  // keeps the timer alive through this call
  std::unique_lock lk(t->lock);
  if (a->cancelled || t->current != a) {
    lk.unlock();
    free_arm(a);
    return;
  }
  std::int64_t now = clock_now(t->clock);
  // A full buffer drops the tick.
  bool sent = t->ch.try_send(time_point(std::chrono::nanoseconds(now)));
  if (t->period > 0) {
    // Next tick; ticks a slow reader or a late processor missed are skipped.
    std::int64_t latest = timer_heap::no_deadline - 1;
    std::int64_t next = a->entry.when > latest - t->period ? latest : a->entry.when + t->period;
    if (next <= now) next = now > latest - t->period ? latest : now + t->period;
    if (!sent && t->clock != nullptr) {
      // In an idle bubble nobody reads this channel until something else wakes: the
      // ticks before that would all be dropped, so the clock need not stop at them.
      std::int64_t horizon = t->clock->skip_horizon.load(std::memory_order_relaxed);
      if (horizon > next && horizon != timer_heap::no_deadline) {
        std::int64_t periods = (horizon - next + t->period - 1) / t->period;
        next = periods > (latest - next) / t->period ? latest : next + periods * t->period;
      }
    }
    if (next >= latest) {
      // Time saturates there (a bubble's clock can reach it): no later tick exists.
      t->current = nullptr;
      lk.unlock();
      free_arm(a);
      return;
    }
    a->entry.when = next;
    clock_timers(t->clock).add(&a->entry);
    return;
  }
  t->current = nullptr;
  lk.unlock();
  free_arm(a);
}

// The bubble's heap is going away with the arm pending (synctest::run returned).
void discard(timer_entry* e) {
  auto* a = static_cast<timer_arm*>(e->arg);
  std::shared_ptr<timer_impl> t = std::move(a->owner);
  {
    std::lock_guard lk(t->lock);
    if (t->current == a) t->current = nullptr;
  }
  free_arm(a);
}

channel_owner::~channel_owner() {
  // Nobody can receive any more: only the heap's place is released, the channel is
  // left alone (its last reference goes with the timer).
  std::shared_ptr<timer_impl> release;
  std::lock_guard lk(timer->lock);
  (void)disarm_locked(*timer, &release);
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

recv_chan<time_point> timer_start_channel(std::int64_t delay_ns, std::int64_t period_ns) {
  auto owner = std::make_shared<channel_owner>();
  owner->timer = timer_start(delay_ns, period_ns);
  // The handles share the owner's count but point at the timer's channel.
  std::shared_ptr<channel<time_point>> handle(owner, chan_access::state(owner->timer->ch).get());
  return chan_access::make<recv_chan<time_point>>(std::move(handle));
}

bool timer_stop(timer_impl& t) {
  check_bubble(t.clock, "stopping a timer");
  std::shared_ptr<timer_impl> release;
  std::lock_guard lk(t.lock);
  return stop_locked(t, &release);
}

std::size_t timer_arm_count() noexcept {
  return static_cast<std::size_t>(live_arms.load(std::memory_order_relaxed));
}

void timer_drop(timer_impl& t) noexcept {
  std::shared_ptr<timer_impl> release;
  std::lock_guard lk(t.lock);
  (void)stop_locked(t, &release);
}

bool timer_reset(const std::shared_ptr<timer_impl>& t, std::int64_t delay_ns,
                 std::int64_t period_ns) {
  check_bubble(t->clock, "resetting a timer");
  check_not_forked("a timer reset");  // it would arm the parent's copied timer heap
  std::shared_ptr<timer_impl> release;
  std::lock_guard lk(t->lock);
  bool was = stop_locked(*t, &release);
  t->period = period_ns;
  arm_locked(t, delay_ns);
  return was;
}

}  // namespace goro::detail
