// bounded_calls — "call an API for 10,000 records with at most 64 calls in flight",
// twice: with errgroup + set_limit, and with a weighted semaphore. The first failure
// cancels the calls that have not started.
#include <goro/goro.hpp>

#include <atomic>
#include <cstdio>

using namespace std::chrono_literals;

std::atomic<int> in_flight{0}, peak{0}, calls{0};

// A pretend remote call: takes a little while, honours ctx, fails for record 7,777.
goro::error call_api(const goro::context& ctx, int record) {
  int now = in_flight.fetch_add(1) + 1;
  int seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
  calls.fetch_add(1);
  goro::error err;
  std::optional<goro::time_point> fired;
  if (goro::select(goro::case_recv(ctx.done()), goro::case_recv(goro::after(200us), fired)) == 0) {
    err = ctx.err();
  } else if (record == 7777) {
    err = goro::make_error("record 7777: server said 500");
  }
  in_flight.fetch_sub(1);
  return err;
}

goro::error with_errgroup(const goro::context& parent) {
  auto [g, ctx] = goro::errgroup::with_context(parent);
  g.set_limit(64);
  for (int r = 0; r < 10'000; ++r) {
    if (ctx.err()) break;  // stop starting calls once something failed
    g.go([ctx = ctx, r] { return call_api(ctx, r); });
  }
  return g.wait();
}

goro::error with_semaphore(const goro::context& parent) {
  auto [ctx, cancel] = goro::with_cancel_cause(parent);
  goro::semaphore sem(64);
  goro::wait_group wg;
  for (int r = 0; r < 10'000; ++r) {
    if (goro::error err = sem.acquire(ctx, 1)) break;  // cancelled: stop starting calls
    wg.go([&, ctx = ctx, r] {
      if (goro::error err = call_api(ctx, r)) cancel(err);
      sem.release(1);
    });
  }
  wg.wait();
  goro::error first = goro::cause(ctx);
  cancel(goro::error{});
  return first;
}

int main() {
  return goro::run([] {
    for (auto [name, fn] :
         {std::pair{"errgroup", &with_errgroup}, std::pair{"semaphore", &with_semaphore}}) {
      peak = 0;
      calls = 0;
      goro::error err = fn(goro::background());
      std::printf("%-9s: %d calls, at most %d in flight, result: %s\n", name, calls.load(),
                  peak.load(), err ? err.message().c_str() : "ok");
    }
  });
}
