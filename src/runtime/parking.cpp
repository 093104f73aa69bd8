// parking.cpp — park/unpark for goroutines and plain threads. Protocol in parking.hpp.
//
// Memory ordering: unpark() publishes with a release RMW on the permit word (idle ->
// notified, notified -> notified, or parked -> idle); park() consumes with an acquire
// RMW. Every access that decides "a permit is there" is an RMW, so it reads the
// latest value in the word's modification order and synchronizes with the unpark that
// wrote it: whatever the waker wrote before unpark() (a value handed over, a `done`
// flag) is visible to the parked side when it re-checks its condition. (A plain load
// could see an older permit, already covered by a different unpark, and let the
// parker miss the new one's data and park again forever.)
#include "runtime/parking.hpp"

#include "runtime/bubble.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/scheduler_internal.hpp"
#include "runtime/sys.hpp"

#include <mutex>
#include <vector>

namespace goro::detail {

namespace {

// A plain thread's parker outlives the thread. A waker marks a waiter done and then
// unparks it; in between, the waiter may see `done`, return, and its thread exit. So
// thread parkers are never freed: an exiting thread returns its parker to a free list
// and a new thread reuses it. A late unpark then leaves a stale permit on a parker in
// use by another thread, which the protocol tolerates (park callers re-check their
// condition in a loop), instead of writing to freed thread-local storage.
spinlock free_parkers_lock;
std::vector<parker*>* free_parkers = nullptr;  // under free_parkers_lock; never freed

// The calling thread's parker, or null. A plain pointer, constant-initialized: fork's
// child handler reads it without the first-use set-up of thread_parker below, which
// allocates (registering the destructor) and may not in a child of fork().
thread_local parker* own_parker = nullptr;

struct thread_parker_slot {
  parker* p = nullptr;
  ~thread_parker_slot() {
    if (p == nullptr) return;
    own_parker = nullptr;
    std::lock_guard lk(free_parkers_lock);
    if (free_parkers == nullptr) free_parkers = new std::vector<parker*>;
    free_parkers->push_back(p);
    p = nullptr;
  }
};
thread_local thread_parker_slot thread_parker;

[[gnu::noinline]] parker* thread_parker_for_this_thread() {
  if (thread_parker.p != nullptr) return thread_parker.p;
  parker* p = nullptr;
  {
    std::lock_guard lk(free_parkers_lock);
    if (free_parkers != nullptr && !free_parkers->empty()) {
      p = free_parkers->back();
      free_parkers->pop_back();
    }
  }
  if (p == nullptr) p = new parker;  // never freed (see above)
  p->fork_gen = fork_generation.load(std::memory_order_relaxed);
  thread_parker.p = p;
  own_parker = p;
  return p;
}

}  // namespace

std::atomic<std::uint8_t> fork_generation{0};

void fatal_thread_waiter_in_forked_child(const char* what) noexcept {
  fatal_in_child_of_fork(
      what,
      "the waiter is a thread that was waiting in the parent, and no thread but the one "
      "that forked exists here, so what it was given would be lost. A child may exec or "
      "_exit; to use goro in both, fork before the first goro call.\n");
}

void parkers_after_fork_child() noexcept {
  auto gen = static_cast<std::uint8_t>(fork_generation.load(std::memory_order_relaxed) + 1);
  fork_generation.store(gen, std::memory_order_relaxed);
  if (own_parker != nullptr) own_parker->fork_gen = gen;
}

// Reads the thread-local processor itself (one call on every channel operation that
// blocks), and so, like current_processor(), is never inlined.
[[gnu::noinline]] parker* current_parker() noexcept {
  asm volatile("" ::: "memory");
  processor* p = tls_processor;
  goroutine* g = p ? p->current : nullptr;
  if (g != nullptr) [[likely]] return &g->park;
  return thread_parker_for_this_thread();
}

void park(parker* self, wait_reason reason) noexcept {
  if (self->bubbled.load(std::memory_order_relaxed)) [[unlikely]] {
    goroutine* g = self->g;
    if (bubble* b = g->in_bubble.load(std::memory_order_relaxed)) {
      if (b->explore != nullptr) {
        explore_park(b->explore, self, reason);  // takes its turn back (bubble.hpp)
        return;
      }
    }
  }
  park_raw(self, reason);
}

void park_raw(parker* self, wait_reason reason) noexcept {
  // Consume a pending permit with a read-modify-write, never a load and a store: a
  // load could return an older permit than the one an unpark() just confirmed, and
  // then nothing orders that waker's writes (the value, the `done` flag) before our
  // re-check of the condition. The RMW reads the latest value, so it synchronizes
  // with the waker's RMW (see unpark). A load that reads `idle` may only skip the RMW:
  // the idle -> parked CAS that publishes the park (complete_switch, or below for a
  // thread) reads the latest value, and a permit that arrived meanwhile fails it and
  // is consumed there. That saves a locked instruction on every park that waits.
  if (self->state.load(std::memory_order_relaxed) != parker::idle &&
      self->state.exchange(parker::idle, std::memory_order_acq_rel) == parker::notified) {
    return;
  }
  check_not_forked("a wait");
  if (self->g != nullptr) {
    park_goroutine(self->g, reason, self);  // returns with the permit consumed
    return;
  }
  std::uint32_t expected = parker::idle;
  if (self->state.compare_exchange_strong(expected, parker::parked, std::memory_order_acq_rel)) {
    while (self->state.load(std::memory_order_acquire) == parker::parked) {
      futex_wait(&self->state, parker::parked);
    }
  }
  self->state.exchange(parker::idle, std::memory_order_acq_rel);  // consume the permit (RMW)
}

void unpark(parker* p) noexcept {
  if (p->bubbled.load(std::memory_order_relaxed)) [[unlikely]] {
    goroutine* g = p->g;
    if (bubble* b = g->in_bubble.load(std::memory_order_relaxed)) {
      // Schedule exploration: a goroutine of the bubble woken from inside it becomes
      // ready in the waker's program order, before it can run (bubble.hpp). `b` is
      // only followed once it is known to be the caller's own, live bubble.
      if (b == current_bubble() && b->explore != nullptr) explore_woken(b->explore, g);
    }
  }
  std::uint32_t s = p->state.load(std::memory_order_relaxed);
  for (;;) {
    if (s == parker::notified) {
      // A permit is already pending. Confirm it with an RMW (rewriting the same value)
      // rather than returning on a plain load: the parker's consuming RMW then reads
      // our write and sees everything we wrote before unpark (see park).
      if (p->state.compare_exchange_weak(s, parker::notified, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    if (s == parker::idle) {
      if (p->state.compare_exchange_weak(s, parker::notified, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    // parked
    if (p->g != nullptr) {
      if (p->state.compare_exchange_weak(s, parker::idle, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
        if (p->durable.load(std::memory_order_relaxed)) [[unlikely]] {
          bubble_woken(p->g->in_bubble.load(std::memory_order_relaxed));  // before it runs
        }
        set_state(p->g, g_state::waiting, g_state::runnable);
        make_runnable(p->g, /*next=*/true);
        return;
      }
      continue;
    }
    if (p->state.compare_exchange_weak(s, parker::notified, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      futex_wake(&p->state, 1);
      return;
    }
  }
}

}  // namespace goro::detail
