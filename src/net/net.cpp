// net.cpp — goro::net: TCP listeners and connections on the netpoller.
//
// The shape follows Go's internal/poll.FD: every call takes a reference on the
// socket (incref) so that close() from another goroutine cannot free the descriptor
// under a system call in progress — close marks the socket closed, evicts it from the
// poller (waking blocked calls), and whoever drops the last reference closes the
// descriptor. Reads and writes are each serialised by a goro::mutex so that one
// reader and one writer own the poller's two wait slots.
//
// Every call tries its system call first and waits in the poller only on EAGAIN.
//
// Invariants:
//   - net_socket::state: bit 0 is set once, by the first close (or the last handle
//     going); the rest counts calls in progress. A call that finds bit 0 set fails
//     with err_closed and takes no reference.
//   - The descriptor is closed, and its poll_desc recycled, exactly once: by close
//     when no call is in progress, else by the last call's decref.
//   - read_lock serialises readers (and accept), write_lock writers: each owns one
//     of the poller's wait slots while it holds the lock.
//   - local/remote are written before the socket is shared and never after.
#include "goro/net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <tuple>
#include <variant>
#include <vector>

#include "goro/blocking.hpp"
#include "goro/chan.hpp"
#include "goro/mutex.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "context/sentinel.hpp"
#include "goro/time.hpp"
#include "net/address.hpp"
#include "net/dial.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/parking.hpp"
#include "runtime/scheduler.hpp"

namespace goro {

namespace net {
GORO_DEFINE_SENTINEL(err_closed, "use of closed network connection");
}

namespace detail {

struct net_socket {
  int fd = -1;
  poll_desc* pd = nullptr;
  // Bit 0: closed. The rest counts references held by calls in progress, 2 each.
  std::atomic<std::uint64_t> state{0};
  goro::mutex read_lock, write_lock;
  std::string local, remote;
  std::atomic<bool> closed{false};       // the descriptor has been closed
  std::atomic<parker*> closer{nullptr};  // the close() waiting for that

  net_socket(int f, poll_desc* p) : fd(f), pd(p) {}
  net_socket(const net_socket&) = delete;
  net_socket& operator=(const net_socket&) = delete;
  ~net_socket() { shut(false); }  // the last handle went: nothing is in progress

  bool incref() noexcept {
    std::uint64_t s = state.load(std::memory_order_relaxed);
    do {
      if (s & 1) return false;
    } while (!state.compare_exchange_weak(s, s + 2, std::memory_order_acquire,
                                          std::memory_order_relaxed));
    return true;
  }
  void decref() noexcept {
    if (state.fetch_sub(2, std::memory_order_acq_rel) == (1 | 2)) destroy();
  }
  // Marks closed, evicts, and waits until the descriptor is closed (Go's FD.Close):
  // false if it already was closed. The close holds a reference of its own while it
  // evicts, so the poll_desc cannot be recycled (and handed to a new socket) under it.
  bool shut(bool wait) noexcept {
    std::uint64_t s = state.load(std::memory_order_relaxed);
    do {
      if (s & 1) return false;
    } while (!state.compare_exchange_weak(s, (s | 1) + 2, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
    if (forked_child.load(std::memory_order_relaxed)) [[unlikely]] {
      // A child of fork() closing an inherited socket: the calls in progress are the
      // parent's (their copies never run here) and the poller's state is the parent's
      // too. Close the child's descriptor and nothing else (scheduler.cpp, "fork").
      ::close(fd);
      closed.store(true, std::memory_order_seq_cst);
      return true;
    }
    parker* self = wait ? current_parker() : nullptr;
    closer.store(self, std::memory_order_seq_cst);
    poll_evict(pd);
    decref();  // the last reference closes the descriptor
    if (wait) {
      while (!closed.load(std::memory_order_acquire)) park(self, wait_reason::io_wait);
    }
    return true;
  }
  void destroy() noexcept {
    poll_close(pd);
    ::close(fd);
    closed.store(true, std::memory_order_seq_cst);
    if (parker* c = closer.load(std::memory_order_seq_cst)) unpark(c);
  }
};

// Makes a conn from a socket (conn's constructor is private).
struct net_access {
  static net::conn make(std::shared_ptr<net_socket> s) { return net::conn(std::move(s)); }
};

// Holds a reference for the duration of a call.
class socket_ref {
 public:
  explicit socket_ref(net_socket* s) : s_(s && s->incref() ? s : nullptr) {}
  ~socket_ref() {
    if (s_) s_->decref();
  }
  socket_ref(const socket_ref&) = delete;
  socket_ref& operator=(const socket_ref&) = delete;
  explicit operator bool() const noexcept { return s_ != nullptr; }

 private:
  net_socket* s_;
};

}  // namespace detail

namespace net {

namespace {

using detail::net_socket;
using detail::poll_mode;
using detail::poll_status;
using detail::socket_ref;

using addr::endpoint;
using addr::errno_error;
using addr::format;
using addr::local_name;
using addr::peer_name;
using addr::parse_target;
using addr::resolve;

// The calling thread's errno, read afresh: everything here runs on goroutines, so
// every errno read goes through this. glibc declares __errno_location() const, so
// a compiler may compute errno's address once in a function and use it again after
// a call that parks, when the goroutine may run on another thread (GCC 12 and Clang
// 16 both did in connect_one: the errno read after a failed getsockopt, past the
// connect wait, was that of the thread that had called connect). Not inlined, and the
// asm statement keeps the call from being treated as pure, so each call reads the
// errno of the thread it runs on.
[[gnu::noinline]] int last_errno() noexcept {
  asm volatile("" ::: "memory");
  return errno;
}


// ---- sockets -----------------------------------------------------------------------

std::int64_t to_nanotime(time_point t) {
  if (t == time_point{}) return 0;  // Go's zero Time: no deadline
  // Inside a synctest bubble t is on its fake clock: what is left of it is counted on
  // the real one (I/O is not durable, so the fake clock could not reach it).
  auto clock_now = goro::now();
  std::int64_t now = detail::nanotime();
  if (t <= clock_now) return now > 1 ? now : 1;  // already passed
  std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t - clock_now).count();
  if (ns > std::numeric_limits<std::int64_t>::max() - now)
    return std::numeric_limits<std::int64_t>::max();
  return now + ns;
}

// A non-blocking socket registered with the poller.
std::pair<std::shared_ptr<net_socket>, error> open_socket(int family, int fd_or_minus1) {
  int fd = fd_or_minus1;
  if (fd < 0) {
    fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) return {nullptr, wrap(errno_error(last_errno()), "socket")};
  }
  std::error_code ec;
  detail::poll_desc* pd = detail::poll_open(fd, ec);
  if (pd == nullptr) {
    ::close(fd);
    return {nullptr, wrap(error::from(ec), "epoll_ctl")};
  }
  return {std::make_shared<net_socket>(fd, pd), {}};
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string conn_name(const char* op, const net_socket& s) {
  return std::string(op) + " tcp " + s.local + "->" + s.remote;
}

// The error for a poll status other than ready: "<what>: use of closed network
// connection", or Go's "<what>: i/o timeout" (is(deadline_exceeded)).
error wait_error(poll_status st, const std::string& what) {
  if (st == poll_status::closing) return wrap(err_closed, what);
  return wrap(detail::io_timeout, what);
}

error null_error(const char* op) {
  return make_error(std::string(op) + ": null goro::net handle (default-constructed)");
}

result<std::size_t> do_read(net_socket* s, std::span<std::byte> buf) {
  socket_ref ref(s);
  if (!ref) return {0, wrap(err_closed, conn_name("read", *s))};
  if (buf.empty()) return {0, {}};
  poll_status st = detail::poll_check(s->pd, poll_mode::read);
  if (st != poll_status::ready) return {0, wait_error(st, conn_name("read", *s))};
  for (;;) {
    ssize_t n = ::read(s->fd, buf.data(), buf.size());
    if (n > 0) return {static_cast<std::size_t>(n), {}};
    if (n == 0) return {0, eof};
    int e = last_errno();
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      st = detail::poll_wait(s->pd, poll_mode::read);
      if (st != poll_status::ready) return {0, wait_error(st, conn_name("read", *s))};
      continue;
    }
    return {0, wrap(errno_error(e), conn_name("read", *s))};
  }
}

}  // namespace

// ---- conn --------------------------------------------------------------------------

result<std::size_t> conn::read(std::span<std::byte> buf) const {
  if (!s_) return {0, null_error("read")};
  std::lock_guard lk(s_->read_lock);
  return do_read(s_.get(), buf);
}

result<std::size_t> conn::read(std::span<char> buf) const {
  return read(std::as_writable_bytes(buf));
}

result<std::size_t> conn::read_full(std::span<std::byte> buf) const {
  if (!s_) return {0, null_error("read")};
  std::lock_guard lk(s_->read_lock);
  std::size_t done = 0;
  while (done < buf.size()) {
    auto [n, err] = do_read(s_.get(), buf.subspan(done));
    done += n;
    if (err) {
      if (err == eof && done > 0) return {done, unexpected_eof};
      return {done, err};
    }
  }
  return {done, {}};
}

result<std::size_t> conn::read_full(std::span<char> buf) const {
  return read_full(std::as_writable_bytes(buf));
}

result<std::size_t> conn::write(std::span<const std::byte> data) const {
  if (!s_) return {0, null_error("write")};
  net_socket* s = s_.get();
  std::lock_guard lk(s->write_lock);
  socket_ref ref(s);
  if (!ref) return {0, wrap(err_closed, conn_name("write", *s))};
  poll_status st = detail::poll_check(s->pd, poll_mode::write);
  if (st != poll_status::ready) return {0, wait_error(st, conn_name("write", *s))};
  std::size_t done = 0;
  while (done < data.size()) {
    // MSG_NOSIGNAL: a reset peer gives EPIPE here, not a SIGPIPE that kills the process.
    ssize_t n = ::send(s->fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) return {done, wrap(unexpected_eof, conn_name("write", *s))};
    int e = last_errno();
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      st = detail::poll_wait(s->pd, poll_mode::write);
      if (st != poll_status::ready) return {done, wait_error(st, conn_name("write", *s))};
      continue;
    }
    return {done, wrap(errno_error(e), conn_name("write", *s))};
  }
  return {done, {}};
}

result<std::size_t> conn::write(std::string_view data) const {
  return write(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

error conn::close() const {
  if (!s_) return null_error("close");
  if (!s_->shut(true)) return wrap(err_closed, conn_name("close", *s_));
  return {};
}

error conn::close_write() const {
  if (!s_) return null_error("close_write");
  socket_ref ref(s_.get());
  if (!ref) return wrap(err_closed, conn_name("close_write", *s_));
  if (::shutdown(s_->fd, SHUT_WR) != 0)
    return wrap(errno_error(last_errno()), conn_name("close_write", *s_));
  return {};
}

std::string conn::local_addr() const { return s_ ? s_->local : std::string(); }
std::string conn::remote_addr() const { return s_ ? s_->remote : std::string(); }

namespace {
error set_deadlines(net_socket* s, time_point t, bool read, bool write) {
  if (!s) return null_error("set_deadline");
  socket_ref ref(s);
  if (!ref) return wrap(err_closed, conn_name("set_deadline", *s));
  std::int64_t when = to_nanotime(t);
  if (read) detail::poll_set_deadline(s->pd, poll_mode::read, when);
  if (write) detail::poll_set_deadline(s->pd, poll_mode::write, when);
  return {};
}
}  // namespace

error conn::set_deadline(time_point t) const { return set_deadlines(s_.get(), t, true, true); }
error conn::set_read_deadline(time_point t) const {
  return set_deadlines(s_.get(), t, true, false);
}
error conn::set_write_deadline(time_point t) const {
  return set_deadlines(s_.get(), t, false, true);
}

int conn::native_handle() const noexcept {
  if (!s_ || (s_->state.load(std::memory_order_acquire) & 1)) return -1;
  return s_->fd;
}

// ---- listener ----------------------------------------------------------------------

result<conn> listener::accept() const {
  if (!s_) return {conn(), null_error("accept")};
  net_socket* s = s_.get();
  std::lock_guard lk(s->read_lock);
  socket_ref ref(s);
  std::string what = "accept tcp " + s->local;
  if (!ref) return {conn(), wrap(err_closed, what)};
  for (;;) {
    poll_status st = detail::poll_check(s->pd, poll_mode::read);
    if (st != poll_status::ready) return {conn(), wait_error(st, what)};
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd =
        ::accept4(s->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      set_nodelay(fd);
      auto [ns, err] = open_socket(peer.ss_family, fd);
      if (err) return {conn(), wrap(err, what)};
      ns->local = local_name(fd);
      ns->remote = format(reinterpret_cast<sockaddr*>(&peer));
      return {conn(std::move(ns)), {}};
    }
    int e = last_errno();
    if (e == EINTR || e == ECONNABORTED) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      st = detail::poll_wait(s->pd, poll_mode::read);
      if (st != poll_status::ready) return {conn(), wait_error(st, what)};
      continue;
    }
    return {conn(), wrap(errno_error(e), what)};
  }
}

std::string listener::addr() const { return s_ ? s_->local : std::string(); }

error listener::close() const {
  if (!s_) return null_error("close");
  if (!s_->shut(true)) return wrap(err_closed, "close tcp " + s_->local);
  return {};
}

int listener::native_handle() const noexcept {
  if (!s_ || (s_->state.load(std::memory_order_acquire) & 1)) return -1;
  return s_->fd;
}

result<listener> listen(std::string_view network, std::string_view address) {
  std::string op = "listen " + std::string(network);
  auto [family, hp, perr] = parse_target(op, network, address);
  if (perr) return {listener(), perr};
  auto [eps, rerr] = resolve(nullptr, true, family, hp);
  if (rerr) return {listener(), wrap(rerr, op)};
  if (!hp.host.empty()) {
    // A name with both kinds of address ("localhost") listens on IPv4, as Go does.
    std::stable_partition(eps.begin(), eps.end(),
                          [](const endpoint& e) { return e.family() == AF_INET; });
  }
  error last;
  for (const endpoint& ep : eps) {
    auto [s, err] = open_socket(ep.family(), -1);
    if (err) {
      last = err;
      continue;
    }
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ep.family() == AF_INET6) {
      // "tcp" on the IPv6 wildcard accepts IPv4 too (dual stack), as in Go.
      int v6only = family == AF_INET6 ? 1 : 0;
      setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    std::string where = op + " " + format(reinterpret_cast<const sockaddr*>(&ep.ss));
    if (::bind(s->fd, reinterpret_cast<const sockaddr*>(&ep.ss), ep.len) != 0) {
      last = wrap(errno_error(last_errno()), where + ": bind");
      continue;  // e.g. no IPv6 on this machine: try the next address
    }
    if (::listen(s->fd, SOMAXCONN) != 0) {
      last = wrap(errno_error(last_errno()), where + ": listen");
      continue;
    }
    s->local = local_name(s->fd);
    return {listener(std::move(s)), {}};
  }
  return {listener(), last};
}

// ---- dial --------------------------------------------------------------------------

namespace {

// Connects a fresh socket to `ep`. A ctx deadline becomes the write deadline; ctx
// cancellation sets the write deadline to the past, which wakes the connect wait.
std::pair<std::shared_ptr<net_socket>, error> connect_one(const context& ctx, const endpoint& ep,
                                                          const std::string& op) {
  std::string where = op + " " + format(reinterpret_cast<const sockaddr*>(&ep.ss));
  auto [s, err] = open_socket(ep.family(), -1);
  if (err) return {nullptr, wrap(err, where)};
  int rc;
  int e = 0;
  do {
    rc = ::connect(s->fd, reinterpret_cast<const sockaddr*>(&ep.ss), ep.len);
    if (rc != 0) e = last_errno();
  } while (rc != 0 && e == EINTR);
  if (rc != 0 && e != EINPROGRESS) return {nullptr, wrap(errno_error(e), where + ": connect")};
  if (rc != 0) {
    struct hook_link {
      std::mutex lock;
      net_socket* sock = nullptr;  // null once the connect wait is over
    };
    auto link = std::make_shared<hook_link>();
    link->sock = s.get();
    if (auto d = ctx.deadline())
      detail::poll_set_deadline(s->pd, poll_mode::write, to_nanotime(*d));
    std::uint64_t hook = goro::detail::context_on_cancel(ctx, [link] {
      std::lock_guard lk(link->lock);
      if (link->sock) detail::poll_set_deadline(link->sock->pd, poll_mode::write, 1);
    });
    poll_status st = poll_status::ready;
    int so_error = 0;
    for (;;) {
      st = detail::poll_wait(s->pd, poll_mode::write);
      if (st != poll_status::ready) break;
      socklen_t len = sizeof so_error;
      if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = last_errno();
      if (so_error == EINPROGRESS || so_error == EALREADY || so_error == EINTR) continue;
      if (so_error == EISCONN) so_error = 0;
      if (so_error != 0) break;
      // Writable and no error is not yet "connected": a socket is writable (and hung
      // up) from its registration, before connect() (Go checks the same way).
      sockaddr_storage peer{};
      socklen_t plen = sizeof peer;
      if (getpeername(s->fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) break;
    }
    if (hook != 0) goro::detail::context_remove_on_cancel(ctx, hook);
    {
      std::lock_guard lk(link->lock);  // waits for a callback in progress
      link->sock = nullptr;
    }
    if (error cerr = ctx.err()) return {nullptr, wrap(cerr, where)};
    // The socket's only deadline is ctx's (its timer may not have marked ctx yet): the
    // error has the context's text, as any other end of ctx gives.
    if (st == poll_status::timeout) return {nullptr, wrap(deadline_exceeded, where)};
    if (st != poll_status::ready) return {nullptr, wait_error(st, where)};
    if (so_error != 0) return {nullptr, wrap(errno_error(so_error), where + ": connect")};
    detail::poll_set_deadline(s->pd, poll_mode::write, 0);
  }
  set_nodelay(s->fd);
  s->local = local_name(s->fd);
  s->remote = peer_name(s->fd);
  if (s->remote.empty()) s->remote = format(reinterpret_cast<const sockaddr*>(&ep.ss));
  return {std::move(s), {}};
}

}  // namespace

namespace dialing {

std::optional<time_point> partial_deadline(time_point now, time_point deadline,
                                           std::size_t remaining) {
  if (deadline <= now) return std::nullopt;
  auto left = deadline - now;
  auto share = left / static_cast<std::int64_t>(remaining == 0 ? 1 : remaining);
  if (share < min_attempt_time) share = std::min<time_point::duration>(left, min_attempt_time);
  return now + share;
}

namespace {

using sock_ptr = std::shared_ptr<net_socket>;

// Go's dialSerial: each address in turn, each within its partial deadline. Returns the
// first connection, or the first error (the context's if it ended between attempts).
std::pair<sock_ptr, error> dial_serial(const context& ctx, const std::vector<endpoint>& eps,
                                       const std::string& op) {
  error first;
  for (std::size_t i = 0; i < eps.size(); ++i) {
    if (error e = ctx.err()) return {nullptr, wrap(e, op + " " + format(eps[i]))};
    context attempt = ctx;
    cancel_func cancel;
    if (auto d = ctx.deadline()) {
      auto pd = partial_deadline(std::chrono::steady_clock::now(), *d, eps.size() - i);
      if (!pd) {
        if (!first) first = wrap(deadline_exceeded, op + " " + format(eps[i]));
        break;
      }
      if (*pd < *d) std::tie(attempt, cancel) = with_deadline(ctx, *pd);
    }
    auto [s, err] = connect_one(attempt, eps[i], op);
    cancel();
    if (!err) return {std::move(s), {}};
    if (!first) first = err;
  }
  if (!first) first = make_error(op + ": missing address");
  return {nullptr, first};
}

struct dial_result {
  sock_ptr s;
  error err;
  bool primary = false;
};

// Go's dialParallel: the primaries serially now, the fallbacks serially after
// fallback_delay or as soon as the primaries fail; the first connection wins, the
// other attempt is cancelled and a connection it still makes is closed. Both fail:
// the primaries' error.
std::pair<sock_ptr, error> dial_parallel(const context& ctx, std::vector<endpoint> primaries,
                                         std::vector<endpoint> fallbacks, const std::string& op) {
  if (fallbacks.empty()) return dial_serial(ctx, primaries, op);
  auto results = make_chan<dial_result>();         // unbuffered: a racer hands over or
  auto returned = make_chan<std::monostate>();     // sees this closed, and closes its conn
  auto start = [&](const context& c, std::vector<endpoint> eps, bool primary) {
    go([results, returned, c, eps = std::move(eps), primary, op] {
      auto [s, err] = dial_serial(c, eps, op);
      sock_ptr keep = s;
      int won = select(case_send(results, dial_result{std::move(s), std::move(err), primary}),
                       case_recv(returned));
      if (won == 1 && keep) keep->shut(false);  // the other attempt won: close this one
    });
  };
  auto [pctx, pcancel] = with_cancel(ctx);
  context fctx;
  cancel_func fcancel;
  start(pctx, std::move(primaries), true);
  recv_chan<time_point> timer = after(fallback_delay);
  bool fallback_started = false, primary_done = false, fallback_done = false;
  error primary_err;
  std::pair<sock_ptr, error> out;
  auto start_fallback = [&] {
    std::tie(fctx, fcancel) = with_cancel(ctx);
    start(fctx, std::move(fallbacks), false);
    fallback_started = true;
    timer = recv_chan<time_point>();  // nil: never ready
  };
  for (;;) {
    std::optional<dial_result> got;
    if (select(case_recv(timer), case_recv(results, got)) == 0) {
      start_fallback();
      continue;
    }
    if (!got->err) {
      out = {std::move(got->s), {}};
      break;
    }
    if (got->primary) {
      primary_done = true;
      primary_err = got->err;
    } else {
      fallback_done = true;
    }
    if (primary_done && fallback_done) {
      out = {nullptr, primary_err};
      break;
    }
    if (got->primary && !fallback_started) start_fallback();
  }
  returned.close();
  pcancel();
  fcancel();
  return out;
}

}  // namespace

result<conn> dial_endpoints(const context& ctx, std::string_view network,
                            const std::vector<endpoint>& eps) {
  std::string op = "dial " + std::string(network);
  if (error e = ctx.err()) return {conn(), wrap(e, op)};
  std::vector<endpoint> primaries, fallbacks;
  for (const endpoint& ep : eps) {
    // Only "tcp" races the families (tcp4 and tcp6 have one), as Go does.
    if (network == "tcp" && !primaries.empty() && ep.family() != primaries.front().family()) {
      fallbacks.push_back(ep);
    } else {
      primaries.push_back(ep);
    }
  }
  auto [s, err] = dial_parallel(ctx, std::move(primaries), std::move(fallbacks), op);
  if (err) return {conn(), err};
  return {detail::net_access::make(std::move(s)), {}};
}

}  // namespace dialing

result<conn> dial(const context& ctx, std::string_view network, std::string_view address) {
  std::string op = "dial " + std::string(network);
  auto [family, hp, perr] = parse_target(op, network, address);
  if (perr) return {conn(), perr};
  if (hp.port == 0) {
    return {conn(), make_error(op + ": address " + std::string(address) + ": invalid port")};
  }
  if (error e = ctx.err()) return {conn(), wrap(e, op)};
  auto [eps, rerr] = resolve(&ctx, false, family, hp);
  if (rerr) return {conn(), wrap(rerr, op)};
  return dialing::dial_endpoints(ctx, network, eps);
}

result<conn> dial(std::string_view network, std::string_view address) {
  return dial(background(), network, address);
}

}  // namespace net
}  // namespace goro
