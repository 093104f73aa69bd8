// switch.cpp — switching stacks: installing a goroutine on a processor, switching
// to it and away from it, carrying out what it asked for (yield, park, exit), and the
// worker loop on the scheduler stack (g0). The park protocol and the per-thread state
// rules are in the design essay at the top of scheduler.cpp.
//
// Invariants:
//   - Only a processor's own worker runs this code for that processor, so the fields
//     marked "owned by the worker thread" in scheduler.hpp need no synchronisation.
//   - A goroutine's registers are saved before anything publishes it (complete_switch
//     runs in the context that resumes next), so no other worker can run it early.
#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "goro/detail/spawn.hpp"
#include "runtime/bubble.hpp"
#include "runtime/context.hpp"
#include "runtime/scheduler_internal.hpp"

#if defined(GORO_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GORO_TSAN)
#include <sanitizer/tsan_interface.h>
// The compiler's function-exit hook (what every instrumented return calls); not in the
// public header.
extern "C" void __tsan_func_exit();
#endif

namespace goro::detail {

void report_panic(goroutine* g, std::exception_ptr e) noexcept;                   // api.cpp
[[noreturn]] void report_stack_overflow(goroutine* g, const char* how) noexcept;  // api.cpp

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
    next->tsan_fiber = p->tsan_fiber_count > 0 ? p->tsan_fibers[--p->tsan_fiber_count]
                                               : __tsan_create_fiber(0);
#endif
  }
}

// The one place that switches stacks: from the running context (`from`, or g0 when
// null) to `to` (or g0 when null). Returns when `from` is resumed, maybe elsewhere.
// Under ThreadSanitizer it is a frame of its own (see the exit case below).
#if defined(GORO_TSAN)
[[gnu::noinline]]
#endif
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
  // An exiting goroutine never returns from this frame: pop it from its fiber's shadow
  // stack (goroutine_entry popped its own), so that the fiber, reused by the next
  // goroutine to start here, starts empty.
  if (exiting) __tsan_func_exit();
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
    report_stack_overflow(prev, prev->stack.guarded ||
                                        !zone_reads_commit.load(std::memory_order_relaxed)
                                    ? "the reserve zone at the bottom of the stack was written"
                                    : "the reserve zone at the bottom of the stack was written "
                                      "(by this goroutine, or by one that ran on this stack "
                                      "before it and returned from the overflow)");
  }
  scheduler& s = *the_scheduler.load(std::memory_order_acquire);
  switch (action) {
    case after_switch::yield:
      set_state(prev, g_state::running, g_state::runnable);
      if (prev->locked_to != nullptr) {
        p->locked_ready.store(prev, std::memory_order_relaxed);  // p is its own thread
        return;
      }
      p->runq.push(prev, false, s.global);
      // Runnable work, as a wake-up is: an idle processor may take it. (Without this a
      // worker that found p's queue empty in the moment between taking the next
      // goroutine and requeueing this one slept while two goroutines yielding to each
      // other shared p for good.)
      wakep(s);
      return;
    case after_switch::preempt:
      set_state(prev, g_state::running, g_state::runnable);
      s.global.push(prev);  // p itself takes it back, after its queue and what waited
      wakep(s);
      return;
    case after_switch::park: {
      set_state(prev, g_state::running, g_state::waiting);
      // A durable park in a synctest bubble is counted once it is published; the
      // reference keeps the bubble alive until then (bubble.hpp).
      parker* pk = p->park_target;
      bubble* durable = nullptr;
      if (pk->durable.load(std::memory_order_relaxed)) [[unlikely]] {
        durable = prev->in_bubble.load(std::memory_order_relaxed);
        bubble_retain(durable);
      }
      std::uint32_t expected = parker::idle;
      if (pk->state.compare_exchange_strong(expected, parker::parked, std::memory_order_acq_rel)) {
        // whoever unparks it owns it now
        if (durable != nullptr) [[unlikely]] {
          bubble_parked(durable);
          bubble_release(durable);
        }
        return;
      }
      if (durable != nullptr) [[unlikely]] bubble_release(durable);
      // A permit arrived while it was switching out: consume it (an RMW, as in
      // park()) and run it next.
      pk->state.exchange(parker::idle, std::memory_order_acq_rel);
      set_state(prev, g_state::waiting, g_state::runnable);
      if (prev->locked_to != nullptr) {
        p->locked_ready.store(prev, std::memory_order_relaxed);
        return;
      }
      p->runq.push(prev, true, s.global);
      return;
    }
    case after_switch::exit:
      set_state(prev, g_state::running, g_state::dead);
      release_stack(&p->stacks, prev->stack, prev->stack_size);
      prev->stack = stack_slot{};
#if defined(GORO_TSAN)
      if (p->tsan_fiber_count < processor::tsan_fiber_cache_size) {
        p->tsan_fibers[p->tsan_fiber_count++] = prev->tsan_fiber;
      } else {
        __tsan_destroy_fiber(prev->tsan_fiber);
      }
      prev->tsan_fiber = nullptr;
#endif
      // Single writer. Released so that num_goroutine, seeing this exit, also sees
      // the goroutine's spawn, which happened before it ran (api.cpp).
      p->exited.store(p->exited.load(std::memory_order_relaxed) + 1,
                      std::memory_order_release);
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

// The next goroutine to switch to directly, or null when the scheduler loop must run
// (fairness tick for the global queue, due timers, retirement, or no local work).
[[gnu::always_inline]] inline goroutine* pick_local(processor* p) noexcept {
  if (p->retired.load(std::memory_order_relaxed)) return nullptr;
  if (p->schedtick.load(std::memory_order_relaxed) % 61 == 60) return nullptr;
  if (timers_due(p)) return nullptr;
  for (;;) {
    goroutine* g = take_local(p);
    if (g == nullptr || g->blocker_credit.load(std::memory_order_relaxed) == 0) return g;
    if (!dispatch_blocker(p, g)) return g;  // else a spare thread runs it: take the next
  }
}

// Switches the running goroutine g out of p with `action`, to `next` (already taken
// from p's queue by pick_local) or, when null, to the scheduler loop. Returns when g
// runs again.
[[gnu::always_inline]] inline void switch_out(processor* p, goroutine* g, after_switch action,
                                              goroutine* next) noexcept {
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
  bubble* in = nullptr;
  if (g->park.bubbled.load(std::memory_order_relaxed)) [[unlikely]] {
    in = g->in_bubble.load(std::memory_order_relaxed);
  }
  explorer* ex = in ? in->explore : nullptr;
  if (ex != nullptr) [[unlikely]] explore_start(ex, g);  // waits for its first turn
  std::exception_ptr thrown;
  try {
    g->body->run();
    delete g->body;
  } catch (...) {
    // Under schedule exploration an escaping exception is the run's failure, not the
    // process's end.
    if (ex == nullptr) {
      report_panic(g, std::current_exception());
    } else {
      thrown = std::current_exception();
      delete g->body;
    }
  }
  g->body = nullptr;
  if (in != nullptr) [[unlikely]] {
    if (ex != nullptr) explore_exit(ex, g, std::move(thrown));
    {
      std::lock_guard lk(g->meta_lock);  // out of the bubble's dumps from here on
      g->in_bubble.store(nullptr, std::memory_order_relaxed);
    }
    g->park.bubbled.store(false, std::memory_order_relaxed);
    bubble_exited(in);
  }
  processor* p = current_processor();
  if (g->locked_to != nullptr) {
    // Exiting while locked: the thread may hold state the goroutine changed (Go's
    // rule), so it is not reused. Its worker ends once the goroutine is freed.
    g->locked_to = nullptr;
    g->lock_count = 0;
    p->defunct.store(true, std::memory_order_release);
  }
#if defined(GORO_TSAN)
  __tsan_func_exit();  // this frame never returns (see switch_context)
#endif
  goroutine* next = pick_local(p);
  // The goroutine after the next one, asked from memory now: spawned in a burst, it
  // was queued long ago and its descriptor is out of the cache (W1: 7% at 2
  // processors). Only here: on a yield's path the check costs more than it saves.
  if (goroutine* after = p->runq.peek_ring()) prefetch_descriptor(after);
  switch_out(p, g, after_switch::exit, next);
  __builtin_trap();  // an exited goroutine is never resumed
}

}  // namespace

void park_goroutine(goroutine* g, wait_reason reason, parker* pk) noexcept {
  g->reason.store(reason, std::memory_order_relaxed);  // relaxed: diagnostics only
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // coarse: dumps show minutes, not ns
  g->wait_since.store(std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec,
                      std::memory_order_relaxed);
  processor* p = current_processor();
  p->park_target = pk;
  p->parks.store(p->parks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
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
  if (g->park.bubbled.load(std::memory_order_relaxed)) [[unlikely]] {
    bubble* b = g->in_bubble.load(std::memory_order_relaxed);
    if (b->explore != nullptr) {
      explore_point(b->explore, /*yielded=*/true);  // under exploration, the turn yields
      return;
    }
  }
  goroutine* next = pick_local(p);
  if (next == nullptr && p->runq.empty()) [[unlikely]] {
    scheduler& s = *the_scheduler.load(std::memory_order_acquire);
    if (s.global.size() == 0 && !timers_due(p) &&
        external_timers().next_deadline() == timer_heap::no_deadline &&
        !p->retired.load(std::memory_order_relaxed)) {
      // Nothing else could run here: carry on, as Go's Gosched would. A goroutine
      // yielding in a loop alone never reaches the scheduler loop (whose fairness
      // round polls), so it lets ready I/O complete now and then itself.
      poll_if_stale(s);
      return;
    }
  }
  switch_out(p, g, after_switch::yield, next);
}

void preempt_point() noexcept {
  processor* p = current_processor();
  goroutine* g = p ? p->current : nullptr;
  if (g == nullptr) return;
  if (p->preempt_tick.load(std::memory_order_relaxed) !=
      p->schedtick.load(std::memory_order_relaxed)) [[likely]] {
    return;
  }
  // The monitor never asks a locked goroutine's processor. One without a slot (handed
  // off, retired) is asked after a time slice: the goroutine goes back in line for a
  // slot here, and its thread becomes a spare. It computed meanwhile, so its blocker
  // credits go, or the processor that takes it would hand it to a spare thread again
  // at once; a run on a spare thread that only blocked gets them back
  // (end_dispatched_run), and a goroutine that blocks again is caught again.
  if (g->locked_to != nullptr) return;
  if (p->retired.load(std::memory_order_relaxed)) {
    g->blocker_credit.store(0, std::memory_order_relaxed);
  }
  switch_out(p, g, after_switch::preempt, pick_local(p));
}

void worker_main(scheduler* s, processor* p) {
  tls_processor = p;
  p->tid.store(static_cast<int>(gettid()), std::memory_order_release);
  // Named for top -H, perf and gdb; unnamed, a worker the monitor started (a hand-off)
  // would carry the monitor's name.
  pthread_setname_np(pthread_self(), "goro-worker");
  // Timer waits use futex timeouts; the default 50 us slack would make every timer
  // that much late.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  p->eh = reinterpret_cast<eh_globals*>(abi::__cxa_get_globals());
  p->rand_state = 0x9E3779B9u * static_cast<std::uint32_t>(p->id + 1);
  stack_t ss{};
  ss.ss_sp = p->alt_stack;
  ss.ss_size = 64 * 1024;
  stack_t previous{};  // AddressSanitizer's, if any: it frees that one at thread exit
  sigaltstack(&ss, &previous);
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
    if (p->dispatched != nullptr) end_dispatched_run(p);
    complete_switch(p);
    goroutine* g = find_runnable(*s, p);
    if (g == nullptr) {
      // Its locked goroutine exited (wait_for_locked): the thread ends, and what the
      // processor cached goes back for the others to use.
      flush_stack_cache(&p->stacks);
#if defined(GORO_TSAN)
      while (p->tsan_fiber_count > 0) __tsan_destroy_fiber(p->tsan_fibers[--p->tsan_fiber_count]);
#endif
      flush_goroutine_cache(p);
      flush_task_cache(p);
      sigaltstack(&previous, nullptr);  // p->alt_stack goes to the next thread
      p->thread_gone.store(true, std::memory_order_release);
      return;
    }
    if (g->blocker_credit.load(std::memory_order_relaxed) != 0 &&
        !p->retired.load(std::memory_order_relaxed) && dispatch_blocker(p, g)) {
      continue;  // a spare thread runs it
    }
    stop_spinning(*s, p);
    install(p, g);
    switch_context(p, nullptr, g, false);
  }
}

}  // namespace goro::detail
