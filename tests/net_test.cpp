// net_test — goro::net and goro::blocking: echo traffic, partial I/O, deadlines,
// dial errors and cancellation, close waking blocked calls, resets, many connections,
// bad addresses. All traffic is on loopback; every wait is bounded.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/fixture.hpp"
#include "net/address.hpp"
#include "net/dial.hpp"
#include "runtime/scheduler.hpp"

namespace {

using namespace goro_test;
using goro::net::conn;
using goro::net::listener;

class net : public procs_test {};
GORO_PROCS_SUITE(net);

// Runs f in a goroutine and waits for it.
template <class F>
void in_goroutine(F f) {
  goro::wait_group wg;
  wg.go(f);
  wg.wait();
}

listener must_listen(const char* addr = "127.0.0.1:0") {
  auto [ln, err] = goro::net::listen("tcp", addr);
  EXPECT_FALSE(err) << err;
  return ln;
}

// A connection over ln: the dialing end and the accepted end.
std::pair<conn, conn> connected_pair(listener& ln) {
  auto [c, err] = goro::net::dial("tcp", ln.addr());
  EXPECT_FALSE(err) << err;
  if (err) return {};
  auto [s, aerr] = ln.accept();
  EXPECT_FALSE(aerr) << aerr;
  return {c, s};
}

// Serves `ln`: one goroutine per connection echoing everything back until EOF.
// Returns after the listener is closed and every connection has ended.
void echo_server(listener ln, goro::wait_group& done) {
  done.go([ln, &done]() {
    for (;;) {
      auto [c, err] = ln.accept();
      if (err) {
        EXPECT_TRUE(err.is(goro::net::err_closed)) << err;
        return;
      }
      done.go([c]() {
        std::vector<std::byte> buf(4096);
        for (;;) {
          auto [n, rerr] = c.read(buf);
          if (rerr) break;
          auto [m, werr] = c.write(std::span<const std::byte>(buf.data(), n));
          if (werr) break;
        }
        c.close();
      });
    }
  });
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::byte((i * 131 + seed * 7) & 0xff);
  return v;
}

TEST_P(net, echo_round_trips_over_many_connections) {
  auto ln = must_listen();
  ASSERT_TRUE(ln);
  EXPECT_EQ(ln.addr().rfind("127.0.0.1:", 0), 0u) << ln.addr();
  goro::wait_group server;
  echo_server(ln, server);
  std::atomic<int> ok{0};
  goro::wait_group clients;
  for (int i = 0; i < 40; ++i) {
    clients.go([&, i] {
      auto [c, err] = goro::net::dial("tcp", ln.addr());
      ASSERT_FALSE(err) << err;
      EXPECT_EQ(c.remote_addr(), ln.addr());
      for (int r = 0; r < 50; ++r) {
        auto out = pattern(1 + (i * 37 + r * 11) % 3000, i + r);
        std::vector<std::byte> in(out.size());
        auto [m, werr] = c.write(out);
        ASSERT_FALSE(werr) << werr;
        ASSERT_EQ(m, out.size());
        auto [n, rerr] = c.read_full(in);
        ASSERT_FALSE(rerr) << rerr;
        ASSERT_EQ(n, in.size());
        ASSERT_TRUE(in == out) << "connection " << i << " round " << r;
      }
      c.close();
      ok.fetch_add(1);
    });
  }
  clients.wait();
  EXPECT_EQ(ok.load(), 40);
  ln.close();
  server.wait();
}

TEST_P(net, partial_reads_and_writes_with_tiny_socket_buffers) {
  auto ln = must_listen();
  const std::size_t total = 2 << 20;
  auto data = pattern(total, 3);
  goro::wait_group wg;
  wg.go([&] {
    auto [c, err] = ln.accept();
    ASSERT_FALSE(err) << err;
    int small = 4096;
    setsockopt(c.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    // One write call for everything: it must loop over partial sends and waits.
    auto [n, werr] = c.write(data);
    EXPECT_FALSE(werr) << werr;
    EXPECT_EQ(n, total);
    c.close();
  });
  wg.go([&] {
    auto [c, err] = goro::net::dial("tcp", ln.addr());
    ASSERT_FALSE(err) << err;
    std::vector<std::byte> got;
    std::vector<std::byte> buf(1000);
    for (;;) {
      goro::yield();  // let the writer fill the buffer now and then
      auto [n, rerr] = c.read(buf);
      if (rerr) {
        EXPECT_TRUE(rerr.is(goro::eof)) << rerr;
        EXPECT_EQ(n, 0u);
        break;
      }
      ASSERT_GT(n, 0u);
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    EXPECT_EQ(got.size(), total);
    EXPECT_TRUE(got == data);
    c.close();
  });
  wg.wait();
  ln.close();
}

TEST_P(net, read_full_reports_eof_and_unexpected_eof) {
  auto ln = must_listen();
  goro::wait_group wg;
  wg.go([&] {
    auto [c, err] = ln.accept();
    ASSERT_FALSE(err) << err;
    EXPECT_FALSE(c.write("abc").error());
    c.close_write();  // the peer sees EOF; we can still read
    char buf[8];
    auto [n, rerr] = c.read_full(std::span<char>(buf, 2));
    EXPECT_FALSE(rerr) << rerr;
    EXPECT_EQ(std::string(buf, n), "ok");
    c.close();
  });
  auto [c, err] = goro::net::dial("tcp", ln.addr());
  ASSERT_FALSE(err) << err;
  char buf[8];
  auto [n, rerr] = c.read_full(std::span<char>(buf, 5));
  EXPECT_EQ(n, 3u);
  EXPECT_TRUE(rerr.is(goro::unexpected_eof)) << rerr;
  auto [n2, rerr2] = c.read(std::span<char>(buf, 5));
  EXPECT_EQ(n2, 0u);
  EXPECT_TRUE(rerr2.is(goro::eof)) << rerr2;
  auto [m, werr] = c.write("ok");
  EXPECT_FALSE(werr) << werr;
  wg.wait();
  c.close();
  ln.close();
}

TEST_P(net, read_deadline_expires_and_the_connection_stays_usable) {
  auto ln = must_listen();
  in_goroutine([&] {
    auto [c, s] = connected_pair(ln);
    ASSERT_TRUE(c && s);
    char buf[16];

    auto t0 = steady::now();
    c.set_read_deadline(steady::now() + 50ms);
    auto [n, rerr] = c.read(std::span<char>(buf));
    double waited = ms_since(t0);
    EXPECT_EQ(n, 0u);
    EXPECT_TRUE(rerr.is(goro::deadline_exceeded)) << rerr;
    EXPECT_NE(rerr.message().find("i/o timeout"), std::string::npos) << rerr;
    EXPECT_GE(waited, 45.0);
    EXPECT_LT(waited, 5000.0);

    // A deadline already passed fails at once, even with data waiting.
    ASSERT_FALSE(s.write("x").error());
    c.set_read_deadline(steady::now() - 1s);
    auto [n1, rerr1] = c.read(std::span<char>(buf));
    EXPECT_TRUE(rerr1.is(goro::deadline_exceeded)) << rerr1;

    // Cleared (zero time): the data is read.
    c.set_read_deadline(goro::time_point{});
    auto [n2, rerr2] = c.read(std::span<char>(buf));
    EXPECT_FALSE(rerr2) << rerr2;
    EXPECT_EQ(std::string(buf, n2), "x");

    // Extended while a read is blocked: the old expiry (300 ms) must not end the read,
    // which gets its data only at 600 ms.
    c.set_read_deadline(steady::now() + 300ms);
    goro::go([c, s]() {  // handles by value: this goroutine may outlive the read
      c.set_read_deadline(steady::now() + 10s);
      goro::sleep(600ms);
      (void)s.write("y");  // fails if the read gave up early and s was closed
    });
    auto [n3, rerr3] = c.read(std::span<char>(buf));
    EXPECT_FALSE(rerr3) << rerr3;
    EXPECT_EQ(std::string(buf, n3), "y");
    c.close();
    s.close();
  });
  ln.close();
}

TEST_P(net, a_passed_deadline_reads_as_go_i_o_timeout_and_is_deadline_exceeded) {
  auto ln = must_listen();
  in_goroutine([&] {
    auto [c, s] = connected_pair(ln);
    ASSERT_TRUE(c && s);
    char buf[4];
    c.set_read_deadline(steady::now() - 1s);
    auto [n, rerr] = c.read(std::span<char>(buf));
    EXPECT_EQ(n, 0u);
    // Go: "read tcp 127.0.0.1:40000->127.0.0.1:8080: i/o timeout".
    EXPECT_EQ(rerr.message(),
              "read tcp " + c.local_addr() + "->" + c.remote_addr() + ": i/o timeout");
    EXPECT_TRUE(rerr.is(goro::deadline_exceeded)) << rerr;
    EXPECT_TRUE(rerr.is(std::errc::timed_out)) << rerr;
    EXPECT_EQ(rerr.code(), std::make_error_code(std::errc::timed_out));
    EXPECT_FALSE(rerr.is(goro::net::err_closed));

    c.set_write_deadline(steady::now() - 1s);
    auto [m, werr] = c.write("x");
    EXPECT_EQ(m, 0u);
    EXPECT_EQ(werr.message(),
              "write tcp " + c.local_addr() + "->" + c.remote_addr() + ": i/o timeout");
    EXPECT_TRUE(werr.is(goro::deadline_exceeded)) << werr;
    EXPECT_TRUE(werr.is(std::errc::timed_out)) << werr;
    c.close();
    s.close();
  });
  ln.close();
}

TEST_P(net, results_are_values_with_an_error_and_handles_are_const) {
  auto ln = must_listen();
  in_goroutine([&] {
    goro::result<conn> r = goro::net::dial("tcp", ln.addr());
    ASSERT_TRUE(r) << r.error();
    EXPECT_TRUE(r.ok());
    const conn c = std::move(r).value();  // a const handle reads and writes
    goro::result<conn> accepted = ln.accept();
    ASSERT_TRUE(accepted.ok()) << accepted.error();
    EXPECT_EQ(accepted->remote_addr(), c.local_addr());
    goro::go([c] { EXPECT_FALSE(c.write("ping").error()); });  // no `mutable` needed
    char buf[4];
    goro::result<std::size_t> got = accepted->read_full(std::span<char>(buf));
    ASSERT_TRUE(got) << got.error();
    EXPECT_EQ(*got, 4u);
    EXPECT_EQ(std::string(buf, 4), "ping");
    // A short read_full: both the count and the error come back, as Go's (n, err).
    EXPECT_FALSE(c.write("ab").error());
    EXPECT_FALSE(c.close_write());
    char big[8];
    auto partial = accepted->read_full(std::span<char>(big));
    EXPECT_FALSE(partial) << "bool is success";
    EXPECT_EQ(*partial, 2u);
    EXPECT_EQ(partial.error(), goro::unexpected_eof);
    EXPECT_THROW((void)partial.value(), goro::bad_result_access);
    c.close();
    accepted->close();
  });
  // value() on a failed call throws the error along.
  try {
    (void)goro::net::listen("tcp", "nonsense").value();
    ADD_FAILURE() << "value() of a failed listen returned";
  } catch (const goro::bad_result_access& e) {
    EXPECT_NE(e.error().message().find("missing port in address"), std::string::npos)
        << e.what();
  }
  ln.close();
}

TEST_P(net, far_future_deadlines_do_not_expire) {
  // time_point::max() must saturate, not wrap into the past.
  auto ln = must_listen();
  in_goroutine([&] {
    auto [ctx, cancel] = goro::with_deadline(goro::background(), goro::time_point::max());
    auto [c, err] = goro::net::dial(ctx, "tcp", ln.addr());
    ASSERT_FALSE(err) << err;
    auto [s, aerr] = ln.accept();
    ASSERT_FALSE(aerr) << aerr;
    c.set_deadline(goro::time_point::max());
    goro::go([s]() {
      goro::sleep(20ms);
      (void)s.write("z");
    });
    char buf[4];
    auto [n, rerr] = c.read(std::span<char>(buf));
    EXPECT_FALSE(rerr) << rerr;
    EXPECT_EQ(std::string(buf, n), "z");
    auto [w, werr] = c.write("ok");
    EXPECT_FALSE(werr) << werr;
    EXPECT_EQ(w, 2u);
    cancel();
    c.close();
    s.close();
  });
  ln.close();
}

TEST_P(net, write_deadline_expires_when_the_peer_does_not_read) {
  auto ln = must_listen();
  in_goroutine([&] {
    auto [c, s] = connected_pair(ln);
    ASSERT_TRUE(c && s);
    std::vector<std::byte> big(64 << 20);  // far more than the socket buffers hold
    c.set_write_deadline(steady::now() + 100ms);
    auto [n, werr] = c.write(big);
    EXPECT_TRUE(werr.is(goro::deadline_exceeded)) << werr;
    EXPECT_GT(n, 0u);
    EXPECT_LT(n, big.size());
    c.close();
    s.close();
  });
  ln.close();
}

TEST_P(net, dial_to_a_closed_port_is_refused) {
  auto ln = must_listen();
  std::string addr = ln.addr();
  ln.close();
  auto [c, err] = goro::net::dial("tcp", addr);
  EXPECT_FALSE(c);
  ASSERT_TRUE(err);
  EXPECT_TRUE(err.is(std::errc::connection_refused)) << err;
  EXPECT_NE(err.message().find("dial tcp " + addr), std::string::npos) << err;
}

// A listener whose accept queue is full: further connects hang in SYN retries.
struct full_backlog {
  int lfd = -1;
  std::vector<int> fillers;
  std::string addr;
  full_backlog() {
    lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&in), sizeof in);
    ::listen(lfd, 0);
    socklen_t len = sizeof in;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&in), &len);
    addr = "127.0.0.1:" + std::to_string(ntohs(in.sin_port));
    for (int i = 0; i < 8; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in);
      fillers.push_back(fd);
    }
    std::this_thread::sleep_for(50ms);
  }
  ~full_backlog() {
    for (int fd : fillers) ::close(fd);
    ::close(lfd);
  }
};

TEST_P(net, dial_is_aborted_by_context_cancellation_and_deadline) {
  full_backlog target;
  in_goroutine([&] {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    goro::go([cancel] {
      goro::sleep(50ms);
      cancel();
    });
    auto t0 = steady::now();
    auto [c, err] = goro::net::dial(ctx, "tcp", target.addr);
    EXPECT_FALSE(c);
    EXPECT_TRUE(err.is(goro::canceled)) << err;
    EXPECT_TRUE(err.is(std::errc::operation_canceled)) << err;
    EXPECT_EQ(err.message(), "dial tcp " + target.addr + ": context canceled")
        << "the context's text is kept";
    EXPECT_LT(ms_since(t0), 3000.0);

    t0 = steady::now();  // before the 50 ms start counting
    auto [tctx, tcancel] = goro::with_timeout(goro::background(), 50ms);
    auto [c2, err2] = goro::net::dial(tctx, "tcp", target.addr);
    EXPECT_TRUE(err2.is(goro::deadline_exceeded)) << err2;
    EXPECT_TRUE(err2.is(std::errc::timed_out)) << err2;
    // Whichever timer notices first (ctx's or the socket's), the text is the context's.
    EXPECT_EQ(err2.message(), "dial tcp " + target.addr + ": context deadline exceeded");
    EXPECT_GE(ms_since(t0), 40.0);
    EXPECT_LT(ms_since(t0), 3000.0);
    tcancel();

    auto [dead, dcancel] = goro::with_cancel(goro::background());
    dcancel();
    auto [c3, err3] = goro::net::dial(dead, "tcp", target.addr);
    EXPECT_TRUE(err3.is(goro::canceled)) << err3;
    EXPECT_EQ(err3.message(), "dial tcp: context canceled");
  });
}

TEST_P(net, close_from_another_goroutine_wakes_a_blocked_read_and_accept) {
  auto ln = must_listen();
  in_goroutine([&] {
    auto [c, s] = connected_pair(ln);
    ASSERT_TRUE(c && s);
    goro::go([c]() {
      goro::sleep(30ms);
      EXPECT_FALSE(c.close());
    });
    char buf[8];
    auto [n, rerr] = c.read(std::span<char>(buf));
    EXPECT_EQ(n, 0u);
    EXPECT_TRUE(rerr.is(goro::net::err_closed)) << rerr;
    EXPECT_TRUE(c.close().is(goro::net::err_closed));  // second close
    auto [n2, rerr2] = c.read(std::span<char>(buf));
    EXPECT_TRUE(rerr2.is(goro::net::err_closed)) << rerr2;
    EXPECT_EQ(c.native_handle(), -1);
    s.close();

    goro::go([ln]() {
      goro::sleep(30ms);
      ln.close();
    });
    auto [c3, aerr3] = ln.accept();
    EXPECT_FALSE(c3);
    EXPECT_TRUE(aerr3.is(goro::net::err_closed)) << aerr3;
  });
}

TEST_P(net, plain_threads_use_the_same_sockets) {
  auto ln = must_listen();
  goro::wait_group server;
  echo_server(ln, server);
  std::thread t([&] {
    auto [c, err] = goro::net::dial("tcp", ln.addr());
    ASSERT_FALSE(err) << err;
    for (int i = 0; i < 100; ++i) {
      std::string msg = "ping " + std::to_string(i);
      ASSERT_FALSE(c.write(msg).error());
      std::string in(msg.size(), '\0');
      auto [n, rerr] = c.read_full(std::span<char>(in));
      ASSERT_FALSE(rerr) << rerr;
      EXPECT_EQ(in, msg);
    }
    // A thread blocked in read is woken by a close from a goroutine.
    goro::go([c]() {
      goro::sleep(30ms);
      c.close();
    });
    char buf[4];
    auto [n, rerr] = c.read(std::span<char>(buf));
    EXPECT_TRUE(rerr.is(goro::net::err_closed)) << rerr;
  });
  t.join();
  ln.close();
  server.wait();
}

TEST_P(net, peer_reset_mid_write_is_an_error_not_sigpipe) {
  auto ln = must_listen();
  in_goroutine([&] {
    auto [c, s] = connected_pair(ln);
    ASSERT_TRUE(c && s);
    goro::go([s]() {
      goro::sleep(20ms);
      linger l{1, 0};  // close with RST
      setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
      s.close();
    });
    std::vector<std::byte> chunk(1 << 20);
    goro::error werr;
    for (int i = 0; i < 1000 && !werr; ++i) werr = c.write(chunk).error();
    ASSERT_TRUE(werr);
    EXPECT_TRUE(werr.is(std::errc::connection_reset) || werr.is(std::errc::broken_pipe)) << werr;
    c.close();
  });
  ln.close();
}

TEST_P(net, two_thousand_simultaneous_connections) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  const rlim_t need = 4400;
  if (lim.rlim_cur < need) {
    // 2,000 connections need 4,000 descriptors in this one process: skipped only where
    // the hard limit forbids raising the soft one that far (it runs on the CI machine).
    if (lim.rlim_max < need)
      GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << lim.rlim_max << " < " << need;
    lim.rlim_cur = need;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
  auto ln = must_listen();
  goro::wait_group server;
  echo_server(ln, server);
  constexpr int n = 2000;
  std::vector<conn> conns(n);
  std::atomic<int> ok{0};
  goro::wait_group wg;
  auto all_open = goro::make_chan<int>();  // closed once every client is connected
  std::atomic<int> connected{0};
  for (int i = 0; i < n; ++i) {
    wg.go([&, i] {
      auto [c, err] = goro::net::dial("tcp", ln.addr());
      ASSERT_FALSE(err) << err;
      conns[i] = c;
      if (connected.fetch_add(1) + 1 == n) all_open.close();
      all_open.recv();  // hold every connection open at once
      std::string msg = "conn " + std::to_string(i);
      EXPECT_FALSE(c.write(msg).error());
      std::string in(msg.size(), '\0');
      auto [m, rerr] = c.read_full(std::span<char>(in));
      if (!rerr && in == msg) ok.fetch_add(1);
      c.close();
    });
  }
  wg.wait();
  EXPECT_EQ(ok.load(), n);
  ln.close();
  server.wait();
}

int open_descriptors() {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++n;
  }
  return n;
}

TEST_P(net, descriptors_are_closed_exactly_once_and_never_leaked) {
  must_listen().close();  // the poller's own descriptors exist from here on
  int before = open_descriptors();
  {
    auto ln = must_listen();
    goro::wait_group server;
    echo_server(ln, server);
    goro::wait_group clients;
    for (int i = 0; i < 50; ++i) {
      clients.go([&, i] {
        auto [c, err] = goro::net::dial("tcp", ln.addr());
        ASSERT_FALSE(err) << err;
        conn copy = c;  // copies share one descriptor
        EXPECT_FALSE(copy.write("x").error());
        char b;
        EXPECT_FALSE(c.read_full(std::span<char>(&b, 1)).error());
        if (i % 2 == 0) c.close();  // the others close when the last copy goes
      });
    }
    clients.wait();
    ln.close();
    server.wait();
    // Failed dials and listens leave nothing open either.
    (void)goro::net::dial("tcp", ln.addr());
    (void)goro::net::listen("tcp", "127.0.0.1:70000");
  }
  EXPECT_EQ(open_descriptors(), before);
}

TEST_P(net, io_completes_while_every_processor_is_busy) {
  // Goroutines that only yield keep every processor busy; the reader's data must still
  // arrive (the workers poll between goroutines), not when the yielders stop.
  auto ln = must_listen();
  auto [c, s] = connected_pair(ln);
  ASSERT_TRUE(c && s);
  std::atomic<bool> stop{false}, got{false};
  goro::wait_group busy, reader;
  for (int i = 0; i < goro::max_procs(); ++i) {
    busy.go([&] {
      while (!stop.load()) goro::yield();
    });
  }
  reader.go([&got, c]() {
    char b;
    auto [n, rerr] = c.read(std::span<char>(&b, 1));
    EXPECT_FALSE(rerr) << rerr;
    got = true;
  });
  std::thread writer([s]() {
    std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(s.write("x").error());
  });
  auto t0 = steady::now();
  bool arrived = eventually([&] { return got.load(); }, 3000ms);
  double waited = ms_since(t0);
  stop = true;
  busy.wait();
  reader.wait();
  writer.join();
  EXPECT_TRUE(arrived);
  EXPECT_LT(waited, 2000.0);
  c.close();
  s.close();
  ln.close();
}

TEST_P(net, close_returns_after_the_descriptor_is_closed) {
  // Go's Close waits for calls in progress to let go of the descriptor: a listener
  // closed while an accept is parked frees its port before close returns.
  auto ln = must_listen();
  std::string addr = ln.addr();
  goro::wait_group wg;
  wg.go([ln]() {
    auto [c, err] = ln.accept();
    EXPECT_TRUE(err.is(goro::net::err_closed)) << err;
  });
  EXPECT_TRUE(
      eventually([] { return goro::debug::goroutines(2).find("IO wait") != std::string::npos; }));
  EXPECT_FALSE(ln.close());
  auto [again, err] = goro::net::listen("tcp", addr);
  EXPECT_FALSE(err) << err;
  wg.wait();
  again.close();
}

TEST(net_deadlock, a_goroutine_in_io_wait_is_not_a_deadlock) {
  // Only another process will ever write: no goroutine, timer or thread of ours can.
  EXPECT_EXIT(
      {
        goro::run([] {
          auto [ln, err] = goro::net::listen("tcp", "127.0.0.1:0");
          auto [c, derr] = goro::net::dial("tcp", ln.addr());
          auto [s, aerr] = ln.accept();
          int fd = s.native_handle();
          pid_t child = fork();
          if (child == 0) {
            timespec pause{0, 300'000'000};
            nanosleep(&pause, nullptr);
            (void)!::write(fd, "x", 1);
            _exit(0);
          }
          char b;
          auto [n, rerr] = c.read(std::span<char>(&b, 1));
          waitpid(child, nullptr, 0);
          if (rerr || n != 1) std::exit(3);
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(net_deadlock, deadlocks_are_still_found_after_a_blocking_call) {
  EXPECT_EXIT(goro::run([] {
                EXPECT_EQ(goro::blocking([] { return 1; }), 1);
                auto ch = goro::make_chan<int>();
                ch.recv();  // nobody will ever send
              }),
              ::testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!");
}

TEST_P(net, bad_addresses_give_clear_errors) {
  auto expect_error = [](goro::error err, const char* part) {
    ASSERT_TRUE(err);
    EXPECT_NE(err.message().find(part), std::string::npos) << err.message();
  };
  expect_error(goro::net::listen("tcp", "nonsense").error(), "missing port in address");
  expect_error(goro::net::dial("tcp", "nonsense").error(), "missing port in address");
  expect_error(goro::net::dial("tcp", "127.0.0.1:70000").error(), "invalid port");
  expect_error(goro::net::listen("tcp", "127.0.0.1:70000").error(), "invalid port");
  expect_error(goro::net::dial("tcp", "127.0.0.1:http").error(), "unknown port");
  expect_error(goro::net::dial("tcp", "127.0.0.1:-1").error(), "invalid port");  // as Go
  expect_error(goro::net::dial("tcp", "127.0.0.1:+").error(), "unknown port");
  expect_error(goro::net::listen("tcp", "127.0.0.1:+70000").error(), "invalid port");
  // Go's parsePort takes a sign: "+0" is port 0.
  EXPECT_FALSE(goro::net::listen("tcp", "127.0.0.1:+0").error());
  // A 254-byte name needs the root's trailing dot (Go's isDomainName).
  std::string long_name;
  while (long_name.size() < 254) long_name += std::string(std::min<std::size_t>(63, 253 - long_name.size()), 'a') + ".";
  long_name.resize(254);
  if (long_name.back() == '.') long_name.back() = 'a';
  expect_error(goro::net::dial("tcp", long_name + ":80").error(), "no such host");
  expect_error(goro::net::dial("tcp", "[::1:80").error(), "missing ']'");
  expect_error(goro::net::dial("tcp", "::1:80").error(), "too many colons");
  expect_error(goro::net::dial("udp", "127.0.0.1:80").error(), "unknown network udp");
  expect_error(goro::net::dial("tcp", "127.0.0.1:0").error(), "invalid port");
  expect_error(goro::net::listen("tcp4", "[::1]:0").error(), "no suitable address");
  conn null;
  expect_error(null.read(std::span<char>()).error(), "null");
  expect_error(null.write("x").error(), "null");
  listener nl;
  expect_error(nl.accept().error(), "null");
}

TEST_P(net, a_nul_byte_or_a_bad_name_is_no_such_host_and_dials_nothing) {
  // libc stops at a NUL: "127.0.0.1\0.allowed.example.com" would dial 127.0.0.1 and
  // get past an allow-list that checks the suffix. Go refuses such names.
  auto ln = must_listen();
  std::string port = ln.addr().substr(ln.addr().rfind(':') + 1);
  using namespace std::string_literals;
  const std::string hosts[] = {"127.0.0.1\0.allowed.example.com"s, "localhost\0"s, "\0"s,
                               "127.1"s, "0x7f.1"s, "0177.0.0.1"s, "2130706433"s,
                               "0x7f000001"s, "local host"s, "a..b"s, "-a.example"s, "host/x"s};
  for (const std::string& host : hosts) {
    std::string address = host + ":" + port;
    auto [c, err] = goro::net::dial("tcp", address);
    ASSERT_TRUE(err) << "dialed " << goro::net::addr::printable_host(host);
    EXPECT_NE(err.message().find(": no such host"), std::string::npos) << err.message();
    EXPECT_EQ(err.message().find('\0'), std::string::npos) << "a NUL in the message";
    auto [l2, lerr] = goro::net::listen("tcp", host + ":0");
    ASSERT_TRUE(lerr) << "listened on " << goro::net::addr::printable_host(host);
    EXPECT_NE(lerr.message().find(": no such host"), std::string::npos) << lerr.message();
  }
  auto [c, err] = goro::net::dial("tcp", "127.0.0.1\0.x:"s + port);
  EXPECT_NE(err.message().find("lookup 127.0.0.1\\x00.x: no such host"), std::string::npos)
      << err.message();
  // Nothing reached the listener.
  goro::wait_group wg;
  std::atomic<bool> accepted{false};
  wg.go([&] { accepted = !ln.accept().error(); });
  goro::sleep(50ms);
  ln.close();
  wg.wait();
  EXPECT_FALSE(accepted.load()) << "a connection was made to 127.0.0.1";
}

// A resolver that answers only when told to: every call waits for `open`.
std::atomic<bool> slow_resolver_open{false};
std::atomic<int> slow_resolver_running{0}, slow_resolver_most{0};
int slow_resolver(const char*, const char*, const addrinfo*, addrinfo** out) {
  int now = slow_resolver_running.fetch_add(1) + 1;
  for (int m = slow_resolver_most.load(); now > m && !slow_resolver_most.compare_exchange_weak(m, now);) {
  }
  while (!slow_resolver_open.load()) std::this_thread::sleep_for(1ms);
  slow_resolver_running.fetch_sub(1);
  *out = nullptr;
  return EAI_NONAME;
}

TEST(net_lookup, abandoned_lookups_are_bounded_and_leave_the_blocking_pool_usable) {
  // 300 dials of a name whose lookup never ends, each given up after 20 ms: at most
  // max_concurrent_lookups() lookups hold a helper thread, and goro::blocking still
  // gets one at once.
  slow_resolver_open = false;
  auto* saved = goro::net::addr::resolver_hook.exchange(&slow_resolver);
  goro::wait_group wg;
  std::atomic<int> timed_out{0};
  for (int i = 0; i < 300; ++i) {
    wg.go([&] {
      auto [ctx, cancel] = goro::with_timeout(goro::background(), 20ms);
      auto [c, err] = goro::net::dial(ctx, "tcp", "slow.example:80");
      if (err.is(goro::deadline_exceeded)) timed_out.fetch_add(1);
    });
  }
  wg.wait();
  EXPECT_EQ(timed_out.load(), 300);
  EXPECT_LE(slow_resolver_most.load(), goro::net::addr::max_concurrent_lookups());
  auto t0 = steady::now();
  int v = 0;
  goro::wait_group other;
  other.go([&] { v = goro::blocking([] { return 7; }); });
  other.wait();
  EXPECT_EQ(v, 7);
  EXPECT_LT(ms_since(t0), 2000) << "the blocking pool was starved by abandoned lookups";
  slow_resolver_open = true;
  EXPECT_TRUE(eventually([] { return slow_resolver_running.load() == 0; }));
  goro::net::addr::resolver_hook.store(saved);
}

// n goroutines each blocked in goro::blocking(read(pipe)) and one goroutine writing the
// n bytes, each write its own goro::blocking call: every call needs a thread at once.
// True if all n reads got their byte within `limit`; on false the reads are released.
bool readers_and_their_writer(int n, std::chrono::milliseconds limit) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  std::atomic<int> got{0};
  goro::wait_group wg;
  for (int i = 0; i < n; ++i) {
    wg.go([&] {
      char c;
      if (goro::blocking([&] { return ::read(fds[0], &c, 1); }) == 1) got.fetch_add(1);
    });
  }
  wg.go([&] {
    for (int i = 0; i < n; ++i) goro::blocking([&] { return ::write(fds[1], "x", 1); });
  });
  bool ok = eventually([&] { return got.load() == n; }, limit);
  if (!ok) {
    for (int i = 0; i < n; ++i) (void)!::write(fds[1], "y", 1);  // let the reads end
  }
  wg.wait();
  ::close(fds[0]);
  ::close(fds[1]);
  return ok;
}

TEST(blocking_pool, blocked_calls_and_the_call_that_frees_them_each_get_a_thread) {
  // 200 reads blocked in helpers and the writes that feed them: with a fixed pool of 64
  // the writes queued behind the reads forever. Go gives each blocking call a thread.
  EXPECT_TRUE(readers_and_their_writer(200, 20s)) << "blocking calls waited for each other";
  // Idle helpers end: the burst's threads do not stay.
  EXPECT_TRUE(eventually([] { return goro::detail::blocking_helper_threads() == 0; }, 10s))
      << goro::detail::blocking_helper_threads() << " helper threads still alive";
  // And come back on demand.
  EXPECT_TRUE(readers_and_their_writer(10, 20s));
}

TEST(blocking_pool, a_pool_at_its_limit_says_so_on_stderr_and_in_dumps) {
  EXPECT_EXIT(
      {
        setenv("GORO_BLOCKING_THREADS", "2", 1);
        int fds[2];
        if (::pipe(fds) != 0) std::exit(10);
        goro::wait_group wg;
        for (int i = 0; i < 4; ++i) {
          wg.go([&] {
            char c;
            goro::blocking([&] { return ::read(fds[0], &c, 1); });
          });
        }
        // Two reads hold both helpers; two wait in the queue, and the dump says why.
        bool seen = eventually([] {
          return goro::debug::goroutines(2).find("2 goro::blocking call(s) wait for a helper "
                                                 "thread: all 2 are busy (GORO_BLOCKING_THREADS)") !=
                 std::string::npos;
        });
        for (int i = 0; i < 4; ++i) (void)!::write(fds[1], "x", 1);
        wg.wait();
        bool gone = goro::debug::goroutines(2).find("wait for a helper") == std::string::npos;
        std::exit(seen && gone ? 0 : 11);
      },
      ::testing::ExitedWithCode(0),
      "goro: all 2 blocking helper threads are busy \\(GORO_BLOCKING_THREADS\\)");
}

TEST_P(net, names_and_ipv6) {
  // "localhost" goes through the resolver on a helper thread.
  auto ln = must_listen("localhost:0");
  ASSERT_TRUE(ln);
  goro::wait_group server;
  echo_server(ln, server);
  std::string port = ln.addr().substr(ln.addr().rfind(':') + 1);
  in_goroutine([&] {
    auto [c, err] = goro::net::dial("tcp", "localhost:" + port);
    ASSERT_FALSE(err) << err;
    ASSERT_FALSE(c.write("hi").error());
    char buf[2];
    auto [n, rerr] = c.read_full(std::span<char>(buf));
    EXPECT_FALSE(rerr) << rerr;
    c.close();
  });
  ln.close();
  server.wait();

  auto [ln6, err6] = goro::net::listen("tcp6", "[::1]:0");
  // Containers without an IPv6 loopback cannot bind [::1]; the IPv4 half above ran.
  if (err6) GTEST_SKIP() << "no IPv6 loopback: " << err6;
  EXPECT_EQ(ln6.addr().rfind("[::1]:", 0), 0u) << ln6.addr();
  goro::wait_group server6;
  echo_server(ln6, server6);
  in_goroutine([&] {
    auto [c, err] = goro::net::dial("tcp", ln6.addr());
    ASSERT_FALSE(err) << err;
    EXPECT_EQ(c.remote_addr(), ln6.addr());
    ASSERT_FALSE(c.write("v6").error());
    char buf[2];
    auto [n, rerr] = c.read_full(std::span<char>(buf));
    EXPECT_FALSE(rerr) << rerr;
    EXPECT_EQ(std::string(buf, 2), "v6");
    c.close();
  });
  ln6.close();
  server6.wait();
}

TEST_P(net, a_goroutine_in_read_shows_io_wait_and_costs_no_cpu) {
  auto ln = must_listen();
  auto [c, s] = connected_pair(ln);
  ASSERT_TRUE(c && s);
  goro::wait_group wg;
  wg.go([c]() {
    char buf[4];
    EXPECT_FALSE(c.read(std::span<char>(buf)).error());
  });
  EXPECT_TRUE(
      eventually([] { return goro::debug::goroutines(2).find("IO wait") != std::string::npos; }));
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(300ms);
  getrusage(RUSAGE_SELF, &after);
  auto cpu_us = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
  };
  EXPECT_LT(cpu_us(after) - cpu_us(before), 60'000.0)
      << "idle runtime burned CPU while waiting on a socket";
  EXPECT_FALSE(s.write("wake").error());
  wg.wait();
  c.close();
  s.close();
  ln.close();
}

TEST_P(net, blocking_runs_beside_goroutines_and_propagates_results_and_exceptions) {
  in_goroutine([] {
    // While one goroutine waits for a blocking call, others on the same processor run.
    std::atomic<bool> finished{false};
    std::atomic<int> ticks{0};
    goro::wait_group wg;
    wg.go([&] {
      while (!finished.load()) {
        ticks.fetch_add(1);
        goro::sleep(1ms);
      }
    });
    // The call waits (up to a generous 5 s) for the others to tick 10 times.
    int v = goro::blocking([&] {
      auto until = steady::now() + 5s;
      while (ticks.load() <= 10 && steady::now() < until) std::this_thread::sleep_for(1ms);
      return 42;
    });
    finished = true;
    wg.wait();
    EXPECT_EQ(v, 42);
    EXPECT_GT(ticks.load(), 10);

    // Several at once run in parallel on helper threads.
    auto t0 = steady::now();
    goro::wait_group par;
    for (int i = 0; i < 8; ++i) {
      par.go([] { goro::blocking([] { std::this_thread::sleep_for(100ms); }); });
    }
    par.wait();
    EXPECT_LT(ms_since(t0), 500.0);

    EXPECT_THROW(goro::blocking([]() -> int { throw std::runtime_error("disk on fire"); }),
                 std::runtime_error);
    int x = 1;
    int& r = goro::blocking([&]() -> int& { return x; });
    EXPECT_EQ(&r, &x);
    std::string s = goro::blocking([] { return std::string("moved"); });
    EXPECT_EQ(s, "moved");
  });
  // From a plain thread it simply runs.
  EXPECT_EQ(goro::blocking([] { return 7; }), 7);
}

TEST_P(net, a_blocking_call_shows_syscall_in_dumps) {
  std::atomic<bool> release{false};
  goro::wait_group wg;
  wg.go([&] {
    goro::blocking([&] {
      while (!release.load()) std::this_thread::sleep_for(1ms);
    });
  });
  EXPECT_TRUE(
      eventually([] { return goro::debug::goroutines(2).find("[syscall]") != std::string::npos; }));
  release = true;
  wg.wait();
}

// ---- how dial tries the addresses (Go's dialSerial / dialParallel) ------------------

// A loopback listener of `family` whose accept queue is full, so a connect to it hangs
// in SYN retries; on `port` (0: any). ok is false if it could not be made.
struct black_hole {
  int lfd = -1;
  std::vector<int> fillers;
  std::uint16_t port = 0;
  bool ok = false;
  sockaddr_storage ss{};
  socklen_t len = 0;
  black_hole(int family, std::uint16_t want_port) {
    lfd = ::socket(family, SOCK_STREAM, 0);
    if (lfd < 0) return;
    if (family == AF_INET6) {
      int one = 1;
      setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      in6->sin6_port = htons(want_port);
      len = sizeof(sockaddr_in6);
    } else {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      in->sin_port = htons(want_port);
      len = sizeof(sockaddr_in);
    }
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return;
    if (::listen(lfd, 0) != 0) return;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
    port = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                    : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    for (int i = 0; i < 8; ++i) {
      int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
      fillers.push_back(fd);
    }
    std::this_thread::sleep_for(50ms);
    ok = true;
  }
  // True if a connect to it is still pending after 300 ms.
  bool stalls() const {
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0) {
      ::close(fd);
      return false;
    }
    pollfd p{fd, POLLOUT, 0};
    int n = ::poll(&p, 1, 300);
    ::close(fd);
    return n == 0;
  }
  goro::net::addr::endpoint endpoint() const {
    goro::net::addr::endpoint e;
    e.ss = ss;
    e.len = len;
    return e;
  }
  ~black_hole() {
    for (int fd : fillers) ::close(fd);
    if (lfd >= 0) ::close(lfd);
  }
};

// "dual.test" resolves to ::1, then 127.0.0.1 (no name in /etc/hosts need do so).
int dual_resolver(const char* host, const char* service, const addrinfo* hints,
                  addrinfo** out) {
  if (std::strcmp(host, "dual.test") != 0) return ::getaddrinfo(host, service, hints, out);
  addrinfo h{};
  h.ai_socktype = SOCK_STREAM;
  h.ai_flags = AI_NUMERICHOST;
  addrinfo* v6 = nullptr;
  addrinfo* v4 = nullptr;
  h.ai_family = AF_INET6;
  if (::getaddrinfo("::1", nullptr, &h, &v6) != 0) return EAI_NONAME;
  h.ai_family = AF_INET;
  if (::getaddrinfo("127.0.0.1", nullptr, &h, &v4) != 0) {
    freeaddrinfo(v6);
    return EAI_NONAME;
  }
  addrinfo* tail = v6;
  while (tail->ai_next != nullptr) tail = tail->ai_next;
  tail->ai_next = v4;
  *out = v6;
  return 0;
}

struct dual_resolver_installed {
  goro::net::addr::getaddrinfo_fn* saved;
  dual_resolver_installed() : saved(goro::net::addr::resolver_hook.exchange(&dual_resolver)) {}
  ~dual_resolver_installed() { goro::net::addr::resolver_hook.store(saved); }
};

bool ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&in6), sizeof in6) == 0;
  ::close(fd);
  return ok;
}

// Run once each (they wait for real timeouts), with the leak check of procs_test.
class net_dial : public procs_test {};
INSTANTIATE_TEST_SUITE_P(procs, net_dial, ::testing::Values(2),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "p" + std::to_string(i.param);
                         });

TEST(net_dial_unit, partial_deadline_shares_the_time_left_with_a_two_second_minimum) {
  using goro::net::dialing::partial_deadline;
  auto t = goro::time_point(std::chrono::hours(1));
  EXPECT_EQ(partial_deadline(t, t + 10s, 2), t + 5s);
  EXPECT_EQ(partial_deadline(t, t + 30s, 3), t + 10s);
  EXPECT_EQ(partial_deadline(t, t + 5s, 1), t + 5s);
  EXPECT_EQ(partial_deadline(t, t + 3s, 2), t + 2s);   // 1.5 s is below the minimum
  EXPECT_EQ(partial_deadline(t, t + 6s, 4), t + 2s);
  EXPECT_EQ(partial_deadline(t, t + 1s, 3), t + 1s);   // less than 2 s left: all of it
  EXPECT_EQ(partial_deadline(t, t + 1500ms, 1), t + 1500ms);
  EXPECT_FALSE(partial_deadline(t, t, 1));
  EXPECT_FALSE(partial_deadline(t, t - 1s, 2));
  EXPECT_EQ(goro::net::dialing::fallback_delay, 300ms);
}

TEST_P(net_dial, serial_gives_each_address_its_share_of_the_deadline) {
  // Two IPv4 addresses, the first a black hole, with 3 s in all: the first gets
  // max(3 s / 2, 2 s) = 2 s, then the second connects.
  black_hole hole(AF_INET, 0);
  ASSERT_TRUE(hole.ok);
  if (!hole.stalls()) GTEST_SKIP() << "a full accept queue does not stall connects here";
  auto ln = must_listen("127.0.0.1:0");
  goro::net::addr::endpoint good;
  {
    std::string why;
    auto hp = goro::net::addr::split_host_port(ln.addr(), why);
    ASSERT_TRUE(hp) << why;
    auto [eps, err] = goro::net::addr::resolve(nullptr, false, AF_INET, *hp);
    ASSERT_FALSE(err) << err;
    good = eps.at(0);
  }
  in_goroutine([&] {
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 3s);
    auto t0 = steady::now();
    auto [c, err] = goro::net::dialing::dial_endpoints(ctx, "tcp", {hole.endpoint(), good});
    double ms = ms_since(t0);
    cancel();
    ASSERT_FALSE(err) << err << " after " << ms << " ms";
    EXPECT_EQ(c.remote_addr(), ln.addr());
    EXPECT_GE(ms, 1900.0);
    EXPECT_LT(ms, 2900.0);
    std::printf("serial: connected to the second address after %.0f ms\n", ms);
    c.close();
  });
  ln.close();
}

TEST_P(net_dial, serial_reports_the_first_error) {
  black_hole hole(AF_INET, 0);
  ASSERT_TRUE(hole.ok);
  if (!hole.stalls()) GTEST_SKIP() << "a full accept queue does not stall connects here";
  auto ln = must_listen("127.0.0.1:0");
  std::string refused = ln.addr();
  ln.close();
  std::string why;
  auto hp = goro::net::addr::split_host_port(refused, why);
  auto [eps, rerr] = goro::net::addr::resolve(nullptr, false, AF_INET, *hp);
  ASSERT_FALSE(rerr) << rerr;
  in_goroutine([&] {
    // Refused first, then a black hole until the deadline: the refusal is reported.
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 300ms);
    auto [c, err] = goro::net::dialing::dial_endpoints(ctx, "tcp", {eps.at(0), hole.endpoint()});
    cancel();
    EXPECT_FALSE(c);
    EXPECT_TRUE(err.is(std::errc::connection_refused)) << err;
    EXPECT_NE(err.message().find("dial tcp " + refused + ": connect"), std::string::npos) << err;
  });
}

// A black hole on [::1]:P and `ln` listening on 127.0.0.1:P (a port free on both).
bool hole_and_listener_on_one_port(std::unique_ptr<black_hole>& hole, listener& ln) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    hole = std::make_unique<black_hole>(AF_INET6, 0);
    if (!hole->ok) return false;
    auto [l, err] = goro::net::listen("tcp4", "127.0.0.1:" + std::to_string(hole->port));
    if (!err) {
      ln = l;
      return true;
    }
  }
  return false;
}

TEST_P(net_dial, happy_eyeballs_falls_back_to_ipv4_after_300ms) {
  if (!ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback";
  std::unique_ptr<black_hole> hole;
  listener ln;
  ASSERT_TRUE(hole_and_listener_on_one_port(hole, ln));
  if (!hole->stalls()) GTEST_SKIP() << "a full accept queue does not stall connects here";
  std::string port = std::to_string(hole->port);
  dual_resolver_installed resolver;
  must_listen().close();  // the poller's own descriptors exist from here on
  int fds_before = open_descriptors();
  in_goroutine([&] {
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 3s);
    auto t0 = steady::now();
    auto [c, err] = goro::net::dial(ctx, "tcp", "dual.test:" + port);
    double ms = ms_since(t0);
    cancel();
    ASSERT_FALSE(err) << err << " after " << ms << " ms";
    EXPECT_EQ(c.remote_addr(), "127.0.0.1:" + port);
    EXPECT_GE(ms, 250.0);   // the IPv4 attempt waited for the fallback delay
    EXPECT_LT(ms, 1500.0);  // and did not wait for the IPv6 attempt's deadline
    std::printf("happy eyeballs: connected over IPv4 after %.0f ms\n", ms);
    auto [s, aerr] = ln.accept();
    ASSERT_FALSE(aerr) << aerr;
    s.close();
    c.close();
  });
  // The cancelled IPv6 attempt's socket is closed too.
  EXPECT_TRUE(eventually([&] { return open_descriptors() == fds_before; }))
      << open_descriptors() << " descriptors open, " << fds_before << " before";
  ln.close();
}

TEST_P(net_dial, happy_eyeballs_starts_the_fallback_at_once_when_the_primary_fails) {
  if (!ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback";
  // Nothing on [::1]:P (refused at once), 127.0.0.1:P listening.
  listener ln;
  std::uint16_t port = 0;
  for (int attempt = 0; attempt < 20 && !ln; ++attempt) {
    auto l = must_listen("127.0.0.1:0");
    port = static_cast<std::uint16_t>(std::stoi(l.addr().substr(l.addr().rfind(':') + 1)));
    black_hole probe(AF_INET6, port);  // free on IPv6 too?
    if (probe.ok) ln = l;
    else l.close();
  }
  ASSERT_TRUE(ln);
  dual_resolver_installed resolver;
  in_goroutine([&] {
    auto t0 = steady::now();
    auto [c, err] = goro::net::dial("tcp", "dual.test:" + std::to_string(port));
    double ms = ms_since(t0);
    ASSERT_FALSE(err) << err;
    EXPECT_EQ(c.remote_addr(), ln.addr());
    EXPECT_LT(ms, 250.0);
    c.close();
  });
  ln.close();

  // Neither family listening: the primary's (IPv6) error.
  in_goroutine([&] {
    auto [c, err] = goro::net::dial("tcp", "dual.test:" + std::to_string(port));
    EXPECT_FALSE(c);
    EXPECT_TRUE(err.is(std::errc::connection_refused)) << err;
    EXPECT_NE(err.message().find("dial tcp [::1]:" + std::to_string(port) + ": connect"),
              std::string::npos)
        << err;
  });
}

TEST_P(net_dial, cancelling_a_happy_eyeballs_dial_ends_both_attempts) {
  if (!ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback";
  black_hole hole6(AF_INET6, 0);
  ASSERT_TRUE(hole6.ok);
  black_hole hole4(AF_INET, hole6.port);
  if (!hole4.ok) GTEST_SKIP() << "port " << hole6.port << " is taken on IPv4";
  if (!hole6.stalls() || !hole4.stalls()) GTEST_SKIP() << "a full accept queue does not stall";
  dual_resolver_installed resolver;
  must_listen().close();  // the poller's own descriptors exist from here on
  int fds_before = open_descriptors();
  in_goroutine([&] {
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 600ms);
    auto t0 = steady::now();
    auto [c, err] = goro::net::dial(ctx, "tcp", "dual.test:" + std::to_string(hole6.port));
    double ms = ms_since(t0);
    cancel();
    EXPECT_FALSE(c);
    EXPECT_TRUE(err.is(goro::deadline_exceeded)) << err;
    EXPECT_NE(err.message().find("[::1]"), std::string::npos) << err;  // the primary's
    EXPECT_LT(ms, 1500.0);
  });
  EXPECT_TRUE(eventually([&] { return open_descriptors() == fds_before; }));
}

// ---- IPv6 zones -------------------------------------------------------------------

TEST_P(net, ipv6_zones_are_parsed_dialed_and_printed) {
  unsigned lo = if_nametoindex("lo");
  if (lo != 0 && ipv6_loopback()) {
    auto ln = must_listen("[::1]:0");
    std::string port = ln.addr().substr(ln.addr().rfind(':') + 1);
    in_goroutine([&] {
      auto [c, err] = goro::net::dial("tcp", "[::1%lo]:" + port);
      ASSERT_FALSE(err) << err;
      auto [s, aerr] = ln.accept();
      ASSERT_FALSE(aerr) << aerr;
      s.close();
      c.close();
      auto [c2, err2] = goro::net::dial("tcp", "[::1%" + std::to_string(lo) + "]:" + port);
      ASSERT_FALSE(err2) << err2;
      auto [s2, aerr2] = ln.accept();
      ASSERT_FALSE(aerr2) << aerr2;
      s2.close();
      c2.close();
    });
    ln.close();
  }

  // The zone becomes sin6_scope_id (a name or a number) and is printed back.
  if (lo != 0) {
    goro::net::addr::host_port hp{"fe80::1%lo", 80};
    auto [eps, err] = goro::net::addr::resolve(nullptr, false, AF_UNSPEC, hp);
    ASSERT_FALSE(err) << err;
    ASSERT_EQ(eps.size(), 1u);
    EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(&eps[0].ss)->sin6_scope_id, lo);
    EXPECT_EQ(goro::net::addr::format(eps[0]), "[fe80::1%lo]:80");
  }
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
  in6.sin6_port = htons(443);
  in6.sin6_scope_id = 987654;  // no such interface: printed as the number
  EXPECT_EQ(goro::net::addr::format(reinterpret_cast<sockaddr*>(&in6)), "[fe80::1%987654]:443");
  in6.sin6_scope_id = 0;
  EXPECT_EQ(goro::net::addr::format(reinterpret_cast<sockaddr*>(&in6)), "[fe80::1]:443");
  EXPECT_EQ(goro::net::addr::zone_index("987654"), 987654u);
  EXPECT_FALSE(goro::net::addr::zone_index(""));

  auto [c, err] = goro::net::dial("tcp", "[fe80::1%nosuchif0]:80");
  EXPECT_FALSE(c);
  ASSERT_TRUE(err);
  EXPECT_NE(err.message().find("unknown zone nosuchif0"), std::string::npos) << err;
  auto [c2, err2] = goro::net::dial("tcp", "[fe80::1%]:80");
  ASSERT_TRUE(err2);
  EXPECT_NE(err2.message().find("no such host"), std::string::npos) << err2;
}

}  // namespace
