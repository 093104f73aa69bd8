// mutex.cpp — goro::mutex, following Go's sync/mutex.go.
//
// Two modes. Normal: waiters queue FIFO, but a woken waiter competes with goroutines
// that just arrived (and are already on a CPU), so it often loses and is requeued at
// the front. Starvation: entered when a waiter fails to get the mutex for more than
// 1 ms; unlock then hands the mutex directly to the first waiter, and newcomers queue
// at the back without trying. A waiter leaves starvation mode when it is the last one
// or waited less than 1 ms. The state word is documented in mutex.hpp.
#include "goro/mutex.hpp"

#include <cstdio>
#include <cstdlib>

#include "goro/detail/lifetime.hpp"
#include "goro/runtime.hpp"
#include "runtime/bubble.hpp"
#include "runtime/sys.hpp"

namespace goro {
namespace {
constexpr std::int64_t starvation_threshold_ns = 1'000'000;
constexpr int active_spin = 4;
constexpr int spin_pauses = 30;

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "fatal error: %s\n", what);
  std::fflush(stderr);
  std::abort();
}
}  // namespace

bool mutex::try_lock() noexcept {
  std::int32_t old = state_.load(std::memory_order_relaxed);
  if (old & (locked | starving)) return false;
  bool got = state_.compare_exchange_strong(old, old | locked, std::memory_order_acquire,
                                            std::memory_order_relaxed);
  if (got && detail::explorations.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    if (detail::explorer* ex = detail::current_explorer()) detail::explore_mutex_held(ex, this);
  }
  return got;
}

// Under schedule exploration (goro/explore.hpp) lock and unlock are scheduling points,
// and the run knows which of its mutexes its goroutines hold: waiting for one of those
// is a durable block, waiting for one held from outside is not.
void mutex::lock_explored() {
  detail::explorer* ex = detail::current_explorer();
  if (ex != nullptr) {
    detail::explore_point(ex);
    detail::explore_mutex_waiting(ex, this);
  }
  std::int32_t expected = 0;
  if (!state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
    lock_slow();
  }
  if (ex != nullptr) detail::explore_mutex_held(ex, this);
}

void mutex::unlock_explored() {
  detail::explorer* ex = detail::current_explorer();
  if (ex != nullptr) detail::explore_mutex_released(ex, this);
  std::int32_t now = state_.fetch_sub(locked, std::memory_order_release) - locked;
  if (now != 0) unlock_slow(now);
  if (ex != nullptr) detail::explore_point(ex);
}

void mutex::destroyed_in_use() const noexcept {
  if (detail::destruction_excused(this)) return;
  char what[160];
  std::snprintf(what, sizeof what, "mutex destroyed while %d goroutines or threads wait to lock it",
                static_cast<int>(state_.load(std::memory_order_relaxed) >> waiter_shift));
  detail::fatal_destroyed_in_use(what, where_);
}

void mutex::lock_slow() {
  std::int64_t wait_start = 0;
  bool starve = false;
  bool awoke = false;
  int iter = 0;
  std::int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Spin briefly while the holder is likely to let go soon (not in starvation
    // mode, and other processors exist to run it).
    if ((old & (locked | starving)) == locked && iter < active_spin && max_procs() > 1) {
      if (!awoke && !(old & woken) && (old >> waiter_shift) != 0 &&
          state_.compare_exchange_strong(old, old | woken, std::memory_order_relaxed)) {
        awoke = true;  // tell unlock not to wake another waiter
      }
      for (int i = 0; i < spin_pauses; ++i) detail::cpu_relax();
      ++iter;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    std::int32_t next = old;
    if (!(old & starving)) next |= locked;  // in starvation mode newcomers queue
    if (old & (locked | starving)) next += 1 << waiter_shift;
    if (starve && (old & locked)) next |= starving;
    if (awoke) next &= ~woken;
    if (state_.compare_exchange_strong(old, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      if (!(old & (locked | starving))) return;  // got it
      bool requeue = wait_start != 0;
      // The caller's clock: a synctest bubble's fake one inside a bubble, where the
      // real time a waiter waited must not decide who gets the mutex (an explored run
      // must be a function of its seed).
      if (wait_start == 0) wait_start = detail::clock_now(detail::current_bubble());
      sema_.acquire(detail::wait_reason::mutex_lock, /*lifo=*/requeue);
      starve = starve ||
               detail::clock_now(detail::current_bubble()) - wait_start > starvation_threshold_ns;
      old = state_.load(std::memory_order_relaxed);
      if (old & starving) {
        // Handed to us: the mutex is ours; fix the state.
        std::int32_t delta = locked - (1 << waiter_shift);
        if (!starve || (old >> waiter_shift) == 1) delta -= starving;  // leave starvation
        state_.fetch_add(delta, std::memory_order_acquire);
        return;
      }
      awoke = true;
      iter = 0;
    }
    // CAS failure reloaded `old`.
  }
}

void mutex::unlock_slow(std::int32_t now) {
  if (!((now + locked) & locked)) fatal("sync: unlock of unlocked mutex");
  if (!(now & starving)) {
    std::int32_t old = now;
    for (;;) {
      // Nobody to wake, or someone is already awake / got the lock / it is starving.
      if ((old >> waiter_shift) == 0 || (old & (locked | woken | starving))) return;
      std::int32_t next = (old - (1 << waiter_shift)) | woken;
      if (state_.compare_exchange_strong(old, next, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        sema_.release();
        return;
      }
    }
  }
  // Starvation mode: hand the mutex to the first waiter. The locked bit stays clear;
  // the waiter sets it, and the starving bit keeps newcomers out meanwhile.
  sema_.release();
}

}  // namespace goro
