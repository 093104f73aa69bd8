// sema.cpp — detail::sema on the runtime's parking mechanism.
//
// Invariants (under waiters_.locked): count_ > 0 only when no waiter is queued; a
// waiter is woken exactly once, by the release that unlinks it.
#include "goro/detail/sema.hpp"

#include "runtime/parking.hpp"
#include "runtime/sys.hpp"

namespace goro::detail {
namespace {

struct sema_waiter {
  sema_waiter* next = nullptr;
  parker* who = nullptr;
  std::atomic<bool> granted{false};
};

}  // namespace

void sema::acquire(wait_reason reason, bool lifo) {
  sema_waiter self;
  {
    wait_list_guard lk(waiters_);
    if (count_ > 0) {
      --count_;
      return;
    }
    self.who = current_parker();
    if (lifo || waiters_.head == nullptr) {
      self.next = static_cast<sema_waiter*>(waiters_.head);
      waiters_.head = &self;
      if (waiters_.tail == nullptr) waiters_.tail = &self;
    } else {
      static_cast<sema_waiter*>(waiters_.tail)->next = &self;
      waiters_.tail = &self;
    }
  }
  while (!self.granted.load(std::memory_order_acquire)) park(self.who, reason);
}

void sema::release() {
  sema_waiter* w;
  {
    wait_list_guard lk(waiters_);
    w = static_cast<sema_waiter*>(waiters_.head);
    if (w == nullptr) {
      ++count_;
      return;
    }
    waiters_.head = w->next;
    if (waiters_.head == nullptr) waiters_.tail = nullptr;
  }
  parker* who = w->who;
  // A mutex's or rwmutex's hand-over (or the wake-up its waiter counts on).
  check_waiter_exists(who, "an unlock that hands over to a waiting goroutine or thread");
  w->granted.store(true, std::memory_order_release);  // w may vanish now
  unpark(who);
}

}  // namespace goro::detail
