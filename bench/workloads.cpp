// goro-workloads — the workloads of SPEC §6, one per run:
//   goro-workloads <spawn|pingpong|chan_spsc|chan_mpmc|mutex|select|parked_memory|
//                   context_cancel|bounded_tasks|timers|yield|tcp_echo|idle_conns|dump|
//                   blocking_syscalls|blocked_timers|explore_rate|explore_bugs>
// Prints `workload=<name> ns_per_op=<x> ...`; honours GORO_MAXPROCS. Sizes match
// ../shared/peers/go/main.go so that compare.sh can put the numbers side by side.
#include <goro/explore.hpp>
#include <goro/goro.hpp>

#include "../tests/support/ordering_bugs.hpp"

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <chrono>
#include <optional>
#include <vector>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

double ns_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::nano>(clock_type::now() - start).count();
}

void report(const char* name, double elapsed_ns, long ops, const std::string& extra = "") {
  std::printf("workload=%s ns_per_op=%.2f gomaxprocs=%d%s\n", name, elapsed_ns / ops,
              goro::max_procs(), extra.c_str());
}

// ---- W1 spawn: n goroutines that only signal a wait_group -----------------------------
double spawn_round(long n) {
  goro::wait_group wg;
  auto start = clock_type::now();
  wg.add(static_cast<int>(n));
  for (long i = 0; i < n; ++i) goro::go([&wg] { wg.done(); });
  wg.wait();
  return ns_since(start);
}

void spawn() {
  constexpr long n = 1'000'000;
  spawn_round(10'000);
  report("spawn", spawn_round(n), n);
}

// ---- W2 pingpong: two goroutines, two unbuffered channels, round trips -------------
double pingpong_round(long n) {
  auto ping = goro::make_chan<long>(), pong = goro::make_chan<long>();
  goro::go([ping, pong] {
    for (long v : ping) pong.send(v);
    pong.close();
  });
  auto start = clock_type::now();
  for (long i = 0; i < n; ++i) {
    ping.send(i);
    pong.recv();
  }
  double elapsed = ns_since(start);
  ping.close();
  pong.recv();
  return elapsed;
}

void pingpong() {
  constexpr long n = 1'000'000;
  pingpong_round(10'000);
  report("pingpong", pingpong_round(n), n);
}

// ---- W3 chan_spsc: one producer, one consumer, buffered 1024 -------------------------
double spsc_round(long n) {
  auto ch = goro::make_chan<long>(1024);
  auto start = clock_type::now();
  goro::go([ch, n] {
    for (long i = 0; i < n; ++i) ch.send(i);
    ch.close();
  });
  long sum = 0;
  for (long v : ch) sum += v;
  double elapsed = ns_since(start);
  if (sum != n * (n - 1) / 2) {
    std::fprintf(stderr, "chan_spsc: bad sum\n");
    std::exit(1);
  }
  return elapsed;
}

void chan_spsc() {
  constexpr long n = 10'000'000;
  spsc_round(100'000);
  report("chan_spsc", spsc_round(n), n);
}

// ---- W4 chan_mpmc: 4 producers, 4 consumers, one channel of 1024 --------------------
double mpmc_round(long n, int producers, int consumers) {
  auto ch = goro::make_chan<long>(1024);
  goro::wait_group pwg, cwg;
  std::vector<long> sums(static_cast<std::size_t>(consumers));
  long per = n / producers;
  auto start = clock_type::now();
  for (int p = 0; p < producers; ++p) {
    pwg.go([ch, p, per] {
      long base = p * per;
      for (long i = 0; i < per; ++i) ch.send(base + i);
    });
  }
  for (int c = 0; c < consumers; ++c) {
    cwg.go([ch, c, &sums] {
      long s = 0;
      for (long v : ch) s += v;
      sums[static_cast<std::size_t>(c)] = s;
    });
  }
  pwg.wait();
  ch.close();
  cwg.wait();
  double elapsed = ns_since(start);
  long total = 0;
  for (long s : sums) total += s;
  if (total != n * (n - 1) / 2) {
    std::fprintf(stderr, "chan_mpmc: bad sum\n");
    std::exit(1);
  }
  return elapsed;
}

void chan_mpmc() {
  constexpr long n = 10'000'000;
  mpmc_round(100'000, 4, 4);
  report("chan_mpmc", mpmc_round(n, 4, 4), n);
}

// ---- W5 mutex: 1,000 goroutines x 1,000 lock/increment/unlock -----------------------
double mutex_round(int goroutines, int iters) {
  goro::mutex mu;
  goro::wait_group wg;
  long counter = 0;
  auto start = clock_type::now();
  for (int g = 0; g < goroutines; ++g) {
    wg.go([&] {
      for (int i = 0; i < iters; ++i) {
        mu.lock();
        ++counter;
        mu.unlock();
      }
    });
  }
  wg.wait();
  double elapsed = ns_since(start);
  if (counter != long{goroutines} * iters) {
    std::fprintf(stderr, "mutex: counter=%ld want %ld\n", counter, long{goroutines} * iters);
    std::exit(1);
  }
  return elapsed;
}

void mutex_w() {
  mutex_round(100, 100);
  report("mutex", mutex_round(1000, 1000), 1'000'000, " counter_ok=1");
}

// ---- W6 select: one consumer selecting over 4 unbuffered channels, 4 producers -------
double select_round(long n) {
  std::array<goro::chan<long>, 4> chs;
  for (auto& c : chs) c = goro::make_chan<long>();
  long per = n / 4;
  auto start = clock_type::now();
  for (auto& c : chs) {
    goro::go([c, per] {
      for (long j = 0; j < per; ++j) c.send(j);
    });
  }
  std::array<long, 4> got{};
  std::optional<long> v;
  for (long k = 0; k < n; ++k) {
    int i = goro::select(goro::case_recv(chs[0], v), goro::case_recv(chs[1], v),
                         goro::case_recv(chs[2], v), goro::case_recv(chs[3], v));
    ++got[static_cast<std::size_t>(i)];
  }
  double elapsed = ns_since(start);
  for (long g : got) {
    if (g != per) {
      std::fprintf(stderr, "select: bad per-channel count\n");
      std::exit(1);
    }
  }
  return elapsed;
}

void select_w() {
  constexpr long n = 1'000'000;
  select_round(10'000);
  report("select", select_round(n), n);
}

// ---- W7 parked_memory: RSS growth per parked goroutine --------------------------------
long vm_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

void parked_memory() {
  long n = 1'000'000;
  if (const char* v = std::getenv("PEERS_PARKED_N")) n = std::strtol(v, nullptr, 10);
  long before = vm_rss_kib();
  auto ch = goro::make_chan<int>();
  goro::wait_group started, done;
  started.add(static_cast<int>(n));
  done.add(static_cast<int>(n));
  for (long i = 0; i < n; ++i) {
    goro::go([&] {
      started.done();
      ch.recv();
      done.done();
    });
  }
  started.wait();
  goro::sleep(200ms);  // let the last few reach the receive
  long after = vm_rss_kib();
  ch.close();
  done.wait();
  double per = static_cast<double>(after - before) * 1024 / n;
  std::printf(
      "workload=parked_memory bytes_per_goroutine=%.0f goroutines=%ld rss_before_kib=%ld "
      "rss_after_kib=%ld gomaxprocs=%d\n",
      per, n, before, after, goro::max_procs());
}

// ---- W8 context_cancel: 100,000 children of one root, each watched by a goroutine --
void context_cancel() {
  constexpr int n = 100'000;
  auto [root, cancel] = goro::with_cancel(goro::background());
  std::vector<goro::cancel_func> cancels;
  cancels.reserve(n);
  goro::wait_group started, done;
  started.add(n);
  done.add(n);
  for (int i = 0; i < n; ++i) {
    auto [ctx, c] = goro::with_cancel(root);
    cancels.push_back(c);
    goro::go([&, ctx = ctx] {
      started.done();
      ctx.done().recv();
      done.done();
    });
  }
  started.wait();
  goro::sleep(100ms);  // let every goroutine park on done()
  auto start = clock_type::now();
  cancel();
  done.wait();
  double elapsed = ns_since(start);
  for (auto& c : cancels) c();
  report("context_cancel", elapsed, n);
}

// ---- W9 bounded_tasks: errgroup with limit 64, each task yields once --------------
double bounded_round(int n, int limit) {
  auto start = clock_type::now();
  auto [g, ctx] = goro::errgroup::with_context(goro::background());
  g.set_limit(limit);
  for (int i = 0; i < n; ++i) {
    g.go([ctx = ctx]() -> goro::error {
      goro::yield();
      return ctx.err() ? goro::make_error("task failed") : goro::error{};
    });
  }
  goro::error err = g.wait();
  double elapsed = ns_since(start);
  if (err) {
    std::fprintf(stderr, "bounded_tasks: %s\n", err.message().c_str());
    std::exit(1);
  }
  return elapsed;
}

void bounded_tasks() {
  constexpr int n = 100'000;
  bounded_round(1'000, 64);
  report("bounded_tasks", bounded_round(n, 64), n);
}

// ---- dump: the cost of one level-2 dump of 100,000 parked goroutines ----------------
void dump() {
  constexpr int n = 100'000;
  auto ch = goro::make_chan<int>();
  goro::wait_group started, done;
  started.add(n);
  done.add(n);
  for (int i = 0; i < n; ++i) {
    goro::go([&] {
      started.done();
      ch.recv();
      done.done();
    });
  }
  started.wait();
  goro::sleep(100ms);
  goro::debug::goroutines(2);  // warm the symbol cache (first use reads debug info)
  auto start = clock_type::now();
  std::string text = goro::debug::goroutines(2);
  double ms = ns_since(start) / 1e6;
  ch.close();
  done.wait();
  std::printf("workload=dump ns_per_op=%.2f dump_ms=%.1f goroutines=%d bytes=%zu gomaxprocs=%d\n",
              ms * 1e6 / n, ms, n, text.size(), goro::max_procs());
}

// ---- W10 timers: 10,000 goroutines x 10 sleeps of 1 ms ------------------------------
void timers() {
  constexpr int goroutines = 10'000, sleeps = 10;
  goro::wait_group wg;
  auto start = clock_type::now();
  wg.add(goroutines);
  for (int i = 0; i < goroutines; ++i) {
    goro::go([&wg] {
      for (int j = 0; j < sleeps; ++j) goro::sleep(1ms);
      wg.done();
    });
  }
  wg.wait();
  double wall_ms = ns_since(start) / 1e6;
  std::printf("workload=timers wall_ms=%.3f overshoot_ms=%.3f gomaxprocs=%d\n", wall_ms,
              wall_ms - sleeps * 1.0, goro::max_procs());
}

// ---- W11 yield: two goroutines on one processor yielding ---------------------------
double yield_round(long n) {
  goro::wait_group wg;
  wg.add(2);
  auto start = clock_type::now();
  for (int g = 0; g < 2; ++g) {
    goro::go([&wg, n] {
      for (long i = 0; i < n; ++i) goro::yield();
      wg.done();
    });
  }
  wg.wait();
  return ns_since(start);
}

void yield() {
  constexpr long n = 1'000'000;
  goro::set_max_procs(1);
  yield_round(10'000);
  report("yield", yield_round(n), 2 * n);
}

// ---- W12 tcp_echo: 64 connections x 10,000 round trips of 64 bytes on loopback -----
void tcp_echo() {
  constexpr int clients = 64, rounds = 10'000;
  constexpr std::size_t msg = 64;
  auto [ln, err] = goro::net::listen("tcp", "127.0.0.1:0");
  if (err) {
    std::fprintf(stderr, "tcp_echo: %s\n", err.message().c_str());
    std::exit(1);
  }
  goro::go([ln]() {
    for (;;) {
      auto [c, aerr] = ln.accept();
      if (aerr) return;
      goro::go([c]() {
        std::array<std::byte, msg> buf;
        while (!c.read_full(buf).error() && !c.write(buf).error()) {
        }
        c.close();
      });
    }
  });
  std::vector<goro::net::conn> conns(clients);
  for (auto& c : conns) {
    auto [dc, derr] = goro::net::dial("tcp", ln.addr());
    if (derr) {
      std::fprintf(stderr, "tcp_echo: %s\n", derr.message().c_str());
      std::exit(1);
    }
    c = dc;
  }
  std::vector<std::vector<std::int64_t>> lat(clients);
  goro::wait_group wg;
  auto start = clock_type::now();
  wg.add(clients);
  for (int i = 0; i < clients; ++i) {
    goro::go([&, i] {
      auto& c = conns[i];
      std::array<std::byte, msg> out, in;
      for (std::size_t j = 0; j < msg; ++j) out[j] = std::byte(i + j);
      auto& l = lat[i];
      l.resize(rounds);
      for (int r = 0; r < rounds; ++r) {
        auto t0 = clock_type::now();
        if (c.write(out).error() || c.read_full(in).error()) {
          std::fprintf(stderr, "tcp_echo: round trip failed\n");
          std::exit(1);
        }
        l[r] = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
      }
      if (in != out) {
        std::fprintf(stderr, "tcp_echo: payload mismatch\n");
        std::exit(1);
      }
      wg.done();
    });
  }
  wg.wait();
  double elapsed = ns_since(start);
  for (auto& c : conns) c.close();
  ln.close();
  std::vector<std::int64_t> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  char extra[96];
  std::snprintf(extra, sizeof extra, " p50_us=%.1f p99_us=%.1f", all[all.size() * 50 / 100] / 1e3,
                all[all.size() * 99 / 100] / 1e3);
  report("tcp_echo", elapsed, long{clients} * rounds, extra);
}

// ---- idle_conns: 10,000 idle connections held by one server; RSS per connection ----
// The clients are a forked child with plain blocking sockets, so the figure is the
// server's alone: one accepted socket and one goroutine parked in read per connection.
void idle_conns() {
  constexpr int n = 10'000;
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < n + 100 && lim.rlim_max >= n + 100) {
    lim.rlim_cur = n + 100;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  auto [ln, err] = goro::net::listen("tcp", "127.0.0.1:0");
  if (err) {
    std::fprintf(stderr, "idle_conns: %s\n", err.message().c_str());
    std::exit(1);
  }
  sockaddr_in to{};
  socklen_t len = sizeof to;
  getsockname(ln.native_handle(), reinterpret_cast<sockaddr*>(&to), &len);
  int hold[2];
  if (pipe(hold) != 0) std::exit(1);
  long before = vm_rss_kib();
  pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls here: the parent has threads.
    close(hold[1]);
    for (int i = 0; i < n; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) _exit(1);
    }
    char c;
    while (read(hold[0], &c, 1) > 0) {
    }
    _exit(0);  // closes every connection
  }
  close(hold[0]);
  goro::wait_group served;
  served.add(n);
  for (int i = 0; i < n; ++i) {
    auto [c, aerr] = ln.accept();
    if (aerr) {
      std::fprintf(stderr, "idle_conns: accept %d: %s\n", i, aerr.message().c_str());
      std::exit(1);
    }
    goro::go([c, &served]() {
      std::array<std::byte, 64> buf;
      while (!c.read(buf).error()) {
      }
      c.close();
      served.done();
    });
  }
  goro::sleep(200ms);  // every server goroutine parked in read
  long after = vm_rss_kib();
  std::printf(
      "workload=idle_conns bytes_per_conn=%.0f conns=%d rss_before_kib=%ld "
      "rss_after_kib=%ld gomaxprocs=%d\n",
      (after - before) * 1024.0 / n, n, before, after, goro::max_procs());
  close(hold[1]);  // the child exits and its connections close
  served.wait();
  waitpid(child, nullptr, 0);
  ln.close();
}

// ---- W13 blocking_syscalls: 64 goroutines x 100 raw 100 us nanosleeps ---------------
// Each nanosleep stands for foreign blocking code goro does not know about (a file
// read, a C client library); each is followed by a send to one consumer. With full
// overlap the whole takes 100 x 100 us = 10 ms (1.56 us per op).
void raw_nanosleep(long ns) {
  timespec ts{0, ns};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void blocking_syscalls() {
  constexpr int goroutines = 64, calls = 100;
  auto results = goro::make_chan<int>(goroutines);
  auto start = clock_type::now();
  for (int i = 0; i < goroutines; ++i) {
    goro::go([results] {
      for (int j = 0; j < calls; ++j) {
        raw_nanosleep(100'000);
        results.send(j);
      }
    });
  }
  for (int k = 0; k < goroutines * calls; ++k) results.recv();
  report("blocking_syscalls", ns_since(start), long{goroutines} * calls);
}

// ---- W14 blocked_timers: every processor held by a raw 300 ms nanosleep -------------
// while 100 goroutines sleep until 1..100 ms after one common start; how late they wake
// (a late start counts as late).
void blocked_timers() {
  goro::wait_group wg;
  for (int b = 0; b < goro::max_procs(); ++b) wg.go([] { raw_nanosleep(300'000'000); });
  goro::mutex mu;
  std::vector<double> late;
  late.reserve(100);
  auto start = clock_type::now();
  for (int i = 1; i <= 100; ++i) {
    wg.go([&, i] {
      auto want = start + std::chrono::milliseconds(i);
      goro::sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(want - clock_type::now()));
      double l = std::chrono::duration<double, std::milli>(clock_type::now() - want).count();
      std::lock_guard lk(mu);
      late.push_back(l);
    });
  }
  wg.wait();
  std::sort(late.begin(), late.end());
  std::printf("workload=blocked_timers late_p99_ms=%.3f late_max_ms=%.3f gomaxprocs=%d\n", late[98],
              late[99], goro::max_procs());
}

// explore over the worker pool of examples/workers.cpp: 4 workers, 100 jobs, the
// consumer cancels after half the results. Runs per second of explore.
void pool_body() {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto jobs = goro::make_chan<int>(8);
  auto results = goro::make_chan<int>(8);
  goro::wait_group wg;
  for (int w = 0; w < 4; ++w) {
    wg.go([=] {
      for (;;) {
        std::optional<int> j;
        if (goro::select(goro::case_recv(jobs, j), goro::case_recv(ctx.done())) == 1 || !j) return;
        goro::sleep(1ms);  // the "work", on the run's fake clock
        if (goro::select(goro::case_send(results, *j * *j), goro::case_recv(ctx.done())) == 1) {
          return;
        }
      }
    });
  }
  wg.go([=] {
    for (int id = 0; id < 100; ++id) {
      if (goro::select(goro::case_send(jobs, id), goro::case_recv(ctx.done())) == 1) return;
    }
    jobs.close();
  });
  for (int received = 0; received < 50; ++received) (void)results.recv();
  cancel();
  wg.wait();
}

void explore_rate() {
  constexpr int runs = 300;
  auto start = clock_type::now();
  auto r = goro::testing::explore(pool_body, {.iterations = runs, .seed = 1});
  double ns = ns_since(start);
  if (r.failed) {
    std::fprintf(stderr, "explore_rate: the pool failed:\n%s", r.report.c_str());
    std::exit(1);
  }
  std::printf("workload=explore_rate ns_per_op=%.2f runs_per_s=%.0f gomaxprocs=%d\n", ns / runs,
              runs / (ns / 1e9), goro::max_procs());
}

// How many runs explore needs to find each bug of tests/support/ordering_bugs.hpp:
// median and maximum over 101 seeds, for PCT and random.
void explore_bugs() {
  for (auto strategy : {goro::testing::schedule::pct, goro::testing::schedule::random}) {
    for (const auto& b : ordering_bugs::bugs) {
      std::vector<int> needed;
      for (std::uint64_t seed = 1; seed <= 101; ++seed) {
        auto r = goro::testing::explore([&] { b.program(false); },
                                        {.iterations = 10000, .seed = seed, .schedule = strategy});
        needed.push_back(r.failed ? r.iteration + 1 : 100000);
      }
      std::sort(needed.begin(), needed.end());
      std::printf("workload=explore_bugs bug=%s schedule=%s runs_median=%d runs_max=%d\n", b.name,
                  strategy == goro::testing::schedule::pct ? "pct" : "random", needed[50],
                  needed.back());
    }
  }
}

struct workload {
  const char* name;
  void (*fn)();
};
constexpr workload workloads[] = {
    {"spawn", spawn},
    {"pingpong", pingpong},
    {"chan_spsc", chan_spsc},
    {"chan_mpmc", chan_mpmc},
    {"mutex", mutex_w},
    {"select", select_w},
    {"parked_memory", parked_memory},
    {"context_cancel", context_cancel},
    {"bounded_tasks", bounded_tasks},
    {"dump", dump},
    {"timers", timers},
    {"yield", yield},
    {"tcp_echo", tcp_echo},
    {"idle_conns", idle_conns},
    {"blocking_syscalls", blocking_syscalls},
    {"blocked_timers", blocked_timers},
    {"explore_rate", explore_rate},
    {"explore_bugs", explore_bugs},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: goro-workloads <workload>\nworkloads:");
    for (auto& w : workloads) std::fprintf(stderr, " %s", w.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  for (auto& w : workloads) {
    if (std::strcmp(argv[1], w.name) == 0) {
      if (std::strcmp(w.name, "yield") == 0) goro::set_max_procs(1);
      return goro::run(w.fn);
    }
  }
  std::fprintf(stderr, "goro-workloads: unknown or not yet implemented workload '%s'\n", argv[1]);
  return 2;
}
