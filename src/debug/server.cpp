// server.cpp — goro::debug::serve: /debug/pprof/goroutine over HTTP (cpp-httplib).
//
// The server runs on its own OS threads (a listener and a pool of workers), never on a
// processor, so it answers even when every processor is busy with goroutines that do
// not yield. It lives until the process exits.
//
// httplib parses requests and routes them; goro owns everything around that:
// - the address: parsed and resolved by net/address (the one parser of host:port), the
//   loopback check made on every resolved address, the socket bound to the numeric
//   address (not to a name resolved again);
// - connections (process_and_close_socket, overridden): each request's line and
//   headers must arrive within header_timeout in all (httplib's own timeout is per
//   read, so a client sending a byte every second held a worker forever), its response
//   must be taken within write_timeout, a connection waits idle_timeout for its next
//   request and serves at most max_requests; a request with a body is answered 413 and
//   the connection closed (the endpoints take none; httplib read any body into memory);
// - the workers: a pool that starts a thread when every one is busy, up to
//   max_workers, and lets one go after worker_idle without work (httplib's fixed pool
//   of 8 was held by 8 slow clients);
// - SIGPIPE: httplib::Server's constructor sets it to SIG_IGN for the whole process;
//   serve restores the caller's disposition, writes with MSG_NOSIGNAL, and its threads
//   block SIGPIPE besides.
#include <string>

#include "goro/debug.hpp"

#if defined(GORO_HAVE_HTTPLIB)
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>

#include "net/address.hpp"
#endif

namespace goro::detail {
void disable_deadlock_detection() noexcept;  // scheduler.cpp
}

namespace goro::debug {

#if defined(GORO_HAVE_HTTPLIB)
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The limits documented at serve() in goro/debug.hpp.
constexpr auto header_timeout = 5s;  // request line and headers, in all
constexpr auto write_timeout = 10s;  // the whole response
constexpr auto idle_timeout = 2s;    // between requests on one connection
constexpr int max_requests = 5;      // per connection
constexpr std::size_t max_workers = 64;
constexpr auto worker_idle = 10s;
constexpr std::size_t max_payload = 64 * 1024;  // httplib's own limit, behind the 413
constexpr auto linger_limit = 500ms;            // draining a refused request's body
// A request's line and headers, at most: httplib grows its line buffer until it sees a
// newline and has no limit on the number of headers, so without this one client could
// make it buffer whatever it sends within header_timeout (a gigabyte was seen).
constexpr std::size_t max_request_bytes = 64 * 1024;

// Go's strconv.Atoi as net/http/pprof uses it for ?debug=: an optional sign and decimal
// digits, nothing else (no spaces); out of range saturates; a syntax error is 0.
long long atoi_like_go(const std::string& v) {
  std::size_t i = 0;
  bool negative = false;
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) negative = v[i++] == '-';
  if (i == v.size()) return 0;
  long long n = 0;
  bool saturated = false;
  for (; i < v.size(); ++i) {
    if (v[i] < '0' || v[i] > '9') return 0;
    if (n > (std::numeric_limits<long long>::max() - (v[i] - '0')) / 10) saturated = true;
    if (!saturated) n = n * 10 + (v[i] - '0');
  }
  if (saturated) return negative ? std::numeric_limits<long long>::min() : std::numeric_limits<long long>::max();
  return negative ? -n : n;
}

// Every endpoint, with a line on each, as Go's /debug/pprof/ index has.
const char* index_page =
    "<html><head><title>/debug/pprof/</title></head><body>\n"
    "<p>/debug/pprof/: goro's runtime, seen from outside</p>\n"
    "<table>\n"
    "<tr><td><a href=\"goroutine\">goroutine</a></td><td>Stack traces of all goroutines "
    "as a pprof profile (gzipped protobuf): <code>go tool pprof "
    "http://HOST/debug/pprof/goroutine</code>. Samples are labelled with the goroutines' "
    "wait state and name.</td></tr>\n"
    "<tr><td><a href=\"goroutine?debug=1\">goroutine?debug=1</a></td><td>The same as "
    "text: identical stacks grouped, with counts and wait reasons.</td></tr>\n"
    "<tr><td><a href=\"goroutine?debug=2\">goroutine?debug=2</a></td><td>Every "
    "goroutine with its wait reason, how long it has waited, its stack and where it was "
    "created (Go's panic layout).</td></tr>\n"
    "<tr><td><a href=\"/metrics\">/metrics</a></td><td>Runtime metrics in Prometheus' "
    "text format: goroutines by state, threads by role, context switches, steals, parks, "
    "timers, network waiters, stack memory.</td></tr>\n"
    "<tr><td><a href=\"/debug/vars\">/debug/vars</a></td><td>The same metrics as JSON, in "
    "expvar's shape.</td></tr>\n"
    "</table></body></html>\n";

// Waits until fd is ready for `events` or `deadline` passes; false on timeout or error.
bool wait_ready(int fd, short events, clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) return false;
    if (r > 0) return true;  // readable, writable, or an error the next call reports
  }
}

void ip_and_port(const sockaddr_storage& ss, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
  }
  ip = text;
}

// One connection, read through a buffer (httplib reads a request line a byte at a
// time). Reads give up at the request's deadline, writes at the response's.
class conn_stream final : public httplib::Stream {
 public:
  // `accepted`: when the listener took the connection. The first request's deadline
  // counts from then, so time spent waiting for a worker is not added to it (200 idle
  // connections queued behind 64 workers stalled everyone for 15 s).
  conn_stream(int fd, clock::time_point accepted)
      : fd_(fd), read_deadline_(accepted + header_timeout) {}

  void begin_request(bool first) {
    if (!first) read_deadline_ = clock::now() + header_timeout;
    write_deadline_.reset();
    read_budget_ = max_request_bytes;
  }
  bool timed_out() const { return timed_out_; }
  // Waits for the next request's first byte; false if none comes within `limit`.
  bool wait_for_request(std::chrono::milliseconds limit) {
    return off_ < len_ || wait_ready(fd_, POLLIN, clock::now() + limit);
  }

  bool is_readable() const override {
    return off_ < len_ || wait_ready(fd_, POLLIN, read_deadline_);
  }
  bool is_writable() const override { return wait_ready(fd_, POLLOUT, write_deadline()); }

  ssize_t read(char* ptr, size_t size) override {
    if (read_budget_ == 0) {
      timed_out_ = true;  // too big: treated as a dead connection, closed unanswered
      return -1;
    }
    size = std::min(size, read_budget_);
    if (off_ == len_) {
      ssize_t n = receive();
      if (n <= 0) return n;
      off_ = 0;
      len_ = static_cast<std::size_t>(n);
    }
    std::size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    read_budget_ -= n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!write_deadline_) write_deadline_ = clock::now() + write_timeout;
    for (;;) {
      ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait_ready(fd_, POLLOUT, *write_deadline_)) {
        timed_out_ = true;
        return -1;
      }
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) ip_and_port(ss, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) ip_and_port(ss, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  ssize_t receive() {
    for (;;) {
      ssize_t n = ::recv(fd_, buf_, sizeof buf_, MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait_ready(fd_, POLLIN, read_deadline_)) {
        timed_out_ = true;
        return -1;
      }
    }
  }
  clock::time_point write_deadline() const {
    return write_deadline_ ? *write_deadline_ : clock::now() + write_timeout;
  }

  int fd_;
  char buf_[4096];
  std::size_t off_ = 0, len_ = 0;
  clock::time_point read_deadline_;
  std::size_t read_budget_ = max_request_bytes;
  std::optional<clock::time_point> write_deadline_;
  bool timed_out_ = false;
};

// The status of the last response this thread wrote (set by the server's logger).
thread_local int last_status = 0;
// When the listener handed this thread's current connection to the pool.
thread_local clock::time_point accepted_at;

// Starts a thread when a connection arrives and none is idle, up to max_workers
// (then connections wait their turn); a thread with no work for worker_idle ends.
class growing_pool final : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override {
    std::lock_guard lock(s_->mu);
    s_->jobs.push_back([fn = std::move(fn), at = clock::now()] {
      accepted_at = at;
      fn();
    });
    if (s_->jobs.size() > s_->idle && s_->threads < max_workers) {
      try {
        std::thread([s = s_] { work(s); }).detach();
        ++s_->threads;
        return;
      } catch (const std::system_error&) {
        // No thread now: a running one takes the job when it is done.
      }
    }
    s_->cv.notify_one();
  }
  void shutdown() override {  // the listener has stopped: threads end when idle
    std::lock_guard lock(s_->mu);
    s_->shut = true;
    s_->cv.notify_all();
  }

 private:
  struct state {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> jobs;
    std::size_t threads = 0, idle = 0;
    bool shut = false;
  };
  static void work(std::shared_ptr<state> s) {
    std::unique_lock lock(s->mu);
    for (;;) {
      if (s->jobs.empty()) {
        if (s->shut) break;
        ++s->idle;
        bool woke = s->cv.wait_for(lock, worker_idle, [&] { return !s->jobs.empty() || s->shut; });
        --s->idle;
        if (!woke) break;
        continue;
      }
      auto fn = std::move(s->jobs.front());
      s->jobs.pop_front();
      lock.unlock();
      fn();
      fn = nullptr;
      lock.lock();
    }
    --s->threads;
  }
  std::shared_ptr<state> s_ = std::make_shared<state>();
};

bool has_body(const httplib::Request& req) {
  return req.has_header("Transfer-Encoding") ||
         (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
}

void refuse_body(httplib::Response& res) {
  res.status = 413;
  res.set_header("Connection", "close");  // the body is not read
  res.set_content("request body not accepted\n", "text/plain");
}

class debug_server final : public httplib::Server {
 public:
  debug_server() {
    new_task_queue = [] { return new growing_pool; };
    set_payload_max_length(max_payload);
    set_keep_alive_max_count(max_requests);
    set_keep_alive_timeout(std::chrono::duration_cast<std::chrono::seconds>(idle_timeout).count());
    set_logger(
        [](const httplib::Request&, const httplib::Response& res) { last_status = res.status; });
    // The endpoints take no body: refuse one before httplib reads it into memory (and
    // before it tells a client that expects 100 Continue to send it).
    set_expect_100_continue_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!has_body(req)) return 100;
      refuse_body(res);
      return 413;
    });
    set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!has_body(req)) return HandlerResponse::Unhandled;
      refuse_body(res);
      return HandlerResponse::Handled;
    });
    Get("/debug/pprof/goroutine", [](const httplib::Request& req, httplib::Response& res) {
      // Go's rule (strconv.Atoi): 2 or more is every goroutine, 1 the grouped text,
      // anything else (none, 0, negative, not a number) the protobuf profile.
      long long n = req.has_param("debug") ? atoi_like_go(req.get_param_value("debug")) : 0;
      int level = n >= 2 ? 2 : n == 1 ? 1 : 0;
      if (level != 0) {
        res.set_content(goroutines(level), "text/plain; charset=utf-8");
        return;
      }
      std::ostringstream os;
      if (error err = write_goroutine_profile(os)) {
        res.status = 500;
        res.set_content(err.message() + "\n", "text/plain; charset=utf-8");
        return;
      }
      res.set_header("Content-Disposition", "attachment; filename=\"goroutine\"");
      res.set_content(os.str(), "application/octet-stream");
    });
    // Go's mux redirects the path without its slash.
    Get("/debug/pprof", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/debug/pprof/", 301);
    });
    Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
      std::ostringstream os;
      write_metrics(os);
      res.set_content(os.str(), "text/plain; version=0.0.4; charset=utf-8");
    });
    Get("/debug/vars", [](const httplib::Request&, httplib::Response& res) {
      std::ostringstream os;
      write_vars(os);
      res.set_content(os.str(), "application/json; charset=utf-8");
    });
    Get("/debug/pprof/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(index_page, "text/html");
    });
  }

  void adopt_listener(int fd) { svr_sock_ = fd; }

 private:
  bool process_and_close_socket(socket_t sock) override {
    ::fcntl(sock, F_SETFD, FD_CLOEXEC);
    conn_stream strm(sock, accepted_at);
    bool ok = false;
    bool refused = false;
    for (int count = max_requests; count > 0; --count) {
      if (count != max_requests && !strm.wait_for_request(idle_timeout)) break;
      strm.begin_request(count == max_requests);
      last_status = 0;
      bool closed = false;
      ok = process_request(strm, count == 1, closed, nullptr);
      // After an error status the rest of the stream (a body, a half-sent request)
      // is not read as another request.
      refused = last_status >= 400;
      if (!ok || closed || refused || strm.timed_out()) break;
    }
    ::shutdown(sock, SHUT_WR);
    if (refused && !strm.timed_out()) {
      // Let the client read the answer: closing with unread input sends a reset,
      // which can discard it. Drain for a moment, then close.
      auto until = clock::now() + linger_limit;
      char sink[4096];
      std::size_t drained = 0;
      while (drained < (1u << 20) && wait_ready(sock, POLLIN, until)) {
        ssize_t n = ::recv(sock, sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
        if (n > 0) drained += static_cast<std::size_t>(n);
      }
    }
    ::close(sock);
    return ok;
  }
};

bool is_loopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// ::ffff:a.b.c.d as the IPv4 address a.b.c.d (an IPv6-only socket cannot bind it).
net::addr::endpoint unmap(const net::addr::endpoint& e) {
  if (e.family() != AF_INET6) return e;
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(&e.ss);
  if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return e;
  net::addr::endpoint v4;
  auto* in = reinterpret_cast<sockaddr_in*>(&v4.ss);
  in->sin_family = AF_INET;
  in->sin_port = in6->sin6_port;
  std::memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
  v4.len = sizeof(sockaddr_in);
  return v4;
}

std::string ip_text(const net::addr::endpoint& e) {
  std::string ip;
  int port = 0;
  ip_and_port(e.ss, ip, port);
  return ip;
}

// A listening socket on `e`, or -1 with errno set.
int listen_on(const net::addr::endpoint& e) {
  int fd = ::socket(e.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (e.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&e.ss), e.len) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

// Constructs the server, keeping the process's SIGPIPE disposition (the constructor
// sets it to SIG_IGN). Another thread's SIGPIPE in that instant is ignored.
debug_server* new_server() {
  struct sigaction saved {};
  ::sigaction(SIGPIPE, nullptr, &saved);
  auto* server = new debug_server;
  ::sigaction(SIGPIPE, &saved, nullptr);
  return server;
}

}  // namespace

error serve(const std::string& addr, bool allow_remote) {
  const std::string prefix = "debug::serve: ";
  std::string why;
  auto hp = net::addr::split_host_port(addr, why);
  if (!hp) return make_error(prefix + "address " + addr + ": " + why);
  if (hp->port == 0) {
    return make_error(prefix + "address " + addr +
                      ": port 0 (a port chosen by the system) is not reported; name a port");
  }
  if (hp->host.empty()) hp->host = "127.0.0.1";
  auto [endpoints, err] = net::addr::resolve(nullptr, /*listening=*/true, AF_UNSPEC, *hp);
  if (err) return make_error(prefix + err.message());
  if (endpoints.empty()) return make_error(prefix + "address " + addr + ": no suitable address");
  if (!allow_remote) {
    for (const auto& e : endpoints) {
      if (!is_loopback(e.ss)) {
        return make_error(prefix + "address " + addr + ": " + ip_text(e) +
                          " is not a loopback address (pass allow_remote)");
      }
    }
  }
  // Go's choice for a listener: the first IPv4 address, else the first.
  net::addr::endpoint chosen = unmap(endpoints.front());
  for (const auto& e : endpoints) {
    if (unmap(e).family() == AF_INET) {
      chosen = unmap(e);
      break;
    }
  }
  int fd = listen_on(chosen);
  if (fd < 0) {
    return make_error(prefix + "listen tcp " + net::addr::format(chosen) + ": " +
                      std::strerror(errno));
  }
  debug_server* server = new_server();  // lives for the rest of the process
  server->adopt_listener(fd);
  detail::disable_deadlock_detection();  // its threads could act on goroutines
  // The listener and the workers it starts block SIGPIPE (inherited masks).
  sigset_t pipe, old;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  error started;
  try {
    std::thread([server] { server->listen_after_bind(); }).detach();
  } catch (const std::system_error& e) {
    started = make_error(prefix + "cannot start the listener thread: " + e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return started;
}
#else
error serve(const std::string& addr, bool) {
  return make_error("debug::serve(" + addr +
                    "): goro was built without the debug HTTP server (GORO_DEBUG_SERVER=OFF or "
                    "cpp-httplib missing)");
}
#endif

}  // namespace goro::debug
