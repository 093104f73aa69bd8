// netpoll.cpp — epoll-based network poller. Design in netpoll.hpp.
//
// Wait-slot protocol (one slot per direction; see netpoll.hpp for the values):
//
//   waiter (poll_wait)                     waker (an event, eviction, a deadline)
//     W1 slot: 0 -> my parker (seq_cst)       K1 set closing / deadline (seq_cst)
//     W2 re-check closing and deadline        K2 slot: parker -> ready (event) or 0
//     W3 park while slot == my parker              (others), 0 -> ready (event only)
//     W4 slot -> 0, consuming a token         K3 unpark the parker it took out
// W1/K1 then W2/K2 are a store-load pair on both sides, all sequentially consistent:
// either the waiter sees the closing flag or expired deadline before it parks, or the
// waker sees the parker and wakes it. The slot itself is only changed by CAS/exchange,
// so a token or a parker is taken out exactly once. park() may return early (a stale
// permit), hence the loop in W3; a waker may unpark a parker that has already moved
// on, which leaves a stale permit its next park() tolerates.
#include "runtime/netpoll.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "runtime/parking.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

namespace {

struct poller {
  int epfd = -1;
  int breakfd = -1;
  std::atomic<bool> break_pending{false};
  std::atomic<int> waiters{0};
  std::atomic<std::int64_t> last_poll{0};
  std::atomic<bool> has_pwait2{true};
  spinlock pool_lock;
  poll_desc* pool = nullptr;  // under pool_lock
};

poller* the_poller = nullptr;
std::once_flag poller_once;

[[noreturn]] void poller_fatal(const char* what) {
  std::fprintf(stderr, "goro: fatal error: netpoll %s failed: errno %d\n", what, errno);
  std::abort();
}

poller& get_poller() {
  std::call_once(poller_once, [] {
    sched();  // the poller runs on the workers
    auto* p = new poller;  // never destroyed: workers outlive main
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) poller_fatal("epoll_create1");
    p->breakfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->breakfd < 0) poller_fatal("eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // null marks the break descriptor
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->breakfd, &ev) != 0) poller_fatal("epoll_ctl");
    p->last_poll.store(nanotime(), std::memory_order_relaxed);
    __atomic_store_n(&the_poller, p, __ATOMIC_RELEASE);
  });
  return *the_poller;
}

poller* poller_if_started() noexcept { return __atomic_load_n(&the_poller, __ATOMIC_ACQUIRE); }

std::atomic<std::uintptr_t>& slot(poll_desc* pd, poll_mode mode) {
  return mode == poll_mode::read ? pd->rg : pd->wg;
}

// K2/K3: takes a waiting parker out of the slot (leaving a token if `io_ready`) and
// wakes it. Without io_ready an empty slot stays empty.
// Returns whether it woke one.
bool unblock(poll_desc* pd, poll_mode mode, bool io_ready) noexcept {
  auto& s = slot(pd, mode);
  std::uintptr_t old = s.load(std::memory_order_seq_cst);
  for (;;) {
    if (old == poll_desc::ready) return false;
    if (old == 0 && !io_ready) return false;
    std::uintptr_t next = io_ready ? poll_desc::ready : 0;
    if (s.compare_exchange_weak(old, next, std::memory_order_seq_cst)) break;
  }
  if (old <= poll_desc::ready) return false;
  unpark(reinterpret_cast<parker*>(old));
  return true;
}

bool expired(const std::atomic<std::int64_t>& deadline) noexcept {
  std::int64_t d = deadline.load(std::memory_order_seq_cst);
  return d != 0 && d <= nanotime();
}

void deadline_fired(timer_entry* t) {
  auto* pd = static_cast<poll_desc*>(t->arg);
  poll_mode mode = t == &pd->rtimer ? poll_mode::read : poll_mode::write;
  // The deadline may have been moved since this timer was armed (or pd recycled):
  // wake the waiter only if the deadline now set has passed.
  if (expired(mode == poll_mode::read ? pd->rd : pd->wd)) unblock(pd, mode, false);
}

}  // namespace

poll_desc* poll_open(int fd, std::error_code& ec) {
  poller& pl = get_poller();
  poll_desc* pd;
  {
    std::lock_guard lk(pl.pool_lock);
    pd = pl.pool;
    if (pd) pl.pool = pd->next_free;
  }
  if (!pd) {
    pd = new poll_desc;  // pooled, never freed (see netpoll.hpp)
    pd->rtimer.fire = &deadline_fired;
    pd->rtimer.arg = pd;
    pd->wtimer.fire = &deadline_fired;
    pd->wtimer.arg = pd;
  }
  pd->next_free = nullptr;
  pd->fd = fd;
  pd->rg.store(0, std::memory_order_relaxed);
  pd->wg.store(0, std::memory_order_relaxed);
  pd->rd.store(0, std::memory_order_relaxed);
  pd->wd.store(0, std::memory_order_relaxed);
  pd->closing.store(false, std::memory_order_seq_cst);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = pd;
  if (epoll_ctl(pl.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ec = std::error_code(errno, std::system_category());
    std::lock_guard lk(pl.pool_lock);
    pd->next_free = pl.pool;
    pl.pool = pd;
    return nullptr;
  }
  ec.clear();
  return pd;
}

void poll_close(poll_desc* pd) noexcept {
  poller& pl = *poller_if_started();
  epoll_ctl(pl.epfd, EPOLL_CTL_DEL, pd->fd, nullptr);
  {
    std::lock_guard lk(pd->lock);
    timer_heap::remove(&pd->rtimer);
    timer_heap::remove(&pd->wtimer);
    pd->rd.store(0, std::memory_order_relaxed);
    pd->wd.store(0, std::memory_order_relaxed);
  }
  pd->fd = -1;
  std::lock_guard lk(pl.pool_lock);
  pd->next_free = pl.pool;
  pl.pool = pd;
}

void poll_evict(poll_desc* pd) noexcept {
  pd->closing.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard lk(pd->lock);
    timer_heap::remove(&pd->rtimer);
    timer_heap::remove(&pd->wtimer);
  }
  unblock(pd, poll_mode::read, false);
  unblock(pd, poll_mode::write, false);
}

poll_status poll_check(poll_desc* pd, poll_mode mode) noexcept {
  if (pd->closing.load(std::memory_order_seq_cst)) return poll_status::closing;
  if (expired(mode == poll_mode::read ? pd->rd : pd->wd)) return poll_status::timeout;
  return poll_status::ready;
}

poll_status poll_wait(poll_desc* pd, poll_mode mode) noexcept {
  poller& pl = *poller_if_started();
  auto& s = slot(pd, mode);
  parker* self = current_parker();
  const auto me = reinterpret_cast<std::uintptr_t>(self);
  for (;;) {
    poll_status st = poll_check(pd, mode);
    if (st != poll_status::ready) return st;
    std::uintptr_t old = s.load(std::memory_order_seq_cst);
    if (old == poll_desc::ready) {
      if (s.compare_exchange_strong(old, 0, std::memory_order_seq_cst)) return poll_status::ready;
      continue;
    }
    if (old != 0) {
      std::fputs("goro: fatal error: two waiters on one descriptor direction\n", stderr);
      std::abort();
    }
    pl.waiters.fetch_add(1, std::memory_order_seq_cst);
    if (!s.compare_exchange_strong(old, me, std::memory_order_seq_cst)) {  // W1
      pl.waiters.fetch_sub(1, std::memory_order_seq_cst);
      continue;
    }
    if (self->g == nullptr) netpoll_need_poller();  // a thread: make sure a worker polls
    if (poll_check(pd, mode) == poll_status::ready) {  // W2
      while (s.load(std::memory_order_acquire) == me) park(self, wait_reason::io_wait);  // W3
    }
    old = s.exchange(0, std::memory_order_seq_cst);  // W4
    pl.waiters.fetch_sub(1, std::memory_order_seq_cst);
    if (old == poll_desc::ready) return poll_status::ready;
    // Woken by eviction or a deadline (or never parked): the loop re-checks. A stale
    // deadline wake-up (the deadline was extended) waits again.
  }
}

void poll_set_deadline(poll_desc* pd, poll_mode mode, std::int64_t when) noexcept {
  auto& deadline = mode == poll_mode::read ? pd->rd : pd->wd;
  timer_entry& t = mode == poll_mode::read ? pd->rtimer : pd->wtimer;
  bool wake = false;
  {
    std::lock_guard lk(pd->lock);
    timer_heap::remove(&t);
    deadline.store(when, std::memory_order_seq_cst);
    if (when != 0) {
      if (when <= nanotime()) {
        wake = true;
      } else if (!pd->closing.load(std::memory_order_relaxed)) {
        t.when = when;
        local_timers().add(&t);
      }
    }
  }
  if (wake) unblock(pd, mode, false);
}

bool netpoll_waiting() noexcept {
  poller* pl = poller_if_started();
  return pl != nullptr && pl->waiters.load(std::memory_order_seq_cst) > 0;
}

std::int64_t netpoll_last() noexcept {
  poller* pl = poller_if_started();
  return pl ? pl->last_poll.load(std::memory_order_relaxed) : 0;
}

void netpoll_break() noexcept {
  poller* pl = poller_if_started();
  if (pl == nullptr) return;
  if (pl->break_pending.exchange(true, std::memory_order_acq_rel)) return;
  std::uint64_t one = 1;
  ssize_t r;
  do {
    r = ::write(pl->breakfd, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
}

int netpoll(std::int64_t timeout_ns) noexcept {
  poller* pl = poller_if_started();
  if (pl == nullptr) return -1;
  constexpr int max_events = 128;
  epoll_event events[max_events];
  int n;
  if (timeout_ns == 0) {
    n = epoll_wait(pl->epfd, events, max_events, 0);
  } else if (timeout_ns < 0) {
    n = epoll_wait(pl->epfd, events, max_events, -1);
  } else {
    n = -1;
    errno = ENOSYS;
#if defined(SYS_epoll_pwait2)
    if (pl->has_pwait2.load(std::memory_order_relaxed)) {
      // Nanosecond timeout: epoll_wait's milliseconds would make timers late.
      timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                  static_cast<long>(timeout_ns % 1'000'000'000)};
      n = static_cast<int>(syscall(SYS_epoll_pwait2, pl->epfd, events, max_events, &ts, nullptr, 0));
      if (n < 0 && errno == ENOSYS) pl->has_pwait2.store(false, std::memory_order_relaxed);
    }
#endif
    if (n < 0 && errno == ENOSYS) {
      std::int64_t ms = (timeout_ns + 999'999) / 1'000'000;
      n = epoll_wait(pl->epfd, events, max_events, ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms));
    }
  }
  pl->last_poll.store(nanotime(), std::memory_order_relaxed);
  if (n <= 0) return 0;
  int woken = 0;
  for (int i = 0; i < n; ++i) {
    auto* pd = static_cast<poll_desc*>(events[i].data.ptr);
    std::uint32_t ev = events[i].events;
    if (pd == nullptr) {
      std::uint64_t value;
      while (::read(pl->breakfd, &value, sizeof value) < 0 && errno == EINTR) {
      }
      pl->break_pending.store(false, std::memory_order_release);
      continue;
    }
    if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
        unblock(pd, poll_mode::read, true)) {
      ++woken;
    }
    if ((ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && unblock(pd, poll_mode::write, true)) {
      ++woken;
    }
  }
  return woken;
}

}  // namespace goro::detail
