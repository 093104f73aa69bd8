// scheduler.cpp — the M:N work-stealing scheduler.
//
// ## Glossary
//
//   goroutine  A function with its own stack (goroutine.hpp). Go's G.
//   processor  The right to run goroutines: a local run queue, a runnext slot, caches
//              of free descriptors and stacks. Go's P. There are max_procs() active.
//   worker     The OS thread that drives one processor, running the scheduler loop on
//              its own native stack ("g0"). Go's M.
//   park       A goroutine gives up its processor until something unparks it
//              (parking.hpp); its worker runs other goroutines meanwhile.
//
// ## Processors and threads
//
// Each processor is driven by exactly one worker thread for its whole life. Go
// separates M from P so that a thread blocked in a system call can hand its P to
// another thread; goro does not: goroutines never block their thread in goro's own
// primitives, and blocking system calls go to helper threads (goro::blocking) while
// the goroutine parks. This keeps every processor's state single-threaded, at the cost
// that a goroutine that blocks its thread in foreign code stalls one processor.
//
// ## Queues
//
// A runnable goroutine sits in exactly one place: a processor's runnext slot, its
// local ring (run_queue.hpp), or the global queue. A worker looks for work in this
// order (find_runnable):
//   1. every 61st schedule, the global queue first (so it cannot starve);
//   2. runnext, then the local ring;
//   3. the global queue (taking a batch into the local ring);
//   4. due timers (firing them readies their goroutines);
//   5. spinning: stealing half of another processor's ring, in random order. A
//      thief takes a victim's runnext only if the victim has not scheduled for a few
//      microseconds (it is stuck in one long goroutine), so a hand-off between two
//      goroutines on one processor is not broken up;
//   6. idle: the worker sleeps on a futex (0% CPU), with a timeout when it is the one
//      idle worker that watches the timer heap.
// A goroutine made runnable by a goroutine (unpark, spawn) goes to runnext, so a
// hand-off runs next on the same thread without waking anyone — the waker is usually
// about to park. Yielded goroutines go to the tail of the local ring.
//
// ## Spinning and waking (the part with a memory-ordering argument)
//
// Waking a sleeping worker costs tens of microseconds on a VM, so a worker that runs
// out of work first spins (spin_rounds of stealing attempts) looking for some, and a producer
// wakes a sleeping worker only when nobody is spinning (wakep). The invariant: if
// there is work in a queue and an idle processor, then some processor is spinning or
// running and will find it — no work is stranded while a processor sleeps.
//
//   producer (make_runnable / spawn):   worker going idle (idle()):
//     P1 publish g in a queue (seq_cst)    W1 npidle += 1 (seq_cst, under idle_lock)
//     P2 load npidle, nmspinning          W2 if spinning: nmspinning -= 1 (seq_cst)
//     P3 if npidle > 0 && nmspinning == 0   W3 re-check the global queue, and if it was
//          wake an idle processor              spinning every local queue; if work:
//                                              take itself off the idle list
//                                           W4 sleep
// All of P1, P2, W1, W2, W3 are sequentially consistent, so either the producer sees
// the worker idle and not spinning (and wakes one), or the worker's re-check sees
// the work. If the producer saw nmspinning > 0, some spinner has not yet done W2, and
// its W3 comes after P1. A worker woken by wakep starts out spinning (the waker
// counted it), and when a spinner finds work it stops spinning and, if it was the
// last spinner, wakes another (resetspinning) so that a burst of work fans out.
//
// ## The park protocol
//
// park_goroutine() saves the goroutine's context and switches to the worker's g0 with
// action `park`. On g0 the worker sets the state to waiting and CASes the parker
// idle -> parked (release); an unpark that arrived during the switch left `notified`
// instead, so the CAS fails and the worker resumes the goroutine at once. Because the
// parked state is published only after the goroutine's registers are saved, an
// unparker that CASes parked -> idle (acquire) may run the goroutine immediately on
// any processor. The stack is checked (stack.hpp) at every switch away.
//
// ## Per-thread state and migration
//
// A goroutine can park on one worker and resume on another. current_processor() is
// not inlined and reads the thread-local each call, so no cached address survives a
// switch. The C++ runtime's per-thread exception state (__cxa_get_globals: the
// exceptions being handled and std::uncaught_exceptions) is saved into the goroutine
// when it switches out and restored on whichever thread it resumes, so a goroutine
// may park inside a catch block or a destructor during unwinding.
//
// ## Rejected approaches
//
//   - One global run queue under a lock: every spawn and wake contends on one line.
//   - Waking a worker on every spawn: each futex wake costs 20-30 us here; hand-offs
//     via runnext plus a bounded spin avoid most of them.
//   - Switching goroutine -> goroutine directly without g0: saves one switch, but the
//     park commit (publishing `parked`) must happen after the parking goroutine's
//     registers are saved, which is easiest on a third stack.
//   - An M:P split with hand-off on blocking system calls: see above.
#include "runtime/scheduler.hpp"

#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>
#include <chrono>
#include <sstream>
#include <thread>

#include "goro/detail/spawn.hpp"
#include "runtime/context.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/timers.hpp"

#if defined(GORO_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GORO_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace goro::detail {

void report_panic(goroutine* g, std::exception_ptr e) noexcept;                   // api.cpp
void write_goroutine_dump(std::ostream& os, int level, std::uint64_t skip_id);    // debug/dump.cpp
[[noreturn]] void report_stack_overflow(goroutine* g, const char* how) noexcept;  // api.cpp

namespace {

constexpr int spin_rounds = 4;
constexpr std::int64_t spin_min_ns = 10'000;             // spin at least this long before sleeping
constexpr std::int64_t runnext_steal_delay_ns = 3'000;   // a victim idle this long is stuck
constexpr std::int64_t scavenge_delay_ns = 10'000'000;   // idle this long: return stack memory
constexpr std::int64_t timer_spin_ns = 20'000;           // spin, not sleep, for a closer timer
constexpr std::int64_t deadlock_grace_ns = 100'000'000;  // all asleep this long: deadlock

thread_local processor* tls_processor = nullptr;

scheduler* the_scheduler = nullptr;
std::once_flag start_once;
std::atomic<int> requested_procs{0};  // set_max_procs before start

void install_overflow_handler();

// ---- deadlock detection state (see check_deadlock) ----
std::atomic<bool> run_active{false};
thread_local bool is_run_thread = false;
thread_local bool is_helper_thread = false;  // a goro::blocking helper (mark_helper_thread)
std::atomic<bool> plain_thread_seen{false};
std::atomic<int> runtime_threads{0};  // helper threads goro started (scavenger, ...)

}  // namespace

void set_run_thread(bool inside_run) noexcept {
  is_run_thread = inside_run;
  run_active.store(inside_run, std::memory_order_seq_cst);
}

void mark_helper_thread() noexcept { is_helper_thread = true; }

void note_plain_thread_activity() noexcept {
  if (!is_run_thread && tls_processor == nullptr && !is_helper_thread &&
      !plain_thread_seen.load(std::memory_order_relaxed)) {
    plain_thread_seen.store(true, std::memory_order_relaxed);
  }
}

void note_runtime_thread(int delta) noexcept {
  runtime_threads.fetch_add(delta, std::memory_order_relaxed);
}

void disable_deadlock_detection() noexcept {
  plain_thread_seen.store(true, std::memory_order_relaxed);
}

processor* current_processor() noexcept {
  asm volatile("" ::: "memory");
  return tls_processor;
}

goroutine* current_goroutine() noexcept {
  processor* p = current_processor();
  return p ? p->current : nullptr;
}

// ---- switching ----------------------------------------------------------------------
//
// A goroutine that yields, parks or exits switches directly to the next goroutine of
// its processor's local queue when there is one (no detour through g0), and to g0
// otherwise. Either way the action it asked for (requeue it, publish `parked`, free
// it) is carried out by whichever context resumes next, in complete_switch(): only
// then are the old goroutine's registers saved, so only then may another worker run it.

namespace {

void goroutine_entry(void* arg);

// Makes `next` the running goroutine of p, binding a stack on its first run.
[[gnu::always_inline]] inline void install(processor* p, goroutine* next) noexcept {
  set_state(next, g_state::runnable, g_state::running);
  p->current = next;
  p->running.store(next, std::memory_order_relaxed);  // relaxed: a diagnostics hint
  p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1,
                     std::memory_order_release);  // single writer; thieves only compare it
  if (next->stack.lo == nullptr) {
    next->stack = acquire_stack(&p->stacks, next->stack_size);
#if defined(GORO_ASAN)
    // The last goroutine on this stack never returned from its final frames, so
    // their redzones are still poisoned.
    __asan_unpoison_memory_region(next->stack.lo,
                                  static_cast<std::size_t>(next->stack.hi - next->stack.lo));
#endif
    next->saved_sp = make_context(next->stack.hi, &goroutine_entry, next);
#if defined(GORO_TSAN)
    next->tsan_fiber = __tsan_create_fiber(0);
#endif
  }
}

// The one place that switches stacks: from the running context (`from`, or g0 when
// null) to `to` (or g0 when null). Returns when `from` is resumed, maybe elsewhere.
void switch_context(processor* p, goroutine* from, goroutine* to, bool exiting) noexcept {
  void** save = from ? &from->saved_sp : &p->sched_sp;
  void* load = to ? to->saved_sp : p->sched_sp;
#if defined(GORO_ASAN)
  void** fake = from ? (exiting ? nullptr : &from->asan_fake_stack) : &p->asan_fake_stack;
  if (to) {
    __sanitizer_start_switch_fiber(fake, to->stack.lo,
                                   static_cast<std::size_t>(to->stack.hi - to->stack.lo));
  } else {
    __sanitizer_start_switch_fiber(fake, p->sched_stack_bottom, p->sched_stack_size);
  }
#else
  (void)exiting;
#endif
#if defined(GORO_TSAN)
  __tsan_switch_to_fiber(to ? to->tsan_fiber : p->tsan_sched_fiber, 0);
#endif
  goro_context_switch(save, load);
#if defined(GORO_ASAN)
  __sanitizer_finish_switch_fiber(from ? from->asan_fake_stack : p->asan_fake_stack, nullptr,
                                  nullptr);
#endif
}

// Carries out what the goroutine that just switched away asked for. Runs first thing
// in every context that resumes after a switch.
[[gnu::always_inline]] inline void complete_switch(processor* p) noexcept {
  goroutine* prev = p->prev;
  if (prev == nullptr) return;
  p->prev = nullptr;
  after_switch action = p->action;
  p->action = after_switch::none;
  if (!stack_intact(prev->stack, prev->saved_sp)) {
    report_stack_overflow(prev, "the reserve zone at the bottom of the stack was written");
  }
  scheduler& s = *the_scheduler;
  switch (action) {
    case after_switch::yield:
      set_state(prev, g_state::running, g_state::runnable);
      p->runq.push(prev, false, s.global);
      return;
    case after_switch::park: {
      set_state(prev, g_state::running, g_state::waiting);
      std::uint32_t expected = parker::idle;
      if (prev->park.state.compare_exchange_strong(expected, parker::parked,
                                                   std::memory_order_acq_rel)) {
        return;  // whoever unparks it owns it now
      }
      // A permit arrived while it was switching out: consume it (an RMW, as in
      // park()) and run it next.
      prev->park.state.exchange(parker::idle, std::memory_order_acq_rel);
      set_state(prev, g_state::waiting, g_state::runnable);
      p->runq.push(prev, true, s.global);
      return;
    }
    case after_switch::exit:
      set_state(prev, g_state::running, g_state::dead);
      release_stack(&p->stacks, prev->stack, prev->stack_size);
      prev->stack = stack_slot{};
#if defined(GORO_TSAN)
      __tsan_destroy_fiber(prev->tsan_fiber);
      prev->tsan_fiber = nullptr;
#endif
      p->exited.store(p->exited.load(std::memory_order_relaxed) + 1,
                      std::memory_order_relaxed);  // single writer; read for counts only
      free_goroutine(p, prev);
      return;
    case after_switch::none: break;
  }
  std::fprintf(stderr, "fatal error: goro: goroutine switched out without an action\n");
  std::abort();
}

// Whether p's own heap has a timer due. (The plain threads' heap and the other
// processors' are checked in find_runnable, which runs at least every 61st switch.)
bool timers_due(processor* p) noexcept {
  std::int64_t next = p->timers.next_deadline();
  return next != timer_heap::no_deadline && next <= nanotime();
}

// True if something waits on I/O and no idle worker sleeps in the poller watching it.
bool poller_vacant(scheduler& s) noexcept {
  return netpoll_waiting() && s.poll_owner.load(std::memory_order_seq_cst) == nullptr;
}

// Polls the network without blocking if the poller is vacant and nobody has polled for
// netpoll_interval_ns.
void poll_if_stale(scheduler& s) noexcept {
  if (poller_vacant(s) && nanotime() - netpoll_last() > netpoll_interval_ns) netpoll(0);
}

// The next goroutine to switch to directly, or null when the scheduler loop must run
// (fairness tick for the global queue, due timers, retirement, or no local work).
[[gnu::always_inline]] inline goroutine* pick_local(processor* p) noexcept {
  if (p->retired.load(std::memory_order_relaxed)) return nullptr;
  if (p->schedtick.load(std::memory_order_relaxed) % 61 == 60) return nullptr;
  if (timers_due(p)) return nullptr;
  return p->runq.pop();
}

// Switches the running goroutine g out of p with `action`, to `next` (already taken
// from p's queue by pick_local) or, when null, to the scheduler loop. Returns when g
// runs again.
void switch_out(processor* p, goroutine* g, after_switch action, goroutine* next) noexcept {
  eh_globals* eh = p->eh;
  eh_globals mine = *eh;
  *eh = eh_globals{nullptr, 0};
  p->prev = g;
  p->action = action;
  if (next != nullptr) {
    install(p, next);
  } else {
    p->current = nullptr;
    p->running.store(nullptr, std::memory_order_relaxed);  // relaxed: a monitor hint
  }
  switch_context(p, g, next, action == after_switch::exit);
  // Resumed, possibly on another worker: nothing read before the switch is current.
  processor* now = current_processor();
  complete_switch(now);
  *now->eh = mine;
}

// The first frame of every goroutine, on its own stack.
void goroutine_entry(void* arg) {
  auto* g = static_cast<goroutine*>(arg);
#if defined(GORO_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  complete_switch(current_processor());
  try {
    g->body->run();
    delete g->body;
  } catch (...) {
    report_panic(g, std::current_exception());
  }
  g->body = nullptr;
  processor* p = current_processor();
  switch_out(p, g, after_switch::exit, pick_local(p));
  __builtin_trap();  // an exited goroutine is never resumed
}

}  // namespace

void park_goroutine(goroutine* g, wait_reason reason) noexcept {
  g->reason.store(reason, std::memory_order_relaxed);  // relaxed: diagnostics only
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // coarse: dumps show minutes, not ns
  g->wait_since.store(std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec,
                      std::memory_order_relaxed);
  processor* p = current_processor();
  switch_out(p, g, after_switch::park, pick_local(p));
  g->reason.store(wait_reason::none, std::memory_order_relaxed);
}

void yield_current() noexcept {
  processor* p = current_processor();
  goroutine* g = p ? p->current : nullptr;
  if (g == nullptr) {
    std::this_thread::yield();
    return;
  }
  // A goroutine yielding in a loop while nothing else is runnable never reaches the
  // scheduler loop: let it poll for I/O now and then, so sockets still complete.
  poll_if_stale(*the_scheduler);
  goroutine* next = pick_local(p);
  if (next == nullptr && p->runq.empty() && the_scheduler->global.size() == 0 && !timers_due(p) &&
      external_timers().next_deadline() == timer_heap::no_deadline &&
      !p->retired.load(std::memory_order_relaxed)) {
    return;  // nothing else could run here: carry on, as Go's Gosched would
  }
  switch_out(p, g, after_switch::yield, next);
}

// ---- waking -------------------------------------------------------------------------

namespace {

// Takes an idle processor off the idle list, preferring one that is not the timer
// watcher. Called with idle_lock held.
processor* pop_idle_locked(scheduler& s) {
  processor* pick = nullptr;
  processor** link = nullptr;
  for (processor** at = &s.idle_head; *at; at = &(*at)->idle_next) {
    if (*at != s.timed_sleeper || pick == nullptr) {
      pick = *at;
      link = at;
      if (*at != s.timed_sleeper) break;
    }
  }
  if (!pick) return nullptr;
  *link = pick->idle_next;
  pick->idle_next = nullptr;
  pick->in_idle_list = false;
  if (s.timed_sleeper == pick) s.timed_sleeper = nullptr;
  s.npidle.fetch_sub(1, std::memory_order_seq_cst);
  return pick;
}

bool remove_idle_locked(scheduler& s, processor* p) {
  if (!p->in_idle_list) return false;
  for (processor** at = &s.idle_head; *at; at = &(*at)->idle_next) {
    if (*at == p) {
      *at = p->idle_next;
      break;
    }
  }
  p->idle_next = nullptr;
  p->in_idle_list = false;
  if (s.timed_sleeper == p) s.timed_sleeper = nullptr;
  s.npidle.fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

// Wakes `p` (already off the idle list) as a spinning processor. A worker asleep in
// epoll_wait publishes in_poll before it checks wake_word (both seq_cst), so either it
// sees our store or we see its flag and interrupt the poll.
void wake_processor(processor* p) {
  p->wake_word.store(1, std::memory_order_seq_cst);
  futex_wake(&p->wake_word, 1);
  if (p->in_poll.load(std::memory_order_seq_cst)) netpoll_break();
}

}  // namespace

// Go's wakep: if processors are idle and none is spinning, wake one to spin.
void wake_idle_processor(scheduler& s) noexcept {
  if (s.npidle.load(std::memory_order_seq_cst) == 0) return;
  int expected = 0;
  if (s.nmspinning.load(std::memory_order_seq_cst) != 0 ||
      !s.nmspinning.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) {
    return;
  }
  processor* p;
  {
    std::lock_guard lk(s.idle_lock);
    p = pop_idle_locked(s);
  }
  if (!p) {
    s.nmspinning.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  wake_processor(p);
}

namespace {
inline void wakep(scheduler& s) noexcept { wake_idle_processor(s); }
}  // namespace

void make_runnable(goroutine* g, bool next) noexcept {
  scheduler& s = *the_scheduler;
  processor* p = current_processor();
  if (p != nullptr && !p->retired.load(std::memory_order_relaxed)) {
    p->runq.push(g, next, s.global);
  } else {
    note_plain_thread_activity();
    s.global.push(g);
  }
  wakep(s);
}

void timer_added(std::int64_t when) noexcept {
  scheduler* s = the_scheduler;
  if (!s) return;
  processor* p = nullptr;
  {
    std::lock_guard lk(s->idle_lock);
    if (s->timed_sleeper != nullptr) {
      if (when < s->timed_until) {
        p = s->timed_sleeper;
        remove_idle_locked(*s, p);
      }
    } else if (s->idle_head != nullptr) {
      p = pop_idle_locked(*s);
    }
  }
  if (p) {
    s->nmspinning.fetch_add(1, std::memory_order_seq_cst);
    wake_processor(p);
  }
}

void netpoll_need_poller() noexcept {
  scheduler* s = the_scheduler;
  if (!s || s->poll_owner.load(std::memory_order_seq_cst) != nullptr) return;
  if (s->npidle.load(std::memory_order_seq_cst) == 0) return;  // every worker is busy
  processor* p;
  {
    std::lock_guard lk(s->idle_lock);
    p = pop_idle_locked(*s);
  }
  if (p) {
    s->nmspinning.fetch_add(1, std::memory_order_seq_cst);
    wake_processor(p);
  }
}

// ---- the scheduler loop ---------------------------------------------------------------

namespace {

std::uint32_t fast_rand(processor* p) {
  std::uint32_t x = p->rand_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  p->rand_state = x;
  return x;
}

void stop_spinning(scheduler& s, processor* p) {
  if (!p->spinning) return;
  p->spinning = false;
  if (s.nmspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep(s);
}

// Steals from every processor that exists, retired ones included: one whose goroutine
// holds its thread in foreign code, or that set_max_procs retired while it ran, may
// still have a queue.
goroutine* try_steal(scheduler& s, processor* p, bool take_runnext) {
  int n = s.created.load(std::memory_order_acquire);
  if (n <= 1) return nullptr;
  std::uint32_t start = fast_rand(p) % static_cast<std::uint32_t>(n);
  for (int i = 0; i < n; ++i) {
    int v =
        static_cast<int>((start + static_cast<std::uint32_t>(i)) % static_cast<std::uint32_t>(n));
    processor* victim = s.procs[v].load(std::memory_order_acquire);
    if (victim == nullptr || victim == p) continue;
    bool runnext = false;
    if (take_runnext && victim->runq.size() == 0 && !victim->runq.empty()) {
      // Only if the victim is stuck in one goroutine: let a hand-off run there.
      std::uint64_t tick = victim->schedtick.load(std::memory_order_acquire);
      std::int64_t until = nanotime() + runnext_steal_delay_ns;
      while (nanotime() < until) cpu_relax();
      runnext = victim->schedtick.load(std::memory_order_acquire) == tick;
    }
    if (goroutine* g = p->runq.steal_from(victim->runq, runnext)) return g;
  }
  return nullptr;
}

bool any_local_work(scheduler& s) {
  int n = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (q && !q->runq.empty()) return true;
  }
  return false;
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

namespace {

// ---- deadlock detection ----------------------------------------------------------------
//
// Go's rule: when every goroutine is blocked and nothing (timer, I/O, another thread)
// can wake one, the program can never continue. goro applies it only inside goro::run,
// and only while no thread other than the run thread and goro's own could act: a
// plain thread that has woken or waited for goroutines, or any extra thread in the
// process, turns the detector off (it might send the value everyone waits for).

int process_threads() {
  std::FILE* f = std::fopen("/proc/self/stat", "r");
  if (f == nullptr) return -1;
  char buf[1024];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may contain spaces
  if (p == nullptr) return -1;
  // Fields after the name: state(3) ... num_threads(20).
  int field = 2;
  for (++p; *p && field < 20; ++p) {
    if (*p == ' ') ++field;
  }
  return std::atoi(p);
}

bool all_asleep(scheduler& s) {
  if (!run_active.load(std::memory_order_acquire) ||
      plain_thread_seen.load(std::memory_order_relaxed)) {
    return false;
  }
  if (s.npidle.load(std::memory_order_seq_cst) != s.nprocs.load(std::memory_order_acquire) ||
      s.nmspinning.load(std::memory_order_seq_cst) != 0 || s.global.size() != 0 ||
      any_local_work(s) || earliest_timer(s) != timer_heap::no_deadline || netpoll_waiting() ||
      blocking_calls_pending()) {
    return false;
  }
  // A goroutine on any processor, retired ones included, is not asleep: it may be in
  // foreign code (a system call, a std::mutex) that ends and wakes the others.
  int created = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < created; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (q && q->running.load(std::memory_order_relaxed) != nullptr) return false;
  }
  int expected = created + 1 + runtime_threads.load(std::memory_order_relaxed);
#if defined(GORO_TSAN)
  expected += 1;  // ThreadSanitizer's own background thread
#endif
  int threads = process_threads();
  return threads > 0 && threads <= expected;
}

std::uint64_t total_ticks(scheduler& s) {
  std::uint64_t sum = 0;
  int n = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    if (processor* q = s.procs[i].load(std::memory_order_acquire)) {
      sum += q->schedtick.load(std::memory_order_acquire);
    }
  }
  return sum;
}

[[noreturn]] void report_deadlock() {
  // Several idle workers can reach the verdict at once: one reports and exits.
  static std::atomic<bool> reporting{false};
  if (reporting.exchange(true, std::memory_order_acq_rel)) {
    for (;;) pause();
  }
  std::fputs("fatal error: all goroutines are asleep - deadlock!\n\n", stderr);
  std::ostringstream os;
  write_goroutine_dump(os, 2, 0);
  std::fputs(os.str().c_str(), stderr);
  std::fflush(stderr);
  std::_Exit(2);
}

// Sleeps until woken or until the next timer. On return p->spinning says whether a
// waker granted us a spinning slot.
void idle(scheduler& s, processor* p) {
  std::int64_t deadline = -1;
  {
    std::lock_guard lk(s.idle_lock);
    p->wake_word.store(0, std::memory_order_relaxed);
    p->in_idle_list = true;
    p->idle_next = s.idle_head;
    s.idle_head = p;
    s.npidle.fetch_add(1, std::memory_order_seq_cst);
    if (s.timed_sleeper == nullptr) {
      std::int64_t next = earliest_timer(s);
      if (next != timer_heap::no_deadline) {
        s.timed_sleeper = p;
        s.timed_until = next;
        deadline = next;
      }
    }
  }
  bool was_spinning = p->spinning;
  if (was_spinning) {
    p->spinning = false;
    s.nmspinning.fetch_sub(1, std::memory_order_seq_cst);
  }
  // Re-check after publishing ourselves idle (see the essay). A processor retired
  // after its last check in find_runnable leaves at once (set_max_procs stores
  // `retired` before it looks for the processor in the idle list).
  bool work = s.global.size() > 0 || (was_spinning && any_local_work(s)) ||
              earliest_timer(s) <= nanotime() || p->retired.load(std::memory_order_seq_cst);
  // While something waits for I/O, one idle worker sleeps in epoll_wait instead of on
  // its futex. (A thread that starts waiting later wakes a worker for the role, and
  // a goroutine's own worker passes through here after it parks.)
  processor* no_owner = nullptr;
  bool got_io = false;
  bool poller = !work && netpoll_waiting() &&
                s.poll_owner.compare_exchange_strong(no_owner, p, std::memory_order_seq_cst);
  if (!work) {
    // Return surplus stack memory and add guard pages once we have been idle for a
    // while: madvise costs a TLB shootdown on every processor and mprotect takes the
    // address-space lock that page faults need, so not in the middle of a burst.
    bool scavenged = false;
    std::int64_t idle_since = nanotime();
    std::int64_t deadlock_check_at = -1;
    std::uint64_t ticks_then = 0;
    while (p->wake_word.load(std::memory_order_acquire) == 0) {
      std::int64_t now = nanotime();
      std::int64_t timeout = -1;
      if (deadline >= 0) {
        timeout = deadline - now;
        if (timeout <= 0) break;
        if (timeout < timer_spin_ns) {
          // A futex round trip would overshoot a timer this close.
          for (int i = 0; i < 64; ++i) cpu_relax();
          continue;
        }
      }
      if (deadline < 0 && all_asleep(s)) {
        // Everything is parked and nothing can wake it: confirm it stays so (no
        // goroutine ran meanwhile), then report, as Go's checkdead.
        if (deadlock_check_at < 0) {
          deadlock_check_at = now + deadlock_grace_ns;
          ticks_then = total_ticks(s);
        } else if (now >= deadlock_check_at) {
          if (total_ticks(s) == ticks_then) report_deadlock();
          deadlock_check_at = -1;
          continue;
        }
        std::int64_t until_check = deadlock_check_at - now;
        if (timeout < 0 || until_check < timeout) timeout = until_check;
      } else {
        deadlock_check_at = -1;
      }
      if (!scavenged) {
        std::int64_t until_scavenge = idle_since + scavenge_delay_ns - now;
        if (until_scavenge <= 0) {
          scavenge_stacks();
          harden_stacks(4096);  // guard pages for fresh stacks, while nothing runs
          scavenged = true;
          continue;
        }
        if (timeout < 0 || until_scavenge < timeout) timeout = until_scavenge;
      }
      if (poller) {
        p->in_poll.store(true, std::memory_order_seq_cst);
        int woken = 0;
        if (p->wake_word.load(std::memory_order_seq_cst) == 0) woken = netpoll(timeout);
        p->in_poll.store(false, std::memory_order_relaxed);
        if (woken > 0) {
          got_io = true;
          break;  // they are in our run queue (or another took them)
        }
      } else {
        futex_wait(&p->wake_word, 0, timeout);
      }
    }
  }
  if (poller) s.poll_owner.store(nullptr, std::memory_order_seq_cst);
  {
    std::lock_guard lk(s.idle_lock);
    if (remove_idle_locked(s, p)) {
      // Timed out or found work ourselves: not counted as spinning.
      p->spinning = false;
    } else {
      // A waker took us off the list and counted us in nmspinning.
      p->spinning = true;
    }
  }
  // Called away from the poller for other work while I/O is still awaited: pass the
  // role to another idle worker, so that sockets are not left unwatched while we run
  // something long.
  if (poller && !got_io && netpoll_waiting()) netpoll_need_poller();
  monitor_wake();
}

// Retires p, which holds no slot (set_max_procs shrank, or the monitor handed its
// slot on while its goroutine held the thread): hands its work to the global queue
// and sleeps as a spare until set_max_procs or the monitor gives it a slot again.
void retire(scheduler& s, processor* p) {
  stop_spinning(s, p);
  p->runq.drain_to(s.global);
  wakep(s);
  p->handed_off.store(false, std::memory_order_seq_cst);
  p->spare.store(true, std::memory_order_seq_cst);
  for (;;) {
    p->wake_word.store(0, std::memory_order_seq_cst);
    if (!p->retired.load(std::memory_order_seq_cst)) break;
    futex_wait(&p->wake_word, 0);
  }
  p->spare.store(false, std::memory_order_seq_cst);
}

goroutine* find_runnable(scheduler& s, processor* p) {
  for (;;) {
    if (p->retired.load(std::memory_order_acquire)) retire(s, p);
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
    if (goroutine* g = p->runq.pop()) return g;
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
      bool more = false;
      std::int64_t start = nanotime();
      for (int round = 0;; ++round) {
        std::int64_t now = nanotime();
        bool last = round >= spin_rounds - 1 && now - start >= spin_min_ns;
        if (goroutine* g = try_steal(s, p, last)) return g;
        more = s.global.size() > 0 || earliest_timer(s) <= now;
        if (more || last) break;
        for (int i = 0; i < 64; ++i) cpu_relax();
      }
      if (more) continue;
    }
    idle(s, p);
  }
}

void worker_main(scheduler* s, processor* p) {
  tls_processor = p;
  p->tid.store(static_cast<int>(gettid()), std::memory_order_release);
  // Timer waits use futex timeouts; the default 50 us slack would make every timer
  // that much late.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  p->eh = reinterpret_cast<eh_globals*>(abi::__cxa_get_globals());
  p->rand_state = 0x9E3779B9u * static_cast<std::uint32_t>(p->id + 1);
  stack_t ss{};
  ss.ss_sp = p->alt_stack;
  ss.ss_size = 64 * 1024;
  sigaltstack(&ss, nullptr);
#if defined(GORO_TSAN)
  p->tsan_sched_fiber = __tsan_get_current_fiber();
#endif
#if defined(GORO_ASAN)
  pthread_attr_t attr;
  pthread_getattr_np(pthread_self(), &attr);
  void* addr = nullptr;
  pthread_attr_getstack(&attr, &addr, &p->sched_stack_size);
  p->sched_stack_bottom = addr;
  pthread_attr_destroy(&attr);
#endif
  for (;;) {
    complete_switch(p);
    goroutine* g = find_runnable(*s, p);
    stop_spinning(*s, p);
    install(p, g);
    switch_context(p, nullptr, g, false);
  }
}

}  // namespace

void start_processor(scheduler& s, int id) {
  auto* p = new processor;
  p->id = id;
  p->alt_stack = std::malloc(64 * 1024);
  s.procs[id].store(p, std::memory_order_release);
  p->thread = std::thread(worker_main, &s, p);
  p->thread.detach();
}

namespace {

int default_procs() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int env_procs() {
  const char* v = std::getenv("GORO_MAXPROCS");
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > scheduler::max_processors) {
    std::fprintf(stderr, "goro: ignoring GORO_MAXPROCS=%s (want 1..%d)\n", v,
                 scheduler::max_processors);
    return 0;
  }
  return static_cast<int>(n);
}

// GORO_DUMP_SIGNAL=SIGQUIT (or SIGUSR1, SIGUSR2, a number): that signal writes the
// level-2 dump to stderr and the program continues. The handler only wakes a dump
// thread; formatting is not async-signal-safe.
std::atomic<std::uint32_t> dump_requests{0};

void on_dump_signal(int) {
  dump_requests.store(1, std::memory_order_release);
  futex_wake(&dump_requests, 1);
}

void dump_thread_main() {
  for (;;) {
    while (dump_requests.exchange(0, std::memory_order_acq_rel) == 0) futex_wait(&dump_requests, 0);
    std::ostringstream os;
    write_goroutine_dump(os, 2, 0);
    std::fputs(os.str().c_str(), stderr);
    std::fflush(stderr);
  }
}

void install_dump_signal() {
  const char* v = std::getenv("GORO_DUMP_SIGNAL");
  if (v == nullptr || *v == '\0') return;
  int sig = 0;
  if (std::strcmp(v, "SIGQUIT") == 0 || std::strcmp(v, "QUIT") == 0)
    sig = SIGQUIT;
  else if (std::strcmp(v, "SIGUSR1") == 0 || std::strcmp(v, "USR1") == 0)
    sig = SIGUSR1;
  else if (std::strcmp(v, "SIGUSR2") == 0 || std::strcmp(v, "USR2") == 0)
    sig = SIGUSR2;
  else
    sig = std::atoi(v);
  if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV) {
    std::fprintf(
        stderr, "goro: ignoring GORO_DUMP_SIGNAL=%s (want SIGQUIT, SIGUSR1, SIGUSR2 or a number)\n",
        v);
    return;
  }
  note_runtime_thread(+1);
  std::thread(dump_thread_main).detach();
  struct sigaction sa {};
  sa.sa_handler = on_dump_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

void start_runtime() {
  auto* s = new scheduler;  // never destroyed: detached workers reference it
  int n = requested_procs.load(std::memory_order_acquire);
  if (n == 0) n = configured_max_procs();
  install_overflow_handler();
  install_dump_signal();
  s->procs_capacity = std::max(max_threads(), scheduler::max_processors);
  s->procs = new std::atomic<processor*>[static_cast<std::size_t>(s->procs_capacity)]();
  s->nprocs.store(n, std::memory_order_release);
  s->created.store(n, std::memory_order_release);
  the_scheduler = s;
  for (int i = 0; i < n; ++i) start_processor(*s, i);
  start_monitor(*s);
}

// ---- stack overflow reporting ---------------------------------------------------------

struct sigaction previous_segv;
struct sigaction previous_bus;

void on_fault(int sig, siginfo_t* info, void* uctx) {
  processor* p = tls_processor;
  goroutine* g = p ? p->current : nullptr;
  if (g && g->stack.lo && in_overflow_zone(g->stack, info->si_addr)) {
    report_stack_overflow(g, g->stack.guarded ? "hit the guard page" : "ran below the stack");
  }
  // Not ours: hand over to whoever was installed before, or die the default way.
  struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) {
      prev.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // returning re-executes the fault, now fatal
}

void install_overflow_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
  sigaction(SIGBUS, &sa, &previous_bus);
}

}  // namespace

// ---- public-facing pieces ---------------------------------------------------------------

scheduler& sched() {
  std::call_once(start_once, start_runtime);
  return *the_scheduler;
}

scheduler* sched_if_started() noexcept { return the_scheduler; }

int configured_max_procs() noexcept {
  int r = requested_procs.load(std::memory_order_acquire);
  if (r > 0) return r;
  static const int from_env = env_procs();
  static const int from_cpus = default_procs();
  return from_env > 0 ? from_env : from_cpus;
}

namespace {

// Gives a slot to a processor that holds none: a retired one that is not held by a
// goroutine in foreign code (preferably one asleep as a spare), else a new one.
// Returns false only when the thread limit is reached. Called with procs_lock held.
bool activate_one_locked(scheduler& s) {
  int created = s.created.load(std::memory_order_acquire);
  processor* pick = nullptr;
  for (int i = 0; i < created; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (!q->retired.load(std::memory_order_seq_cst) ||
        q->handed_off.load(std::memory_order_seq_cst)) {
      continue;
    }
    pick = q;
    if (q->spare.load(std::memory_order_seq_cst)) break;
  }
  if (pick != nullptr) {
    pick->retired.store(false, std::memory_order_seq_cst);
    pick->wake_word.store(1, std::memory_order_seq_cst);
    futex_wake(&pick->wake_word, 1);
    return true;
  }
  if (created >= max_threads() || created >= s.procs_capacity) return false;
  start_processor(s, created);
  s.created.store(created + 1, std::memory_order_release);
  return true;
}

// Takes p's slot away (p is not retired): it finishes what it runs and retires at its
// next scheduling point. Called with procs_lock held.
void retire_locked(scheduler& s, processor* p) {
  p->retired.store(true, std::memory_order_seq_cst);
  // Wake it if idle so it retires (and hands over its queue) promptly; a running one
  // notices at its next scheduling point.
  bool was_idle;
  {
    std::lock_guard ilk(s.idle_lock);
    was_idle = remove_idle_locked(s, p);
  }
  if (was_idle) {
    s.nmspinning.fetch_add(1, std::memory_order_seq_cst);  // idle() counts it spinning
    wake_processor(p);
  }
}

}  // namespace

bool hand_off_locked(scheduler& s, processor* p) {
  if (p->retired.load(std::memory_order_seq_cst)) return false;
  p->handed_off.store(true, std::memory_order_seq_cst);
  p->retired.store(true, std::memory_order_seq_cst);
  if (!activate_one_locked(s)) {
    // Past the limit: undo, and let the caller report (the goroutines stay stuck).
    p->retired.store(false, std::memory_order_seq_cst);
    p->handed_off.store(false, std::memory_order_seq_cst);
    return false;
  }
  return true;
}

void resize_processors(int n) {
  if (the_scheduler == nullptr) {
    requested_procs.store(n, std::memory_order_release);
    return;
  }
  scheduler& s = *the_scheduler;
  std::lock_guard lk(s.procs_lock);
  requested_procs.store(n, std::memory_order_release);
  int created = s.created.load(std::memory_order_acquire);
  int active = 0;
  for (int i = 0; i < created; ++i) {
    if (!s.procs[i].load(std::memory_order_acquire)->retired.load(std::memory_order_seq_cst)) {
      ++active;
    }
  }
  s.nprocs.store(n, std::memory_order_seq_cst);
  for (; active < n; ++active) {
    if (!activate_one_locked(s)) {
      std::fprintf(stderr,
                   "fatal error: goro: set_max_procs(%d) needs more worker threads than "
                   "GORO_MAX_THREADS=%d allows\n",
                   n, max_threads());
      std::abort();
    }
  }
  // Shrinking: the highest ids give up their slots.
  for (int i = created - 1; i >= 0 && active > n; --i) {
    processor* p = s.procs[i].load(std::memory_order_acquire);
    if (p->retired.load(std::memory_order_seq_cst)) continue;
    retire_locked(s, p);
    --active;
  }
}

goroutine* new_goroutine(task* t, std::size_t stack_size, std::string_view name,
                         const std::source_location& where) {
  scheduler& s = sched();
  processor* p = current_processor();
  goroutine* parent = p ? p->current : nullptr;
  goroutine* g = allocate_goroutine(p);
  std::uint64_t id;
  if (p != nullptr) {
    if (p->id_next == p->id_end) {
      p->id_next = s.next_goroutine_id.fetch_add(64, std::memory_order_relaxed);
      p->id_end = p->id_next + 64;
    }
    id = p->id_next++;
    p->spawned.store(p->spawned.load(std::memory_order_relaxed) + 1,
                     std::memory_order_relaxed);  // single writer
  } else {
    id = s.next_goroutine_id.fetch_add(1, std::memory_order_relaxed);
    s.external_spawned.fetch_add(1, std::memory_order_relaxed);
  }
  g->body = t;
  g->stack_size = static_cast<std::uint32_t>(stack_size);
  g->id.store(id, std::memory_order_relaxed);
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  {
    std::lock_guard lk(g->meta_lock);
    g->parent_id = parent ? parent->id.load(std::memory_order_relaxed) : 0;
    g->created_at = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    g->where = where;
    if (!name.empty()) {
      g->name = static_cast<char*>(std::malloc(name.size() + 1));
      if (g->name) {
        std::memcpy(g->name, name.data(), name.size());
        g->name[name.size()] = '\0';
      }
    }
  }
  set_state(g, g_state::free, g_state::runnable);
  return g;
}

}  // namespace goro::detail
