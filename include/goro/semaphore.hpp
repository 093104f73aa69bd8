// goro/semaphore.hpp — goro::semaphore, a weighted semaphore (golang.org/x/sync/semaphore).
//
// Holds `size` units. acquire(n) takes n units, waiting until they are free. FIFO: a
// large request at the head of the queue is not overtaken by later small ones.
//
// Blocking: acquire parks the calling goroutine ("semacquire") or blocks the plain
//   thread; try_acquire and release never block.
// Thread-safety: all members may be called concurrently from goroutines and threads.
// Panics (goro::panic_error): a negative size or weight; acquire(n) with n > size
//   (it could never succeed; acquire(ctx, n) waits for ctx instead, as x/sync);
//   releasing more than is held.
//
// Polarity: acquire(ctx) returns a goro::error, true on failure; try_acquire returns
// whether it took the units, true on success. `if (sem.acquire(ctx))` therefore means
// "if it failed": write `if (goro::error err = sem.acquire(ctx, 1))` to say so. Both
// results are [[nodiscard]]: units taken and not known about are never released.
//
// Example:
//   goro::semaphore sem(64);              // at most 64 calls in flight
//   if (goro::error err = sem.acquire(ctx, 1)) return err;   // ctx ended first
//   wg.go([&] { call_api(); sem.release(1); });
#pragma once

#include <cstdint>
#include <mutex>
#include <source_location>

#include "goro/context.hpp"
#include "goro/detail/wait_list.hpp"
#include "goro/error.hpp"

namespace goro {

class semaphore {
 public:
  // A semaphore of `size` units, all free (Go's NewWeighted). size < 0: panic_error.
  // `where` (the declaration's line) is named if it is destroyed while in use.
  explicit semaphore(std::int64_t size,
                     std::source_location where = std::source_location::current());
  // Destroying a semaphore with units held or acquirers waiting is a fatal error naming
  // where it was made (a later release() would write to freed memory), except while
  // the process exits (goro/detail/lifetime.hpp).
  ~semaphore();
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  // Takes n units, waiting (FIFO) until they are available. Panics if n < 0 or
  // n > size.
  void acquire(std::int64_t n = 1);
  // Go's Acquire: as acquire, but gives up when ctx is done first: returns ctx.err()
  // and holds nothing. A ctx that is already done fails the call even when the units
  // are free. A request beyond the size is never queued (it would hold up the ones
  // behind it): it waits for ctx and returns ctx.err() — forever for a context that is
  // never done, as x/sync. n < 0 panics. Cancel safety: on an error nothing was
  // acquired; on nil all n units are held. Units granted just as ctx ended are given
  // back and the result is ctx.err(). Nil (false) means the units are held.
  [[nodiscard]] error acquire(const context& ctx, std::int64_t n = 1);
  // Takes n units if available now and nobody is queued (Go's TryAcquire); false
  // otherwise, including n > size. True means the units are held. Never blocks. Panics
  // if n < 0.
  [[nodiscard]] bool try_acquire(std::int64_t n = 1);
  // Returns n units (Go's Release) and grants queued waiters in order while the head
  // fits. Never blocks. Panics if n < 0 or n is more than is held.
  void release(std::int64_t n = 1);

 private:
  void grant_waiters_locked(void** granted_tail);
  void wait_queued(const context& ctx, void* waiter);
  void leave_queue(void* waiter);

  const std::int64_t size_;
  std::int64_t used_ = 0;      // under waiters_.locked
  detail::wait_list waiters_;  // FIFO of parked acquirers
  // The synctest bubble it was made in: waiting on it is a durable block there.
  detail::bubble* const bubble_ = detail::current_bubble();
  std::source_location where_;
};

// Holds n units of a semaphore for a scope (Go's `defer sem.Release(n)` after an
// Acquire): semaphore_guard g(sem, n) acquires them (blocking, as acquire(n)); with
// std::adopt_lock it takes over units already acquired, e.g. after a successful
// acquire(ctx, n):
//   if (goro::error err = sem.acquire(ctx, 1)) return err;
//   goro::semaphore_guard held(sem, 1, std::adopt_lock);
// The destructor releases them. The semaphore must outlive the guard.
class [[nodiscard]] semaphore_guard {
 public:
  semaphore_guard(semaphore& sem, std::int64_t n = 1) : sem_(&sem), n_(n) { sem.acquire(n); }
  semaphore_guard(semaphore& sem, std::int64_t n, std::adopt_lock_t) noexcept
      : sem_(&sem), n_(n) {}
  semaphore_guard(semaphore& sem, std::adopt_lock_t) noexcept : sem_(&sem), n_(1) {}
  semaphore_guard(const semaphore_guard&) = delete;
  semaphore_guard& operator=(const semaphore_guard&) = delete;
  ~semaphore_guard() { sem_->release(n_); }

 private:
  semaphore* sem_;
  std::int64_t n_;
};

}  // namespace goro
