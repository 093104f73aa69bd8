// wait_group.cpp — goro::wait_group on the runtime's parking mechanism.
//
// Invariants:
//   - state_ high 32 bits: the counter; low 32 bits: waiters linked in waiters_.
//   - The waiter count changes only with waiters_ locked; the counter changes with
//     lock-free RMWs, so add() is one atomic operation unless it releases waiters.
//   - Every node in waiters_ is woken exactly once, by the add() that brought the
//     counter to zero, after the lock is released.
#include <mutex>

#include "goro/wait_group.hpp"
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

void wait_group::add(int delta) {
  std::uint64_t step = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
  std::uint64_t s = state_.fetch_add(step, std::memory_order_acq_rel) + step;
  std::int32_t v = counter_of(s);
  if (v < 0) {
    state_.fetch_sub(step, std::memory_order_acq_rel);
    throw panic_error("sync: negative WaitGroup counter");
  }
  if (v > 0 || waiters_of(s) == 0) return;
  // The counter reached zero with waiters: release them all.
  wg_waiter* list;
  {
    detail::wait_list_guard lk(waiters_);
    list = static_cast<wg_waiter*>(waiters_.head);
    waiters_.head = waiters_.tail = nullptr;
    std::uint32_t n = 0;
    for (wg_waiter* w = list; w; w = w->next) ++n;
    state_.fetch_sub(n, std::memory_order_acq_rel);
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
    detail::park(self.who, detail::wait_reason::wait_group_wait);
  }
}

}  // namespace goro
