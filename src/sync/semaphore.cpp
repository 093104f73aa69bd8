// semaphore.cpp — goro::semaphore, FIFO like golang.org/x/sync/semaphore.
//
// Invariants (under waiters_.locked): 0 <= used_ <= size_; waiters are served strictly
// in arrival order — release grants the head while it fits and stops at the first
// that does not, so a large request is never overtaken by smaller later ones.
#include "goro/semaphore.hpp"

#include <string>

#include "goro/panic.hpp"
#include "runtime/parking.hpp"
#include "runtime/sys.hpp"

namespace goro {
namespace {

struct sem_waiter {
  sem_waiter* next = nullptr;
  std::int64_t n = 0;
  detail::parker* who = nullptr;
  std::atomic<bool> granted{false};
};

class list_guard {
 public:
  explicit list_guard(detail::wait_list& l) : l_(l) {
    for (int spins = 0; l_.locked.exchange(true, std::memory_order_acquire); ++spins) {
      while (l_.locked.load(std::memory_order_relaxed)) {
        if (++spins < 64) detail::cpu_relax(); else sched_yield();
      }
    }
  }
  ~list_guard() { l_.locked.store(false, std::memory_order_release); }
  list_guard(const list_guard&) = delete;
  list_guard& operator=(const list_guard&) = delete;

 private:
  detail::wait_list& l_;
};

void check_weight(std::int64_t n, const char* what) {
  if (n < 0) throw panic_error(std::string("semaphore: negative weight in ") + what);
}

}  // namespace

semaphore::semaphore(std::int64_t size) : size_(size) {
  if (size < 0) throw panic_error("semaphore: negative size " + std::to_string(size));
}

void semaphore::acquire(std::int64_t n) {
  check_weight(n, "acquire");
  if (n > size_) {
    throw panic_error("semaphore: acquire of " + std::to_string(n) + " exceeds the size " +
                      std::to_string(size_) + " and could never succeed");
  }
  sem_waiter self;
  {
    list_guard lk(waiters_);
    if (size_ - used_ >= n && waiters_.head == nullptr) {
      used_ += n;
      return;
    }
    self.n = n;
    self.who = detail::current_parker();
    if (waiters_.tail) {
      static_cast<sem_waiter*>(waiters_.tail)->next = &self;
    } else {
      waiters_.head = &self;
    }
    waiters_.tail = &self;
  }
  while (!self.granted.load(std::memory_order_acquire)) {
    detail::park(self.who, detail::wait_reason::semacquire);
  }
}

bool semaphore::try_acquire(std::int64_t n) {
  check_weight(n, "try_acquire");
  list_guard lk(waiters_);
  if (size_ - used_ >= n && waiters_.head == nullptr) {
    used_ += n;
    return true;
  }
  return false;
}

void semaphore::release(std::int64_t n) {
  check_weight(n, "release");
  sem_waiter* granted = nullptr;
  sem_waiter** tail = &granted;
  {
    list_guard lk(waiters_);
    if (n > used_) {
      throw panic_error("semaphore: released more than held (" + std::to_string(n) + " of " +
                        std::to_string(used_) + ")");
    }
    used_ -= n;
    // Grant in order while the head fits.
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
  while (granted) {
    sem_waiter* next = granted->next;
    detail::parker* who = granted->who;
    granted->granted.store(true, std::memory_order_release);  // it may vanish now
    detail::unpark(who);
    granted = next;
  }
}

}  // namespace goro
