// cond.cpp — goro::cond with Go's notifyList tickets.
//
// Invariants (under waiters_.locked): next_notify_ <= next_ticket_; a waiter whose
// ticket is below next_notify_ has been notified and must not park; parked waiters
// are linked in ticket order and each is woken exactly once.
#include "goro/cond.hpp"

#include "runtime/bubble.hpp"
#include "runtime/parking.hpp"
#include "runtime/sys.hpp"

namespace goro {
namespace {

struct cond_waiter {
  cond_waiter* next = nullptr;
  std::uint64_t ticket = 0;
  detail::parker* who = nullptr;
  std::atomic<bool> woken{false};
};

void wake(cond_waiter* w) {
  detail::parker* who = w->who;
  w->woken.store(true, std::memory_order_release);  // w may vanish now
  detail::unpark(who);
}

}  // namespace

std::uint64_t cond::take_ticket() {
  detail::wait_list_guard lk(waiters_);
  return next_ticket_++;
}

void cond::wait_ticket(std::uint64_t ticket) {
  cond_waiter self;
  {
    detail::wait_list_guard lk(waiters_);
    if (ticket < next_notify_) return;  // signalled between unlock and here
    self.ticket = ticket;
    self.who = detail::current_parker();
    // Keep ticket order (a later ticket may have parked first).
    auto** link = reinterpret_cast<cond_waiter**>(&waiters_.head);
    while (*link && (*link)->ticket < ticket) link = &(*link)->next;
    self.next = *link;
    *link = &self;
  }
  while (!self.woken.load(std::memory_order_acquire)) {
    // Durable in a synctest bubble (as Go's Cond.Wait): only a signal releases it.
    detail::park_durable(self.who, detail::wait_reason::cond_wait, detail::current_bubble());
  }
}

void cond::signal() {
  cond_waiter* w = nullptr;
  {
    detail::wait_list_guard lk(waiters_);
    if (next_notify_ == next_ticket_) return;  // nobody waits
    std::uint64_t t = next_notify_++;
    auto** link = reinterpret_cast<cond_waiter**>(&waiters_.head);
    while (*link && (*link)->ticket != t) link = &(*link)->next;
    if (*link) {
      w = *link;
      *link = w->next;
    }
    // Not found: that waiter has not parked yet and will see its ticket notified.
  }
  if (w) {
    // The ticket is the copy's: a waiter of the child's own would never be woken.
    detail::check_waiter_exists(w->who, "a cond signal to a waiting goroutine or thread");
    wake(w);
  }
}

void cond::broadcast() {
  cond_waiter* all;
  {
    detail::wait_list_guard lk(waiters_);
    next_notify_ = next_ticket_;
    all = static_cast<cond_waiter*>(waiters_.head);
    waiters_.head = nullptr;
  }
  while (all) {
    cond_waiter* next = all->next;
    wake(all);
    all = next;
  }
}

}  // namespace goro
