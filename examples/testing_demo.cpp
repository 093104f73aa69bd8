// testing_demo — testing concurrent code: a one-hour timeout checked in microseconds
// with synctest, and an ordering bug found by explore, replayed from its seed, then
// shown fixed. Exits non-zero if any of that does not hold.
#include <goro/explore.hpp>
#include <goro/goro.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

// Asks a worker for a result but gives up when ctx is cancelled. The bug: with an
// unbuffered result channel, a worker that finishes after the cancel blocks forever.
void fetch(std::size_t buffer) {
  auto results = goro::make_chan<int>(buffer);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::go([cancel = cancel] { cancel(); });  // the caller gives up
  goro::go([results] { results.send(42); });  // the worker answers
  (void)results.recv(ctx);
  cancel();
}

int main() {
  // 1. Virtual time: the deadline passes when everything else is blocked.
  auto started = std::chrono::steady_clock::now();
  goro::synctest::run([] {
    auto t0 = goro::now();
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
    goro::sleep(59min);
    goro::synctest::wait();
    std::printf("after 59 min: %s\n", ctx.err() ? ctx.err().message().c_str() : "not done");
    (void)ctx.done().recv();
    std::printf("done after %lld min of fake time: %s\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::minutes>(goro::now() - t0).count()),
                ctx.err().message().c_str());
    cancel();
  });
  auto real = std::chrono::steady_clock::now() - started;
  std::printf("real time: %s\n", real < 1s ? "under a second" : "over a second!");

  // 2. Schedule exploration: 1000 seeded interleavings of fetch().
  auto body = [] { fetch(0); };
  auto r = goro::testing::explore(body, {.iterations = 1000, .seed = 1});
  if (!r.failed) return 1;
  std::printf("\n%s", r.report.c_str());
  auto replay = goro::testing::explore(body, {.iterations = 1, .seed = r.seed});
  std::printf("\nreplayed seed %llu alone: %s, same schedule: %s\n",
              static_cast<unsigned long long>(r.seed), replay.failed ? "fails" : "passes",
              replay.schedule == r.schedule ? "yes" : "no");
  auto fixed = goro::testing::explore([] { fetch(1); }, {.iterations = 1000, .seed = 1});
  std::printf("with a buffer of one: %d runs, %s\n", fixed.iteration,
              fixed.failed ? "failed" : "all passed");
  return replay.failed && replay.schedule == r.schedule && !fixed.failed && real < 1s ? 0 : 1;
}
