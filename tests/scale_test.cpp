// scale_test — a million goroutines: spawned and joined, and parked all at once
// (SPEC §4 scale: on a default vm.max_map_count of 65530). Release builds only.
#include <atomic>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

constexpr int million = 1'000'000;

TEST(scale, a_million_goroutines_spawned_and_joined) {
  goro::wait_group wg;
  std::atomic<long> ran{0};
  wg.add(million);
  for (int i = 0; i < million; ++i) {
    goro::go([&] {
      ran.fetch_add(1, std::memory_order_relaxed);
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(ran.load(), million);
  EXPECT_TRUE(eventually([] { return goro::num_goroutine() == 0; }));
}

TEST(scale, a_million_goroutines_parked_at_once_then_released) {
  goro::wait_group gate, started, finished;
  gate.add(1);
  started.add(million);
  finished.add(million);
  for (int i = 0; i < million; ++i) {
    goro::go([&] {
      started.done();
      gate.wait();
      finished.done();
    });
  }
  started.wait();
  EXPECT_GE(goro::num_goroutine(), static_cast<std::size_t>(million));
  gate.done();
  finished.wait();
  EXPECT_TRUE(eventually([] { return goro::num_goroutine() == 0; }));
}

}  // namespace
