// goro/mutex.hpp — goro::mutex, Go's sync.Mutex: a goroutine-aware mutual-exclusion lock.
//
// Lockable (std::lock_guard, std::unique_lock, std::scoped_lock). Not reentrant: a
// goroutine that locks a mutex it holds waits forever. As in Go, a mutex is not tied
// to the goroutine or thread that locked it: another may unlock it. Fairness is Go's:
// normally a woken waiter competes with newcomers (which is faster); a waiter that has
// waited more than 1 ms switches the mutex to starvation mode, where unlock hands it
// directly to the first waiter, so no waiter starves.
//
// Blocking: lock() spins briefly (only when max_procs() > 1), then parks the calling
//   goroutine ("sync.Mutex.Lock") or blocks the calling plain thread until it gets the
//   mutex. try_lock and unlock never block.
// Thread-safety: all members may be called concurrently from goroutines and threads.
// Panics: none. Unlock of an unlocked mutex is a fatal error, not a panic_error
//   ("fatal error: sync: unlock of unlocked mutex" on stderr), as in Go: the program
//   aborts.
//
// Example:
//   goro::mutex mu;
//   int counter = 0;
//   wg.go([&] { std::lock_guard lk(mu); ++counter; });
#pragma once

#include <atomic>
#include <cstdint>
#include <source_location>

#include "goro/detail/sema.hpp"

namespace goro {

namespace detail {
// How many goro::testing::explore calls are running in the process: while there are
// any, mutex operations take a slower path that asks whether the caller is a goroutine
// of an explored run (goro/explore.hpp: lock and unlock are scheduling points there).
extern std::atomic<int> explorations;
}  // namespace detail

class mutex {
 public:
  // `where` (the declaration's line) is named if the mutex is destroyed while in use.
  constexpr mutex(std::source_location where = std::source_location::current()) noexcept
      : where_(where) {}
  // Destroying a mutex that goroutines or threads still wait to lock is a fatal error
  // naming where it was made (they would touch freed memory), except while the process
  // exits (goro/detail/lifetime.hpp). A mutex locked with nobody waiting may be
  // destroyed.
  ~mutex() {
    if ((state_.load(std::memory_order_relaxed) >> waiter_shift) != 0 || sema_.has_waiters()) {
      destroyed_in_use();
    }
  }
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  // Locks (Go's Lock); parks while another holds it.
  void lock() {
    if (detail::explorations.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      lock_explored();
      return;
    }
    std::int32_t expected = 0;
    if (state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    lock_slow();
  }
  // Locks if free and returns true (Go's TryLock); never blocks. Returns false while
  // the mutex is being handed to a waiter in starvation mode.
  bool try_lock() noexcept;
  // Unlocks (Go's Unlock); wakes a waiter if there is one. Never blocks. Any goroutine
  // or thread may unlock. Fatal (abort) if not locked.
  void unlock() {
    if (detail::explorations.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      unlock_explored();
      return;
    }
    std::int32_t now = state_.fetch_sub(locked, std::memory_order_release) - locked;
    if (now != 0) unlock_slow(now);
  }

 private:
  static constexpr std::int32_t locked = 1;
  static constexpr std::int32_t woken = 2;
  static constexpr std::int32_t starving = 4;
  static constexpr int waiter_shift = 3;

  void destroyed_in_use() const noexcept;
  void lock_slow();
  void unlock_slow(std::int32_t now);
  void lock_explored();
  void unlock_explored();

  // Bit 0 locked, bit 1 a waiter is awake (unlock need not wake another), bit 2
  // starvation mode; the rest counts the waiters parked on sema_.
  std::atomic<std::int32_t> state_{0};
  detail::sema sema_;
  std::source_location where_;
};

}  // namespace goro
