// echo_server — a TCP echo server: one goroutine per connection, graceful shutdown on
// SIGINT/SIGTERM through a context.
//
//   echo_server [address]        (default 127.0.0.1:9000; ":0" picks a free port)
//
// Prints "listening on <addr>". On the first SIGINT or SIGTERM it stops accepting,
// ends every connection's wait for input (a read deadline in the past), waits for the
// connection goroutines to finish, and exits 0.
#include <goro/goro.hpp>

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

// Serves one connection until the client closes it or the server shuts down.
void serve(goro::context ctx, goro::net::conn c, std::atomic<long>& bytes) {
  // Shutdown ends a read that is waiting: the deadline wakes it with a timeout.
  auto stop =
      goro::after_func(ctx, [c]() { c.set_read_deadline(goro::time_point::min()); });
  // 32 KiB, as Go's io.Copy: a large transfer takes a quarter of the system calls a
  // 4 KiB buffer makes. On the heap: a goroutine's stack is 64 KiB by default.
  std::vector<std::byte> buf(32 * 1024);
  for (;;) {
    auto [n, err] = c.read(std::span<std::byte>(buf));
    if (err) break;  // goro::eof when the client is done; a timeout on shutdown
    auto [m, werr] = c.write(std::span<const std::byte>(buf.data(), n));
    if (werr) break;
    bytes += static_cast<long>(m);
  }
  stop();
  c.close();
}

int main(int argc, char** argv) {
  std::string address = argc > 1 ? argv[1] : "127.0.0.1:9000";
  // Block the shutdown signals in every thread (goro's threads inherit this mask), so
  // that they are only ever received by sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  return goro::run([&]() -> int {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    // sigwait blocks its thread: goro::blocking runs it on a helper thread while this
    // goroutine parks. The first signal cancels ctx.
    goro::go([&signals, cancel = cancel] {
      int sig = goro::blocking([&] {
        int s = 0;
        sigwait(&signals, &s);
        return s;
      });
      std::printf("received %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      std::fflush(stdout);
      cancel();
    });

    auto [ln, err] = goro::net::listen("tcp", address);
    if (err) {
      std::fprintf(stderr, "echo_server: %s\n", err.message().c_str());
      return 1;
    }
    std::printf("listening on %s\n", ln.addr().c_str());
    std::fflush(stdout);
    // Shutdown also closes the listener, which wakes the accept below.
    auto stop_accepting = goro::after_func(ctx, [ln]() { ln.close(); });

    goro::wait_group connections;
    std::atomic<long> bytes{0};
    long accepted = 0;
    for (;;) {
      auto [c, aerr] = ln.accept();
      if (aerr) {
        if (!aerr.is(goro::net::err_closed))
          std::fprintf(stderr, "accept: %s\n", aerr.message().c_str());
        break;
      }
      ++accepted;
      connections.go([ctx = ctx, c, &bytes] { serve(ctx, c, bytes); });
    }
    connections.wait();
    std::printf("served %ld connections, echoed %ld bytes; bye\n", accepted, bytes.load());
    return 0;
  });
}
