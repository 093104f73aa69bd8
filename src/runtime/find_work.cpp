// find_work.cpp — where a worker looks for its next goroutine (find_runnable): its
// own queue, the global queue, due timers, the network, other processors' queues
// (stealing), and retirement when its processor holds no slot. The order and the
// spinning policy are in the design essay at the top of scheduler.cpp.
//
// Invariants:
//   - A processor's ring has one consumer that pops (its worker) and any number of
//     thieves (steal_from). A thief takes half of a victim's ring at once, as Go's
//     runqsteal, unless its last steals were futile (judge_last_steal): then only
//     goroutines queued at least steal_rule::settle_runs runs of the victim ago. The
//     rest, and runnext, only after sleeping runnext_steal_delay_ns: those queued
//     before the sleep, and anything if the victim did not schedule meanwhile (it is
//     stuck).
//   - Stealing and timer firing walk every created processor, retired ones included:
//     a retired processor may still be running a goroutine that queues work or sets
//     timers.
#include <sys/resource.h>

#include "runtime/netpoll.hpp"
#include "runtime/scheduler_internal.hpp"

namespace goro::detail {

namespace {

constexpr int spin_rounds = 4;
constexpr long runnext_steal_delay_ns = 3'000;  // a victim that ran one goroutine this
                                                // long is stuck in it

std::uint32_t fast_rand(processor* p) {
  std::uint32_t x = p->rand_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  p->rand_state = x;
  return x;
}

// A steal whose goroutines were all done soon after it moved nothing worth a
// migration: goroutines that parked within futile_park_ns each were hand-off partners
// of what runs on the victim (they will be woken there again), and ones that returned
// within futile_exit_ns each were too short to pay for the cache lines they dragged
// along. After futile_steal_limit such steals in a row a processor takes only
// goroutines settled on their victim (steal_rule) for settled_only_ns; one steal that
// kept it busy longer ends that at once.
constexpr std::int64_t futile_park_ns = 5'000;
constexpr std::int64_t futile_exit_ns = 500;
constexpr int futile_steal_limit = 4;
constexpr std::int64_t settled_only_ns = 1'000'000;

goroutine* stole(processor* p, goroutine* g) {
  p->steals.store(p->steals.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  p->stole_at = nanotime();
  p->stole_count = p->runq.size() + 1;  // the ring was empty before the steal
  p->stole_exited = p->exited.load(std::memory_order_relaxed);
  return g;
}

// p's queue is empty again: was its last steal futile? Returns whether p takes only
// settled goroutines now.
bool judge_last_steal(processor* p) {
  std::int64_t now = nanotime();
  if (p->stole_at != 0) {
    bool all_returned = p->exited.load(std::memory_order_relaxed) - p->stole_exited >=
                        p->stole_count;
    std::int64_t each = all_returned ? futile_exit_ns : futile_park_ns;
    if (now - p->stole_at >= each * p->stole_count) {
      p->futile_steals = 0;
      p->settled_only_until = 0;
    } else if (++p->futile_steals >= futile_steal_limit) {
      p->futile_steals = 0;
      p->settled_only_until = now + settled_only_ns;
    }
    p->stole_at = 0;
  }
  return now < p->settled_only_until;
}

// Steals from every processor that exists, retired ones included: one whose goroutine
// holds its thread in foreign code, or that set_max_procs retired while it ran, may
// still have a queue. Half of a victim's ring at once, as Go's runqsteal; with
// `settled_only`, only goroutines settled on it (steal_rule). Only the last round takes
// runnext, or younger goroutines, after waiting.
goroutine* try_steal(scheduler& s, processor* p, bool last_round, bool settled_only) {
  int n = s.created.load(std::memory_order_acquire);
  if (n <= 1) return nullptr;
  std::uint32_t start = fast_rand(p) % static_cast<std::uint32_t>(n);
  for (int i = 0; i < n; ++i) {
    int v =
        static_cast<int>((start + static_cast<std::uint32_t>(i)) % static_cast<std::uint32_t>(n));
    processor* victim = s.procs[v].load(std::memory_order_acquire);
    if (victim == nullptr || victim == p) continue;
    steal_rule now{.any = !settled_only};
    if (goroutine* g = p->runq.steal_from(victim->runq, now)) return stole(p, g);
    if (!last_round || victim->runq.empty()) continue;
    // What is left is runnext, or goroutines still warm on the victim. Wait asleep,
    // still counted as spinning (Go's usleep(3) in runqgrab): a goroutine made
    // runnable meanwhile wakes nobody, and this thread neither spins nor takes
    // hand-offs that belong on the victim, where the partners' cache lines are. This
    // host's kernel makes the sleep ~55 us; where timers are precise it is a few
    // microseconds, and the wait is as short as Go's. Then take what waited through
    // the sleep; and if the victim ran the same goroutine all along, it is stuck in it:
    // take anything, runnext included (only from a ring with nothing else).
    steal_rule after{.any = !settled_only, .seen = true, .seen_tail = victim->runq.tail()};
    std::uint64_t tick = victim->schedtick.load(std::memory_order_acquire);
    timespec ts{0, runnext_steal_delay_ns};
    nanosleep(&ts, nullptr);
    if (victim->schedtick.load(std::memory_order_acquire) == tick) {
      after.any = true;
      after.runnext = true;
    }
    if (goroutine* g = p->runq.steal_from(victim->runq, after)) return stole(p, g);
  }
  return nullptr;
}

void run_heap(timer_heap& t, std::int64_t& now) {
  std::int64_t next = t.next_deadline();
  if (next == timer_heap::no_deadline) return;
  if (now == 0) now = nanotime();
  if (next <= now) t.run_due(now);
}

// Fires due timers: p's own and the plain threads', and with `all` every processor's
// (so a timer of a processor busy in a long goroutine fires anyway, and the idle
// worker that slept until that timer fires it when it wakes).
void run_due_timers(scheduler& s, processor* p, bool all) {
  std::int64_t now = 0;
  run_heap(p->timers, now);
  run_heap(external_timers(), now);
  if (!all) return;
  // Every processor that exists, retired ones included: their heaps keep the timers
  // their goroutines set before set_max_procs shrank (earliest_timer counts them too).
  int n = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (q && q != p) run_heap(q->timers, now);
  }
}

}  // namespace

// True if something waits on I/O and no idle worker sleeps in the poller watching it.
bool poller_vacant(scheduler& s) noexcept {
  return netpoll_waiting() && s.poll_owner.load(std::memory_order_seq_cst) == nullptr;
}

// Polls the network without blocking if the poller is vacant and nobody has polled for
// netpoll_interval_ns.
void poll_if_stale(scheduler& s) noexcept {
  if (poller_vacant(s) && nanotime() - netpoll_last() > netpoll_interval_ns) netpoll(0);
}

void stop_spinning(scheduler& s, processor* p) {
  if (!p->spinning) return;
  p->spinning = false;
  if (s.nmspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep(s);
}

bool any_local_work(scheduler& s) {
  int n = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (q && !q->runq.empty()) return true;
  }
  return false;
}

// The earliest deadline over every heap.
std::int64_t earliest_timer(scheduler& s) {
  std::int64_t next = external_timers().next_deadline();
  int n = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (q) {
      std::int64_t d = q->timers.next_deadline();
      if (d < next) next = d;
    }
  }
  return next;
}

// Retires p, which holds no slot (set_max_procs shrank, or the monitor handed its
// slot on while its goroutine held the thread): hands its work to the global queue
// and sleeps as a spare until set_max_procs or the monitor gives it a slot again
// (returns null), or a dispatcher hands it a known blocker to run without a slot
// (returns that goroutine; p stays retired).
goroutine* take_assigned(processor* p);

goroutine* retire(scheduler& s, processor* p) {
  stop_spinning(s, p);
  p->runq.drain_to(s.global);
  wakep(s);
  p->handed_off.store(false, std::memory_order_seq_cst);
  p->handed_for_cpu.store(false, std::memory_order_relaxed);
  // A new processor started for a blocker has it assigned already.
  if (goroutine* g = take_assigned(p)) return g;
  p->spare.store(true, std::memory_order_seq_cst);
  for (;;) {
    // An exchange, not a store: a read-modify-write is a full barrier on every target
    // (and under qemu-user, which lets a store-release pass a later load-acquire), so
    // the loads below cannot be satisfied before it; and reading the waker's 1 here
    // synchronizes with its stores of `assigned` / `locked_ready`.
    p->wake_word.exchange(0, std::memory_order_seq_cst);
    // A dispatcher claimed us (spare is false now) and handed us a known blocker to
    // run without a slot.
    if (goroutine* g = take_assigned(p)) return g;
    if (!p->retired.load(std::memory_order_seq_cst)) {
      bool expected = true;
      if (p->spare.compare_exchange_strong(expected, false, std::memory_order_seq_cst)) {
        return nullptr;  // back in a slot
      }
      continue;  // claimed by a dispatcher: its goroutine is on the way
    }
    note_worker_sleep();
    futex_wait(&p->wake_word, 0);
  }
}

namespace {

// The calling thread's voluntary context switches (it went to sleep in the kernel: a
// blocking system call, a contended lock, a sleep), involuntary ones (the kernel took
// the CPU away) and CPU time.
struct thread_usage {
  long switches;
  long preempted;
  std::int64_t cpu_ns;
};
thread_usage thread_usage_now() noexcept {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  // Not getrusage's times: those are brought up to date only at ticks and switches, so
  // a run shorter than a tick can show none of the time it computed.
  timespec cpu{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
  return {ru.ru_nvcsw, ru.ru_nivcsw,
          static_cast<std::int64_t>(cpu.tv_sec) * 1'000'000'000 + cpu.tv_nsec};
}

// A run without a slot earns new credits only if it computed less than this, for less
// than an eighth of its time, and was never preempted (on a loaded machine a computing
// thread's CPU time is a small part of its time too: the rest it waits for a CPU). So
// a goroutine that keeps its credits computes outside max_procs for at most 50 us
// after each of its blocking calls, and for at most a ninth of its time: what a
// system call, its bookkeeping and a channel operation cost, not a computation.
constexpr std::int64_t refill_cpu_limit_ns = 50'000;

}  // namespace

blocker_verdict judge_blocker_run(long sleeps, long preemptions, std::int64_t cpu_ns,
                                  std::int64_t wall_ns) noexcept {
  if (sleeps == 0) return blocker_verdict::blocks_no_more;
  if (preemptions == 0 && cpu_ns < refill_cpu_limit_ns && 8 * cpu_ns < wall_ns) {
    return blocker_verdict::still_blocks;
  }
  return blocker_verdict::unclear;
}

// A known blocker this processor ran without a slot is back at a scheduling point, not
// yet published (g is still this thread's). If its thread never slept in the kernel
// during that run, it blocks no more, and its credits go (its next runs take a slot
// like anyone's). If it slept and mostly waited (judge_blocker_run), it still blocks:
// its credits are refilled, so that its next runs go to spare threads as well, instead
// of running out after blocker_credits runs and holding a slot in the kernel until the
// monitor notices it again. A run that slept but computed more, or was preempted,
// keeps what is left of its credits: a goroutine that blocks briefly and then computes
// must not run outside max_procs for good (the sleep alone cannot tell it from a
// blocker). Left alone: an exiting goroutine's descriptor (a spawn clears the
// credits), and a goroutine that switched straight to another one (p was given a slot
// meanwhile) and may run anywhere by now.
void end_dispatched_run(processor* p) noexcept {
  goroutine* g = p->dispatched;
  p->dispatched = nullptr;
  if (p->prev != g || p->action == after_switch::exit) return;
  thread_usage now = thread_usage_now();
  switch (judge_blocker_run(now.switches - p->dispatched_switches,
                            now.preempted - p->dispatched_preempted,
                            now.cpu_ns - p->dispatched_cpu_ns,
                            nanotime() - p->dispatched_at_ns)) {
    case blocker_verdict::blocks_no_more:
      g->blocker_credit.store(0, std::memory_order_relaxed);
      break;
    case blocker_verdict::still_blocks:
      g->blocker_credit.store(blocker_credits, std::memory_order_relaxed);
      break;
    case blocker_verdict::unclear:
      break;
  }
}

goroutine* take_assigned(processor* p) {
  if (p->assigned.load(std::memory_order_acquire) == nullptr) return nullptr;
  goroutine* g = p->assigned.exchange(nullptr, std::memory_order_acq_rel);
  if (g != nullptr) {
    p->dispatched = g;
    thread_usage u = thread_usage_now();
    p->dispatched_switches = u.switches;
    p->dispatched_preempted = u.preempted;
    p->dispatched_cpu_ns = u.cpu_ns;
    p->dispatched_at_ns = nanotime();
  }
  return g;
}

// p's thread belongs to a locked goroutine (lock_os_thread), now not running: p holds
// no slot and runs nothing else. Hands anything queued here to the others, then sleeps
// until its goroutine is made runnable (hand_to_locked_thread), firing its own timers
// on time meanwhile (the goroutine's sleeps are usually among them). Returns null if
// the goroutine exited: the thread ends.
goroutine* wait_for_locked(scheduler& s, processor* p) {
  stop_spinning(s, p);
  p->handed_off.store(false, std::memory_order_seq_cst);
  if (!p->runq.empty()) {
    p->runq.drain_to(s.global);
    wakep(s);
  }
  for (;;) {
    if (p->defunct.load(std::memory_order_acquire)) return nullptr;
    // An exchange, not a store: a read-modify-write is a full barrier on every target
    // (and under qemu-user, which lets a store-release pass a later load-acquire), so
    // the loads below cannot be satisfied before it; and reading the waker's 1 here
    // synchronizes with its stores of `assigned` / `locked_ready`.
    p->wake_word.exchange(0, std::memory_order_seq_cst);
    if (goroutine* g = p->locked_ready.exchange(nullptr, std::memory_order_seq_cst)) return g;
    std::int64_t now = 0;
    run_heap(p->timers, now);
    std::int64_t next = p->timers.next_deadline();
    if (p->locked_ready.load(std::memory_order_seq_cst) != nullptr) continue;
    note_worker_sleep();
    if (next == timer_heap::no_deadline) {
      futex_wait(&p->wake_word, 0);
    } else {
      std::int64_t wait = next - nanotime();
      if (wait > 0) futex_wait(&p->wake_word, 0, wait);
    }
  }
}

goroutine* find_runnable(scheduler& s, processor* p) {
  check_not_forked("a goroutine switched out (it returned, parked or yielded)");
  if (p->locked_g.load(std::memory_order_relaxed) != nullptr) return wait_for_locked(s, p);
  for (;;) {
    // Handed a known blocker (see retire); a processor given a slot meanwhile runs it
    // all the same.
    if (goroutine* g = take_assigned(p)) return g;
    if (p->retired.load(std::memory_order_acquire)) {
      if (goroutine* g = retire(s, p)) return g;  // a known blocker, run without a slot
    }
    run_due_timers(s, p, /*all=*/true);
    // The fairness round: pick_local sends every 61st schedule here (the tick is bumped
    // when the next goroutine is installed, so it still reads 60 mod 61).
    std::uint64_t tick = p->schedtick.load(std::memory_order_relaxed);
    if (tick % 61 == 60) {
      if (s.global.size() > 0) {
        if (goroutine* g = s.global.pop_batch(&p->runq, s.global, 1)) return g;
      }
      // A processor that never runs dry still lets I/O complete (Go's sysmon poll).
      poll_if_stale(s);
    }
    if (goroutine* g = take_local(p)) return g;
    if (s.global.size() > 0) {
      std::uint32_t n = static_cast<std::uint32_t>(s.nprocs.load(std::memory_order_relaxed));
      std::uint32_t share = s.global.size() / (n ? n : 1) + 1;
      if (share > local_run_queue::capacity / 2) share = local_run_queue::capacity / 2;
      if (goroutine* g = s.global.pop_batch(&p->runq, s.global, share)) return g;
    }
    // Ready I/O before stealing, unless an idle worker already sleeps in the poller.
    if (poller_vacant(s) && netpoll(0) > 0) continue;
    // Spin, if not too many already are (Go's limit: at most half the busy ones).
    int busy = s.nprocs.load(std::memory_order_relaxed) - s.npidle.load(std::memory_order_relaxed);
    if (!p->spinning && 2 * s.nmspinning.load(std::memory_order_relaxed) < busy) {
      p->spinning = true;
      s.nmspinning.fetch_add(1, std::memory_order_seq_cst);
    }
    if (p->spinning) {
      // Go's policy: a few rounds over every victim, the last one also taking a
      // stuck victim's runnext, then sleep. Spinning longer here keeps stealing
      // goroutines that hand off to each other and bounces their channels' cache
      // lines between cores.
      bool settled_only = judge_last_steal(p);
      bool more = false;
      for (int round = 0;; ++round) {
        bool last = round >= spin_rounds - 1;
        if (goroutine* g = try_steal(s, p, last, settled_only)) return g;
        more = s.global.size() > 0 || earliest_timer(s) <= nanotime();
        if (more || last) break;
        for (int i = 0; i < 64; ++i) cpu_relax();
      }
      if (more) continue;
    }
    idle(s, p);
  }
}

}  // namespace goro::detail
