// netpoll.hpp — the network poller: parks goroutines on descriptors, not threads.
//
// Design (after Go's runtime/netpoll.go and netpoll_epoll.go):
//
//   - One epoll instance for the process. A descriptor is registered once, when it is
//     opened, for input and output, edge-triggered; it is never re-armed.
//   - Each registered descriptor has a poll_desc with two wait slots, one per direction
//     (rg for reading, wg for writing). A slot is 0 (nothing), `ready` (an edge arrived
//     while nobody waited: a token the next waiter consumes) or the parker of the one
//     goroutine or thread waiting for that direction.
//   - A caller tries its system call first and waits only on EAGAIN (poll_wait), then
//     tries again: readiness is a hint, the system call is the truth.
//   - Deadlines are per-direction nanotime values checked by poll_wait; a runtime timer
//     per direction wakes the waiter when one passes. poll_evict (close) marks the
//     descriptor closing and wakes both waiters. After that poll_wait fails at once.
//   - poll_descs are pooled and never freed, so a late epoll event or deadline timer
//     that names a recycled one does no harm: it can only leave a stale `ready` token
//     (the next waiter retries its system call and waits again) or wake a waiter that
//     re-checks its deadline.
//
// Scheduler side (scheduler.cpp): a worker with no runnable goroutine polls without
// blocking before it steals; an idle worker takes the poller role while goroutines
// wait on I/O and sleeps in epoll_wait (with the next timer as its timeout) instead of
// on its futex. Waking that worker writes to an eventfd in the epoll set
// (netpoll_break). A worker that has been busy for netpoll_interval_ns polls between
// goroutines, so I/O completes even while every processor has work.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <system_error>

#include "runtime/sys.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

struct poll_desc {
  static constexpr std::uintptr_t ready = 1;

  int fd = -1;
  std::atomic<std::uintptr_t> rg{0};  // read slot: 0, ready, or a parker*
  std::atomic<std::uintptr_t> wg{0};  // write slot
  std::atomic<bool> closing{false};
  std::atomic<std::int64_t> rd{0};  // read deadline (nanotime); 0: none
  std::atomic<std::int64_t> wd{0};  // write deadline
  spinlock lock;                    // serialises deadline changes (timers)
  timer_entry rtimer, wtimer;
  poll_desc* next_free = nullptr;  // in the pool
};

enum class poll_mode : std::uint8_t { read, write };
enum class poll_status : std::uint8_t { ready, closing, timeout };

// Registers `fd` (already non-blocking) with the poller. Starts the runtime.
poll_desc* poll_open(int fd, std::error_code& ec);
// Deregisters and recycles pd. Call after poll_evict, when no call is using it, and
// before closing the descriptor.
void poll_close(poll_desc* pd) noexcept;
// Marks pd closing and wakes both waiters; later poll_waits fail with `closing`.
void poll_evict(poll_desc* pd) noexcept;
// The error a call would get now without waiting: closing, an expired deadline, or ready.
poll_status poll_check(poll_desc* pd, poll_mode mode) noexcept;
// Waits until the descriptor may be ready for `mode`, it is evicted, or the deadline
// for `mode` passes. Parks a goroutine (IO wait) or blocks a thread. One waiter per
// direction at a time (callers serialise).
poll_status poll_wait(poll_desc* pd, poll_mode mode) noexcept;
// Sets the deadline (nanotime, 0 for none) of one direction; a deadline in the past
// wakes that direction's waiter at once.
void poll_set_deadline(poll_desc* pd, poll_mode mode, std::int64_t when);

// --- scheduler interface ---

// True while some goroutine or thread waits in poll_wait.
bool netpoll_waiting() noexcept;
// Callers inside poll_wait now: goroutines and threads waiting for I/O (metrics).
int netpoll_waiter_count() noexcept;
// Polls for events, waiting up to timeout_ns (< 0: until an event or netpoll_break,
// 0: not at all), and wakes the waiters they concern. Returns how many it woke
// (-1 if the poller is not initialised).
int netpoll(std::int64_t timeout_ns) noexcept;
// Interrupts a netpoll() blocked in epoll_wait (or makes the next one return at once).
void netpoll_break() noexcept;
// nanotime of the last completed poll.
std::int64_t netpoll_last() noexcept;

inline constexpr std::int64_t netpoll_interval_ns = 2'000'000;

// --- the OS backend (netpoll_epoll.cpp; one file per backend, chosen in CMake) ---

// Creates the kernel poller and its wake-up channel; fatal on failure. Called once.
void backend_init();
// Registers fd for edge-triggered read and write readiness, reporting events for pd.
bool backend_register(int fd, poll_desc* pd, std::error_code& ec);
void backend_deregister(int fd) noexcept;
// In the child of a fork: replaces the inherited poller by an empty one of its own.
void backend_after_fork_child() noexcept;
// Waits up to timeout_ns (< 0: indefinitely, 0: not at all) and calls
// ready(pd, readable, writable) for each descriptor with an event. A backend_break
// ends the wait early; only a waiter with drain_break consumes it, so a quick
// non-blocking poll on another worker never swallows the wake-up meant for the
// worker asleep in the poller.
void backend_wait(std::int64_t timeout_ns, bool drain_break,
                  const std::function<void(poll_desc*, bool, bool)>& ready) noexcept;
// Interrupts a backend_wait in progress (or makes the next one return at once).
void backend_break() noexcept;

}  // namespace goro::detail
