// netpoll_epoll.cpp — the netpoller's Linux backend: one epoll instance, descriptors
// registered once for edge-triggered input and output, and an eventfd in the set so
// that another thread can end a wait (backend_break).
//
// Invariants:
//   - The eventfd's event carries a null pointer; every other event a poll_desc*.
//   - break_pending is true from the first backend_break until a wait drains the
//     eventfd, so a burst of wake-ups costs one write.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "runtime/netpoll.hpp"

#if defined(GORO_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace goro::detail {

namespace {

int epfd = -1;  // written once by backend_init, before any other call
int breakfd = -1;
std::atomic<bool> break_pending{false};
std::atomic<bool> has_pwait2{true};  // cleared if the kernel lacks epoll_pwait2

// The kernel orders a registration before the events it delivers, but ThreadSanitizer
// cannot see through epoll: tell it, or the poller's first look at a fresh poll_desc
// is reported as racing with its construction.
inline void handed_to_kernel([[maybe_unused]] poll_desc* pd) {
#if defined(GORO_TSAN)
  __tsan_release(pd);
#endif
}
inline void received_from_kernel([[maybe_unused]] poll_desc* pd) {
#if defined(GORO_TSAN)
  __tsan_acquire(pd);
#endif
}

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "goro: fatal error: netpoll %s failed: errno %d\n", what, errno);
  std::abort();
}

int wait_for(epoll_event* events, int max, std::int64_t timeout_ns) {
  if (timeout_ns <= 0) return epoll_wait(epfd, events, max, timeout_ns < 0 ? -1 : 0);
#if defined(SYS_epoll_pwait2)
  if (has_pwait2.load(std::memory_order_relaxed)) {
    // A nanosecond timeout: epoll_wait's milliseconds would make timers late.
    timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                static_cast<long>(timeout_ns % 1'000'000'000)};
    int n = static_cast<int>(syscall(SYS_epoll_pwait2, epfd, events, max, &ts, nullptr, 0));
    if (n >= 0 || errno != ENOSYS) return n;
    has_pwait2.store(false, std::memory_order_relaxed);
  }
#endif
  std::int64_t ms = (timeout_ns + 999'999) / 1'000'000;  // round up: never early
  return epoll_wait(epfd, events, max, ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms));
}

}  // namespace

void backend_init() {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fatal("epoll_create1");
  breakfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (breakfd < 0) fatal("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) != 0) fatal("epoll_ctl");
}

// In a child of fork(): the epoll instance and the eventfd are the parent's (shared
// open files). A child that deregistered a socket there, or waited there, would take
// it from the parent. Puts fresh, empty ones under the same descriptor numbers, so any
// later call in the child touches only its own.
void backend_after_fork_child() noexcept {
  if (epfd < 0) return;
  int fresh_ep = epoll_create1(EPOLL_CLOEXEC);
  int fresh_break = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fresh_ep < 0 || fresh_break < 0) {
    close(epfd);  // at worst the child has no poller; it never shares the parent's
    epfd = -1;
    return;
  }
  dup3(fresh_ep, epfd, O_CLOEXEC);
  dup3(fresh_break, breakfd, O_CLOEXEC);
  close(fresh_ep);
  close(fresh_break);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev);
}

bool backend_register(int fd, poll_desc* pd, std::error_code& ec) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = pd;
  handed_to_kernel(pd);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ec = std::error_code(errno, std::system_category());
    return false;
  }
  ec.clear();
  return true;
}

void backend_deregister(int fd) noexcept { epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr); }

void backend_break() noexcept {
  if (break_pending.exchange(true, std::memory_order_acq_rel)) return;
  std::uint64_t one = 1;
  while (::write(breakfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void backend_wait(std::int64_t timeout_ns, bool drain_break,
                  const std::function<void(poll_desc*, bool, bool)>& ready) noexcept {
  constexpr int max_events = 128;
  epoll_event events[max_events];
  int n = wait_for(events, max_events, timeout_ns);
  for (int i = 0; i < n; ++i) {
    auto* pd = static_cast<poll_desc*>(events[i].data.ptr);
    std::uint32_t ev = events[i].events;
    if (pd == nullptr) {
      if (drain_break) {
        // Clear the flag first: a break that comes after it writes again, and the
        // eventfd (level-triggered) then stays readable for the next wait.
        break_pending.store(false, std::memory_order_seq_cst);
        std::uint64_t value;
        while (::read(breakfd, &value, sizeof value) < 0 && errno == EINTR) {
        }
      }
      continue;
    }
    received_from_kernel(pd);
    ready(pd, (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
          (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0);
  }
}

}  // namespace goro::detail
