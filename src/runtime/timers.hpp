// timers.hpp — the runtime's timer heap: one binary min-heap of deadlines.
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
#include <vector>

#include "runtime/sys.hpp"

namespace goro::detail {

struct timer_entry {
  std::int64_t when = 0;                 // nanotime() deadline
  void (*fire)(timer_entry*) = nullptr;  // called once, on a worker or the adding thread
  void* arg = nullptr;
  std::int32_t heap_index = -1;          // under the heap's lock
};

class timer_heap {
 public:
  static constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();

  // Adds `t`; tells the scheduler when it became the earliest deadline.
  void add(timer_entry* t);
  // Removes `t` if still pending; true if it was (so it will not fire).
  bool remove(timer_entry* t) noexcept;
  std::int64_t next_deadline() const noexcept {
    return earliest_.load(std::memory_order_acquire);
  }
  // Fires every timer due at `now`; returns how many fired.
  int run_due(std::int64_t now) noexcept;

 private:
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void remove_at(std::size_t i) noexcept;
  void publish_earliest() noexcept;

  spinlock lock_;
  std::vector<timer_entry*> heap_;  // under lock_
  std::atomic<std::int64_t> earliest_{no_deadline};
};

timer_heap& timers() noexcept;

}  // namespace goro::detail
