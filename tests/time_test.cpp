// time_test — goro::sleep: duration bounds, zero/negative, goroutines and threads, scale.
#include <atomic>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class time_sleep : public procs_test {};
GORO_PROCS_SUITE(time_sleep);

TEST_P(time_sleep, goroutine_sleeps_at_least_the_duration) {
  goro::wait_group wg;
  std::atomic<double> took{0};
  wg.go([&] {
    auto t0 = steady::now();
    goro::sleep(30ms);
    took = ms_since(t0);
  });
  wg.wait();
  EXPECT_GE(took.load(), 30.0);
  EXPECT_LT(took.load(), 2000.0);
}

TEST_P(time_sleep, zero_and_negative_durations_return_at_once) {
  goro::wait_group wg;
  std::atomic<double> took{-1};
  wg.go([&] {
    auto t0 = steady::now();
    goro::sleep(0ms);
    goro::sleep(-5s);
    goro::sleep(std::chrono::nanoseconds(-1));
    took = ms_since(t0);
  });
  wg.wait();
  EXPECT_LT(took.load(), 100.0);
  auto t0 = steady::now();
  goro::sleep(-1h);  // plain thread
  EXPECT_LT(ms_since(t0), 100.0);
}

TEST_P(time_sleep, plain_thread_sleeps) {
  auto t0 = steady::now();
  goro::sleep(15ms);
  EXPECT_GE(ms_since(t0), 15.0);
}

TEST_P(time_sleep, sleepers_do_not_hold_their_processor) {
  // While a goroutine sleeps, the others on the same processors keep running.
  std::atomic<bool> stop{false};
  std::atomic<long> spins{0};
  goro::wait_group wg;
  wg.go([&] {
    goro::sleep(100ms);
    stop = true;
  });
  wg.go([&] {
    while (!stop.load()) {
      spins.fetch_add(1);
      goro::yield();
    }
  });
  wg.wait();
  EXPECT_GT(spins.load(), 100);
}

TEST_P(time_sleep, ten_thousand_sleepers_wake_together) {
  constexpr int n = 10'000;
  goro::wait_group wg;
  std::atomic<int> woke{0};
  auto t0 = steady::now();
  for (int i = 0; i < n; ++i) {
    wg.go([&] {
      goro::sleep(50ms);
      woke.fetch_add(1);
    });
  }
  wg.wait();
  EXPECT_EQ(woke.load(), n);
  EXPECT_GE(ms_since(t0), 50.0);
  // One after another they would take 500 s; sanitizer builds are slow, so the bound
  // is loose.
  EXPECT_LT(ms_since(t0), 60000.0) << "sleeps ran one after another";
}

TEST_P(time_sleep, sleeps_end_in_deadline_order) {
  goro::wait_group wg;
  std::atomic<int> order{0};
  std::atomic<int> rank[3] = {-1, -1, -1};
  const std::chrono::milliseconds delays[3] = {90ms, 10ms, 50ms};
  for (int i = 0; i < 3; ++i) {
    wg.go([&, i] {
      goro::sleep(delays[i]);
      rank[i] = order.fetch_add(1);
    });
  }
  wg.wait();
  EXPECT_EQ(rank[1].load(), 0);
  EXPECT_EQ(rank[2].load(), 1);
  EXPECT_EQ(rank[0].load(), 2);
}

}  // namespace
