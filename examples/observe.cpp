// observe — a small service to look at from outside: a pipeline of goroutines
// (a producer, workers, a collector that stalls), a ticker, and a goroutine waiting on
// a socket, with goro's debug endpoints served.
//
//   ./observe                  serves 127.0.0.1:6060 until interrupted: try
//                              go tool pprof -top http://127.0.0.1:6060/debug/pprof/goroutine
//                              curl 127.0.0.1:6060/metrics
//   ./observe profile FILE     writes one goroutine profile to FILE and exits
//   ./observe metrics          prints the Prometheus metrics once and exits
#include <goro/goro.hpp>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>

namespace {

[[gnu::noinline]] void produce(goro::chan<int> jobs, goro::chan<int> stop) {
  for (int i = 0;; ++i) {
    if (goro::select(goro::case_send(jobs, i), goro::case_recv(stop)) == 1) return;
  }
}

[[gnu::noinline]] void work(goro::chan<int> jobs, goro::chan<int> results,
                            goro::chan<int> stop) {
  for (;;) {
    std::optional<int> job;
    if (goro::select(goro::case_recv(jobs, job), goro::case_recv(stop)) == 1) return;
    if (goro::select(goro::case_send(results, *job * 2), goro::case_recv(stop)) == 1) return;
  }
}

// Takes a few results, then stalls (and says so by closing `stalled`): the workers
// back up behind it.
[[gnu::noinline]] void collect(goro::chan<int> results, goro::chan<int> stalled,
                               goro::chan<int> stop) {
  for (int i = 0; i < 10; ++i) {
    if (goro::select(goro::case_recv(results), goro::case_recv(stop)) == 1) return;
  }
  stalled.close();
  stop.recv();
}

// Whether the pipeline has backed up: the producer, the 8 workers and the ticker all
// wait in select (the collector, stalled, waits in a receive).
bool backed_up() {
  for (const auto& [reason, n] : goro::debug::metrics().waiting_by_reason) {
    if (reason == "select") return n >= 10;
  }
  return false;
}

[[gnu::noinline]] void tick(goro::chan<int> stop) {
  goro::ticker t(std::chrono::milliseconds(100));
  for (;;) {
    std::optional<int> s;
    if (goro::select(goro::case_recv(t.c()), goro::case_recv(stop, s)) == 1) return;
  }
}

[[gnu::noinline]] void wait_for_client(goro::net::listener& ln) {
  auto [c, err] = ln.accept();
  if (!err) c.close();
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "serve";
  int rc = 0;
  goro::run([&] {
    auto jobs = goro::make_chan<int>();
    auto results = goro::make_chan<int>();
    auto stop = goro::make_chan<int>();
    auto stalled = goro::make_chan<int>();
    goro::wait_group wg;
    wg.go([=] { produce(jobs, stop); });
    for (int i = 0; i < 8; ++i) wg.go([=] { work(jobs, results, stop); });
    wg.go([=] { collect(results, stalled, stop); });
    wg.go([=] { tick(stop); });
    auto [ln, lerr] = goro::net::listen("tcp", "127.0.0.1:0");
    if (lerr) {
      std::cerr << lerr.message() << "\n";
      rc = 1;
      stop.close();
      wg.wait();
      return;
    }
    wg.go([&ln = ln] { wait_for_client(ln); });
    stalled.recv();
    while (!backed_up()) goro::sleep(std::chrono::milliseconds(10));

    if (mode == "profile" && argc > 2) {
      std::ofstream out(argv[2], std::ios::binary);
      if (goro::error err = goro::debug::write_goroutine_profile(out)) {
        std::cerr << err.message() << "\n";
        rc = 1;
      }
    } else if (mode == "metrics") {
      goro::debug::write_metrics(std::cout);
    } else {
      if (goro::error err = goro::debug::serve("127.0.0.1:6060")) {
        std::cerr << err.message() << "\n";
        rc = 1;
      } else {
        std::cout << "serving http://127.0.0.1:6060/debug/pprof/ (Ctrl-C stops)\n";
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        int sig = 0;
        goro::blocking([&] { return sigwait(&set, &sig); });
      }
    }
    // Shut down: closing `stop` and the listener ends every goroutine.
    ln.close();
    stop.close();
    wg.wait();
  });
  return rc;
}
