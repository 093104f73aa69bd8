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
  goroutine* g = nullptr;  // the goroutine it belongs to; null for a plain thread
};

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
