// monitor.cpp — the system monitor (Go's sysmon): one runtime thread that keeps
// foreign blocking from stalling anything but the goroutine that blocks.
//
// ## What it watches
//
// Every processor's scheduling tick (bumped each time the processor installs a
// goroutine) and `running` (the goroutine it runs, null in its scheduler loop). The
// monitor remembers, per processor, the tick it last saw and when it first saw it
// (tick_seen, tick_since): a processor whose tick has not moved while `running` is
// set has been held by one goroutine since tick_since. Holding is normal; it matters
// only when there is work that processor would run and nobody else takes:
//   - its own queue (runnext or ring) is not empty; or
//   - the global queue has goroutines, a timer is due, or goroutines sit in the queue
//     of a processor that was handed off, and no processor is idle (an idle one would
//     take them; the timed sleeper fires timers).
// While a processor's own queue waits and another processor is idle, the monitor
// wakes one to spin (a thief takes the runnext of a victim that has not scheduled for
// a few microseconds): no thread is added.
//
// ## Hand-off
//
// When every slot-holding processor is busy and p is held with work waiting:
//   - held >= syscall_hold_ns and the thread is in the kernel (/proc state S or D:
//     a system call, a std::mutex, a sleep): hand off at once;
//   - the thread is computing (state R): hand off after time_slice_ns (Go preempts a
//     goroutine after the same 10 ms; goro cannot preempt, so it adds a thread).
// hand_off_locked (scheduler.cpp) marks p retired and handed_off and gives its slot to
// a spare processor (a retired one asleep in retire()) or a new processor with a new
// worker thread. The stuck goroutine keeps its thread; at its next scheduling point
// (park, yield, exit) p sees `retired`, hands its queue to the global queue and sleeps
// as a spare. So at most max_procs() threads run goroutines in parallel, except those
// whose goroutine is in foreign code and, after it returns, until its next scheduling
// point. Worker threads are capped at GORO_MAX_THREADS (default 10,000, as Go's
// debug.SetMaxThreads); a hand-off past it is a fatal error that names the goroutines
// holding their threads.
//
// ## Goroutines that block again
//
// A goroutine caught holding its thread in the kernel gets blocker_credits credits.
// Each later time a processor takes it from a queue to run, the processor spends one
// and hands the goroutine to a spare worker (or a new one) that runs it without a slot
// (dispatch_blocker), and goes on with its next goroutine at once. So a goroutine that
// parks between foreign calls (a sender on a full channel, say) never holds a slot
// for a detection delay, and the slot's other goroutines never wait for a wake-up.
// A run on a spare thread in which the thread never slept in the kernel takes the
// credits away, so a goroutine that stops blocking costs one dispatch. A run in which
// it slept and computed for a moment only (under 50 us and an eighth of the run, never
// preempted: judge_blocker_run in find_work.cpp) refills them, so a goroutine that
// keeps blocking never holds a slot again. Any other run spends one: a goroutine that
// blocks briefly and then computes runs within max_procs again after that many runs,
// or is caught again if it still blocks.
//
// ## The network and plain threads
//
// If goroutines or threads wait on I/O, no idle worker sleeps in the poller, and
// nobody has polled for net_poll_ns, the monitor polls without blocking (Go's sysmon
// does the same after 10 ms). Readied goroutines go to the global queue; readied plain
// threads are unparked directly.
//
// ## Its own cost
//
// The monitor sleeps min_delay_ns after a cycle that found a held processor with work
// waiting; as Go's sysmon, it stays at that for 50 quiet cycles after start-up and
// after a hand-off, then doubles the sleep each quiet cycle up to busy_delay_ns while
// any goroutine runs. So a processor held in the kernel is handed off 20-60 us after
// the monitor's next look, and that look comes within 1 ms. A goroutine queued on the global queue while no processor is idle
// (woken by a plain thread, or by a goroutine whose processor was handed off) pokes
// it awake, so a held processor is handed off without waiting out the sleep. When every processor is idle it sleeps on a futex until a worker
// leaves idle (monitor_wake), so an idle runtime costs no CPU. Reading /proc (~10 us)
// happens only for a processor that is held with work waiting.
//
// ## The CPU limit
//
// While max_procs() follows the default (see cpu_limit.hpp: no GORO_MAXPROCS, no
// set_max_procs, and the process's cgroup has a CPU limit file), the monitor rereads
// the limit at most once a second (one or two small files per cgroup level, ~10 us)
// and resizes when the default changed, as Go's sysmon does (follow_cpu_limit). It
// never wakes for this: the deep sleep ends after deep_sleep_ns (a second) anyway.
//
// ## Starvation reports (GORO_STARVE_MS, default 100, 0 or off: none)
//
// A goroutine that holds its thread that long while others waited for its processor
// gets one line on stderr (at most one a second) naming it, what its thread does, and
// whether its processor was handed to another thread.
//
// Invariants:
//   - tick_seen/tick_since are written by the monitor thread only.
//   - Slots change only under scheduler::procs_lock (hand_off_locked, set_max_procs).
//   - At most one stack sample is in flight (sample_lock); a processor's sample_* fields
//     are written by the requester before the signal and by the handler after it.
#include "runtime/monitor.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <unwind.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <sstream>
#include <thread>
#include <vector>

#include "runtime/fault.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/scheduler_internal.hpp"

namespace goro::detail {

void write_goroutine_dump(std::ostream& os, int level, std::uint64_t skip_id);  // debug/dump.cpp

namespace {

constexpr std::int64_t min_delay_ns = 20'000;
constexpr std::int64_t busy_delay_ns = 1'000'000;       // quiet cycles, while goroutines run
constexpr int quiet_cycles_fast = 50;                   // at min_delay_ns before backing off
constexpr std::int64_t deep_sleep_ns = 1'000'000'000;   // every processor idle
constexpr std::int64_t syscall_hold_ns = 20'000;        // held this long in the kernel: hand off
constexpr std::int64_t recheck_running_ns = 1'000'000;  // re-read /proc of a computing one
constexpr std::int64_t time_slice_ns = 10'000'000;      // computing this long: hand off
constexpr std::int64_t preempt_grace_ns = 1'000'000;     // after asking it to yield first
constexpr std::int64_t idle_hold_ns = 10'000'000;       // in the kernel this long: hand off anyway
constexpr int cpu_hand_off_budget = 1;                  // computing goroutines handed off at once
constexpr std::int64_t report_gather_ns = 50'000'000;   // one starvation line per batch
constexpr std::int64_t net_poll_ns = 10'000'000;        // nobody polled this long: poll
constexpr std::int64_t cpu_limit_check_ns = 1'000'000'000;  // reread the cgroup CPU limit

// The monitor sleeps on monitor_word (futex): 0 while it sleeps, 1 once poked. A poke
// wakes it early: a worker leaving idle while it sleeps deeply (monitor_wake), or a
// goroutine queued globally while no processor is idle (monitor_poke).
std::atomic<std::uint32_t> monitor_word{0};
std::atomic<bool> monitor_deep{false};  // in its deep sleep (every processor idle)

// Per-processor notes the monitor keeps for itself.
struct watch {
  std::uint32_t ring_head = 0;  // the ring's head when it was first seen not moving
  std::int64_t ring_since = 0;
  std::int64_t state_read_at = 0;  // last /proc read while held at this tick
  char state = '?';
  std::uint32_t held_head = 0;     // the ring's head while held, and since when
  std::int64_t held_head_since = 0;
  std::int64_t cpu_ns = 0;    // the thread's CPU time at state_read_at
  double on_cpu_share = 0;    // of the time between the last two reads
  std::uint32_t waiting = 0;  // goroutines waiting when it was handed off
  bool reported = false;      // starvation line noted for this tick
  std::int64_t preempt_asked_at = 0;  // when it was asked to yield at this tick
};

struct starving {
  goroutine* g = nullptr;
  processor* p = nullptr;
  std::int64_t held = 0;
  std::uint32_t waiting = 0;
  bool handed = false;
};

std::int64_t starve_limit_ns() {
  const char* v = std::getenv("GORO_STARVE_MS");
  if (v == nullptr) return 100'000'000;
  if (std::strcmp(v, "off") == 0) return 0;
  char* end = nullptr;
  long ms = std::strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || ms < 0) {
    std::fprintf(stderr, "goro: ignoring GORO_STARVE_MS=%s (want milliseconds, or 0/off)\n", v);
    return 100'000'000;
  }
  return std::int64_t{ms} * 1'000'000;
}

bool all_idle(scheduler& s) {
  if (s.npidle.load(std::memory_order_seq_cst) < s.nprocs.load(std::memory_order_acquire) ||
      s.nmspinning.load(std::memory_order_seq_cst) != 0 || s.global.size() > 0) {
    return false;
  }
  // Retired processors may still run a goroutine (in foreign code): the monitor has
  // nothing to do for them, and anything they make runnable wakes an idle worker.
  int n = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* p = s.procs[i].load(std::memory_order_acquire);
    if (!p->retired.load(std::memory_order_relaxed) &&
        p->running.load(std::memory_order_relaxed) != nullptr) {
      return false;
    }
  }
  return true;
}

std::string describe(goroutine* g) {
  std::source_location where;
  {
    std::lock_guard lk(g->meta_lock);
    where = g->where;
  }
  return "created at " + std::string(where.file_name()) + ":" + std::to_string(where.line());
}

std::string activity_text(char state, const thread_activity& a) {
  if (state == 'R') return "without a scheduling point";
  const char* name = syscall_name(a.syscall);
  if (name != nullptr) return std::string("in system call ") + name;
  return "blocked in the kernel";
}

// The monitor's report lines go out from a thread of their own, started at the first:
// a write to stderr can block for good (a full pipe nobody reads, a terminal stopped
// with Ctrl-S), and the monitor must go on handing processors off meanwhile. Lines
// posted while the writer is stuck wait, up to max_pending; later ones are counted and
// the count is written when it gets through. Never destroyed: the writer may be blocked
// in a write at exit.
class report_writer {
 public:
  void post(std::string line) {
    std::lock_guard lk(lock_);
    if (lines_.size() >= max_pending) {
      ++dropped_;
      return;
    }
    lines_.push_back(std::move(line));
    if (!started_) {
      started_ = true;
      // goro's own thread: the deadlock check and the metrics count it as the runtime's,
      // not the program's.
      note_runtime_thread(+1);
      try {
        std::thread([this] { run(); }).detach();
      } catch (const std::system_error&) {
        note_runtime_thread(-1);
        started_ = false;  // no thread to be had: write this one here, as before
        std::fputs(lines_.back().c_str(), stderr);
        lines_.pop_back();
        return;
      }
    }
    wake_.notify_one();
  }

 private:
  static constexpr std::size_t max_pending = 64;

  void run() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are for the program's threads
    pthread_setname_np(pthread_self(), "goro-report");
    for (;;) {
      std::vector<std::string> lines;
      std::uint64_t dropped = 0;
      {
        std::unique_lock lk(lock_);
        wake_.wait(lk, [&] { return !lines_.empty(); });
        lines.swap(lines_);
        dropped = std::exchange(dropped_, 0);
      }
      for (const std::string& line : lines) std::fputs(line.c_str(), stderr);
      if (dropped > 0) {  // the lines after these, while stderr was blocked
        std::fprintf(stderr, "goro: %llu later monitor report line(s) dropped: stderr blocked\n",
                     static_cast<unsigned long long>(dropped));
      }
      std::fflush(stderr);
    }
  }

  std::mutex lock_;
  std::condition_variable wake_;
  std::vector<std::string> lines_;  // under lock_
  std::uint64_t dropped_ = 0;       // under lock_
  bool started_ = false;            // under lock_
};

report_writer& reports() {
  static report_writer* w = new report_writer;
  return *w;
}

[[noreturn]] void report_thread_limit(scheduler& s) {
  std::ostringstream os;
  os << "runtime: program exceeds " << max_threads() << "-thread limit\n"
     << "fatal error: goro: thread exhaustion: every one of GORO_MAX_THREADS=" << max_threads()
     << " worker threads is taken, and these goroutines hold theirs:\n";
  int n = s.created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* p = s.procs[i].load(std::memory_order_acquire);
    goroutine* g = p->running.load(std::memory_order_relaxed);
    if (g == nullptr) continue;
    thread_activity a;
    read_thread_activity(p->tid.load(std::memory_order_acquire), a);
    os << "  goroutine " << g->id.load(std::memory_order_relaxed) << " ("
       << activity_text(a.state, a) << ", " << describe(g) << ")\n";
  }
  os << "\n";
  std::fputs(os.str().c_str(), stderr);
  std::ostringstream dump;
  write_goroutine_dump(dump, 2, 0);
  std::fputs(dump.str().c_str(), stderr);
  std::fflush(stderr);
  std::_Exit(2);
}

class monitor {
 public:
  explicit monitor(scheduler& s) : s_(s), watches_(static_cast<std::size_t>(s.procs_capacity)) {}

  // Go's sysmon rhythm: the shortest sleep for a while after start-up and after each
  // hand-off (quiet_cycles_fast cycles), then doubling up to busy_delay_ns.
  [[noreturn]] void main_loop() {
    std::int64_t delay = min_delay_ns;
    int quiet = 0;
    for (;;) {
      sleep_for(delay);
      std::int64_t now = nanotime();
      cycle_result r = look(now);
      // A safety net under the wake-up protocol: goroutines queued globally while a
      // processor sleeps idle and none spins. The protocol should never leave this
      // state (a waker wakes an idle processor, and an idling one re-checks the queue
      // after publishing itself), yet a token ring of goroutines and plain threads
      // under qemu-aarch64 was seen with a goroutine runnable for minutes and every
      // worker asleep; this bounds such a miss to one monitor cycle.
      if (s_.global.size() > 0 && s_.npidle.load(std::memory_order_seq_cst) > 0 &&
          s_.nmspinning.load(std::memory_order_seq_cst) == 0) {
        wake_idle_processor(s_);
        r.acted = true;
      }
      poll_network(now);
      if (now >= next_cpu_limit_check_) {
        next_cpu_limit_check_ = now + cpu_limit_check_ns;
        follow_cpu_limit();
      }
      if (r.acted) {
        delay = min_delay_ns;
        quiet = 0;
      } else if (r.next_check == 0 && !r.slot_running && all_idle(s_)) {
        deep_sleep();
        delay = min_delay_ns;
        quiet = quiet_cycles_fast - 4;  // a few short sleeps, then back off
      } else if (++quiet > quiet_cycles_fast) {
        delay = std::min(delay * 2, busy_delay_ns);
      }
      // Something must be looked at again by then: never sleep past it.
      if (r.next_check > 0) delay = std::max(min_delay_ns, std::min(delay, r.next_check - now));
    }
  }

 private:
  struct cycle_result {
    bool acted = false;           // handed off for waiting work, or woke a processor
    bool slot_running = false;    // a processor with a slot runs a goroutine
    std::int64_t next_check = 0;  // when a held processor must be looked at again
  };

  static void sleep_for(std::int64_t ns) {
    futex_wait(&monitor_word, 0, ns);
    monitor_word.store(0, std::memory_order_relaxed);  // a later poke wakes the next sleep
  }

  // Sleeps until a worker leaves idle (monitor_wake). The flag is published before
  // the re-check, and a worker decrements npidle before it reads the flag (both
  // seq_cst), so either we see it busy or it sees us asleep.
  void deep_sleep() {
    monitor_deep.store(true, std::memory_order_seq_cst);
    if (all_idle(s_)) futex_wait(&monitor_word, 0, deep_sleep_ns);
    monitor_deep.store(false, std::memory_order_seq_cst);
    monitor_word.store(0, std::memory_order_relaxed);
  }

  cycle_result look(std::int64_t now) {
    cycle_result r;
    int n = s_.created.load(std::memory_order_acquire);
    std::uint64_t popped = s_.global.popped();
    if (popped != global_popped_ || s_.global.size() == 0) {
      global_popped_ = popped;
      global_since_ = now;
    }
    // Goroutines queued on processors that hold no slot (their goroutine is stuck)
    // wait for a thief: shared work like the global queue. Count the processors
    // handed off for computing, against their budget.
    bool stranded = false;
    int cpu_handed = 0;
    for (int i = 0; i < n; ++i) {
      processor* p = s_.procs[i].load(std::memory_order_acquire);
      if (!p->retired.load(std::memory_order_relaxed)) continue;
      if (!p->runq.empty()) stranded = true;
      if (p->handed_for_cpu.load(std::memory_order_relaxed) &&
          p->running.load(std::memory_order_relaxed) != nullptr) {
        ++cpu_handed;
      }
    }
    for (int i = 0; i < n; ++i) {
      processor* p = s_.procs[i].load(std::memory_order_acquire);
      watch& w = watches_[static_cast<std::size_t>(i)];
      std::uint64_t tick = p->schedtick.load(std::memory_order_acquire);
      goroutine* g = p->running.load(std::memory_order_relaxed);
      if (tick != p->tick_seen.load(std::memory_order_relaxed)) {
        p->tick_seen.store(tick, std::memory_order_relaxed);
        p->tick_since.store(now, std::memory_order_relaxed);
        w.state_read_at = 0;
        w.state = '?';
        w.waiting = 0;
        w.reported = false;
        w.held_head = p->runq.ring_head();
        w.held_head_since = now;
        if (g != nullptr && !p->retired.load(std::memory_order_relaxed)) r.slot_running = true;
        check_ring(p, w, now);
        continue;
      }
      if (g == nullptr) continue;
      std::int64_t held = now - p->tick_since.load(std::memory_order_relaxed);
      std::uint32_t head = p->runq.ring_head();
      if (head != w.held_head) {  // a thief took from its ring: that work moves on
        w.held_head = head;
        w.held_head_since = now;
      }
      note_starvation(p, w, g, held, now);
      if (p->retired.load(std::memory_order_seq_cst)) {
        // Holds no slot. After a time slice on it (back from the system call its
        // processor was handed off for, computing since its hand-off, or retired by
        // set_max_procs), its goroutine is asked to yield at its next preemption point:
        // it goes back in line for a slot, as Go's goroutine that leaves a system call
        // and finds its P taken, instead of spawning outside max_procs for good. A
        // locked goroutine's thread is its own.
        if (p->preempt_tick.load(std::memory_order_relaxed) != tick &&
            p->locked_g.load(std::memory_order_relaxed) == nullptr) {
          if (held >= time_slice_ns) {
            p->preempt_tick.store(tick, std::memory_order_relaxed);
          } else {
            note_check(r, p->tick_since.load(std::memory_order_relaxed) + time_slice_ns);
          }
        }
        // Maybe name it later.
        if (starve_limit_ns_ > 0 && !w.reported && w.waiting > 0) {
          note_check(r, p->tick_since.load(std::memory_order_relaxed) + starve_limit_ns_);
        }
        continue;
      }
      r.slot_running = true;
      bool own_work = !p->runq.empty();
      bool idle_others = s_.npidle.load(std::memory_order_seq_cst) > 0;
      bool shared_work = !idle_others && s_.nmspinning.load(std::memory_order_seq_cst) == 0 &&
                         (stranded || s_.global.size() > 0 || earliest_timer(s_) <= now);
      if ((own_work || shared_work) && idle_others) {
        // Another processor can take p's queue without a new thread.
        wake_idle_processor(s_);
        r.acted = true;
        continue;
      }
      bool work = own_work || shared_work;
      // Held this long in the kernel, a processor is handed off even with nothing
      // waiting (Go's retake), so that its slot is idle and the monitor can sleep.
      std::int64_t hold_limit = work ? syscall_hold_ns : idle_hold_ns;
      if (held < hold_limit) {
        note_check(r, p->tick_since.load(std::memory_order_relaxed) + hold_limit);
        continue;
      }
      // A computing goroutine with nothing waiting is left alone: look again rarely.
      if (!work && w.state == 'R' && now - w.state_read_at < idle_hold_ns) continue;
      if (w.state != 'R' || now - w.state_read_at >= recheck_running_ns) read_state(p, w, now);
      if (w.state == 'R') {
        // Computing: asked to yield, then handed off, only for work that nobody serves
        // (thieves take from its ring, or other processors from the global queue: then
        // the work moves on without a new thread), after a time slice, while it really
        // had a CPU (not just waited for one on a loaded machine), and within the
        // budget of computing hand-offs. (Asking a spawning loop to yield while a thief
        // keeps up with it made W1 with 2 processors 13-24% slower: the loop's
        // processor stopped feeding the thief and both drained the global queue.)
        bool ring_stuck = own_work && now - w.held_head_since >= time_slice_ns;
        bool global_stuck = s_.global.size() > 0 && now - global_since_ >= time_slice_ns;
        bool starving = ring_stuck || global_stuck || stranded || earliest_timer(s_) <= now;
        if (!work || !starving) {
          if (work) note_check(r, now + recheck_running_ns);
          continue;
        }
        if (held < time_slice_ns) {
          note_check(r, std::min(w.state_read_at + recheck_running_ns,
                                 p->tick_since.load(std::memory_order_relaxed) + time_slice_ns));
          continue;
        }
        // First ask it to yield at its next preemption point (a spawn in a loop, say):
        // its queue then runs on its own thread, as Go's preempted goroutine lets it.
        // A goroutine that reaches none within the grace gets its processor handed off.
        if (p->preempt_tick.load(std::memory_order_relaxed) != tick) {
          p->preempt_tick.store(tick, std::memory_order_relaxed);
          w.preempt_asked_at = now;
          note_check(r, now + preempt_grace_ns);
          continue;
        }
        if (now - w.preempt_asked_at < preempt_grace_ns || w.on_cpu_share < 0.5) {
          note_check(r, std::max(w.preempt_asked_at + preempt_grace_ns,
                                 w.state_read_at + recheck_running_ns));
          continue;
        }
        if (cpu_handed >= cpu_hand_off_budget) {
          note_check(r, now + recheck_running_ns);
          continue;
        }
        ++cpu_handed;
      }
      w.waiting = work ? p->runq.waiting() + s_.global.size() : 0;
      // A goroutine that blocked in the kernel will likely do it again: its next runs
      // go to a spare thread (see "Goroutines that block again").
      if (w.state != 'R') g->blocker_credit.store(blocker_credits, std::memory_order_relaxed);
      hand_off(p, g, tick, w.state == 'R');
      r.acted = work;
    }
    report_starvation(now);
    if (pending_.g != nullptr) {
      note_check(r, std::max(pending_since_ + report_gather_ns, last_report_ + 1'000'000'000));
    }
    return r;
  }

  // Reads the thread's state, and for a running one the share of the time since the
  // last read it spent on a CPU (/proc's R also means "waiting for a CPU").
  static void read_state(processor* p, watch& w, std::int64_t now) {
    int tid = p->tid.load(std::memory_order_acquire);
    thread_activity a;
    read_thread_activity(tid, a);
    // Asleep in the kernel but not in a system call: a page fault waiting for memory
    // (first touches of fresh stacks queue on the address-space lock). That is the
    // goroutine's own work, not foreign blocking: judge it as computing.
    if (a.in_kernel() && a.fault) a.state = 'R';
    std::int64_t cpu = read_thread_cpu_ns(tid);
    if (a.state == 'R' && w.cpu_ns > 0 && cpu > 0 && now > w.state_read_at) {
      w.on_cpu_share =
          static_cast<double>(cpu - w.cpu_ns) / static_cast<double>(now - w.state_read_at);
    } else if (a.state == 'R') {
      w.on_cpu_share = 0;  // not known yet: look again
    }
    w.cpu_ns = cpu;
    w.state = a.state;
    w.state_read_at = now;
  }

  // Go gives a chain of runnext hand-offs one time slice between them: two goroutines
  // handing a value back and forth must not starve the rest of the queue. The ring's
  // head not moving for a slice while the processor schedules means just that.
  static void check_ring(processor* p, watch& w, std::int64_t now) {
    std::uint32_t head = p->runq.ring_head();
    if (p->runq.size() == 0 || head != w.ring_head || w.ring_since == 0) {
      w.ring_head = head;
      w.ring_since = now;
      return;
    }
    if (now - w.ring_since >= time_slice_ns) {
      p->runnext_expired.store(true, std::memory_order_relaxed);
      w.ring_since = now;
    }
  }

  static void note_check(cycle_result& r, std::int64_t at) {
    if (r.next_check == 0 || at < r.next_check) r.next_check = at;
  }

  // Past the thread limit a hand-off for a blocked goroutine is fatal (as Go's
  // SetMaxThreads); one for a computing goroutine is just not done.
  // `held` and `tick` are what the look saw: if p has scheduled since (its goroutine
  // parked or returned), there is nothing to hand off. (It may still do so just after
  // this check: hand_off_locked copes with a processor already idle.)
  void hand_off(processor* p, goroutine* held, std::uint64_t tick, bool for_cpu) {
    bool ok;
    {
      std::lock_guard lk(s_.procs_lock);
      if (p->running.load(std::memory_order_seq_cst) != held ||
          p->schedtick.load(std::memory_order_seq_cst) != tick) {
        return;
      }
      ok = hand_off_locked(s_, p) || p->retired.load(std::memory_order_seq_cst);
      if (ok && for_cpu) p->handed_for_cpu.store(true, std::memory_order_relaxed);
    }
    if (!ok && !for_cpu) report_thread_limit(s_);
  }

  // A goroutine that has held its thread for GORO_STARVE_MS after others waited for
  // its processor is named once per hold. Several reaching the limit together make one
  // line (the dump has the rest), and lines come at most once a second.
  // Waiting means not served meanwhile: goroutines on its ring that no thief took from
  // for the limit, or on a global queue that nobody popped for it. (A spawning loop
  // whose goroutines another processor runs as fast as they come holds its thread,
  // but nobody waits for it.)
  void note_starvation(processor* p, watch& w, goroutine* g, std::int64_t held,
                       std::int64_t now) {
    if (starve_limit_ns_ == 0 || w.reported || held < starve_limit_ns_) return;
    // A locked goroutine (lock_os_thread) has its thread to itself and holds no slot:
    // nobody waits for it.
    if (p->locked_g.load(std::memory_order_relaxed) != nullptr) return;
    bool handed = p->handed_off.load(std::memory_order_relaxed);
    std::uint32_t waiting = w.waiting;
    if (!handed) {
      waiting = 0;
      if (now - w.held_head_since >= starve_limit_ns_) waiting += p->runq.waiting();
      if (now - global_since_ >= starve_limit_ns_) waiting += s_.global.size();
    }
    if (waiting == 0) return;
    w.reported = true;
    if (pending_.g == nullptr) {
      pending_ = starving{g, p, held, waiting, handed};
      pending_since_ = nanotime();
    } else {
      ++pending_more_;
    }
  }

  void report_starvation(std::int64_t now) {
    // Wait a little for others that reach the limit at about the same time.
    if (pending_.g == nullptr || now - pending_since_ < report_gather_ns ||
        now - last_report_ < 1'000'000'000) {
      return;
    }
    starving v = pending_;
    int more = pending_more_;
    pending_ = starving{};
    pending_more_ = 0;
    last_report_ = now;
    thread_activity a;
    read_thread_activity(v.p->tid.load(std::memory_order_acquire), a);
    std::string held_ms = std::to_string(v.held / 1'000'000);
    std::string what =
        a.state == 'R' ? "has run for " + held_ms + " ms without a scheduling point"
                       : "has held its thread for " + held_ms + " ms " + activity_text(a.state, a);
    std::string outcome = v.handed ? "; its processor was handed to another thread"
                                   : "; goro could not hand its processor on";
    std::string others;
    if (more > 0) {
      others = "; " + std::to_string(more) +
               " more goroutine(s) hold their threads too (see the "
               "goroutine dump)";
    }
    reports().post("goro: goroutine " + std::to_string(v.g->id.load(std::memory_order_relaxed)) +
                   " " + what + " while " + std::to_string(v.waiting) +
                   " goroutine(s) waited to run" + outcome + " (" + describe(v.g) + ")" + others +
                   "\n");
  }

  // Go's sysmon: poll the network when nobody has for a while (every worker may be
  // running goroutines that never reach the scheduler loop).
  void poll_network(std::int64_t now) {
    if (!netpoll_waiting() || s_.poll_owner.load(std::memory_order_seq_cst) != nullptr) return;
    if (now - netpoll_last() < net_poll_ns) return;
    netpoll(0);
  }

  scheduler& s_;
  std::vector<watch> watches_;
  std::int64_t starve_limit_ns_ = starve_limit_ns();
  std::uint64_t global_popped_ = 0;  // the global queue's pops, and since when unchanged
  std::int64_t global_since_ = 0;
  std::int64_t last_report_ = 0;
  std::int64_t next_cpu_limit_check_ = 0;
  starving pending_;  // the first goroutine to report
  std::int64_t pending_since_ = 0;
  int pending_more_ = 0;  // others that reached the limit meanwhile
};

// ---- stack samples of running goroutines ----------------------------------------

std::mutex sample_lock;
struct sigaction previous_urg;

// Follows a frame-pointer chain from fp within [lo, hi), appending return addresses.
__attribute__((no_sanitize("address", "thread"))) int follow(std::uintptr_t fp, std::uintptr_t lo,
                                                             std::uintptr_t hi, std::uintptr_t* out,
                                                             int n, int max) {
  while (n < max && fp >= lo && fp + 2 * sizeof(std::uintptr_t) <= hi && (fp & 7) == 0) {
    auto* frame = reinterpret_cast<const std::uintptr_t*>(fp);
    std::uintptr_t next = frame[0], ret = frame[1];
    if (ret == 0) break;
    out[n++] = ret;
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

// The interrupted goroutine's frames: its pc, then the frame-pointer chain. System call
// wrappers in the C library keep no frame pointer, and may use the register for other
// things; then the chain is picked up from the first saved frame pointer found near the
// top of the stack (a word pointing further up the stack that starts a valid chain).
__attribute__((no_sanitize("address", "thread"))) int walk_interrupted(
    std::uintptr_t pc, std::uintptr_t fp, std::uintptr_t sp, const stack_slot& stack,
    std::uintptr_t* out, int max) {
  auto lo = reinterpret_cast<std::uintptr_t>(stack.lo);
  auto hi = reinterpret_cast<std::uintptr_t>(stack.hi);
  if (sp < lo || sp >= hi) return 0;  // not on the goroutine's stack (its g0, a handler)
  out[0] = pc;
  if (fp > sp) {
    int n = follow(fp, sp, hi, out, 1, max);
    if (n >= 3) return n;
  }
  for (std::uintptr_t w = sp; w + sizeof(std::uintptr_t) <= hi && w < sp + 1024;
       w += sizeof(std::uintptr_t)) {
    std::uintptr_t candidate = *reinterpret_cast<const std::uintptr_t*>(w);
    if (candidate <= w || candidate >= hi || (candidate & 7) != 0) continue;
    int n = follow(candidate, sp, hi, out, 1, max);
    if (n >= 3) return n;
  }
  return 1;
}

// Unwinding with the compilers' unwind tables (.eh_frame) from inside the signal
// handler: exact frames even through code without frame pointers (C library system
// call wrappers). The unwinder finds tables without locks (glibc's _dl_find_object),
// and goro's context trampoline marks the bottom of every goroutine stack
// (.cfi_undefined rip), so the walk ends there.
struct unwind_walk {
  std::uintptr_t start;  // the interrupted pc: frames before it are the handler's own
  std::uintptr_t lo, hi;
  std::uintptr_t* out;
  int n, max;
  bool started;
};

_Unwind_Reason_Code unwind_step(_Unwind_Context* ctx, void* arg) {
  auto* w = static_cast<unwind_walk*>(arg);
  int before_insn = 0;
  auto ip = static_cast<std::uintptr_t>(_Unwind_GetIPInfo(ctx, &before_insn));
  if (!w->started) {
    if (ip != w->start) return _URC_NO_REASON;
    w->started = true;
  } else {
    auto cfa = static_cast<std::uintptr_t>(_Unwind_GetCFA(ctx));
    if (cfa < w->lo || cfa > w->hi) return _URC_END_OF_STACK;
  }
  if (ip == 0) return _URC_END_OF_STACK;
  w->out[w->n++] = ip;
  return w->n >= w->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

void on_sample_signal(int sig, siginfo_t* info, void* uctx) {
  int saved_errno = errno;
  processor* p = current_processor();
  goroutine* want = p ? p->sample_for.load(std::memory_order_acquire) : nullptr;
  if (want == nullptr) {
    errno = saved_errno;
    // Not a sample request: the signal is someone else's.
    if (previous_urg.sa_flags & SA_SIGINFO) {
      if (previous_urg.sa_sigaction) previous_urg.sa_sigaction(sig, info, uctx);
    } else if (previous_urg.sa_handler != SIG_DFL && previous_urg.sa_handler != SIG_IGN) {
      previous_urg.sa_handler(sig);
    }
    return;
  }
  int n = 0;
  std::uintptr_t pc = 0, fp = 0, sp = 0;
#if defined(__x86_64__)
  if (p->current == want) {
    auto* uc = static_cast<ucontext_t*>(uctx);
    pc = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
    fp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]);
    sp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  }
#elif defined(__aarch64__)
  if (p->current == want) {
    auto* uc = static_cast<ucontext_t*>(uctx);
    pc = static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
    fp = static_cast<std::uintptr_t>(uc->uc_mcontext.regs[29]);
    sp = static_cast<std::uintptr_t>(uc->uc_mcontext.sp);
  }
#endif
  auto lo = reinterpret_cast<std::uintptr_t>(want->stack.lo);
  auto hi = reinterpret_cast<std::uintptr_t>(want->stack.hi);
  if (pc != 0 && sp >= lo && sp < hi) {
    // The unwinder trusts the tables of the interrupted code: caught between two
    // instructions of a context switch or a goroutine's exit, a frame's CFA can point
    // off the stack and the walk read a wild address. Such a fault ends the walk here
    // (it is not the program's), and the bounded frame-pointer walk is used instead.
    sigjmp_buf escape;
    if (sigsetjmp(escape, 1) == 0) {
      set_fault_escape(&escape);
      unwind_walk w{pc, lo, hi, p->sample_pcs, 0, 64, false};
      _Unwind_Backtrace(unwind_step, &w);
      set_fault_escape(nullptr);
      n = w.n;
    } else {
      n = 0;
    }
    if (n < 2) n = walk_interrupted(pc, fp, sp, want->stack, p->sample_pcs, 64);
  }
  p->sample_n.store(n, std::memory_order_relaxed);
  p->sample_for.store(nullptr, std::memory_order_relaxed);
  p->sample_word.store(1, std::memory_order_release);
  futex_wake(&p->sample_word, 1);
  errno = saved_errno;
}

void install_sample_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sample_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, &previous_urg);
}

void monitor_main(scheduler* s) {
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  pthread_setname_np(pthread_self(), "goro-monitor");
  monitor(*s).main_loop();
}

}  // namespace

void start_monitor(scheduler& s) {
  install_sample_handler();
  note_runtime_thread(+1);
  std::thread(monitor_main, &s).detach();
}

void monitor_wake() noexcept {
  if (monitor_deep.load(std::memory_order_seq_cst)) monitor_poke();
}

void monitor_poke() noexcept {
  if (monitor_word.load(std::memory_order_relaxed) == 0 &&
      monitor_word.exchange(1, std::memory_order_seq_cst) == 0) {
    futex_wake(&monitor_word, 1);
  }
}

int max_threads() noexcept {
  static const int limit = [] {
    const char* v = std::getenv("GORO_MAX_THREADS");
    if (v == nullptr || *v == '\0') return 10'000;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > 1'000'000) {
      std::fprintf(stderr, "goro: ignoring GORO_MAX_THREADS=%s (want 1..1000000)\n", v);
      return 10'000;
    }
    return static_cast<int>(n);
  }();
  return limit;
}

bool read_thread_activity(int tid, thread_activity& out) noexcept {
  if (tid <= 0) return false;
  char path[64];
  char buf[512];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* paren = std::strrchr(buf, ')');  // the thread name may contain anything
  if (paren == nullptr || paren[1] != ' ') return false;
  out.state = paren[2];
  out.syscall = -1;
  if (!out.in_kernel()) return true;
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 0) {
    buf[n] = '\0';
    if (buf[0] >= '0' && buf[0] <= '9') {
      out.syscall = std::strtol(buf, nullptr, 10);
    } else if (buf[0] == '-') {
      out.fault = true;  // "-1 sp pc": blocked, but not in a system call
    }
  }
  return true;
}

std::int64_t read_thread_cpu_ns(int tid) noexcept {
  if (tid <= 0) return -1;
  char path[64];
  char buf[128];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return std::strtoll(buf, nullptr, 10);  // first field: time on a CPU, ns
}

const char* syscall_name(long nr) noexcept {
  struct entry {
    long nr;
    const char* name;
  };
#if defined(__x86_64__)
  static constexpr entry table[] = {
      {0, "read"},
      {1, "write"},
      {2, "open"},
      {3, "close"},
      {4, "stat"},
      {5, "fstat"},
      {7, "poll"},
      {17, "pread64"},
      {18, "pwrite64"},
      {19, "readv"},
      {20, "writev"},
      {23, "select"},
      {34, "pause"},
      {35, "nanosleep"},
      {40, "sendfile"},
      {42, "connect"},
      {43, "accept"},
      {44, "sendto"},
      {45, "recvfrom"},
      {46, "sendmsg"},
      {47, "recvmsg"},
      {61, "wait4"},
      {65, "semop"},
      {70, "msgrcv"},
      {73, "flock"},
      {74, "fsync"},
      {75, "fdatasync"},
      {128, "rt_sigtimedwait"},
      {130, "rt_sigsuspend"},
      {162, "sync"},
      {202, "futex"},
      {208, "io_getevents"},
      {230, "clock_nanosleep"},
      {232, "epoll_wait"},
      {247, "waitid"},
      {257, "openat"},
      {270, "pselect6"},
      {271, "ppoll"},
      {275, "splice"},
      {281, "epoll_pwait"},
      {288, "accept4"},
      {299, "recvmmsg"},
      {306, "syncfs"},
      {307, "sendmmsg"},
      {318, "getrandom"},
      {426, "io_uring_enter"},
      {441, "epoll_pwait2"},
  };
#elif defined(__aarch64__)
  static constexpr entry table[] = {
      {22, "epoll_pwait"},
      {29, "ioctl"},
      {32, "flock"},
      {56, "openat"},
      {57, "close"},
      {63, "read"},
      {64, "write"},
      {65, "readv"},
      {66, "writev"},
      {67, "pread64"},
      {68, "pwrite64"},
      {72, "pselect6"},
      {73, "ppoll"},
      {82, "fsync"},
      {83, "fdatasync"},
      {98, "futex"},
      {101, "nanosleep"},
      {115, "clock_nanosleep"},
      {137, "rt_sigtimedwait"},
      {202, "accept"},
      {203, "connect"},
      {206, "sendto"},
      {207, "recvfrom"},
      {211, "sendmsg"},
      {212, "recvmsg"},
      {242, "accept4"},
      {260, "wait4"},
      {278, "getrandom"},
      {441, "epoll_pwait2"},
  };
#else
  static constexpr entry table[] = {{-2, nullptr}};
#endif
  for (const auto& e : table) {
    if (e.nr == nr) return e.name;
  }
  return nullptr;
}

holding_info holding_of(goroutine* g) noexcept {
  holding_info h;
  scheduler* s = sched_if_started();
  if (s == nullptr) return h;
  int n = s->created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* p = s->procs[i].load(std::memory_order_acquire);
    if (p->running.load(std::memory_order_relaxed) != g) continue;
    h.found = true;
    h.processor_id = p->id;
    h.handed_off = p->handed_off.load(std::memory_order_relaxed);
    // Until the monitor has looked at this tick, the goroutine's hold is unknown (and
    // short).
    if (p->tick_seen.load(std::memory_order_relaxed) ==
        p->schedtick.load(std::memory_order_acquire)) {
      h.held_ns = nanotime() - p->tick_since.load(std::memory_order_relaxed);
    }
    // A thread in a system call is briefly running while it handles a signal (a stack
    // sample of a previous dump, say) and restarts the call: look twice more before
    // calling it computing.
    int tid = p->tid.load(std::memory_order_acquire);
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (read_thread_activity(tid, h.activity) && h.activity.state != 'R') break;
      if (attempt < 2) {
        timespec pause{0, 300'000};
        nanosleep(&pause, nullptr);
      }
    }
    return h;
  }
  return h;
}

namespace {

// The executable mappings of the process (/proc/self/maps), to tell a return address
// from other words on a stack.
std::vector<std::pair<std::uintptr_t, std::uintptr_t>> exec_ranges() {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> out;
  std::FILE* f = std::fopen("/proc/self/maps", "re");
  if (f == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && perms[2] == 'x') {
      out.emplace_back(lo, hi);
    }
  }
  std::fclose(f);
  return out;
}

bool is_code(const std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& x, std::uintptr_t a) {
  for (const auto& [lo, hi] : x) {
    if (a >= lo && a < hi) return true;
  }
  return false;
}

__attribute__((no_sanitize("address", "thread"))) std::uintptr_t peek(std::uintptr_t a) {
  return *reinterpret_cast<const volatile std::uintptr_t*>(a);
}

}  // namespace

int sample_blocked_stack(goroutine* g, std::uintptr_t* out, int max) noexcept {
  scheduler* s = sched_if_started();
  if (s == nullptr || max < 2) return 0;
  int tid = 0;
  int n = s->created.load(std::memory_order_acquire);
  for (int i = 0; i < n && tid == 0; ++i) {
    processor* p = s->procs[i].load(std::memory_order_acquire);
    if (p->running.load(std::memory_order_relaxed) == g)
      tid = p->tid.load(std::memory_order_acquire);
  }
  if (tid == 0) return 0;
  // "nr arg1 .. arg6 sp pc" while the thread is in a system call.
  char path[64];
  char buf[512];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0 || buf[0] < '0' || buf[0] > '9') return 0;
  buf[got] = '\0';
  std::uintptr_t field[9] = {};
  int k = 0;
  // strtok_r: strtok keeps its place in one global, shared by every thread (the monitor
  // parses /proc at the same time; ThreadSanitizer saw the race).
  char* rest = nullptr;
  for (char* t = strtok_r(buf, " \n", &rest); t != nullptr && k < 9;
       t = strtok_r(nullptr, " \n", &rest)) {
    field[k++] = static_cast<std::uintptr_t>(std::strtoull(t, nullptr, 0));
  }
  if (k < 9) return 0;
  std::uintptr_t sp = field[7], pc = field[8];
  // The worker writes g's stack bounds when it binds a stack (install); a stale pair
  // only makes the bounds checks below fail.
  auto lo = peek(reinterpret_cast<std::uintptr_t>(&g->stack.lo));
  auto hi = peek(reinterpret_cast<std::uintptr_t>(&g->stack.hi));
  if (sp < lo || sp >= hi || (sp & 7) != 0) return 0;
  auto code = exec_ranges();
  int m = 0;
  out[m++] = pc;
  // The system call wrapper keeps no frame pointer: find the first frame record above
  // sp (a saved frame pointer further up, then a return address), then follow the chain.
  std::uintptr_t rec = 0;
  for (std::uintptr_t w = sp; w + 2 * sizeof(std::uintptr_t) <= hi && w < sp + 4096;
       w += sizeof(std::uintptr_t)) {
    std::uintptr_t next = peek(w);
    if (next > w && next < hi && (next & 7) == 0 && is_code(code, peek(w + sizeof next))) {
      rec = w;
      break;
    }
  }
  // The return address into the function that called the wrapper lies between sp and
  // that record, right above the wrapper's own small frame (above it come the caller's
  // saved registers, which may hold code pointers): take the lowest word there that
  // points into code.
  for (std::uintptr_t w = sp; rec != 0 && w < rec; w += sizeof(std::uintptr_t)) {
    if (is_code(code, peek(w))) {
      out[m++] = peek(w);
      break;
    }
  }
  while (rec != 0 && m < max) {
    std::uintptr_t next = peek(rec), ret = peek(rec + sizeof rec);
    if (!is_code(code, ret)) break;
    out[m++] = ret;
    if (next <= rec || next + 2 * sizeof next > hi) break;
    rec = next;
  }
  return m;
}

int sample_running_stack(goroutine* g, std::uintptr_t* out, int max,
                         std::int64_t deadline) noexcept {
  scheduler* s = sched_if_started();
  if (s == nullptr) return 0;
  std::unique_lock lk(sample_lock, std::defer_lock);
  while (!lk.try_lock()) {
    if (nanotime() >= deadline) return 0;
    timespec pause{0, 100'000};
    nanosleep(&pause, nullptr);
  }
  int n = s->created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    processor* p = s->procs[i].load(std::memory_order_acquire);
    if (p->running.load(std::memory_order_relaxed) != g) continue;
    p->sample_word.store(0, std::memory_order_relaxed);
    p->sample_for.store(g, std::memory_order_release);
    if (syscall(SYS_tgkill, getpid(), p->tid.load(std::memory_order_acquire), SIGURG) != 0) {
      p->sample_for.store(nullptr, std::memory_order_relaxed);
      return 0;
    }
    while (p->sample_word.load(std::memory_order_acquire) == 0) {
      std::int64_t left = deadline - nanotime();
      if (left <= 0) {
        // No answer (signals blocked on that thread): withdraw the request. A late
        // handler then finds sample_for null and passes the signal on.
        p->sample_for.store(nullptr, std::memory_order_release);
        return 0;
      }
      futex_wait(&p->sample_word, 0, left);
    }
    int got = std::min(p->sample_n.load(std::memory_order_relaxed), max);
    for (int k = 0; k < got; ++k) out[k] = p->sample_pcs[k];
    return got;
  }
  return 0;
}

}  // namespace goro::detail
