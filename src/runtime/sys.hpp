// sys.hpp — the runtime's thin layer over Linux: futex, monotonic clock, a short spin lock.
#pragma once

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "goro/detail/wait_list.hpp"

namespace goro::detail {

// Nanoseconds on CLOCK_MONOTONIC (the vDSO makes this ~20 ns).
inline std::int64_t nanotime() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Asks for the three cache lines of a goroutine descriptor (goroutine.hpp) ahead of
// the write that needs them: the next one a run queue or a free list hands out.
// A prefetch never faults, so a stale or null pointer costs nothing but the hint.
inline void prefetch_descriptor(const void* g) noexcept {
  auto* c = static_cast<const char*>(g);
  __builtin_prefetch(c, 1);
  __builtin_prefetch(c + 64, 1);
  __builtin_prefetch(c + 128, 1);
}

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Sleeps while *word == expected, until woken or `timeout_ns` (< 0: no timeout) passes.
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       std::int64_t timeout_ns = -1) {
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, tsp,
          nullptr, 0);
}

inline void futex_wake(std::atomic<std::uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

// fork(): set in the child of a process whose runtime had started. The parent's
// worker threads do not exist there, so anything that would schedule (start, park or
// wake a goroutine, wait in a goro primitive) ends the child with a fatal error
// instead of hanging (scheduler.cpp, "fork").
extern std::atomic<bool> forked_child;
[[noreturn]] void fatal_in_forked_child(const char* what) noexcept;
// Writes "fatal error: goro: <what> in a child of fork(): <why>" with write(2) alone
// and _exits with status 2.
[[noreturn]] void fatal_in_child_of_fork(const char* what, const char* why) noexcept;
inline void check_not_forked(const char* what) noexcept {
  if (forked_child.load(std::memory_order_relaxed)) [[unlikely]] fatal_in_forked_child(what);
}

// Takes a spin lock word: spins briefly, then yields the CPU so a preempted holder can
// finish. For critical sections of a few dozen instructions, never across a park.
// In a child of fork() a lock still held was held by a thread the child does not
// have, and is never released: the child ends with fork's fatal error, not a hang.
inline void spin_acquire_contended(std::atomic<bool>& locked) noexcept {
  // Test-and-test-and-set with exponential backoff: a waiter that keeps re-reading the
  // word while the holder works pulls the cache line away from it at every release.
  // Called after a failed exchange, so it waits for the word to clear before the next.
  std::uint32_t backoff = 1;
  int spins = 0;
  do {
    while (locked.load(std::memory_order_relaxed)) {
      if (++spins < 64) {
        for (std::uint32_t i = 0; i < backoff; ++i) cpu_relax();
        if (backoff < 64) backoff <<= 1;
      } else {
        check_not_forked("a runtime lock held at the fork waited for");
        sched_yield();
      }
    }
  } while (locked.exchange(true, std::memory_order_acquire));
}

inline void spin_acquire(std::atomic<bool>& locked) noexcept {
  if (locked.exchange(true, std::memory_order_acquire)) [[unlikely]] {
    spin_acquire_contended(locked);
  }
}

// A lock for the runtime's short critical sections (see spin_acquire).
class spinlock {
 public:
  void lock() noexcept { spin_acquire(locked_); }
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Holds the lock of a primitive's wait_list (goro/detail/wait_list.hpp).
class wait_list_guard {
 public:
  explicit wait_list_guard(wait_list& l) noexcept : l_(l) { spin_acquire(l_.locked); }
  ~wait_list_guard() { l_.locked.store(false, std::memory_order_release); }
  wait_list_guard(const wait_list_guard&) = delete;
  wait_list_guard& operator=(const wait_list_guard&) = delete;

 private:
  wait_list& l_;
};

}  // namespace goro::detail
