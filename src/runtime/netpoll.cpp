// netpoll.cpp — the network poller's portable part: wait slots, deadlines, the
// descriptor pool. Design in netpoll.hpp; the kernel side is netpoll_epoll.cpp.
//
// Invariants:
//   - A slot holds 0, poll_desc::ready, or the parker of the one caller inside
//     poll_wait for that direction (callers serialise per direction).
//   - Only CAS/exchange change a slot, so a token or a parker is taken out once.
//   - poller::waiters counts callers between W1 and W4 below; the scheduler polls
//     (and the deadlock detector stays quiet) while it is non-zero.
//   - A poll_desc in the pool has no pending deadline timer and fd == -1.
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

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "runtime/parking.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

namespace {

struct poller {
  std::atomic<int> waiters{0};             // callers inside poll_wait
  std::atomic<std::int64_t> last_poll{0};  // nanotime of the last netpoll()
  spinlock pool_lock;
  poll_desc* pool = nullptr;  // under pool_lock: recycled descriptors
};

poller* the_poller = nullptr;
std::once_flag poller_once;

poller& get_poller() {
  std::call_once(poller_once, [] {
    sched();               // the poller runs on the workers
    auto* p = new poller;  // never destroyed: workers outlive main
    backend_init();
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
  if (!backend_register(fd, pd, ec)) {
    std::lock_guard lk(pl.pool_lock);
    pd->next_free = pl.pool;
    pl.pool = pd;
    return nullptr;
  }
  return pd;
}

void poll_close(poll_desc* pd) noexcept {
  poller& pl = *poller_if_started();
  backend_deregister(pd->fd);
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
    netpoll_need_poller();                             // make sure some worker watches the poller
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

void poll_set_deadline(poll_desc* pd, poll_mode mode, std::int64_t when) {
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

int netpoll_waiter_count() noexcept {
  poller* pl = poller_if_started();
  return pl ? pl->waiters.load(std::memory_order_relaxed) : 0;
}

std::int64_t netpoll_last() noexcept {
  poller* pl = poller_if_started();
  return pl ? pl->last_poll.load(std::memory_order_relaxed) : 0;
}

void netpoll_break() noexcept {
  if (poller_if_started() != nullptr) backend_break();
}

int netpoll(std::int64_t timeout_ns) noexcept {
  poller* pl = poller_if_started();
  if (pl == nullptr) return -1;
  int woken = 0;
  backend_wait(timeout_ns, /*drain_break=*/timeout_ns != 0,
               [&woken](poll_desc* pd, bool readable, bool writable) {
                 if (readable && unblock(pd, poll_mode::read, true)) ++woken;
                 if (writable && unblock(pd, poll_mode::write, true)) ++woken;
               });
  pl->last_poll.store(nanotime(), std::memory_order_relaxed);
  return woken;
}

}  // namespace goro::detail
