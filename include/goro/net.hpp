// goro/net.hpp — TCP that parks goroutines, not threads (Go's net.Listen/Dial/Conn).
//
// listen() gives a listener, dial() a conn. Sockets are non-blocking and registered
// with goro's netpoller: a read, write, accept or connect that would block parks the
// calling goroutine in "IO wait" (its thread runs other goroutines) — or, called from
// a plain thread, blocks that thread. Results are Go's (value, error) pairs as
// goro::result<T> (goro/result.hpp), [[nodiscard]] and unpacked the same way:
//
//   auto [ln, err] = goro::net::listen("tcp", "127.0.0.1:0");
//   auto [c, derr] = goro::net::dial(ctx, "tcp", ln.addr());
//   auto [n, rerr] = c.read(std::span<std::byte>(buf));   // rerr.is(goro::eof) at end
//   goro::result<goro::net::conn> r = goro::net::dial(ctx, "tcp", addr);
//   if (!r) return r.error();                              // `if (r)`: success
//
// Networks: "tcp" (IPv4 and IPv6), "tcp4", "tcp6". Addresses: "host:port",
// "[ipv6]:port", "[ipv6%zone]:port", ":port" (every local address when listening;
// the local system when dialing). Host names are resolved with getaddrinfo on
// goro::blocking's helper threads. Ports are numeric, 0-65535 (0 when listening picks
// a free one). A zone ("[fe80::1%eth0]:80", "[fe80::1%2]:80") is an interface name or
// index and sets the scope id; a name that no interface has is an error. Addresses
// are printed with their zone ("[fe80::1%eth0]:80"; the index if no interface has it).
//
// Errors are goro::error values in Go's words ("dial tcp 127.0.0.1:1: connect:
// Connection refused"); system errors carry their std::error_code, so
// err.is(std::errc::connection_refused) works. A passed deadline gives Go's "i/o
// timeout" ("read tcp 127.0.0.1:40000->127.0.0.1:8080: i/o timeout"), an error that
// is(goro::deadline_exceeded) and is(std::errc::timed_out); a closed conn or listener
// gives err.is(goro::net::err_closed); the end of the peer's data gives goro::eof.
// Writes never raise SIGPIPE: a write to a reset connection returns the error.
//
// Handles: listener and conn are copyable handles like chan, and their members are
// const as chan's are (a handle captured by value in a lambda needs no `mutable`).
// close() acts for every copy, wakes the calls blocked on it with err_closed, and
// returns once the descriptor is closed (those calls have let go of it, as Go's Close
// waits); the descriptor is closed exactly once (on close, or when the last copy
// goes). New connections have TCP_NODELAY set, as in Go.
//
// Blocking: accept, dial, read, read_full and write park the calling goroutine in
// "IO wait" (a plain thread blocks) until the socket is ready, it is closed, or a
// deadline passes; name resolution in dial/listen parks in "syscall". close waits
// (briefly, in "IO wait") for the calls it woke to return. close_write, the deadline
// setters and the address getters never block.
// Thread-safety: one read and one write may run at once on a conn (from different
// goroutines or threads); concurrent reads (or writes) are serialised, as in Go.
// Every member may be called from any goroutine or thread.
// Panics: none; every failure is a returned goro::error.
//
// Deadlines: set_read_deadline(t) makes reads that are blocked now or start later
// fail once t has passed, until the deadline is moved; the conn stays usable.
// A default-constructed time_point (Go's zero Time) clears the deadline.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "goro/context.hpp"
#include "goro/error.hpp"
#include "goro/result.hpp"
#include "goro/time.hpp"

namespace goro {

namespace detail {
struct net_socket;
struct net_access;
}

namespace net {

// "use of closed network connection": the conn or listener was closed (Go's
// net.ErrClosed). Test with err.is(goro::net::err_closed).
extern const error& err_closed;

// A TCP connection. Default-constructed: a null conn whose calls return an error.
class conn {
 public:
  conn() noexcept = default;
  explicit operator bool() const noexcept { return s_ != nullptr; }

  // Reads what is available, up to buf.size() bytes, waiting for at least one.
  // Returns n > 0 and nil, or 0 and an error: goro::eof when the peer closed its
  // side, a deadline error, err_closed, or a system error. An empty buf returns 0, nil.
  result<std::size_t> read(std::span<std::byte> buf) const;
  // The same for a char buffer.
  result<std::size_t> read(std::span<char> buf) const;
  // Reads exactly buf.size() bytes (Go's io.ReadFull): on success n == buf.size();
  // otherwise n bytes were read and the error says why (goro::eof if none were,
  // goro::unexpected_eof if the peer closed part-way): both come back, as in Go.
  result<std::size_t> read_full(std::span<std::byte> buf) const;
  // The same for a char buffer.
  result<std::size_t> read_full(std::span<char> buf) const;
  // Writes all of data, waiting for socket buffer space as needed. Returns
  // data.size() and nil, or the bytes written before the error and the error.
  result<std::size_t> write(std::span<const std::byte> data) const;
  // The same for text (no terminating NUL is sent).
  result<std::size_t> write(std::string_view data) const;

  // Closes the connection for every copy, wakes its blocked calls, and waits until
  // they have let go of the descriptor and it is closed. A second close returns
  // err_closed.
  error close() const;
  // Shuts down the sending side (the peer reads EOF); reading still works.
  error close_write() const;

  // "ip:port" / "[ipv6]:port" of this end and of the peer ("" for a null conn).
  std::string local_addr() const;
  std::string remote_addr() const;

  // Deadlines for reads and writes (set_deadline sets both); see the header comment.
  error set_deadline(time_point t) const;
  error set_read_deadline(time_point t) const;
  error set_write_deadline(time_point t) const;

  // The socket descriptor (for setsockopt and the like), -1 for a null conn. Do not
  // close it or make it blocking.
  int native_handle() const noexcept;

 private:
  friend class listener;
  friend struct detail::net_access;
  explicit conn(std::shared_ptr<detail::net_socket> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::net_socket> s_;
};

// A TCP listening socket.
class listener {
 public:
  listener() noexcept = default;
  explicit operator bool() const noexcept { return s_ != nullptr; }

  // Waits for and returns the next connection; err_closed after close().
  result<conn> accept() const;
  // The address it listens on, with the port chosen for ":0" ("127.0.0.1:41234").
  std::string addr() const;
  // Stops listening, wakes blocked accept calls with err_closed, and returns once the
  // descriptor is closed (the address can be listened on again).
  error close() const;
  // The listening descriptor, -1 for a null or closed listener. Do not close it.
  int native_handle() const noexcept;

 private:
  friend result<listener> listen(std::string_view, std::string_view);
  explicit listener(std::shared_ptr<detail::net_socket> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::net_socket> s_;
};

// Listens on `address` ("127.0.0.1:0", ":8080", "[::1]:0", "localhost:9000").
result<listener> listen(std::string_view network, std::string_view address);

// Connects to `address` (Go's net.Dial). The resolved addresses are tried in order,
// one at a time; when ctx has a deadline, each address gets an equal share of the
// time left, but at least 2 s (or all that is left, if less). For "tcp", when the
// addresses include both IPv4 and IPv6, those of the first address's family are tried
// as above and those of the other family start 300 ms later, or at once if the first
// family has failed ("happy eyeballs", RFC 6555); the first connection made is
// returned and the other attempt is cancelled (a connection it makes is closed).
// When every address fails the error is the first one (of the first family), e.g.
// "dial tcp 127.0.0.1:1: connect: Connection refused".
// ctx bounds the whole dial: its cancellation or deadline aborts a resolution or
// connect in progress, and the error then wraps ctx.err() and keeps its text ("dial tcp
// 10.0.0.1:80: context canceled", or "...: context deadline exceeded" for a deadline);
// an address whose own share of the time ran out gives that deadline error too.
result<conn> dial(const context& ctx, std::string_view network, std::string_view address);
// dial(background(), network, address).
result<conn> dial(std::string_view network, std::string_view address);

}  // namespace net
}  // namespace goro
