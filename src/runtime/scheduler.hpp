// scheduler.hpp — processors, the scheduler singleton, and the entry points the rest of
// the runtime uses. The design essay is at the top of scheduler.cpp.
#pragma once

#include <exception>
#include <string>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "runtime/goroutine.hpp"
#include "runtime/run_queue.hpp"
#include "runtime/stack.hpp"
#include "runtime/sys.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

// The C++ runtime's per-thread exception state (libstdc++ and libc++abi agree on it):
// the exceptions being handled and the std::uncaught_exceptions() count.
struct eh_globals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

// What a goroutine asked its worker to do when it switched to the scheduler context.
// preempt: a yield asked for by the system monitor (preempt_point), to the global
// queue's tail as Go's preempted goroutines go, behind the work that was starving.
enum class after_switch : std::uint8_t { none, yield, preempt, park, exit };

// Free blocks for small tasks, by 16-byte size class (task_alloc.cpp).
inline constexpr std::size_t max_pooled_task = 64;
inline constexpr int task_classes = static_cast<int>(max_pooled_task / 16);
struct task_cache {
  void* free[task_classes] = {};
  int count[task_classes] = {};
};
struct processor;
// Gives p's free task blocks to the global lists (p's thread ends).
void flush_task_cache(processor* p) noexcept;

// A processor: the right to run goroutines, with its own run queue and caches, driven
// by exactly one worker thread for its whole life. A processor holds one of the
// max_procs() slots unless it is retired (see "Processors and threads" in scheduler.cpp).
struct processor {
  int id = 0;
  local_run_queue runq;

  // --- owned by the worker thread; nobody else touches these ---
  goroutine* current = nullptr;  // the goroutine running now, or null on g0
  goroutine* prev = nullptr;     // just switched away; its action is pending
  void* sched_sp = nullptr;      // the worker's scheduler context while g runs
  after_switch action = after_switch::none;
  parker* park_target = nullptr;  // the parker of a park action (the goroutine's, or
                                  // another with the same g: explore's turn parker)
  bool spinning = false;  // counted in scheduler::nmspinning
  goroutine* free_goroutines = nullptr;
  int free_count = 0;
  task_cache tasks;  // free blocks for small tasks (task_alloc.cpp)
  stack_cache stacks;
  std::uint64_t id_next = 0, id_end = 0;  // a batch of goroutine ids
  std::uint32_t rand_state = 0;
  // Work stealing's record (find_work.cpp, judge_last_steal): when this processor last
  // stole and how many goroutines, how many steals in a row were futile, and until
  // when it takes only goroutines settled on their victim (steal_rule).
  std::int64_t stole_at = 0;
  std::int64_t stole_count = 0;
  std::int64_t stole_exited = 0;  // `exited` then
  int futile_steals = 0;
  std::int64_t settled_only_until = 0;
  void* alt_stack = nullptr;
  eh_globals* eh = nullptr;  // this thread's C++ exception-handling globals
#if defined(GORO_TSAN)
  void* tsan_sched_fiber = nullptr;
  // ThreadSanitizer fibers of exited goroutines, for the next ones to start here. A
  // fiber is a whole ThreadSanitizer thread state (about a megabyte, zeroed when
  // created): on a host with slow page faults creating one takes milliseconds. Reuse
  // hides no race the switches do not already order: every switch on this worker
  // synchronizes the goroutine switched from with the one switched to (switch.cpp).
  // An exiting goroutine leaves its fiber's shadow stack empty (switch.cpp); the cache
  // is emptied when the worker thread ends.
  static constexpr int tsan_fiber_cache_size = 32;
  void* tsan_fibers[tsan_fiber_cache_size] = {};
  int tsan_fiber_count = 0;
#endif
#if defined(GORO_ASAN)
  void* asan_fake_stack = nullptr;
  const void* sched_stack_bottom = nullptr;
  std::size_t sched_stack_size = 0;
#endif

  // --- shared ---
  timer_heap timers;                        // this processor's timers (own lock)
  std::atomic<std::uint64_t> schedtick{0};  // bumped per goroutine run; thieves read it
  // The goroutine running now, null while the worker is in its scheduler loop. Set
  // with schedtick at every install; the system monitor (monitor.cpp) and dumps read it.
  std::atomic<goroutine*> running{nullptr};
  std::atomic<std::uint32_t> wake_word{0};  // futex: 1 once a waker took us off idle
  // Holds no slot: set_max_procs shrank, or the system monitor handed the slot to
  // another processor because this one's goroutine held the thread (handed_off).
  // Changed under scheduler::procs_lock, except that the worker clears handed_off
  // when it reaches retire().
  std::atomic<bool> retired{false};
  // Set by the monitor when the ring has not moved for a time slice while runnext
  // hand-offs kept the processor busy; the owner's next pop takes the ring's head
  // first and clears it (Go's runnext inherits one time slice).
  std::atomic<bool> runnext_expired{false};
  std::atomic<bool> handed_off{false};
  std::atomic<bool> handed_for_cpu{false};  // handed off while computing (monitor budget)
  // The schedtick at which the monitor asked the running goroutine to yield at its
  // next preemption point (preempt_point): it has computed for a time slice while
  // others wait. Stale once the tick moves on.
  std::atomic<std::uint64_t> preempt_tick{~std::uint64_t{0}};
  // Its worker sleeps in retire(), ready for a slot or for a known blocker to run
  // without one. A dispatcher claims it by CASing spare true -> false, then stores
  // `assigned` and wakes it; the worker takes `assigned` before it sets spare again.
  std::atomic<bool> spare{false};
  std::atomic<goroutine*> assigned{nullptr};
  // Owned by the worker: the known blocker it runs without a slot, and when that run
  // started: the thread's context switches and CPU time, and the time, to see whether
  // it blocked (end_dispatched_run).
  goroutine* dispatched = nullptr;
  long dispatched_switches = 0;
  long dispatched_preempted = 0;
  std::int64_t dispatched_cpu_ns = 0;
  std::int64_t dispatched_at_ns = 0;
  // The goroutine wired to this processor's thread by lock_os_thread (null: none).
  // Set and cleared by that goroutine, under procs_lock; a processor with one holds
  // no slot and runs nothing else, so neither activation nor dispatch may pick it.
  std::atomic<goroutine*> locked_g{nullptr};
  // The locked goroutine, made runnable: handed straight to this worker (never queued).
  std::atomic<goroutine*> locked_ready{nullptr};
  // Its locked goroutine exited: the worker thread ends with it (Go's rule). Then
  // thread_gone (the worker's last store) lets the processor be given a new thread
  // (revive_locked in scheduler.cpp), so such exits do not use up GORO_MAX_THREADS.
  std::atomic<bool> defunct{false};
  std::atomic<bool> thread_gone{false};
  std::atomic<int> tid{0};  // the worker's kernel thread id (for /proc)
  // Written by the system monitor only: the tick it last saw and when it first saw it,
  // so `now - tick_since` is how long the running goroutine has held the thread.
  std::atomic<std::uint64_t> tick_seen{~std::uint64_t{0}};
  std::atomic<std::int64_t> tick_since{0};
  // A stack sample of the running goroutine (monitor.cpp): the requester sets
  // sample_for and clears sample_word, signals the worker, and waits for sample_word;
  // the worker's signal handler fills sample_pcs/sample_n and sets sample_word.
  std::atomic<goroutine*> sample_for{nullptr};
  std::atomic<std::uint32_t> sample_word{0};
  std::atomic<int> sample_n{0};
  std::uintptr_t sample_pcs[64] = {};
  std::atomic<bool> in_poll{false};  // sleeping in epoll_wait (netpoll_break wakes)
  // Single-writer counters (the worker), read by num_goroutine().
  std::atomic<std::int64_t> spawned{0};
  std::atomic<std::int64_t> exited{0};
  // Single-writer counters for goro::debug::metrics(), summed on read: the worker
  // bumps them with a relaxed load and store on its own processor, no shared line.
  std::atomic<std::uint64_t> parks{0};   // goroutines parked here
  std::atomic<std::uint64_t> steals{0};  // successful steals from other processors

  // --- under scheduler::idle_lock ---
  bool in_idle_list = false;
  processor* idle_next = nullptr;

  std::thread thread;
};

struct scheduler {
  static constexpr int max_processors = 1024;  // the largest max_procs()

  // Every processor ever created, by id; entries [0, created) are non-null. Its
  // capacity is the thread limit (GORO_MAX_THREADS): processors are never destroyed.
  std::atomic<processor*>* procs = nullptr;
  int procs_capacity = 0;
  std::atomic<int> nprocs{0};   // max_procs(): the number of slots (non-retired processors)
  std::atomic<int> created{0};  // processor objects that exist
  global_run_queue global;

  spinlock idle_lock;                           // guards the idle list and timed sleeper
  processor* idle_head = nullptr;               // under idle_lock
  processor* timed_sleeper = nullptr;           // under idle_lock: idle, sleeping until a timer
  std::int64_t timed_until = 0;                 // under idle_lock
  std::atomic<int> npidle{0};                   // processors in the idle list
  std::atomic<int> nmspinning{0};               // processors looking for work without sleeping
  std::atomic<processor*> poll_owner{nullptr};  // the idle worker sleeping in netpoll

  std::atomic<std::uint64_t> next_goroutine_id{1};
  std::atomic<std::int64_t> external_spawned{0};  // spawns from plain threads
  spinlock procs_lock;  // serialises set_max_procs and the monitor's hand-offs
};

// The scheduler, started on first call. Never destroyed (workers may outlive main).
scheduler& sched();
// The scheduler if it has been started, else null. Never starts it.
scheduler* sched_if_started() noexcept;

// The calling worker's processor, or null on a plain thread. Not inlined, and reads
// the thread-local afresh on every call: a goroutine can resume on another thread.
processor* current_processor() noexcept;
goroutine* current_goroutine() noexcept;

// Makes a parked or new goroutine runnable. From a worker it goes to that processor's
// runnext slot (`next`) or ring; from a plain thread, to the global queue.
void make_runnable(goroutine* g, bool next) noexcept;

// What an exception says and its type (api.cpp).
std::string describe_exception(std::exception_ptr e);

// Goroutine side of park(): switches to the scheduler with the park action.
// `pk` is the parker whose permit it waits for (pk->g == g).
void park_goroutine(goroutine* g, wait_reason reason, parker* pk) noexcept;

// goro::yield: switches the calling goroutine out to the back of its processor's
// queue, or yields the thread when called from a plain thread.
void yield_current() noexcept;
// A cooperative preemption point (Go's checks at function entry play this part): the
// running goroutine yields if the monitor asked it to. Called where goroutines that
// never block pass often (goro::go); a no-op on plain threads.
void preempt_point() noexcept;

// Called when a newly added timer became the earliest one.
void timer_added(std::int64_t when) noexcept;

// Called by anyone about to wait in the netpoller: if nobody holds the poller role and
// a worker is idle, wakes it to take the role (a worker asleep on its futex would
// otherwise not notice the I/O while its neighbours are busy).
void netpoll_need_poller() noexcept;

// goro::blocking calls whose goroutine waits for a helper thread (blocking.cpp).
bool blocking_calls_pending() noexcept;
// A line for dumps while goro::blocking calls queue because every helper thread (up to
// the limit) is busy; empty otherwise. (blocking.cpp)
std::string blocking_pool_report();
// Helper threads alive now, busy or idle.
int blocking_helper_threads() noexcept;

// Creates a goroutine for `t` (used by spawn and run).
goroutine* new_goroutine(task* t, std::size_t stack_size, std::string_view name,
                         const std::source_location& where);

int configured_max_procs() noexcept;

// Deadlock detection (idle.cpp): goro::run marks its thread while main runs; helper
// threads the runtime starts are counted, so that any other thread alive in the
// process holds the verdict (it could wake a goroutine).
void set_run_thread(bool inside_run) noexcept;
void note_runtime_thread(int delta) noexcept;
// goro's own helper threads alive (monitor, dump, scavenger, ...), for metrics.
int runtime_thread_count() noexcept;
// Threads of the process now, from /proc/self/stat (-1 if unreadable).
int process_thread_count() noexcept;
// Worker threads put to sleep on their futex (idle, retired, locked) and woken by
// another thread, since start-up (goro::debug::metrics). Slow paths: a futex system
// call each.
std::uint64_t worker_sleeps() noexcept;
std::uint64_t worker_wakeups() noexcept;
void note_worker_sleep() noexcept;
void note_worker_wakeup() noexcept;
void disable_deadlock_detection() noexcept;
void resize_processors(int n);

// lock_os_thread / unlock_os_thread for the goroutine g running on p (see "Locked
// goroutines" in scheduler.cpp's essay).
void lock_thread(processor* p, goroutine* g);
void unlock_thread(processor* p, goroutine* g);

// --- the system monitor's interface (monitor.cpp) ---
// Starts the monitor thread (once, with the runtime).
void start_monitor(scheduler& s);
// A worker leaving idle calls this: a monitor in its deep sleep (every processor was
// idle) wakes and watches again.
void monitor_wake() noexcept;
// Wakes the monitor now: work was queued where only a processor that may be held in
// foreign code would find it. At most one wake-up per monitor sleep.
void monitor_poke() noexcept;
// Gives processor p's slot to another processor (a spare, or a new one): p's
// goroutine holds its thread in foreign code. Returns false if p holds no slot
// (already retired). Fatal past the thread limit. Called with procs_lock held.
bool hand_off_locked(scheduler& s, processor* p);
// g, just taken from a queue by processor p to run, is a known blocker (it has
// blocker credits): spends one and hands g to a spare worker thread (or a new one)
// that runs it without a slot, so p's slot goes on to the next goroutine. False if g
// must run on p after all (no credit, or the thread limit is reached).
// With may_start_thread false, only a spare already asleep is used (make_runnable
// calls it from any context, timer callbacks included).
bool dispatch_blocker(processor* p, goroutine* g, bool may_start_thread = true) noexcept;
// Creates processor `id` (the next one: id == created) and counts it in `created`,
// then starts its worker thread (procs_lock held).
// With `blocker`, the processor starts retired and runs that goroutine without a slot.
void start_processor(scheduler& s, int id, goroutine* blocker = nullptr);
// The worker thread limit (GORO_MAX_THREADS, default 10,000).
int max_threads() noexcept;
// Called by the monitor about once a second. While max_procs() follows the default
// (neither GORO_MAXPROCS nor set_max_procs chose it, and the process's cgroup has a
// CPU limit file), rereads the cgroup's limit and resizes when the default changed.
void follow_cpu_limit();
// The earliest timer over every heap; nanotime-based, timer_heap::no_deadline if none.
std::int64_t earliest_timer(scheduler& s);
// Go's wakep: wakes an idle processor to spin if none is spinning.
void wake_idle_processor(scheduler& s) noexcept;

}  // namespace goro::detail
