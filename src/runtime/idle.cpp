// idle.cpp — processors going idle and being woken, and the deadlock detector that
// watches them. The spinning/waking protocol (P1-P3, W1-W4) and its memory-ordering
// argument are in the design essay at the top of scheduler.cpp.
//
// Invariants:
//   - The idle list, in_idle_list/idle_next of each processor, timed_sleeper and
//     timed_until change only under scheduler::idle_lock; npidle equals the length of
//     the idle list and changes under it too (seq_cst, read without the lock).
//   - A processor taken off the idle list by a waker is counted in nmspinning by that
//     waker; one that leaves by itself (timeout, work found) is not.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

#include "runtime/netpoll.hpp"
#include "runtime/scheduler_internal.hpp"

namespace goro::detail {

void write_goroutine_dump(std::ostream& os, int level, std::uint64_t skip_id);  // debug/dump.cpp

namespace {

constexpr std::int64_t scavenge_delay_ns = 10'000'000;   // idle this long: return stack memory
constexpr std::int64_t timer_spin_ns = 20'000;           // spin, not sleep, for a closer timer
constexpr std::int64_t deadlock_grace_ns = 100'000'000;  // all asleep this long: deadlock
constexpr std::int64_t recheck_first_ns = 10'000'000;    // asleep but for other threads:
constexpr std::int64_t recheck_max_ns = 1'000'000'000;   //   look again, backing off

// ---- deadlock detection state (see all_asleep) ----
std::atomic<int> runs_active{0};  // goro::run calls in progress, each with a parked thread
thread_local bool is_run_thread = false;
std::atomic<bool> detection_off{false};      // for good: debug::serve's threads may act
std::atomic<int> runtime_threads{0};         // helper threads goro started (monitor, dump, ...)
// Metrics of slow paths (each one a futex system call): relaxed counters.
std::atomic<std::uint64_t> sleeps{0};
std::atomic<std::uint64_t> wakeups{0};

}  // namespace

void set_run_thread(bool inside_run) noexcept {
  is_run_thread = inside_run;
  runs_active.fetch_add(inside_run ? 1 : -1, std::memory_order_seq_cst);
}


void note_runtime_thread(int delta) noexcept {
  runtime_threads.fetch_add(delta, std::memory_order_relaxed);
}

int runtime_thread_count() noexcept { return runtime_threads.load(std::memory_order_relaxed); }
std::uint64_t worker_sleeps() noexcept { return sleeps.load(std::memory_order_relaxed); }
std::uint64_t worker_wakeups() noexcept { return wakeups.load(std::memory_order_relaxed); }
void note_worker_sleep() noexcept { sleeps.fetch_add(1, std::memory_order_relaxed); }
void note_worker_wakeup() noexcept { wakeups.fetch_add(1, std::memory_order_relaxed); }

void hand_to_locked_thread(processor* own, goroutine* g) noexcept {
  own->locked_ready.store(g, std::memory_order_seq_cst);
  own->wake_word.store(1, std::memory_order_seq_cst);
  note_worker_wakeup();
  futex_wake(&own->wake_word, 1);
}

void disable_deadlock_detection() noexcept {
  detection_off.store(true, std::memory_order_relaxed);
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

}  // namespace

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
  // An exchange: a full barrier before the in_poll load on every target, qemu-user's
  // emulation of aarch64 included (it lets a store-release pass a later load-acquire).
  p->wake_word.exchange(1, std::memory_order_seq_cst);
  note_worker_wakeup();
  futex_wake(&p->wake_word, 1);
  if (p->in_poll.load(std::memory_order_seq_cst)) netpoll_break();
}

// Go's wakep: if processors are idle and none is spinning, wake one to spin.
namespace {

// wake_idle_processor past its first check, and make_runnable for a caller without a
// processor of its own: out of line, so that the wake-ups a channel operation makes
// on its processor need no more registers than their own path uses.
[[gnu::noinline]] void wake_one_idle(scheduler& s) noexcept {
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

[[gnu::noinline]] void make_runnable_from_outside(scheduler& s, goroutine* g) noexcept {
  s.global.push(g);
  // P1 -> P2 must not be reordered (see the essay). The seq_cst store in push already
  // orders them on x86 and on aarch64 hardware (STLR then LDAR); the fence also keeps
  // them ordered under emulators that relax STLR -> LDAR (qemu-user on x86), and costs
  // little here: this path is for plain threads and retired processors.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Every processor busy: one of them may be held in foreign code, and the monitor
  // is the one to notice (it hands the processor off, or this was just a busy spell).
  if (s.npidle.load(std::memory_order_seq_cst) == 0) monitor_poke();
  wakep(s);
}

}  // namespace

void wake_idle_processor(scheduler& s) noexcept {
  if (s.npidle.load(std::memory_order_seq_cst) == 0) return;
  wake_one_idle(s);
}

// Never inlined: it reads the thread-local processor directly, which is safe only in a
// function that cannot switch stacks in the middle (see current_processor()).
[[gnu::noinline]] void make_runnable(goroutine* g, bool next) noexcept {
  // In a child of fork() every goroutine is a copy of the parent's that cannot run:
  // waking one (closing an inherited conn wakes its readers) leaves it as it is.
  if (forked_child.load(std::memory_order_relaxed)) [[unlikely]] return;
  if (processor* own = g->locked_to) {
    hand_to_locked_thread(own, g);
    return;
  }
  scheduler& s = *the_scheduler.load(std::memory_order_acquire);
  processor* p = tls_processor;
  if (p == nullptr || p->retired.load(std::memory_order_relaxed)) [[unlikely]] {
    make_runnable_from_outside(s, g);
    return;
  }
  p->runq.push(g, next, s.global);
  wakep(s);
}

void timer_added(std::int64_t when) noexcept {
  scheduler* s = the_scheduler.load(std::memory_order_acquire);
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
  scheduler* s = the_scheduler.load(std::memory_order_acquire);
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

// ---- deadlock detection ----------------------------------------------------------------
//
// Go's rule: when every goroutine is blocked and nothing (timer, I/O, another thread)
// can wake one, the program can never continue. goro applies it only inside goro::run,
// and only while no thread other than the run threads and goro's own could act: while
// any other thread exists in the process (it might send the value everyone waits
// for), the detector holds its verdict. A plain thread that has used goro primitives
// and ended no longer counts, so a deadlock after it is still reported.

namespace {

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

// What the detector sees: some goroutine can still run (busy); every goroutine is
// asleep but a thread goro does not know may act (other_threads: it may be a plain
// thread about to send, or one of goro's own starting or ending — the count is read
// again later); or nothing can ever wake them (asleep).
enum class verdict { busy, other_threads, asleep };

verdict all_asleep(scheduler& s) {
  int runs = runs_active.load(std::memory_order_acquire);
  if (runs <= 0 || detection_off.load(std::memory_order_relaxed)) return verdict::busy;
  if (s.npidle.load(std::memory_order_seq_cst) != s.nprocs.load(std::memory_order_acquire) ||
      s.nmspinning.load(std::memory_order_seq_cst) != 0 || s.global.size() != 0 ||
      any_local_work(s) || earliest_timer(s) != timer_heap::no_deadline || netpoll_waiting() ||
      blocking_calls_pending()) {
    return verdict::busy;
  }
  // A goroutine on any processor, retired ones included, is not asleep: it may be in
  // foreign code (a system call, a std::mutex) that ends and wakes the others.
  // Worker threads alive: a processor whose thread ended with its locked goroutine
  // (and has no new one yet) has none, and must not make room for a plain thread.
  int created = s.created.load(std::memory_order_acquire);
  int workers = 0;
  for (int i = 0; i < created; ++i) {
    processor* q = s.procs[i].load(std::memory_order_acquire);
    if (q == nullptr) continue;
    if (q->running.load(std::memory_order_relaxed) != nullptr) return verdict::busy;
    if (!q->thread_gone.load(std::memory_order_acquire)) ++workers;
  }
  int expected = workers + runs + runtime_threads.load(std::memory_order_relaxed);
#if defined(GORO_TSAN)
  expected += 1;  // ThreadSanitizer's own background thread
#endif
  int threads = process_threads();
  return threads > 0 && threads <= expected ? verdict::asleep : verdict::other_threads;
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

}  // namespace

int process_thread_count() noexcept { return process_threads(); }

namespace {

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

}  // namespace

// ---- going idle ----------------------------------------------------------------------

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
  // W1/W2 -> W3 must not be reordered; as in make_runnable, the fence also holds under
  // emulators that relax STLR -> LDAR. Going idle is the slow path anyway.
  std::atomic_thread_fence(std::memory_order_seq_cst);
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
    std::int64_t recheck_ns = 0;
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
      verdict v = deadline < 0 ? all_asleep(s) : verdict::busy;
      if (v == verdict::other_threads) {
        // Asleep but for a thread count: look again, less and less often (10 ms up to
        // 1 s), since a thread starting or ending changes it without waking anyone.
        if (recheck_ns == 0) recheck_ns = recheck_first_ns;
        if (timeout < 0 || recheck_ns < timeout) timeout = recheck_ns;
        recheck_ns = std::min(recheck_ns * 2, recheck_max_ns);
      } else {
        recheck_ns = 0;
      }
      if (v == verdict::asleep) {
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
        p->in_poll.exchange(true, std::memory_order_seq_cst);  // full barrier (wake_processor)
        int woken = 0;
        if (p->wake_word.load(std::memory_order_seq_cst) == 0) {
          note_worker_sleep();
          woken = netpoll(timeout);
        }
        p->in_poll.store(false, std::memory_order_relaxed);
        if (woken > 0) {
          got_io = true;
          break;  // they are in our run queue (or another took them)
        }
      } else {
        note_worker_sleep();
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

}  // namespace goro::detail
