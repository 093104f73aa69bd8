// wait_group.cpp — goro::wait_group on the runtime's parking mechanism.
//
// Invariants:
//   - state_ high 32 bits: the counter; low 32 bits: waiters linked in waiters_.
//   - The waiter count changes only with waiters_ locked, together with the list: a
//     wait() counts and links itself in one critical section, a release unlinks every
//     node and zeroes the count in one. The counter changes with lock-free RMWs, so
//     add() is one atomic operation unless it releases waiters.
//   - A node is linked only while the counter is non-zero, so every node linked when
//     the counter is zero belongs to a generation that has reached zero: a release
//     (release_waiters) takes the whole list only when it sees, under the lock, a
//     counter of zero. Whoever moves the counter to zero with waiters linked calls
//     release_waiters afterwards; if the counter has left zero again by then, the add
//     that brings it back releases them. So no waiter is released before its counter
//     reaches zero, and none is forgotten.
//   - Every node is woken exactly once, after the lock is released.
//
// Misuse, detected where Go detects it (the same messages): an add that moves the
// counter off zero while the waiters of the previous zero are not yet released (it is
// undone), and a waiter that finds the state non-zero once released (the group was
// reused before its wait returned).
#include <mutex>

#include "goro/wait_group.hpp"

#include <cstdio>

#include "goro/detail/lifetime.hpp"
#include "runtime/bubble.hpp"
#include "runtime/parking.hpp"
#include "runtime/sys.hpp"

namespace goro {
namespace {

struct wg_waiter {
  wg_waiter* next = nullptr;
  detail::parker* who = nullptr;
  std::atomic<bool> released{false};
};

std::int32_t counter_of(std::uint64_t s) { return static_cast<std::int32_t>(s >> 32); }
std::uint32_t waiters_of(std::uint64_t s) { return static_cast<std::uint32_t>(s); }

}  // namespace

wait_group::~wait_group() {
  std::uint64_t s = state_.load(std::memory_order_acquire);
  if (s == 0 || detail::destruction_excused(this)) return;
  char what[200];
  if (counter_of(s) != 0) {
    std::snprintf(what, sizeof what,
                  "wait_group destroyed with its counter at %d: the done() calls still to come "
                  "would write to freed memory",
                  static_cast<int>(counter_of(s)));
  } else {
    std::snprintf(what, sizeof what, "wait_group destroyed while %u waiters wait on it",
                  static_cast<unsigned>(waiters_of(s)));
  }
  detail::fatal_destroyed_in_use(what, where_);
}

void wait_group::add(int delta) {
  std::uint64_t step = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
  std::uint64_t s = state_.fetch_add(step, std::memory_order_acq_rel) + step;
  std::int32_t v = counter_of(s);
  if (v < 0) {
    state_.fetch_sub(step, std::memory_order_acq_rel);
    throw panic_error("sync: negative WaitGroup counter");
  }
  if (waiters_of(s) != 0 && delta > 0 && v == delta) {
    // The counter left zero before the waiters of that zero were released.
    std::uint64_t undone = state_.fetch_sub(step, std::memory_order_acq_rel) - step;
    if (counter_of(undone) == 0 && waiters_of(undone) != 0) release_waiters();
    throw panic_error("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  if (v > 0 || waiters_of(s) == 0) return;
  release_waiters();
}

// Releases every linked waiter if the counter is zero now (see Invariants).
void wait_group::release_waiters() {
  wg_waiter* list;
  {
    detail::wait_list_guard lk(waiters_);
    std::uint64_t s = state_.load(std::memory_order_acquire);
    do {
      if (counter_of(s) != 0 || waiters_of(s) == 0) return;  // left zero, or done
    } while (!state_.compare_exchange_weak(s, 0, std::memory_order_acq_rel,
                                           std::memory_order_acquire));
    list = static_cast<wg_waiter*>(waiters_.head);
    waiters_.head = waiters_.tail = nullptr;
  }
  while (list != nullptr) {
    wg_waiter* next = list->next;
    detail::parker* who = list->who;
    list->released.store(true, std::memory_order_release);  // the node may vanish now
    detail::unpark(who);
    list = next;
  }
}

void wait_group::wait() {
  if (counter_of(state_.load(std::memory_order_acquire)) == 0) return;
  wg_waiter self;
  self.who = detail::current_parker();
  {
    detail::wait_list_guard lk(waiters_);
    std::uint64_t s = state_.load(std::memory_order_acquire);
    do {
      if (counter_of(s) == 0) return;
    } while (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                           std::memory_order_acquire));
    if (waiters_.tail) {
      static_cast<wg_waiter*>(waiters_.tail)->next = &self;
    } else {
      waiters_.head = &self;
    }
    waiters_.tail = &self;
  }
  while (!self.released.load(std::memory_order_acquire)) {
    detail::park_durable(self.who, detail::wait_reason::wait_group_wait, bubble_);
  }
  // Released with the state at zero; anything else since is a new use of the group.
  if (state_.load(std::memory_order_acquire) != 0) {
    throw panic_error("sync: WaitGroup is reused before previous Wait has returned");
  }
}

}  // namespace goro
