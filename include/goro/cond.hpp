// goro/cond.hpp — goro::cond, Go's sync.Cond: wait for a condition under a lock.
//
// wait(lock) atomically unlocks `lock` and parks; after a signal or broadcast it locks
// `lock` again before returning. As in Go, a woken waiter must re-check its condition
// in a loop. `lock` is any BasicLockable (goro::mutex, std::unique_lock<goro::mutex>,
// rw_mutex, ...).
//
// Blocking: wait parks the calling goroutine ("sync.Cond.Wait") or blocks the calling
//   plain thread, then waits again to relock; signal and broadcast never block.
// Thread-safety: signal and broadcast may be called from anywhere, with or without
//   the lock held. Panics: none of its own (unlocking a lock that is not held is the
//   lock's error: fatal for goro::mutex).
//
// Example:
//   std::unique_lock lk(mu);
//   while (queue.empty()) cv.wait(lk);
#pragma once

#include <cstdint>

#include "goro/detail/wait_list.hpp"

namespace goro {

class cond {
 public:
  cond() = default;
  cond(const cond&) = delete;
  cond& operator=(const cond&) = delete;

  // Go's Wait: the caller must hold `lock`. Unlocks it, waits for a signal or
  // broadcast that comes after this call began, then locks it again before returning.
  // Returns only when woken (no spurious wake-ups), but the condition may have changed
  // by the time the lock is retaken.
  template <class Lock>
  void wait(Lock& lock) {
    // A ticket taken before unlocking: a signal between unlock and park still
    // wakes this waiter (Go's notifyList).
    std::uint64_t ticket = take_ticket();
    lock.unlock();
    struct relock {
      Lock& l;
      ~relock() { l.lock(); }
    } again{lock};
    wait_ticket(ticket);
  }

  // Wakes one waiter, if any: the one that has waited longest (Go's Signal). Never
  // blocks.
  void signal();
  // Wakes every current waiter (Go's Broadcast). Never blocks.
  void broadcast();

 private:
  std::uint64_t take_ticket();
  void wait_ticket(std::uint64_t ticket);

  detail::wait_list waiters_;      // parked waiters, in ticket order
  std::uint64_t next_ticket_ = 0;  // under waiters_.locked: tickets handed out
  std::uint64_t next_notify_ = 0;  // under waiters_.locked: tickets below are notified
};

}  // namespace goro
