// bubble.hpp — synctest bubbles: a group of goroutines with its own fake clock
// (goro/synctest.hpp; Go's testing/synctest).
//
// A bubble counts its live goroutines and, among them, those not durably blocked
// (`running`): runnable, running, or parked on something from outside the bubble (a
// mutex, I/O, goro::blocking, a channel created outside). A goroutine is durably
// blocked while it is parked on something only another goroutine of the bubble can
// release: a channel or select of the bubble, cond::wait, a wait_group or semaphore of
// the bubble, a sleep or timer. When `running` reaches zero the bubble is idle and its
// driver (the caller of synctest::run) acts: it releases a synctest::wait caller, or
// moves the clock to the next timer and fires what is due, or reports the deadlock.
//
// Accounting (the invariant: running == 0 only when every live goroutine is durably
// parked, or all have exited):
//   - spawn in a bubble: live++ and running++ by the spawner, before the child can run;
//   - exit: live-- and running-- by the goroutine itself;
//   - a durable park: the goroutine sets its parker's `durable` flag before parking;
//     its worker, after publishing `parked`, does running--;
//   - unpark of a durably parked goroutine: running++ by the waker, before the
//     goroutine can run again. (It may come before the worker's running--: the count is
//     then one too high for a moment, never zero too early.)
// Whoever takes running to zero wakes the driver. Only bubble goroutines and the
// driver's timer firing wake durably parked goroutines (a bubble's channels and timers
// refuse callers from outside), so once running is zero it stays zero until the driver
// acts.
//
// Lifetime: reference counted. References are held by synctest::run, by each live
// goroutine, by a worker between publishing a durable park and its running--, and by
// every timer or context deadline armed on the bubble's heap (timer_heap::remove may
// be called on an entry after run returned).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <source_location>
#include <string>

#include "runtime/parking.hpp"
#include "runtime/sys.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

class task;
struct goroutine;
struct explorer;  // schedule exploration (explore.cpp)
void explorer_delete(explorer* ex) noexcept;

struct bubble {
  // The fake clock's start: 2000-01-01 00:00:00 UTC as seconds of steady_clock's epoch
  // (Go's bubbles start at that instant too).
  static constexpr std::int64_t epoch_ns = std::int64_t{946'684'800} * 1'000'000'000;

  std::atomic<std::int64_t> refs{1};
  std::atomic<std::int64_t> live{0};
  std::atomic<std::int64_t> running{0};
  std::atomic<std::int64_t> now{epoch_ns};  // written by the driver only
  // While the driver fires timers of an idle bubble: the earliest deadline that could
  // wake a goroutine (a ticker nobody reads skips to it). Written by the driver.
  std::atomic<std::int64_t> skip_horizon{timer_heap::no_deadline};
  std::atomic<bool> root_done{false};  // the root function returned (time stops)
  timer_heap timers{/*notify_scheduler=*/false};
  parker* driver = nullptr;  // the synctest::run caller
  std::uint64_t id = 0;      // for dumps
  spinlock lock;
  parker* waiter = nullptr;      // under lock: a synctest::wait caller
  bool waiter_released = false;  // under lock
  // Set while goro::testing::explore runs this bubble (before its root is spawned);
  // freed with the bubble.
  explorer* explore = nullptr;

  bubble() = default;
  ~bubble() {
    if (explore != nullptr) explorer_delete(explore);
  }
  bubble(const bubble&) = delete;
  bubble& operator=(const bubble&) = delete;
};

void bubble_retain(bubble* b) noexcept;
void bubble_release(bubble* b) noexcept;

// The bubble the caller acts in: the current goroutine's, or, on a bubble's driver
// while it fires timers or starts the root goroutine, that bubble. Null outside.
bubble* current_bubble() noexcept;

// The bubble new_goroutine puts a child of `parent` (null: started from a thread) in.
bubble* bubble_for_child(goroutine* parent) noexcept;
// Accounting of goroutine life (see the top of this file).
void bubble_joined(bubble* b, goroutine* g) noexcept;
void bubble_exited(bubble* b) noexcept;
// A worker published the durable park of a goroutine of `b`: running--.
void bubble_parked(bubble* b) noexcept;
// A waker made a durably parked goroutine of `b` runnable: running++.
inline void bubble_woken(bubble* b) noexcept { b->running.fetch_add(1, std::memory_order_acq_rel); }

// Parks like park(), and counts as durably blocked when the caller is a goroutine of
// `owner` (the bubble of the channel, wait_group... it waits on; null: none).
void park_durable(parker* self, wait_reason reason, bubble* owner) noexcept;

// The clock and the timer heap for timers armed by the caller: the bubble's fake ones
// inside a bubble, the real ones outside.
std::int64_t clock_now(bubble* b) noexcept;
timer_heap& clock_timers(bubble* b) noexcept;

// Throws goro::panic_error "<op> on synctest <what> from outside its bubble" when the
// caller is not in `owner` (null: no check).
void check_bubble(bubble* owner, const char* what_op);

// Schedule exploration (goro/explore.hpp). In an explored bubble one goroutine at a
// time holds the turn; at each scheduling point it gives the turn back to the driver,
// which picks the next goroutine among the ready ones by the run's seeded strategy.
// A goroutine is ready when spawned, when it reaches a scheduling point, and when a
// goroutine of the bubble (or the driver firing timers) wakes it: always in the
// program order of whoever holds the turn, so a seed gives one interleaving.
//   explore_spawned — new_goroutine, for a child (the spawner holds the turn);
//   explore_start   — the child's first act: waits for its first turn;
//   explore_point   — a scheduling point of the goroutine holding the turn;
//   explore_park    — park() of a goroutine of the bubble: gives the turn back, parks,
//                     then waits for its turn;
//   explore_woken   — unpark() from inside the bubble: the goroutine becomes ready;
//   explore_exit    — the goroutine ends (thrown: what escaped it, or null).
void explore_spawned(explorer* ex, goroutine* child) noexcept;
void explore_start(explorer* ex, goroutine* self) noexcept;
void explore_point(explorer* ex, bool yielded = false) noexcept;
void explore_park(explorer* ex, parker* self, wait_reason reason) noexcept;
void explore_woken(explorer* ex, goroutine* g) noexcept;
void explore_exit(explorer* ex, goroutine* self, std::exception_ptr thrown) noexcept;
// goro::mutex under exploration (mutex.cpp): the mutex the caller is about to wait
// for, and the run's mutexes held by its goroutines.
void explore_mutex_waiting(explorer* ex, const void* m) noexcept;
void explore_mutex_held(explorer* ex, const void* m) noexcept;
void explore_mutex_released(explorer* ex, const void* m) noexcept;
// A random number below n from the run's generator (select's case order).
std::uint32_t explore_random(explorer* ex, std::uint32_t n) noexcept;
// The explorer of the calling goroutine's bubble, or null.
explorer* current_explorer() noexcept;

// What a bubble's run came to.
struct bubble_outcome {
  std::string deadlock;            // the deadlock report, or empty
  std::exception_ptr root_thrown;  // what the root function threw
  std::string failure;             // explored runs: what failed (deadlock included), or empty
  std::string schedule;            // explored runs: the goroutine given each turn
  std::uint64_t steps = 0;         // explored runs: turns given
  std::string names;               // explored runs: "2 is goroutine 17, ..." (those left)
};
// Runs t as the root of a new bubble (explored by `ex` when not null, which the
// bubble then owns) until its goroutines are gone or it deadlocks.
bubble_outcome run_bubble(task* t, const std::source_location& where, explorer* ex);
std::string deadlock_report(bubble* b, const char* what);

// The driver's side of an explored run: blocks until the run is over (done), a
// goroutine failed (failed), a ready goroutine was given the turn (granted), or every
// goroutine is durably blocked (idle: the driver releases a waiter, fires timers, or
// reports the deadlock).
enum class explore_action { done, failed, granted, idle };
explore_action explore_next(explorer* ex, bubble* b);
void explore_attach(explorer* ex, bubble* b) noexcept;
void explore_finish(explorer* ex, bubble* b, bubble_outcome& out);

// Marks the calling thread as acting for `b` while it lives (the driver).
class acting_for {
 public:
  explicit acting_for(bubble* b) noexcept;
  ~acting_for();
  acting_for(const acting_for&) = delete;
  acting_for& operator=(const acting_for&) = delete;

 private:
  bubble* prev_;
};

}  // namespace goro::detail
