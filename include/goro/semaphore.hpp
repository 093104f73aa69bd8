// goro/semaphore.hpp — goro::semaphore, a weighted semaphore (golang.org/x/sync/semaphore).
//
// Holds `size` units. acquire(n) takes n units, waiting until they are free. FIFO: a
// large request at the head of the queue is not overtaken by later small ones.
//
// Blocking: acquire parks the calling goroutine (or blocks the plain thread);
//   try_acquire and release never block.
// Thread-safety: all members may be called concurrently from goroutines and threads.
// Panics (goro::panic_error): a negative size or weight; acquire(n) with n > size
//   (it could never succeed); releasing more than is held.
//
// Example:
//   goro::semaphore sem(64);              // at most 64 calls in flight
//   if (goro::error err = sem.acquire(ctx, 1)) return err;   // ctx ended first
//   wg.go([&] { call_api(); sem.release(1); });
#pragma once

#include <cstdint>

#include "goro/context.hpp"
#include "goro/detail/wait_list.hpp"
#include "goro/error.hpp"

namespace goro {

class semaphore {
 public:
  explicit semaphore(std::int64_t size);
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  // Takes n units, waiting (FIFO) until they are available.
  void acquire(std::int64_t n = 1);
  // As acquire, but gives up when ctx is done first: returns ctx.err() and holds
  // nothing. A request beyond the size returns an error at once. Cancel safety: on an
  // error nothing was acquired; on nil all n units are held.
  error acquire(const context& ctx, std::int64_t n = 1);
  // Takes n units if available now and nobody is queued; never blocks.
  bool try_acquire(std::int64_t n = 1);
  // Returns n units and wakes the waiters that now fit, in order.
  void release(std::int64_t n = 1);

 private:
  void grant_waiters_locked(void** granted_tail);

  const std::int64_t size_;
  std::int64_t used_ = 0;        // under waiters_.locked
  detail::wait_list waiters_;    // FIFO of parked acquirers
};

}  // namespace goro
