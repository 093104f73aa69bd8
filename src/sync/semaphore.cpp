// semaphore.cpp — goro::semaphore, FIFO like golang.org/x/sync/semaphore.
//
// Invariants (under waiters_.locked): 0 <= used_ <= size_; waiters are served strictly
// in arrival order — release grants the head while it fits and stops at the first
// that does not, so a large request is never overtaken by smaller later ones; only
// requests of at most size_ are queued, so the head always fits eventually.
// Lock order: a cancellation hook's link lock, then waiters_.locked, then (ctx.err()
// under waiters_.locked) the context's own lock.
#include "goro/semaphore.hpp"

#include <cstdio>
#include <string>

#include "goro/panic.hpp"
#include "goro/context.hpp"
#include "goro/detail/lifetime.hpp"
#include "runtime/bubble.hpp"
#include "runtime/parking.hpp"
#include "runtime/sys.hpp"
#include <memory>
#include <mutex>

namespace goro {
namespace {

struct sem_waiter {
  sem_waiter* next = nullptr;
  std::int64_t n = 0;
  detail::parker* who = nullptr;
  std::atomic<bool> granted{false};    // holds its n units
  std::atomic<bool> cancelled{false};  // left the queue because its context ended
};

void wake_all(sem_waiter* list) {
  while (list) {
    sem_waiter* next = list->next;
    detail::parker* who = list->who;
    detail::check_waiter_exists(who, "a semaphore release that grants units to a waiter");
    list->granted.store(true, std::memory_order_release);  // it may vanish now
    detail::unpark(who);
    list = next;
  }
}

void check_weight(std::int64_t n, const char* what) {
  if (n < 0) throw panic_error(std::string("semaphore: negative weight in ") + what);
}

}  // namespace

semaphore::semaphore(std::int64_t size, std::source_location where)
    : size_(size), where_(where) {
  if (size < 0) throw panic_error("semaphore: negative size " + std::to_string(size));
}

semaphore::~semaphore() {
  if ((used_ == 0 && waiters_.head == nullptr) || detail::destruction_excused(this)) return;
  char what[160];
  std::snprintf(what, sizeof what, "semaphore destroyed with %lld of %lld units held%s",
                static_cast<long long>(used_), static_cast<long long>(size_),
                waiters_.head != nullptr ? " and acquirers waiting" : "");
  detail::fatal_destroyed_in_use(what, where_);
}

void semaphore::acquire(std::int64_t n) {
  check_weight(n, "acquire");
  if (n > size_) {
    throw panic_error("semaphore: acquire of " + std::to_string(n) + " exceeds the size " +
                      std::to_string(size_) + " and could never succeed");
  }
  (void)acquire(background(), n);  // background is never done: this always acquires
}

bool semaphore::try_acquire(std::int64_t n) {
  check_weight(n, "try_acquire");
  detail::wait_list_guard lk(waiters_);
  if (size_ - used_ >= n && waiters_.head == nullptr) {
    used_ += n;
    return true;
  }
  return false;
}

// Grants the queue head while it fits, appending the granted waiters to *tail.
// Called with the list locked.
void semaphore::grant_waiters_locked(void** granted_tail) {
  auto** tail = reinterpret_cast<sem_waiter**>(granted_tail);
  while (auto* w = static_cast<sem_waiter*>(waiters_.head)) {
    if (size_ - used_ < w->n) break;
    used_ += w->n;
    waiters_.head = w->next;
    if (waiters_.head == nullptr) waiters_.tail = nullptr;
    w->next = nullptr;
    *tail = w;
    tail = &w->next;
  }
}

void semaphore::release(std::int64_t n) {
  check_weight(n, "release");
  sem_waiter* granted = nullptr;
  {
    detail::wait_list_guard lk(waiters_);
    if (n > used_) {
      throw panic_error("semaphore: released more than held (" + std::to_string(n) + " of " +
                        std::to_string(used_) + ")");
    }
    used_ -= n;
    grant_waiters_locked(reinterpret_cast<void**>(&granted));
  }
  wake_all(granted);
}

// Go's Acquire. The order of the checks is x/sync's:
//   1. ctx already done (checked under the lock, so also when it became done while we
//      waited for the lock): fail, even if the units are free.
//   2. The units are free and nobody is queued: take them.
//   3. n > size could never be granted: wait for ctx without queueing, so that the
//      requests behind are not held up by one that is doomed to fail.
//   4. Otherwise queue and park until granted or ctx is done. A grant that races with
//      ctx becoming done is given back, and the result is ctx's error.
error semaphore::acquire(const context& ctx, std::int64_t n) {
  check_weight(n, "acquire");
  sem_waiter self;
  {
    detail::wait_list_guard lk(waiters_);
    if (error err = ctx.err()) return err;
    if (size_ - used_ >= n && waiters_.head == nullptr) {
      used_ += n;
      return {};
    }
    if (n <= size_) {
      self.n = n;
      self.who = detail::current_parker();
      if (waiters_.tail) {
        static_cast<sem_waiter*>(waiters_.tail)->next = &self;
      } else {
        waiters_.head = &self;
      }
      waiters_.tail = &self;
    }
  }
  if (n > size_) {
    (void)ctx.done().recv();  // the nil channel of a context that is never done: forever
    return ctx.err();
  }
  wait_queued(ctx, &self);
  if (self.cancelled.load(std::memory_order_acquire)) return ctx.err();
  if (error err = ctx.err()) {
    release(n);  // granted, but ctx ended first or meanwhile: as if it never was
    return err;
  }
  return {};
}

// Parks until `self` (queued by acquire) is granted or has left the queue because ctx
// is done.
//
// The cancellation hook can run on the cancelling thread after acquire has returned,
// so it reaches `self` only through `link`, which is cut (under its lock) before this
// returns. The hook leaves the queue unless the waiter was already granted, and then
// lets the waiters behind through if they now fit (it may have been blocking the head).
void semaphore::wait_queued(const context& ctx, void* waiter) {
  auto* self = static_cast<sem_waiter*>(waiter);
  struct hook_link {
    detail::spinlock lock;
    semaphore* sem;      // under lock; null once wait_queued has returned
    sem_waiter* waiter;  // under lock
  };
  auto link = std::make_shared<hook_link>();
  link->sem = this;
  link->waiter = self;
  std::uint64_t hook = detail::context_on_cancel(ctx, [link] {
    std::lock_guard hold(link->lock);
    if (link->sem == nullptr) return;  // wait_queued already returned
    link->sem->leave_queue(link->waiter);
  });
  while (!self->granted.load(std::memory_order_acquire) &&
         !self->cancelled.load(std::memory_order_acquire)) {
    detail::park_durable(self->who, detail::wait_reason::semacquire, bubble_);
  }
  if (hook != 0) detail::context_remove_on_cancel(ctx, hook);
  std::lock_guard cut(link->lock);  // waits for a hook in progress
  link->sem = nullptr;
}

// Removes `waiter` from the queue if it is still there (not yet granted), grants the
// waiters that now fit, and wakes the removed one with `cancelled` set.
void semaphore::leave_queue(void* waiter) {
  auto* me = static_cast<sem_waiter*>(waiter);
  sem_waiter* granted = nullptr;
  bool removed = false;
  {
    detail::wait_list_guard lk(waiters_);
    auto** at = reinterpret_cast<sem_waiter**>(&waiters_.head);
    sem_waiter* prev = nullptr;
    while (*at && *at != me) {
      prev = *at;
      at = &(*at)->next;
    }
    if (*at == me) {
      *at = me->next;
      if (waiters_.tail == me) waiters_.tail = prev;
      removed = true;
      grant_waiters_locked(reinterpret_cast<void**>(&granted));
    }
  }
  wake_all(granted);
  if (removed) {
    detail::parker* who = me->who;
    me->cancelled.store(true, std::memory_order_release);
    detail::unpark(who);  // `me` stays valid: wait_queued waits for the hook's lock
  }
}

}  // namespace goro
