// parking.hpp — the one parking mechanism every blocking primitive is built on.
//
// Each goroutine has a parker, and so does each plain thread that blocks in goro.
// A parker holds at most one wake-up permit:
//
//   idle ──park()──▶ parked ──unpark()──▶ idle (the goroutine/thread runs again)
//   idle ──unpark()──▶ notified ──park()──▶ idle (park returns at once)
//
// The protocol for a primitive (wait_group, channels, mutexes ...):
//   1. Under the primitive's own lock, the blocking side links a `waiter` (on its own
//      stack) that names its parker, then releases the lock and calls park().
//   2. The waking side unlinks the waiter under the lock, marks it done (release),
//      releases the lock, then calls unpark() — waiters are woken after the lock is
//      released, never under it.
//   3. park() may return without the waiter being done (a permit left by an earlier,
//      cancelled wait), so the blocking side loops: `while (!w.done) park(...)`.
//
// A goroutine's park() switches to its worker's scheduler context; the worker then
// publishes `parked` (parking.cpp), so an unpark() that races with the switch either
// sees `idle` and leaves a permit, or sees `parked` and makes the goroutine runnable —
// never both, never neither. A plain thread sleeps on a futex on the same word.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sys.hpp"
#include "runtime/wait_reason.hpp"

namespace goro::detail {

struct goroutine;

struct parker {
  static constexpr std::uint32_t idle = 0;
  static constexpr std::uint32_t parked = 1;
  static constexpr std::uint32_t notified = 2;
  std::atomic<std::uint32_t> state{idle};
  // Flags for synctest bubbles (bubble.hpp), kept here, in the line park and unpark
  // touch anyway: the goroutine belongs to a bubble (set at spawn, cleared at exit);
  // it is parking durably (set and cleared by the goroutine around the park).
  std::atomic<bool> bubbled{false};
  std::atomic<bool> durable{false};
  std::atomic<bool> acting{false};  // goroutine::acting is set (a driver goroutine)
  // A plain thread's parker: the fork generation (below) in which its thread took it.
  // One byte, in what was padding: a parker is part of every goroutine (W7).
  std::uint8_t fork_gen = 0;
  goroutine* g = nullptr;  // the goroutine it belongs to; null for a plain thread
};
static_assert(sizeof(parker) == 16, "a parker is part of every goroutine's descriptor");

// How many fork()s this process descends from, modulo 256 (each child adds one, the
// runtime started or not). A plain thread's parker from an earlier generation belongs
// to a thread of an ancestor, which does not exist here.
extern std::atomic<std::uint8_t> fork_generation;

// Called by a primitive about to hand something a waiter cannot do without (a value,
// a lock, semaphore units) to the waiter parked on `who`: in a child of fork(), a
// copy of a parent's goroutine or thread never runs, and what it was given would be
// lost while the giver reported success, so that is fork's fatal error instead.
// (A wake that hands nothing over, as a close does, stays allowed: see make_runnable.)
[[noreturn]] void fatal_thread_waiter_in_forked_child(const char* what) noexcept;
inline void check_waiter_exists(const parker* who, const char* what) noexcept {
  if (forked_child.load(std::memory_order_relaxed)) [[unlikely]] fatal_in_forked_child(what);
  if (who->g == nullptr &&
      who->fork_gen != fork_generation.load(std::memory_order_relaxed)) [[unlikely]] {
    fatal_thread_waiter_in_forked_child(what);  // the runtime never started
  }
}

// fork()'s child handler: the calling thread, the only one in the child, keeps its
// parker (a new generation).
void parkers_after_fork_child() noexcept;

// The calling goroutine's parker, or the calling thread's.
parker* current_parker() noexcept;

// Blocks the caller until its parker has a permit, then consumes it. Parks the
// goroutine (its thread runs others) or blocks the thread. `reason` is shown in dumps.
void park(parker* self, wait_reason reason) noexcept;

// park() without schedule exploration's turn-taking (bubble.hpp): for the runtime's
// own waits inside an explored goroutine.
void park_raw(parker* self, wait_reason reason) noexcept;

// Gives `p` a permit, waking it if it is parked. Safe from any goroutine or thread.
void unpark(parker* p) noexcept;

}  // namespace goro::detail
