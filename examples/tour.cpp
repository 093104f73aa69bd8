// tour — the classic goroutine pitfalls, each shown live, and goro's answer to each.
//
//   tour        walks through every section in order (a few seconds)
//   tour N      runs only section N
//
//   1. goroutines die when main returns     8. the deadlock detector
//   2. the loop-variable capture pitfall    9. closed channels
//   3. sleep is not synchronisation        10. the forgotten done()
//   4. a shared counter, four ways         11. lock granularity
//   5. a goroutine leak                    12. shared maps
//   6. a worker pool stopped by a context  13. unbounded fan-out
//   7. bounded fan-out: errgroup and       14. finding them first: schedule
//      semaphore                               exploration and virtual time
//
// Section 14 leaves behind the goroutines of the failing schedules it finds (see
// there). Sections 1 and 8 show a goro program ending badly, so each runs a small demo in a
// child process: this same executable started again as `tour --child <demo>`. What
// the child writes (stdout and stderr, in order) is shown indented under "  | ",
// followed by its exit status. Every other section runs here, inside one goro::run,
// and cleans up after itself: no goroutine it starts outlives it.
#include <goro/explore.hpp>
#include <goro/goro.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------------------------
// Helpers

// Milliseconds since `start`, for "finished after N ms" lines.
long ms_since(steady::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count());
}

// Prints `text` with every line indented by `prefix`.
void print_indented(std::string_view text, const char* prefix) {
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    std::printf("%s%.*s\n", prefix, static_cast<int>(line.size()), line.data());
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

// Runs this program again as `tour --child <demo>`, then shows everything the child
// wrote to stdout and stderr, indented under "  | ", and how it ended.
//
// read() and waitpid() are plain blocking system calls: they hold this goroutine's
// thread, and with it a processor (README, "Limitations"). Nothing else in the tour
// runs meanwhile, so nobody waits for that processor.
void run_child(const char* demo) {
  std::fflush(stdout);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::perror("tour: pipe2");
    return;
  }
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  std::string arg0 = "tour", arg1 = "--child", arg2 = demo;
  char* child_argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  pid_t pid = 0;
  int spawn_err = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, child_argv, environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);  // the child holds the write end now; EOF when it exits
  if (spawn_err != 0) {
    std::fprintf(stderr, "tour: cannot start a child: %s\n", std::strerror(spawn_err));
    ::close(pipe_fds[0]);
    return;
  }

  std::string output;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n > 0) {
      output.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipe_fds[0]);
  if (!output.empty() && output.back() == '\n') output.pop_back();
  print_indented(output, "  | ");

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    std::printf("  (child killed by signal %d)\n", WTERMSIG(status));
  } else {
    std::printf("  (child exited with status %d)\n", WEXITSTATUS(status));
  }
}

// ---------------------------------------------------------------------------------
// 1. goroutines die when main returns
//
// When Go's main returns, the program ends, and goroutines that are still running
// simply vanish: their work is never finished and nobody is told. goro::run does the
// same, but says so: it prints one line to stderr naming how many goroutines were
// abandoned and where the oldest was started (GORO_EXIT_CHECK=off|warn|dump; the
// default is warn). The cure is to wait for them, here with a wait_group.

// A worker that needs a little while; n says which one it is and how long it takes.
void slow_worker(int n) {
  goro::sleep(n * 100ms);
  std::printf("worker %d: done\n", n);
}

// Child demo: starts three workers and returns at once.
int child_main_returns_early() {
  return goro::run([] {
    for (int n = 1; n <= 3; ++n) goro::go(slow_worker, n);
    std::printf("main: started 3 workers; returning without waiting for them\n");
  });
}

// Child demo: the same three workers, waited for.
int child_main_waits() {
  return goro::run([] {
    goro::wait_group wg;
    for (int n = 1; n <= 3; ++n) wg.go([n] { slow_worker(n); });
    std::printf("main: started 3 workers; waiting for them\n");
    wg.wait();
    std::printf("main: all 3 workers finished\n");
  });
}

void section_main_returns() {
  std::printf(
      "Main returns without waiting: no worker ever says \"done\", and goro names the\n"
      "goroutines it abandoned (the line starting with \"goro: main returned\").\n");
  run_child("main-returns-early");
  std::printf("\nMain waits with a wait_group: every worker finishes, goro has nothing to say.\n");
  run_child("main-waits");
}

// ---------------------------------------------------------------------------------
// 2. the loop-variable capture pitfall
//
// Go before 1.22 had one loop variable for the whole loop, and `go func() { use(i) }()`
// captured that variable, not its value: goroutines that ran after the loop had moved
// on all saw the last value. goro::go(f, args...) decay-copies f and every argument
// before it returns, like std::thread, so `goro::go(f, i)` gives each goroutine its own
// i. A C++ lambda decides for itself, though: [i] copies, [&] refers.

// Receives `n` values from `seen` and prints them in order: "0 1 2".
void print_seen(const char* how, goro::chan<int> seen, int n) {
  std::vector<int> values;
  for (int k = 0; k < n; ++k) values.push_back(*seen.recv());
  std::sort(values.begin(), values.end());
  std::printf("  %-36s goroutines saw", how);
  for (int v : values) std::printf(" %d", v);
  std::printf("\n");
}

void section_loop_variable() {
  std::printf(
      "Three goroutines are started in a loop over i = 0, 1, 2; each reports the i it sees.\n");
  goro::wait_group wg;
  auto seen = goro::make_chan<int>(3);

  // goro::go copies its arguments: each goroutine gets the i of its iteration.
  for (int i = 0; i < 3; ++i) {
    wg.add(1);
    goro::go(
        [&wg, seen](int mine) {
          seen.send(mine);
          wg.done();
        },
        i);
  }
  print_seen("goro::go(f, i) copies i:", seen, 3);

  // A lambda capturing [i] copies it too.
  for (int i = 0; i < 3; ++i) wg.go([i, seen] { seen.send(i); });
  print_seen("a lambda capturing [i] copies it:", seen, 3);

  // A lambda capturing [&] keeps a reference to i and reads it when it runs, which may
  // be after the loop has moved on. Capturing a `for (int i ...)` variable this way
  // would be worse than wrong: that i dies when the loop ends, and goroutines reading
  // it later read a dangling reference (undefined behaviour). So that the effect can be
  // shown safely, i here is declared outside the loop and outlives the goroutines (we
  // wait for them below), exactly Go's old per-loop variable; and the goroutines read
  // it only after `gate` is closed, once the loop is over, so the reads cannot race
  // with the loop's ++i.
  auto gate = goro::make_chan<std::monostate>();
  int i = 0;
  for (i = 0; i < 3; ++i) {
    wg.go([&] {
      gate.recv();
      seen.send(i);
    });
  }
  gate.close();
  print_seen("a lambda capturing [&] refers to i:", seen, 3);
  wg.wait();
  std::printf(
      "With [&], all of them read i after the loop had ended, when i was 3.\n"
      "Pass loop values as arguments to goro::go, or capture them by value.\n");
}

// ---------------------------------------------------------------------------------
// 3. sleep is not synchronisation
//
// "Start the workers, sleep a bit, read the results" seems to work — until one day a
// worker is slower than the guess. Sleeping only makes the race less likely; waiting
// for the workers (wait_group, a channel) makes the result certain, and takes exactly
// as long as the work.

// Starts three workers that take 10, 20 and `slowest` ms and then add one to
// `finished`. finished is atomic so that reading it too early is merely wrong, not a
// data race.
void start_three_workers(goro::wait_group& wg, std::atomic<int>& finished,
                         std::chrono::milliseconds slowest) {
  for (auto took : {10ms, 20ms, slowest}) {
    wg.go([&finished, took] {
      goro::sleep(took);
      finished.fetch_add(1, std::memory_order_relaxed);  // relaxed: only the count matters
    });
  }
}

void section_sleep_is_not_sync() {
  std::printf("Three workers take 10, 20 and 30 ms. How many have finished when main looks?\n");
  {
    goro::wait_group wg;
    std::atomic<int> finished{0};
    start_three_workers(wg, finished, 30ms);
    std::printf("  no wait at all:               %d of 3 finished   (wrong)\n", finished.load());
    wg.wait();  // tidy up before the next try
  }
  {
    goro::wait_group wg;
    std::atomic<int> finished{0};
    start_three_workers(wg, finished, 30ms);
    goro::sleep(100ms);
    std::printf("  goro::sleep(100ms) first:     %d of 3 finished   (looks fixed...)\n",
                finished.load());
    wg.wait();
  }
  {
    goro::wait_group wg;
    std::atomic<int> finished{0};
    start_three_workers(wg, finished, 250ms);  // a slow day: the last one takes 250 ms
    goro::sleep(100ms);
    std::printf("  the same on a slow day:       %d of 3 finished   (wrong again)\n",
                finished.load());
    wg.wait();
  }
  {
    goro::wait_group wg;
    std::atomic<int> finished{0};
    steady::time_point start = steady::now();
    start_three_workers(wg, finished, 30ms);
    wg.wait();  // returns when all three are done: no guess involved
    std::printf("  wait_group.wait():            %d of 3 finished   (always; after %ld ms)\n",
                finished.load(), ms_since(start));
  }
}

// ---------------------------------------------------------------------------------
// 4. a shared counter, four ways
//
// Four goroutines each add 1 to a shared counter 10,000 times. Without synchronisation
// updates are lost: two goroutines read the same value and both write back value + 1.
// Then three correct versions, with what each costs per increment.

constexpr int counter_goroutines = 4;
constexpr int counter_increments = 10'000;  // per goroutine
constexpr long counter_want = long{counter_goroutines} * counter_increments;

// Runs body() in counter_goroutines goroutines and waits for them all.
template <class Body>
void in_parallel(Body body) {
  goro::wait_group wg;
  for (int g = 0; g < counter_goroutines; ++g) wg.go(body);
  wg.wait();
}

// The unsynchronised `++counter`: read, do something else, write back. With a plain
// long this would be a data race, which is undefined behaviour in C++ (in Go, a bug the
// race detector finds); goro's TSAN build (-DGORO_SANITIZE=thread) reports such a race
// between two goroutines: see examples/racy_counter.cpp. Here the read and the write
// are separate relaxed atomic operations, so the program stays well defined while
// losing updates exactly the way the racy version does, and the yield between them
// lets the other goroutines in where a real race would need bad luck.
long count_unsynchronised() {
  std::atomic<long> counter{0};
  in_parallel([&] {
    for (int i = 0; i < counter_increments; ++i) {
      long seen = counter.load(std::memory_order_relaxed);  // relaxed: the race is the point
      goro::yield();                                        // others increment meanwhile...
      counter.store(seen + 1, std::memory_order_relaxed);   // ...and this overwrites them
    }
  });
  return counter.load();
}

long count_atomic() {
  std::atomic<long> counter{0};
  in_parallel([&] {
    for (int i = 0; i < counter_increments; ++i) {
      // relaxed: only the total matters, and wg.wait() orders it before the read below.
      counter.fetch_add(1, std::memory_order_relaxed);
    }
  });
  return counter.load();
}

long count_mutex() {
  goro::mutex mu;
  long counter = 0;  // guarded by mu
  in_parallel([&] {
    for (int i = 0; i < counter_increments; ++i) {
      std::lock_guard lock(mu);
      ++counter;
    }
  });
  return counter;
}

// Go's "share memory by communicating": one goroutine owns the counter, the others
// send it increments.
long count_channel() {
  auto increments = goro::make_chan<int>(64);
  long counter = 0;  // touched only by the owner goroutine until owner.wait() returns
  goro::wait_group owner;
  owner.go([&] {
    for (int delta : increments) counter += delta;
  });
  in_parallel([&] {
    for (int i = 0; i < counter_increments; ++i) increments.send(1);
  });
  increments.close();  // the owner's loop ends once it has taken every increment
  owner.wait();
  return counter;
}

// Runs one version, prints its result and its cost per increment.
void measure(const char* how, long (*count)()) {
  steady::time_point start = steady::now();
  long result = count();
  double ns =
      static_cast<double>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - start).count()) /
      static_cast<double>(counter_want);
  std::printf("  %-28s counter = %6ld (want %ld)  %8.1f ns per increment", how, result,
              counter_want, ns);
  if (result != counter_want) std::printf("   <- %ld updates lost", counter_want - result);
  std::printf("\n");
}

void section_shared_counter() {
  std::printf(
      "4 goroutines x %d increments of one counter. Look at the results first,\n"
      "then at the cost of each correct version.\n",
      counter_increments);
  measure("unsynchronised (+ a yield):", &count_unsynchronised);
  measure("std::atomic fetch_add:", &count_atomic);
  measure("goro::mutex:", &count_mutex);
  measure("a channel to one owner:", &count_channel);
  std::printf(
      "A real unsynchronised `++counter` on a plain integer is a data race, undefined\n"
      "behaviour in C++; build with -DGORO_SANITIZE=thread and ThreadSanitizer reports\n"
      "it (examples/racy_counter.cpp shows one, and these three fixes).\n");
}

// ---------------------------------------------------------------------------------
// 5. a goroutine leak
//
// A goroutine blocked on a channel that nobody will ever send on, or close, waits
// forever: it is leaked, with its stack and everything it refers to. Leaks do not
// crash; they pile up. goro shows them: the goroutine dump lists every goroutine and
// what it waits on, and debug::check_no_leaks() fails with the dump of those left
// over (use it at the end of every test: goro/testing.hpp).

// Handles requests until `requests` is closed. Nobody sends to it and, in the leaky
// version, nobody closes it.
void listener(goro::recv_chan<int> requests) {
  for (int r : requests) std::printf("handled request %d\n", r);
}

// The same, but it also stops when ctx is done: recv(ctx) selects on the channel and
// ctx.done(), and gives nullopt when either is closed.
void listener_with_context(goro::context ctx, goro::recv_chan<int> requests) {
  while (auto r = requests.recv(ctx)) std::printf("handled request %d\n", *r);
}

// The number of goroutines whose header in the level-2 dump reads `[<reason>`, e.g.
// "goroutine 7 [chan receive, 2 minutes]:".
int count_waiting_in(std::string_view reason) {
  std::string dump = goro::debug::goroutines(2);
  std::string header = "[" + std::string(reason);
  int count = 0;
  for (std::size_t at = 0; (at = dump.find(header, at)) != std::string::npos; at += header.size()) {
    ++count;
  }
  return count;
}

// Waits (a second at most) until n goroutines are parked in `reason`, so that the dump
// shows them all parked. For display only: nothing here depends on it.
void wait_until_waiting_in(std::string_view reason, int n) {
  for (int tries = 0; tries < 1000 && count_waiting_in(reason) < n; ++tries) goro::sleep(1ms);
}

// Prints check_no_leaks' verdict: its first line and the first goroutine's entry.
void print_leak_check(const goro::error& leaks) {
  if (!leaks) {
    std::printf("  check_no_leaks(): ok, nothing leaked\n");
    return;
  }
  std::string text = leaks.message();
  std::size_t first_entry_end = text.find("\n\n", text.find("\n\n") + 2);
  std::printf("  check_no_leaks() says:\n");
  print_indented(std::string_view(text).substr(0, first_entry_end), "    ");
  bool more = first_entry_end != std::string::npos &&
              text.find_first_not_of(" \n", first_entry_end) != std::string::npos;
  if (more) std::printf("    ... (and the others)\n");
}

void section_leak() {
  std::printf(
      "Three listeners wait on a channel nobody sends on. The level-1 dump groups\n"
      "goroutines with the same stack and counts them (\"3 @ ...\"), with what they\n"
      "wait on (\"# wait: chan receive\").\n");
  // What was alive before is not a leak. The first check knows the listeners will
  // never finish and gives them little time; the others allow the default second.
  const std::vector<std::uint64_t> before = goro::debug::goroutine_ids();
  auto requests = goro::make_chan<int>();
  for (int k = 0; k < 3; ++k) goro::go(listener, requests);
  wait_until_waiting_in("chan receive", 3);

  std::ostringstream dump;
  goro::debug::write_goroutines(dump, 1);
  print_indented(dump.str(), "  ");
  std::printf(
      "  Level 2 has one entry per goroutine, as check_no_leaks prints it:\n"
      "  %d goroutines in [chan receive].\n",
      count_waiting_in("chan receive"));
  print_leak_check(goro::debug::check_no_leaks({.baseline = before, .grace = 50ms}));

  std::printf("\nFix 1: close the channel when there will be no more requests.\n");
  requests.close();
  print_leak_check(goro::debug::check_no_leaks({.baseline = before}));

  std::printf("\nFix 2: give the listeners a context, and cancel it when you are done.\n");
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto more_requests = goro::make_chan<int>();
  for (int k = 0; k < 3; ++k) goro::go(listener_with_context, ctx, more_requests);
  cancel();
  print_leak_check(goro::debug::check_no_leaks({.baseline = before}));
}

// ---------------------------------------------------------------------------------
// 6. a worker pool stopped by a context
//
// Workers read jobs from a channel and send results; a producer would go on forever.
// Every blocking step also watches ctx.done() (recv(ctx) and send(ctx, v) are selects
// on the channel and ctx.done()), so cancelling the context stops every goroutine of
// the pool, wherever it is blocked.

void pool_worker(goro::context ctx, int me, goro::recv_chan<int> jobs,
                 goro::send_chan<int> results) {
  while (auto job = jobs.recv(ctx)) {
    goro::sleep(1ms);  // the "work"
    if (results.send(ctx, *job * *job)) break;  // the error: ctx is done
  }
  if (!ctx.err()) return;  // jobs closed: no more work
  std::printf("  worker %d: stopped (%s)\n", me, ctx.err().message().c_str());
}

void section_worker_pool() {
  std::printf("3 workers and an endless producer; main takes 10 results, then cancels.\n");
  goro::debug::leak_options before_the_pool{.baseline = goro::debug::goroutine_ids()};
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto jobs = goro::make_chan<int>(4);
  auto results = goro::make_chan<int>(4);
  goro::wait_group pool;
  for (int w = 1; w <= 3; ++w) {
    pool.go([ctx = ctx, w, jobs, results] { pool_worker(ctx, w, jobs, results); });
  }
  pool.go([ctx = ctx, jobs] {  // the producer
    for (int job = 0;; ++job) {
      if (jobs.send(ctx, job)) return;
    }
  });

  for (int k = 0; k < 10; ++k) results.recv();
  std::printf("  main: got 10 results; cancelling the context\n");
  cancel();
  pool.wait();  // every worker and the producer have returned
  // They may still be exiting: check_no_leaks gives them a moment (its grace period).
  if (goro::error leaks = goro::debug::check_no_leaks(before_the_pool)) {
    std::printf("  the pool left goroutines behind:\n%s\n", leaks.message().c_str());
  } else {
    std::printf("  check_no_leaks(): ok, the pool left nothing behind\n");
  }
}

// ---------------------------------------------------------------------------------
// 7. bounded fan-out: errgroup and semaphore
//
// Twenty pretend remote calls, at most four at a time, and call 5 fails. The first
// error cancels the context the calls share: calls in flight give up, and no new call
// starts. Once with errgroup + set_limit, once with a weighted goro::semaphore where
// every third call is "big" and takes two of the four units.

constexpr int fan_out_calls = 20;
constexpr int failing_call = 5;

// What the calls of one run did.
struct fan_out_stats {
  std::atomic<int> started{0};
  std::atomic<int> units_in_flight{0};
  std::atomic<int> peak_units{0};
  goro::mutex mu;
  std::vector<int> cancelled;  // guarded by mu: calls that saw the context cancelled

  void begin(int units) {
    started.fetch_add(1);
    int now = units_in_flight.fetch_add(units) + units;
    int peak = peak_units.load();
    while (now > peak && !peak_units.compare_exchange_weak(peak, now)) {
    }
  }
  void end(int units) { units_in_flight.fetch_sub(units); }
};

// A pretend remote call: takes 20 ms, or fails after 3 ms if it is call 5; gives up at
// once when ctx is done.
goro::error remote_call(const goro::context& ctx, int id, int units, fan_out_stats& stats) {
  stats.begin(units);
  goro::error err;
  auto takes = id == failing_call ? 3ms : 20ms;
  if (goro::select(goro::case_recv(ctx.done()), goro::case_recv(goro::after(takes))) == 0) {
    std::lock_guard lock(stats.mu);
    stats.cancelled.push_back(id);
    err = ctx.err();
  } else if (id == failing_call) {
    err = goro::make_error("call 5: server said 500");
  }
  stats.end(units);
  return err;
}

void print_fan_out(const char* how, const char* returned, const goro::error& err,
                   fan_out_stats& stats) {
  std::sort(stats.cancelled.begin(), stats.cancelled.end());
  std::printf("  %s: %s \"%s\"\n", how, returned, err ? err.message().c_str() : "ok");
  std::printf("    %d of %d calls started, at most %d units in flight at once\n",
              stats.started.load(), fan_out_calls, stats.peak_units.load());
  std::printf("    calls that saw the context cancelled (\"%s\"):",
              goro::canceled.message().c_str());
  for (int id : stats.cancelled) std::printf(" %d", id);
  std::printf("\n");
}

void fan_out_errgroup() {
  fan_out_stats stats;
  auto [g, ctx] = goro::errgroup::with_context(goro::background());
  g.set_limit(4);  // go() blocks while four calls are running
  for (int id = 0; id < fan_out_calls; ++id) {
    if (ctx.err()) break;  // a call failed: start no more
    g.go([ctx = ctx, id, &stats] { return remote_call(ctx, id, 1, stats); });
  }
  goro::error err = g.wait();
  print_fan_out("errgroup, set_limit(4)", "wait() returned", err, stats);
}

void fan_out_semaphore() {
  fan_out_stats stats;
  auto [ctx, cancel] = goro::with_cancel_cause(goro::background());
  goro::semaphore units(4);
  goro::wait_group wg;
  for (int id = 0; id < fan_out_calls; ++id) {
    int weight = id % 3 == 0 ? 2 : 1;
    if (units.acquire(ctx, weight)) break;  // the context ended first: start no more
    wg.go([&, ctx = ctx, cancel = cancel, id, weight] {
      if (goro::error err = remote_call(ctx, id, weight, stats)) cancel(err);
      units.release(weight);
    });
  }
  wg.wait();
  goro::error first = goro::cause(ctx);  // the error given to the first cancel(err)
  cancel(goro::error{});                 // done with the context either way
  print_fan_out("semaphore(4), weights 1 and 2", "cause(ctx) is", first, stats);
}

void section_bounded_fan_out() {
  std::printf(
      "20 calls, at most 4 units at once; call 5 fails after 3 ms, the others take\n"
      "20 ms. Look at who saw the context cancelled, and how many calls started.\n");
  fan_out_errgroup();
  fan_out_semaphore();
}

// ---------------------------------------------------------------------------------
// 8. the deadlock detector
//
// Two goroutines take two mutexes in opposite orders: each holds one and waits for the
// other's. Main waits for both. Nothing can ever wake any of them, and as Go does, goro
// notices, prints "fatal error: all goroutines are asleep - deadlock!" and the dump
// (who waits on what), and exits with status 2.

// Locks `first`, waits until the other goroutine holds its first lock too, then locks
// `second` — which the other goroutine holds while it waits for ours.
void lock_in_order(goro::mutex& first, goro::mutex& second, goro::wait_group& both_hold_one) {
  std::lock_guard hold_first(first);
  both_hold_one.done();
  both_hold_one.wait();
  std::lock_guard hold_second(second);
}

// Child demo: the deadlock itself. It never returns: goro ends the process.
int child_deadlock() {
  return goro::run([] {
    goro::mutex a, b;
    goro::wait_group both_hold_one, done;
    both_hold_one.add(2);
    done.go([&] { lock_in_order(a, b, both_hold_one); });
    done.go([&] { lock_in_order(b, a, both_hold_one); });
    std::printf("main: two goroutines lock a then b, and b then a; waiting for them\n");
    done.wait();
    std::printf("main: not reached\n");
  });
}

void section_deadlock() {
  std::printf(
      "The child deadlocks on purpose. Look at the fatal error, at each goroutine's\n"
      "wait reason in the dump, and at the exit status.\n");
  run_child("deadlock");
}

// ---------------------------------------------------------------------------------
// 9. closed channels
//
// Go's rules, and goro's: sending on a closed channel panics (goro throws
// goro::panic_error at the send); receiving from a closed channel first drains what is
// buffered, then returns nullopt at once (Go's zero value with ok == false), and a
// range-for over it ends. So the sender closes, never a receiver, and only once every
// send is done. A receiver whose sender never closes waits forever.

// Ranges over `words` until it is closed; counts what it got.
// Not inlined, so that dumps name it even in builds without debug info.
[[gnu::noinline]] void count_words(goro::recv_chan<std::string> words, std::atomic<int>& got) {
  for (const std::string& w : words) {
    (void)w;
    got.fetch_add(1);
  }
}

void section_closed_channels() {
  auto ch = goro::make_chan<int>(3);
  ch.send(1);
  ch.send(2);
  ch.close();
  try {
    ch.send(3);
  } catch (const goro::panic_error& e) {
    std::printf("  send on a closed channel throws goro::panic_error: \"%s\"\n", e.what());
  }
  std::printf("  receives after close:");
  for (int k = 0; k < 3; ++k) {
    std::optional<int> v = ch.recv();
    if (v) {
      std::printf(" %d", *v);
    } else {
      std::printf(" nullopt");
    }
  }
  std::printf("   (what was buffered, then nullopt at once, forever)\n");

  std::printf("\nA producer that forgets to close: its consumer's range-for never ends.\n");
  const std::vector<std::uint64_t> before = goro::debug::goroutine_ids();
  auto words = goro::make_chan<std::string>();
  std::atomic<int> got{0};
  auto finished = goro::make_chan<int>();  // closed by the consumer when it returns
  goro::go([words, &got, finished] {
    count_words(words, got);
    finished.close();
  });
  for (const char* w : {"alpha", "beta", "gamma"}) words.send(w);
  // ...and no close. Wait for the consumer a while, the way a test would.
  if (goro::select(goro::case_recv(finished), goro::case_recv(goro::after(100ms))) == 1) {
    std::printf("  consumer got %d words and still waits after 100 ms\n", got.load());
  }
  wait_until_waiting_in("chan receive", 1);
  print_leak_check(goro::debug::check_no_leaks({.baseline = before, .grace = 20ms}));
  std::printf("\nThe fix: the producer closes when it has sent everything.\n");
  words.close();
  (void)finished.recv();
  std::printf("  consumer got %d words and returned\n", got.load());

  std::printf(
      "\nSeveral producers: none of them may close (the others would panic). Close\n"
      "once all of them are done, from one place: a wait_group, then close.\n");
  auto results = goro::make_chan<int>(8);
  goro::wait_group producers;
  for (int p = 0; p < 4; ++p) {
    producers.go([results, p] {
      for (int k = 0; k < 5; ++k) results.send(p * 10 + k);
    });
  }
  goro::go([&producers, results] {
    producers.wait();
    results.close();  // every send is done: now nobody can panic
  });
  int n = 0;
  for (int r : results) {
    (void)r;
    ++n;
  }
  std::printf("  4 producers x 5 values: received %d, then the range-for ended\n", n);
  print_leak_check(goro::debug::check_no_leaks({.baseline = before}));
}

// ---------------------------------------------------------------------------------
// 10. the forgotten done()
//
// Go's most common goroutine leak: wg.Done() skipped on an error path, by an early
// return or by a recovered panic, so wg.Wait() never returns; the advice is `defer
// wg.Done()` first thing. In C++ the same happens with a manual add(1)/done() pair.
// goro's answers: wait_group::go(f), which calls done() however f ends, or a guard
// whose destructor calls it.

// Pretends to handle job `id`; job 2 fails.
goro::error handle(int id) {
  if (id == 2) return goro::make_error("job 2: bad input");
  goro::sleep(1ms);
  return {};
}

// Waits for wg at most `limit`; true if wait() returned.
bool wait_at_most(goro::wait_group& wg, std::chrono::milliseconds limit) {
  auto returned = goro::make_chan<int>();
  goro::go([&wg, returned] {
    wg.wait();
    returned.close();
  });
  if (goro::select(goro::case_recv(returned), goro::case_recv(goro::after(limit))) == 0) {
    return true;
  }
  return false;
}

void section_forgotten_done() {
  const std::vector<std::uint64_t> before = goro::debug::goroutine_ids();
  std::printf("Manual add(1)/done(), and an early return on the error path:\n");
  goro::wait_group wg;
  for (int id = 0; id < 4; ++id) {
    wg.add(1);
    goro::go([&wg, id] {
      if (goro::error err = handle(id)) {
        std::printf("  job %d failed: %s (returns early, without done())\n", id,
                    err.message().c_str());
        return;
      }
      wg.done();
    });
  }
  bool returned = wait_at_most(wg, 100ms);
  std::printf("  wg.wait() %s\n", returned ? "returned" : "has not returned after 100 ms");
  wait_until_waiting_in("sync.WaitGroup.Wait", 1);
  print_leak_check(goro::debug::check_no_leaks({.baseline = before, .grace = 20ms}));
  wg.done();  // let the waiter of this demo go
  (void)goro::debug::check_no_leaks({.baseline = before});

  std::printf("\nFix 1: wg.go(f) calls done() however f returns, early returns included\n"
              "(an exception escaping f is a goroutine panic, as in Go).\n");
  goro::wait_group fixed;
  for (int id = 0; id < 4; ++id) {
    fixed.go([id] {
      if (goro::error err = handle(id)) return;  // done() still happens
    });
  }
  std::printf("  wg.wait() %s\n", wait_at_most(fixed, 1000ms) ? "returned" : "did not return");
  fixed.wait();  // in any case, before `fixed` goes out of scope

  std::printf("\nFix 2: a guard made first thing, like Go's `defer wg.Done()`.\n");
  goro::wait_group guarded;
  for (int id = 0; id < 4; ++id) {
    guarded.add(1);
    goro::go([&guarded, id] {
      struct done_at_exit {
        goro::wait_group& wg;
        ~done_at_exit() { wg.done(); }
      } guard{guarded};
      try {
        if (id == 3) throw std::runtime_error("job 3: parse error");
        if (goro::error err = handle(id)) {
          std::printf("  job %d failed and returns early; the guard still calls done()\n", id);
          return;
        }
      } catch (const std::exception& e) {
        std::printf("  job %d threw \"%s\"; the guard still calls done()\n", id, e.what());
        return;
      }
    });
  }
  std::printf("  wg.wait() %s\n", wait_at_most(guarded, 1000ms) ? "returned" : "did not return");
  guarded.wait();
  print_leak_check(goro::debug::check_no_leaks({.baseline = before}));
}

// ---------------------------------------------------------------------------------
// 11. lock granularity
//
// A mutex held across the slow part of a request (I/O, a remote call: here a 1 ms
// sleep) makes every other goroutine wait for it: the requests run one at a time.
// Held only around the few lines that touch shared state, the slow parts overlap.
// For a map that is read far more than written, a rw_mutex lets readers in together.

constexpr int lock_goroutines = 8;
constexpr int lock_requests = 10;  // per goroutine

// Runs `request` lock_goroutines x lock_requests times; returns requests per second.
template <class Request>
double throughput(Request request) {
  auto start = steady::now();
  goro::wait_group wg;
  for (int g = 0; g < lock_goroutines; ++g) {
    wg.go([&request, g] {
      for (int r = 0; r < lock_requests; ++r) request(g, r);
    });
  }
  wg.wait();
  double secs = std::chrono::duration<double>(steady::now() - start).count();
  return lock_goroutines * lock_requests / secs;
}

void section_lock_granularity() {
  std::printf("%d goroutines x %d requests; each request waits 1 ms for \"the network\"\n"
              "and then updates a shared map.\n",
              lock_goroutines, lock_requests);
  goro::mutex mu;
  std::map<int, int> hits;  // guarded by mu
  double coarse = throughput([&](int g, int) {
    std::lock_guard lock(mu);  // the whole request
    goro::sleep(1ms);
    ++hits[g];
  });
  double fine = throughput([&](int g, int) {
    goro::sleep(1ms);  // the slow part, unlocked
    std::lock_guard lock(mu);
    ++hits[g];
  });
  std::printf("  mutex around the whole request:  %6.0f requests/s\n", coarse);
  std::printf("  mutex around the map update:     %6.0f requests/s  (%.1fx)\n", fine,
              fine / coarse);

  std::printf("Readers that hold the lock while they read for 1 ms (a lookup, then a\n"
              "slow use of what it found):\n");
  goro::rw_mutex rw;
  std::map<int, int> config{{1, 10}, {2, 20}};  // guarded by mu / rw
  double exclusive = throughput([&](int, int r) {
    std::lock_guard lock(mu);
    volatile int v = config[1 + r % 2];
    (void)v;
    goro::sleep(1ms);
  });
  double shared = throughput([&](int, int r) {
    std::shared_lock lock(rw);
    volatile int v = config.at(1 + r % 2);
    (void)v;
    goro::sleep(1ms);
  });
  std::printf("  goro::mutex:                     %6.0f reads/s\n", exclusive);
  std::printf("  goro::rw_mutex, shared lock:     %6.0f reads/s  (%.1fx)\n", shared,
              shared / exclusive);
}

// ---------------------------------------------------------------------------------
// 12. shared maps
//
// Go checks map accesses at run time, best effort, and usually stops a program that
// writes a map from two goroutines ("fatal error: concurrent map writes"). C++ does
// not: two goroutines
// writing one std::unordered_map is a data race, undefined behaviour, and an insert
// racing another can corrupt the table. ThreadSanitizer finds it: build with
// -DGORO_SANITIZE=thread and run examples/racy_map (CI does, and expects the report).
// The two fixes: a mutex around every access, or one goroutine that owns the map and
// is sent the updates.

void section_shared_maps() {
  std::printf(
      "Go usually stops at run time (best effort) with \"fatal error: concurrent map\n"
      "writes\"; C++ does not.\n"
      "Two goroutines writing one std::unordered_map is a data race (undefined\n"
      "behaviour): build with -DGORO_SANITIZE=thread and ThreadSanitizer reports\n"
      "`racy_map racy` as a data race between two goroutines (examples/racy_map.cpp).\n"
      "The two fixes, 4 goroutines x 5,000 words:\n");
  constexpr int goroutines = 4, words = 5000, keys = 8;
  auto word = [](int i, int g) { return "word" + std::to_string((i + g) % keys); };
  {
    goro::mutex mu;
    std::unordered_map<std::string, int> counts;  // guarded by mu
    goro::wait_group wg;
    for (int g = 0; g < goroutines; ++g) {
      wg.go([&, g] {
        for (int i = 0; i < words; ++i) {
          std::string w = word(i, g);
          std::lock_guard lock(mu);
          ++counts[w];
        }
      });
    }
    wg.wait();
    long total = 0;
    for (auto& [w, n] : counts) total += n;
    std::printf("  a goro::mutex around every access:  %zu words, %ld counted (want %d)\n",
                counts.size(), total, goroutines * words);
  }
  {
    std::unordered_map<std::string, int> counts;  // only the owner touches it
    auto updates = goro::make_chan<std::string>(64);
    goro::wait_group owner, senders;
    owner.go([&] {
      for (std::string& w : updates) ++counts[w];
    });
    for (int g = 0; g < goroutines; ++g) {
      senders.go([&, g] {
        for (int i = 0; i < words; ++i) updates.send(word(i, g));
      });
    }
    senders.wait();
    updates.close();
    owner.wait();  // after this, reading counts here is safe
    long total = 0;
    for (auto& [w, n] : counts) total += n;
    std::printf("  one owner goroutine, fed a channel: %zu words, %ld counted (want %d)\n",
                counts.size(), total, goroutines * words);
  }
}

// ---------------------------------------------------------------------------------
// 13. unbounded fan-out
//
// One goroutine per record is easy to write and fine for ten records; for 100,000 it
// means up to 100,000 stacks at once (and, for real work, 100,000 open sockets or files).
// The same work through an errgroup with set_limit(n) has at most n in flight.

#if defined(__SANITIZE_THREAD__)
constexpr int fan_records = 5000;  // ThreadSanitizer counts each goroutine as a thread (8128 at most)
#else
constexpr int fan_records = 100'000;
#endif
constexpr int fan_limit = 1000;

// Handles one record: 2 ms of waiting (I/O, in real life).
void handle_record(std::atomic<long>& done) {
  goro::sleep(2ms);
  done.fetch_add(1);
}

// The process's resident memory (kB) from /proc/self/status: "VmRSS" now, "VmHWM" its
// peak since the last reset_peak_rss().
long status_kib(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  std::size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') kib = std::atol(line + len + 1);
  }
  std::fclose(f);
  return kib;
}

// Resets VmHWM to the current RSS (Linux's clear_refs "5").
void reset_peak_rss() {
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

// Runs `work` while a sampler notes the peak number of goroutines; the peak of the
// process's memory comes from the kernel's high-water mark.
template <class Work>
void with_peaks(const char* how, Work work) {
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> peak_goroutines{0};
  goro::wait_group sampler;
  sampler.go([&] {
    while (!stop) {
      std::size_t n = goro::num_goroutine();
      if (n > peak_goroutines) peak_goroutines = n;
      goro::sleep(1ms);
    }
  });
  reset_peak_rss();
  long rss_before = status_kib("VmRSS");
  auto start = steady::now();
  long records = work();
  double ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
  long grew = std::max(0L, status_kib("VmHWM") - rss_before);
  stop = true;
  sampler.wait();
  std::printf("  %-26s %6ld records in %5.0f ms; peak %6zu goroutines, memory +%.0f MB\n",
              how, records, ms, peak_goroutines.load(), static_cast<double>(grew) / 1024);
}

void section_unbounded_fan_out() {
  std::printf("%d records, each waiting 2 ms:\n", fan_records);
  with_peaks("errgroup, set_limit(1000):", [] {
    std::atomic<long> done{0};
    goro::errgroup g;
    g.set_limit(fan_limit);  // go() waits while 1000 are running
    for (int r = 0; r < fan_records; ++r) {
      g.go([&done] {
        handle_record(done);
        return goro::error{};
      });
    }
    (void)g.wait();
    return done.load();
  });
  with_peaks("one goroutine per record:", [] {
    std::atomic<long> done{0};
    goro::wait_group wg;
    for (int r = 0; r < fan_records; ++r) wg.go([&done] { handle_record(done); });
    wg.wait();
    return done.load();
  });
  std::printf(
      "With real work, each of those goroutines would also hold a socket or a file:\n"
      "the limit bounds what the fan-out holds at once, for the cost of some latency.\n");
}

// ---------------------------------------------------------------------------------
// 14. finding these bugs first: schedule exploration and virtual time
//
// The leak of section 5 — a goroutine blocked on a channel nobody will serve — as it
// hides behind a cancellation (section 6's pattern): a caller asks a worker for a
// result and gives up when its context is cancelled; the worker answers on an
// unbuffered channel. When the cancel wins, the worker's send blocks forever. Plain
// runs almost never show it; goro::testing::explore runs the code under many seeded
// schedules, finds the one that leaks, and prints the seed that replays it. The
// failing run's blocked goroutine stays where it is (it is the evidence explore
// reports): the one section whose goroutines outlive it.
// goro::synctest runs code on a fake clock: a one-hour timeout takes microseconds.

// The bug: with buffer 0, a worker that answers after the cancel leaks.
void fetch_with_cancel(std::size_t buffer) {
  auto results = goro::make_chan<int>(buffer);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::go([cancel = cancel] { cancel(); });  // the caller gives up
  goro::go([results] { results.send(42); });  // the worker answers
  (void)results.recv(ctx);
  cancel();
}

void section_testing_tools() {
  auto body = [] { fetch_with_cancel(0); };
  auto r = goro::testing::explore(body, {.iterations = 1000, .seed = 1});
  if (r.failed) {
    std::printf("  explore: failed in run %d of up to 1000; seed %llu replays it\n",
                r.iteration + 1, static_cast<unsigned long long>(r.seed));
    // The report's first lines: what failed, and the goroutine left blocked.
    std::size_t cut = 0;
    for (int line = 0; line < 4 && cut != std::string::npos; ++line) cut = r.report.find('\n', cut + 1);
    print_indented(std::string_view(r.report).substr(0, cut), "    ");
    auto replay = goro::testing::explore(body, {.iterations = 1, .seed = r.seed});
    std::printf("  the seed alone, again: %s\n",
                replay.failed && replay.schedule == r.schedule ? "fails the same way" : "passes");
  } else {
    std::printf("  explore: no failure found\n");
  }
  auto fixed = goro::testing::explore([] { fetch_with_cancel(1); }, {.iterations = 1000, .seed = 1});
  std::printf("  with a buffer of one: %s in %d runs\n",
              fixed.failed ? "still fails" : "no failure", fixed.iteration);

  auto started = steady::now();
  std::string fake;
  goro::synctest::run([&fake] {
    auto t0 = goro::now();
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
    (void)ctx.done().recv();  // the timeout: everything else is blocked, so time jumps
    fake = std::to_string(
               std::chrono::duration_cast<std::chrono::minutes>(goro::now() - t0).count()) +
           " min of fake time, \"" + ctx.err().message() + "\"";
    cancel();
  });
  double real_ms = std::chrono::duration<double, std::milli>(steady::now() - started).count();
  std::printf("  synctest: a one-hour timeout fired after %s, in %.2f ms of real time\n",
              fake.c_str(), real_ms);
}

// ---------------------------------------------------------------------------------
// The tour

struct section {
  const char* title;
  void (*run)();
};

constexpr section sections[] = {
    {"goroutines die when main returns", &section_main_returns},
    {"the loop-variable capture pitfall", &section_loop_variable},
    {"sleep is not synchronisation", &section_sleep_is_not_sync},
    {"a shared counter, four ways", &section_shared_counter},
    {"a goroutine leak", &section_leak},
    {"a worker pool stopped by a context", &section_worker_pool},
    {"bounded fan-out: errgroup and semaphore", &section_bounded_fan_out},
    {"the deadlock detector", &section_deadlock},
    {"closed channels", &section_closed_channels},
    {"the forgotten done()", &section_forgotten_done},
    {"lock granularity", &section_lock_granularity},
    {"shared maps", &section_shared_maps},
    {"unbounded fan-out", &section_unbounded_fan_out},
    {"finding them first: schedule exploration and virtual time", &section_testing_tools},
};
constexpr int section_count = static_cast<int>(std::size(sections));

// The demos that run in a child process (see run_child).
int run_child_demo(std::string_view demo) {
  // Line-buffered, so that stdout and stderr reach the parent in the order written.
  std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
  if (demo == "main-returns-early") return child_main_returns_early();
  if (demo == "main-waits") return child_main_waits();
  if (demo == "deadlock") return child_deadlock();
  std::fprintf(stderr, "tour: unknown child demo '%.*s'\n", static_cast<int>(demo.size()),
               demo.data());
  return 2;
}

int usage() {
  std::fprintf(stderr,
               "usage: tour [N]\n  with no argument, runs every section in order;\n"
               "  with N, only section N:\n");
  for (int n = 1; n <= section_count; ++n) {
    std::fprintf(stderr, "    %d  %s\n", n, sections[n - 1].title);
  }
  return 2;
}

// The section number in `arg`, or 0 if it is not one.
int parse_section(std::string_view arg) {
  if (arg.empty() || arg.size() > 2 || arg[0] == '0') return 0;
  int n = 0;
  for (char c : arg) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n <= section_count ? n : 0;
}

}  // namespace

// Under ThreadSanitizer (-DGORO_SANITIZE=thread) a process sleeps for a second before it
// exits (TSAN's atexit_sleep_ms), to catch races in exit handlers. In section 1 the
// abandoned goroutines would use that second to finish their work, which a Go program
// never lets them do, and every child process would cost a second. Unused by other builds.
extern "C" const char* __tsan_default_options() { return "atexit_sleep_ms=0"; }

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--child") return run_child_demo(argv[2]);
  int only = 0;  // 0: every section
  if (argc > 2 || (argc == 2 && (only = parse_section(argv[1])) == 0)) return usage();

  return goro::run([only] {
    for (int n = 1; n <= section_count; ++n) {
      if (only != 0 && n != only) continue;
      std::printf("\n== %d. %s ==\n", n, sections[n - 1].title);
      sections[n - 1].run();
    }
  });
}
