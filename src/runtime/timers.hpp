// timers.hpp — the runtime's timer heaps: 4-ary min-heaps of deadlines.
//
// Each processor has its own heap (Go's per-P timers): a goroutine's timer goes to
// the heap of the processor it runs on, so sleeping goroutines on different
// processors never contend. Plain threads use one shared heap. A worker fires its own
// heap's due timers at every scheduling round; spinning and idle workers fire every
// heap's, so timers of a busy processor still fire on time.
//
// The heap stores each deadline next to its entry pointer, so sifting compares
// contiguous memory instead of chasing pointers into thousands of goroutine stacks
// (where a sleeper's entry lives); 4 children per node halve the depth.
//
// Invariants:
//   - heap_ and every entry's heap_index are guarded by lock_; an entry is pending iff
//     its heap_index >= 0, and then heap_[heap_index] == entry.
//   - earliest_ mirrors heap_[0]->when (or no_deadline) so the scheduler can peek
//     without the lock; it is written under lock_.
//   - fire() runs without lock_ held, after the entry has left the heap; the entry may
//     be freed by its owner as soon as fire() has woken it, so fire must not touch the
//     entry after waking its owner.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "runtime/sys.hpp"

namespace goro::detail {

class timer_heap;

struct timer_entry {
  std::int64_t when = 0;                 // nanotime() deadline
  timer_heap* heap = nullptr;            // where it was added (set by add)
  void (*fire)(timer_entry*) = nullptr;  // called once, on a worker or the adding thread
  void* arg = nullptr;
  // Called instead of fire when the heap is torn down with the entry pending (a synctest
  // bubble's heap when run returns); null: nothing to release.
  void (*discard)(timer_entry*) = nullptr;
  // Whether firing it now could wake a goroutine (a synctest bubble's deadlock check);
  // null: it may.
  bool (*may_wake)(timer_entry*) = nullptr;
  std::int32_t heap_index = -1;  // under the heap's lock
};

class timer_heap {
 public:
  static constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();

  // A heap on a fake clock (a synctest bubble's) does not tell the scheduler about its
  // deadlines: only its driver fires it.
  explicit timer_heap(bool notify_scheduler = true) noexcept : notify_(notify_scheduler) {}

  // Adds `t`; tells the scheduler when it became the earliest deadline.
  void add(timer_entry* t);
  // Removes `t` from the heap it was added to if still pending; true if it was (so it
  // will not fire).
  static bool remove(timer_entry* t) noexcept;
  std::int64_t next_deadline() const noexcept { return earliest_.load(std::memory_order_acquire); }
  // Entries pending now (metrics).
  std::size_t size() noexcept {
    std::lock_guard lk(lock_);
    return heap_.size();
  }
  // Fires every timer due at `now`; returns how many fired.
  int run_due(std::int64_t now) noexcept;
  // Takes every pending entry out and calls its discard (the heap is going away).
  void discard_all() noexcept;
  // The earliest deadline among pending entries whose may_wake says they could wake a
  // goroutine (no_deadline: none could). Calls may_wake with the heap locked.
  std::int64_t next_waking_deadline() noexcept;

 private:
  struct slot {
    std::int64_t when;
    timer_entry* entry;
  };
  void place(std::size_t i, slot s) noexcept {
    heap_[i] = s;
    s.entry->heap_index = static_cast<std::int32_t>(i);
  }
  void sift_up(std::size_t i, slot s) noexcept;
  void sift_down(std::size_t i, slot s) noexcept;
  void remove_at(std::size_t i) noexcept;
  void publish_earliest() noexcept;

  const bool notify_;
  spinlock lock_;
  std::vector<slot> heap_;  // under lock_
  std::atomic<std::int64_t> earliest_{no_deadline};
};

// The heap for timers added by the caller: its processor's, or the plain threads'.
timer_heap& local_timers() noexcept;
// The heap plain threads add to.
timer_heap& external_timers() noexcept;

}  // namespace goro::detail
