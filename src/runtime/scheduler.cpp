// scheduler.cpp — the M:N work-stealing scheduler.
//
// ## Glossary
//
//   goroutine  A function with its own stack (goroutine.hpp). Go's G.
//   processor  The right to run goroutines: a local run queue, a runnext slot, caches
//              of free descriptors and stacks. Go's P.
//   slot       One of the max_procs() rights to run in parallel. A processor without
//              one is retired: a spare asleep in retire(), or one whose goroutine
//              holds its thread in foreign code (handed off).
//   worker     The OS thread that drives one processor, running the scheduler loop on
//              its own native stack ("g0"). Go's M.
//   park       A goroutine gives up its processor until something unparks it
//              (parking.hpp); its worker runs other goroutines meanwhile.
//
// ## Processors and threads
//
// max_procs() processors hold a slot: at most that many goroutines run goro code in
// parallel. Each processor is driven by one worker thread for its whole life, which
// keeps its state (queue consumer, caches, g0 stack) single-threaded. A goroutine that
// blocks its thread in foreign code — a raw system call, a std::mutex, a sleep, a long
// loop — holds that thread, and with it its processor. The system monitor
// (monitor.cpp) notices a processor held like this while work waits and gives its
// slot to another processor: a spare (a retired processor whose worker sleeps in
// retire()) or a new one with a new thread. The held processor is marked retired; its
// goroutine keeps the thread, and at its next scheduling point the processor hands its
// queue to the global queue and becomes a spare. So the invariant is: at most
// max_procs() threads run goroutines in parallel, plus those whose goroutine is in
// foreign code (until its next scheduling point once it returns).
//
// Why not Go's way, moving a processor from the stuck thread to another? Go brackets
// every system call (entersyscall/exitsyscall), so the returning goroutine knows to
// look for a processor. goro sees foreign code only from outside: the stuck goroutine
// can return at any moment and touch its processor's run queue (single-consumer),
// caches and stack pool without a check. Handing off the slot instead of the processor
// leaves every processor with one thread and needs no check on any hot path; the cost
// is one more idle thread per processor that was ever handed off (threads are capped
// by GORO_MAX_THREADS). Measured: a hand-off takes ~20 us after the system call
// starts plus a futex wake of a spare (BENCHMARKS.md, W13/W14).
//
// goro::blocking(f) is still the right tool for a call known to block: the goroutine
// parks at once (no detection delay) and no processor changes hands.
//
// How many slots: set_max_procs, else GORO_MAXPROCS, else the CPUs of the affinity
// mask limited by the cgroup's CPU bandwidth limit (cpu_limit.hpp, Go 1.25's rule).
// In that last case the monitor rereads the limit about once a second and resizes
// when it changes (follow_cpu_limit), until set_max_procs is called.
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
//      thief takes a victim's runnext only if the victim has not scheduled while the
//      thief slept a few microseconds (the victim is stuck in one long goroutine), so
//      a hand-off between two goroutines on one processor is not broken up. That
//      sleep, still counted as spinning, is most of a spinner's time (3 us asked,
//      ~55 us on a host whose timers are coarse): meanwhile readied goroutines wake
//      nobody and the partners of a hand-off keep their cache lines on one core (Go's
//      usleep(3) in runqgrab does the same). A thief whose last steals were futile
//      (the goroutines it moved parked again within microseconds: partners of what
//      runs on the victim, woken there) takes for a millisecond only goroutines
//      queued 32 runs of their victim ago, and younger ones only after that sleep
//      (steal_rule in run_queue.hpp, judge_last_steal in find_work.cpp): a consumer
//      and the producers it readies stay on one core instead of splitting across two;
//   6. idle: the worker sleeps on a futex (0% CPU), with a timeout when it is the one
//      idle worker that watches the timer heap.
// A goroutine made runnable by a goroutine (unpark, spawn) goes to runnext, so a
// hand-off runs next on the same thread without waking anyone — the waker is usually
// about to park. Yielded goroutines go to the tail of the local ring, and wake an
// idle processor as a wake-up does.
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
// P2, W1, W2 and W3 are sequentially consistent, and so is P1 when the queue is the
// global one (its size is a seq_cst store) or runnext (an exchange, a full barrier on
// x86 and acq_rel in the model). Then either the producer sees the worker idle and not
// spinning (and wakes one), or the worker's re-check sees the work. If the producer
// saw nmspinning > 0, some spinner has not yet done W2, and its W3 comes after P1.
// P1 into the producer's own ring is only a release store of the tail: its P2 load may
// be ordered before it (StoreLoad), so a worker may go to sleep beside the new work.
// That costs parallelism, never progress: the producer is a worker that runs its own
// ring at its next scheduling point, and if it is held in foreign code instead, the
// system monitor sees its queue and wakes an idle processor (monitor.cpp). A fence on
// every push would cost each hand-off ~20 ns for a case the monitor already covers.
// A worker woken by wakep starts out spinning (the waker counted it), and when a
// spinner finds work it stops spinning and, if it was the last spinner, wakes another
// (resetspinning) so that a burst of work fans out.
//
// ## The park protocol
//
// park_goroutine() saves the goroutine's context and switches, with action `park`, to
// the next goroutine of the processor's queue or to the worker's g0 (switch.cpp). The
// context that resumes sets the state to waiting and CASes the parker idle -> parked
// (release); an unpark that arrived during the switch left `notified`
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
// ## Where the code is
//
//   scheduler.cpp  this essay; start-up, processors and their slots (set_max_procs,
//                  hand-off), goroutine creation
//   fault.cpp      fatal signals: stack overflow and the fault report
//   switch.cpp     install, switch, complete_switch (the park commit), the worker loop
//   find_work.cpp  find_runnable: queues, timers, network, stealing, retirement
//   idle.cpp       the idle list, waking (wakep), going idle, the deadlock detector
//   monitor.cpp    the system monitor: hand-offs, network polls, starvation reports,
//                  following the cgroup CPU limit
//   cpu_limit.cpp  the default processor count: affinity mask and cgroup CPU limit
//
// Lock order: procs_lock, then idle_lock, then a timer heap's lock. No lock is held
// across a switch.
//
// ## Rejected approaches
//
//   - One global run queue under a lock: every spawn and wake contends on one line.
//   - Waking a worker on every spawn: each futex wake costs 20-30 us here; hand-offs
//     via runnext plus a bounded spin avoid most of them.
//   - Moving a processor between threads (Go's M:P hand-off): see "Processors and
//     threads".
//   - Preempting a goroutine that runs without a scheduling point (Go's async
//     preemption): that needs safe points in compiled code goro does not control; the
//     monitor adds a thread instead after a time slice.
#include "runtime/scheduler_internal.hpp"

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
#include <system_error>
#include <thread>

#include "goro/detail/spawn.hpp"
#include "goro/detail/lifetime.hpp"
#include "runtime/bubble.hpp"
#include "goro/panic.hpp"
#include "runtime/context.hpp"
#include "runtime/cpu_limit.hpp"
#include "runtime/fault.hpp"
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

void write_goroutine_dump(std::ostream& os, int level, std::uint64_t skip_id);    // debug/dump.cpp

constinit thread_local processor* tls_processor = nullptr;
std::atomic<scheduler*> the_scheduler{nullptr};

namespace {

std::once_flag start_once;
// Orders set_max_procs before start-up against start-up itself, so that a request made
// while the runtime starts is applied, never lost. fork() waits for it (fork_handlers),
// so a child never inherits it held.
std::mutex start_lock;
std::atomic<int> requested_procs{0};  // set_max_procs before start
// max_procs() follows the default as the cgroup's CPU limit changes (the monitor calls
// follow_cpu_limit): set at start-up when neither GORO_MAXPROCS nor set_max_procs chose
// the number and a limit file was found; cleared for good by set_max_procs.
std::atomic<bool> follows_cpu_limit{false};

void on_fork_child();

}  // namespace

// Never inlined, and the asm barrier keeps the compiler from reusing a thread-local
// address computed before a switch: the goroutine may resume on another thread.
[[gnu::noinline]] processor* current_processor() noexcept {
  asm volatile("" ::: "memory");
  return tls_processor;
}

[[gnu::noinline]] goroutine* current_goroutine() noexcept {
  asm volatile("" ::: "memory");  // as in current_processor()
  processor* p = tls_processor;
  return p ? p->current : nullptr;
}

// ---- processors ---------------------------------------------------------------------

namespace {

processor* new_processor(scheduler& s, int id, goroutine* blocker) {
  auto* p = new processor;
  p->id = id;
  p->runq.bind_tick(&p->schedtick);
  if (blocker != nullptr) {
    p->retired.store(true, std::memory_order_relaxed);
    p->assigned.store(blocker, std::memory_order_relaxed);  // published by thread start
  }
  p->alt_stack = std::malloc(64 * 1024);
  s.procs[id].store(p, std::memory_order_release);
  return p;
}

// The system refused a thread: as Go's newosproc, a fatal error that says so (an
// escaping std::system_error would end the process with no word from goro).
[[noreturn]] void thread_refused(scheduler& s, const std::system_error& e) {
  std::fprintf(stderr,
               "runtime: failed to create new OS thread (have %d worker threads already; "
               "errno=%d: %s)\nfatal error: goro: newosproc: the system refused a worker thread "
               "(check ulimit -u, the cgroup's pids.max, and memory)\n",
               s.created.load(std::memory_order_relaxed), e.code().value(),
               e.code().message().c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

void launch_worker(scheduler& s, processor* p) {
  try {
    p->thread = std::thread(worker_main, &s, p);
  } catch (const std::system_error& e) {
    thread_refused(s, e);
  }
  p->thread.detach();
}

}  // namespace

void start_processor(scheduler& s, int id, goroutine* blocker) {
  // Counted in `created` before its thread runs, as at start-up: the worker's first
  // idle() looks for the earliest timer across processors 0..created-1, its own
  // included. Launched first, a worker whose goroutine armed a timer before the count
  // caught up went to sleep without a deadline, and the timer never fired (a hang
  // seen under ThreadSanitizer, whose slowness widened the window).
  processor* p = new_processor(s, id, blocker);
  s.created.store(id + 1, std::memory_order_release);
  launch_worker(s, p);
}

namespace {

// A processor whose thread ended with its locked goroutine, given a new worker thread:
// as a retired processor with `blocker` assigned, or (null) as one that takes the slot
// being handed out. False if there is none. Called with procs_lock held.
bool revive_locked(scheduler& s, goroutine* blocker) {
  int created = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < created; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (!q->thread_gone.load(std::memory_order_acquire)) continue;
    q->thread_gone.store(false, std::memory_order_relaxed);
    q->defunct.store(false, std::memory_order_relaxed);
    q->locked_ready.store(nullptr, std::memory_order_relaxed);
    q->spare.store(false, std::memory_order_relaxed);
    q->handed_off.store(false, std::memory_order_relaxed);
    q->retired.store(blocker != nullptr, std::memory_order_seq_cst);
    q->assigned.store(blocker, std::memory_order_relaxed);  // published by thread start
    q->locked_g.store(nullptr, std::memory_order_seq_cst);
    launch_worker(s, q);
    return true;
  }
  return false;
}

}  // namespace

namespace {

// The CPUs of the affinity mask of the thread that first asks (else the online CPUs),
// read once: the monitor's own mask says nothing about the program's.
long startup_cpus() {
  static const long cpus = available_cpus();
  return cpus;
}

int read_env_procs() {
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

int env_procs() {
  static const int from_env = read_env_procs();  // warns once about a bad value
  return from_env;
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
  std::lock_guard early(start_lock);
  auto* s = new scheduler;  // never destroyed: detached workers reference it
  int n = requested_procs.load(std::memory_order_acquire);
  if (n == 0 && env_procs() == 0 && own_cpu_limit_files().version != 0) {
    follows_cpu_limit.store(true, std::memory_order_relaxed);  // published with the_scheduler
  }
  if (n == 0) n = configured_max_procs();
  probe_zone_reads();  // before any goroutine switches (stack_intact reads it)
  install_fault_handlers();
  install_dump_signal();
  note_exit_handler();
  if (n > max_threads()) {
    std::fprintf(stderr,
                 "fatal error: goro: %d processors need more worker threads than "
                 "GORO_MAX_THREADS=%d allows\n",
                 n, max_threads());
    std::abort();
  }
  s->procs_capacity = std::max(max_threads(), scheduler::max_processors);
  s->procs = new std::atomic<processor*>[static_cast<std::size_t>(s->procs_capacity)]();
  // One step under start_lock: every processor exists before the scheduler is
  // published (a set_max_procs racing start-up waits for the lock, and anyone reading
  // the_scheduler finds whole processors), and only then do workers start.
  for (int i = 0; i < n; ++i) new_processor(*s, i, nullptr);
  s->nprocs.store(n, std::memory_order_release);
  s->created.store(n, std::memory_order_release);
  the_scheduler.store(s, std::memory_order_release);
  for (int i = 0; i < n; ++i) launch_worker(*s, s->procs[i].load(std::memory_order_relaxed));
  start_monitor(*s);
}

}  // namespace

// ---- public-facing pieces ---------------------------------------------------------------

scheduler& sched() {
  // Before call_once: in a child forked while another thread was inside it, call_once
  // would run start_runtime again.
  check_not_forked("goro used");
  std::call_once(start_once, start_runtime);
  return *the_scheduler.load(std::memory_order_acquire);
}

// ---- fork ---------------------------------------------------------------------------
//
// Go has no fork without exec; goro follows it. A child of fork() has one thread, the
// caller's: every other worker, the monitor and the helpers are gone, and locks they
// held stay held. Rebuilding a runtime there would mean tearing down the parent's
// goroutines from under the caller, which may itself be one of them. So the child
// keeps running whatever it runs until it would schedule, and then stops with a clear
// fatal error (exit status 2), never a hang. Waking one of the parent's goroutines
// (closing an inherited conn wakes its readers) does nothing: the copies never run. exec and _exit are what a child does;
// posix_spawn and system() (a vfork-style clone) never run these handlers. The poller
// is the exception that must change at once: its epoll instance is shared with the
// parent, so the child gets empty ones of its own (backend_after_fork_child) before
// a close of an inherited socket could deregister the parent's.

std::atomic<bool> forked_child{false};

void fatal_in_child_of_fork(const char* what, const char* why) noexcept {
  // No stdio, no locks: another thread of the parent may have held them at the fork.
  static const char head[] = "fatal error: goro: ";
  static const char middle[] = " in a child of fork(): ";
  ssize_t ignored = ::write(2, head, sizeof head - 1);
  ignored = ::write(2, what, std::strlen(what));
  ignored = ::write(2, middle, sizeof middle - 1);
  ignored = ::write(2, why, std::strlen(why));
  (void)ignored;
  ::_exit(2);
}

void fatal_in_forked_child(const char* what) noexcept {
  fatal_in_child_of_fork(
      what,
      "the parent's goroutines and worker threads do not exist here. A child of a process "
      "running goro may only exec or _exit (posix_spawn and system() are fine); to use "
      "goro in both, fork before the runtime starts.\n");
}

namespace {

void on_fork_child() {
  forked_child.store(true, std::memory_order_relaxed);
  // A goroutine that called fork goes on in the child; its processor must not switch
  // straight to a queued goroutine (pick_local) but reach find_runnable's check.
  if (processor* p = tls_processor) p->retired.store(true, std::memory_order_relaxed);
  backend_after_fork_child();
}

// fork()'s handlers, registered at load time, before anything can take start_lock
// (glibc runs only the child handlers registered before the fork began, so one that
// start-up registered while a fork waited for start_lock would not run). The forking
// thread holds start_lock through the fork: start-up is either over, and the child is
// a child of a started runtime, or not begun, and the child may start its own.
// Registered before the program's own static constructors (init_priority 101, the
// first that programs may use): glibc runs child handlers in the order registered,
// and a library's child handler that starts a thread waiting on a channel must find
// the child's new fork generation (parking.hpp) already there.
struct fork_handlers {
  fork_handlers() {
    pthread_atfork([] { start_lock.lock(); }, [] { start_lock.unlock(); },
                   [] {
                     start_lock.unlock();
                     parkers_after_fork_child();
                     if (the_scheduler.load(std::memory_order_acquire) != nullptr) on_fork_child();
                   });
  }
} const fork_handlers_registered [[gnu::init_priority(101)]];

}  // namespace

scheduler* sched_if_started() noexcept { return the_scheduler.load(std::memory_order_acquire); }

int configured_max_procs() noexcept {
  int r = requested_procs.load(std::memory_order_acquire);
  if (r > 0) return r;
  if (int from_env = env_procs(); from_env > 0) return from_env;
  static const int from_cpus =
      default_processors(startup_cpus(), read_cpu_limit(own_cpu_limit_files()));
  return from_cpus;
}

namespace {

// Gives a slot to a processor that holds none: a retired one that is not held by a
// goroutine in foreign code (preferably one asleep as a spare), else a new one. With
// must_be_free (a hand-off: the slot must start running other goroutines now), only
// a spare will do, not a retired processor still running its last goroutine.
// Returns false only when the thread limit is reached. Called with procs_lock held.
bool activate_one_locked(scheduler& s, bool must_be_free) {
  int created = s.created.load(std::memory_order_acquire);
  processor* pick = nullptr;
  for (int i = 0; i < created; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (!q->retired.load(std::memory_order_seq_cst) ||
        q->handed_off.load(std::memory_order_seq_cst) ||
        q->locked_g.load(std::memory_order_seq_cst) != nullptr) {
      continue;
    }
    bool spare = q->spare.load(std::memory_order_seq_cst);
    if (must_be_free && !spare) continue;
    pick = q;
    if (spare) break;
  }
  if (pick != nullptr) {
    pick->retired.store(false, std::memory_order_seq_cst);
    pick->wake_word.store(1, std::memory_order_seq_cst);
    note_worker_wakeup();
    futex_wake(&pick->wake_word, 1);
    return true;
  }
  if (revive_locked(s, nullptr)) return true;
  if (created >= max_threads() || created >= s.procs_capacity) return false;
  start_processor(s, created);
  return true;
}

// p was just marked retired: if it sleeps in the idle list, takes it off and wakes it
// so that it retires (and hands over its queue) now; a running one notices at its next
// scheduling point, and one on its way to idle() sees `retired` in idle()'s re-check
// (stored before we look at the list). Left in the list, a retired processor would be
// counted idle in place of a slot, and nobody would wake it to retire.
void kick_retired(scheduler& s, processor* p) {
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

// Takes p's slot away (p is not retired): it finishes what it runs and retires at its
// next scheduling point. Called with procs_lock held.
void retire_locked(scheduler& s, processor* p) {
  p->retired.store(true, std::memory_order_seq_cst);
  kick_retired(s, p);
}

}  // namespace

bool hand_off_locked(scheduler& s, processor* p) {
  if (p->retired.load(std::memory_order_seq_cst)) return false;
  p->handed_off.store(true, std::memory_order_seq_cst);
  p->retired.store(true, std::memory_order_seq_cst);
  if (!activate_one_locked(s, /*must_be_free=*/true)) {
    // Past the limit: undo, and let the caller report (the goroutines stay stuck).
    p->retired.store(false, std::memory_order_seq_cst);
    p->handed_off.store(false, std::memory_order_seq_cst);
    return false;
  }
  // The monitor judged p from a look taken a moment ago: its goroutine may have parked
  // since, and p gone idle.
  kick_retired(s, p);
  return true;
}

bool dispatch_blocker(processor* p, goroutine* g, bool may_start_thread) noexcept {
  std::uint8_t credit = g->blocker_credit.load(std::memory_order_relaxed);
  if (credit == 0) return false;
  scheduler& s = *the_scheduler.load(std::memory_order_acquire);
  std::lock_guard lk(s.procs_lock);
  int created = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < created; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    bool expected = true;
    if (q == p || !q->retired.load(std::memory_order_seq_cst) ||
        q->handed_off.load(std::memory_order_seq_cst) ||
        q->locked_g.load(std::memory_order_seq_cst) != nullptr ||
        !q->spare.compare_exchange_strong(expected, false, std::memory_order_seq_cst)) {
      continue;
    }
    g->blocker_credit.store(static_cast<std::uint8_t>(credit - 1), std::memory_order_relaxed);
    q->assigned.store(g, std::memory_order_release);
    q->wake_word.store(1, std::memory_order_seq_cst);
    note_worker_wakeup();
    futex_wake(&q->wake_word, 1);
    return true;
  }
  if (!may_start_thread) return false;
  // No spare asleep: a new worker thread, born retired, with g assigned.
  if (revive_locked(s, g)) {
    g->blocker_credit.store(static_cast<std::uint8_t>(credit - 1), std::memory_order_relaxed);
    return true;
  }
  if (created >= max_threads() || created >= s.procs_capacity) return false;
  g->blocker_credit.store(static_cast<std::uint8_t>(credit - 1), std::memory_order_relaxed);
  start_processor(s, created, g);
  return true;
}

namespace {

// Makes n the number of slots. Past the thread limit, set_max_procs is a fatal error;
// following the CPU limit stops at the slots it could fill. Called with procs_lock held.
void resize_locked(scheduler& s, int n, bool following) {
  int created = s.created.load(std::memory_order_acquire);
  int active = 0;
  for (int i = 0; i < created; ++i) {
    if (!s.procs[i].load(std::memory_order_acquire)->retired.load(std::memory_order_seq_cst)) {
      ++active;
    }
  }
  s.nprocs.store(n, std::memory_order_seq_cst);
  for (; active < n; ++active) {
    if (activate_one_locked(s, /*must_be_free=*/false)) continue;
    if (following) {
      s.nprocs.store(active, std::memory_order_seq_cst);
      return;
    }
    std::fprintf(stderr,
                 "fatal error: goro: set_max_procs(%d) needs more worker threads than "
                 "GORO_MAX_THREADS=%d allows\n",
                 n, max_threads());
    std::abort();
  }
  // Shrinking: the highest ids give up their slots.
  for (int i = created - 1; i >= 0 && active > n; --i) {
    processor* p = s.procs[i].load(std::memory_order_acquire);
    if (p->retired.load(std::memory_order_seq_cst)) continue;
    retire_locked(s, p);
    --active;
  }
}

}  // namespace

void lock_thread(processor* p, goroutine* g) {
  if (g->lock_count == UINT32_MAX) throw goro::panic_error("goro::lock_os_thread: nested too deeply");
  if (g->lock_count++ > 0) return;
  scheduler& s = *the_scheduler.load(std::memory_order_acquire);
  {
    std::lock_guard lk(s.procs_lock);
    g->locked_to = p;
    p->locked_g.store(g, std::memory_order_seq_cst);
    if (!p->retired.load(std::memory_order_seq_cst)) {
      // The slot goes to another thread now: this one is the goroutine's alone.
      p->retired.store(true, std::memory_order_seq_cst);
      if (!activate_one_locked(s, /*must_be_free=*/false)) {
        std::fprintf(stderr,
                     "fatal error: goro: lock_os_thread needs another worker thread and "
                     "GORO_MAX_THREADS=%d allows no more\n",
                     max_threads());
        std::abort();
      }
    }
  }
  // What waited here is the others' to run.
  if (!p->runq.empty()) {
    p->runq.drain_to(s.global);
    wakep(s);
  }
}

void unlock_thread(processor* p, goroutine* g) {
  if (g->lock_count == 0 || --g->lock_count > 0) return;
  scheduler& s = *the_scheduler.load(std::memory_order_acquire);
  {
    std::lock_guard lk(s.procs_lock);
    g->locked_to = nullptr;
    p->locked_g.store(nullptr, std::memory_order_seq_cst);
  }
  // p holds no slot: at this scheduling point g moves to a processor that does, and p
  // becomes a spare (retire in find_work.cpp).
  yield_current();
}

void resize_processors(int n) {
  check_not_forked("goro::set_max_procs");
  {
    std::lock_guard early(start_lock);
    if (the_scheduler.load(std::memory_order_acquire) == nullptr) {
      requested_procs.store(n, std::memory_order_release);  // start-up will not follow
      return;
    }
  }
  scheduler& s = *the_scheduler.load(std::memory_order_acquire);
  std::lock_guard lk(s.procs_lock);
  // Under procs_lock: a follow_cpu_limit that comes after sees it cleared, one that came
  // before is overridden here. (Start-up set it, if at all, before the_scheduler.)
  follows_cpu_limit.store(false, std::memory_order_relaxed);
  requested_procs.store(n, std::memory_order_release);
  resize_locked(s, n, /*following=*/false);
}

void follow_cpu_limit() {
  // Relaxed: a hint; the decision is taken again under procs_lock, which orders it.
  if (!follows_cpu_limit.load(std::memory_order_relaxed)) return;
  int n = default_processors(startup_cpus(), read_cpu_limit(own_cpu_limit_files()));
  scheduler& s = *the_scheduler.load(std::memory_order_acquire);
  std::lock_guard lk(s.procs_lock);
  if (!follows_cpu_limit.load(std::memory_order_relaxed) ||
      n == s.nprocs.load(std::memory_order_acquire)) {
    return;
  }
  resize_locked(s, n, /*following=*/true);
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
  g->blocker_credit.store(0, std::memory_order_relaxed);
  g->id.store(id, std::memory_order_relaxed);
  // A free descriptor has no bubble and acts for none (cleared as it exited), so only
  // a goroutine of a bubble touches the descriptor's cold end here.
  bubble* in = bubble_for_child(parent);
  g->park.bubbled.store(in != nullptr, std::memory_order_relaxed);
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  {
    std::lock_guard lk(g->meta_lock);
    if (in != nullptr) [[unlikely]] g->in_bubble.store(in, std::memory_order_relaxed);
    g->parent_id = parent ? parent->id.load(std::memory_order_relaxed) : 0;
    g->root_id = parent ? parent->root_id : 0;
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
  if (in != nullptr) [[unlikely]] bubble_joined(in, g);
  set_state(g, g_state::free, g_state::runnable);
  return g;
}

}  // namespace goro::detail
