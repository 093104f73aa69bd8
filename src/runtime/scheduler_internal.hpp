// scheduler_internal.hpp — what the scheduler's files (scheduler.cpp, switch.cpp,
// find_work.cpp, idle.cpp, monitor.cpp) share and nobody else uses. The design essay
// is at the top of scheduler.cpp.
#pragma once

#include "runtime/scheduler.hpp"

namespace goro::detail {

// The processor of the calling worker thread (null on other threads). Read it through
// current_processor() in code that may run on a goroutine: see "Per-thread state and
// migration" in scheduler.cpp.
extern constinit thread_local processor* tls_processor;
// The scheduler, once started (never destroyed).
extern std::atomic<scheduler*> the_scheduler;

// ---- switch.cpp ----
// A worker thread's whole life: the scheduler loop on its own stack (g0).
void worker_main(scheduler* s, processor* p);

// ---- find_work.cpp ----
// Blocks until p has a goroutine to run, and returns it (see "Queues" in the essay).
goroutine* find_runnable(scheduler& s, processor* p);
// Early hand-offs a goroutine gets each time it is found blocking in the kernel (see
// "Goroutines that block again" in monitor.cpp).
inline constexpr std::uint8_t blocker_credits = 8;
// p ran a known blocker without a slot (p->dispatched), and it is back at a scheduling
// point: its credits follow judge_blocker_run's verdict on that run. Call before
// complete_switch publishes the goroutine.
void end_dispatched_run(processor* p) noexcept;
// What a run of a known blocker without a slot says of it, from its thread's voluntary
// and involuntary context switches, CPU time and time during the run: it never slept in
// the kernel (its credits go), it slept and mostly waited (its credits are refilled),
// or it slept but computed too, or was preempted (its credits stay as they are).
enum class blocker_verdict : std::uint8_t { blocks_no_more, still_blocks, unclear };
blocker_verdict judge_blocker_run(long sleeps, long preemptions, std::int64_t cpu_ns,
                                  std::int64_t wall_ns) noexcept;
// p found work: it stops spinning, and wakes another spinner if it was the last.
void stop_spinning(scheduler& s, processor* p);
// True if something waits on I/O and no idle worker sleeps in the poller watching it.
bool poller_vacant(scheduler& s) noexcept;
// Polls the network without blocking if the poller is vacant and nobody has polled for
// netpoll_interval_ns.
void poll_if_stale(scheduler& s) noexcept;
// Whether any processor's local queue (retired ones included) holds a goroutine.
bool any_local_work(scheduler& s);

// ---- idle.cpp ----
// Sleeps until woken or until the next timer. On return p->spinning says whether a
// waker granted a spinning slot.
void idle(scheduler& s, processor* p);
// Takes p off the idle list if it is there (idle_lock held); true if it was.
bool remove_idle_locked(scheduler& s, processor* p);
// Wakes p, already off the idle list, as a spinning processor.
void wake_processor(processor* p);
// Makes g, locked to `own`'s thread (lock_os_thread), run there: hands it to that
// worker directly and wakes it. g is runnable.
void hand_to_locked_thread(processor* own, goroutine* g) noexcept;

// The common case, every processor busy, decided inline: a yield and every wake-up
// pass here.
inline void wakep(scheduler& s) noexcept {
  if (s.npidle.load(std::memory_order_seq_cst) == 0) return;
  wake_idle_processor(s);
}

// The owner's pop from its local queue: runnext first, unless the monitor saw the ring
// starve behind runnext hand-offs for a time slice (runnext_expired).
inline goroutine* take_local(processor* p) noexcept {
  if (p->runnext_expired.load(std::memory_order_relaxed)) [[unlikely]] {
    p->runnext_expired.store(false, std::memory_order_relaxed);
    if (goroutine* g = p->runq.pop_ring()) return g;
  }
  return p->runq.pop();
}

}  // namespace goro::detail
