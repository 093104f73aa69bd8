// stress_test — randomised interleavings of goroutines and plain threads, bounded in
// time; the seed is printed (GORO_TEST_SEED reproduces a run).
#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class stress : public procs_test {};
GORO_PROCS_SUITE(stress);

// A token passed around a ring whose nodes are goroutines and plain threads; each
// hop wakes the next node through its wait_group. Every hop must happen exactly once.
TEST_P(stress, token_ring_of_goroutines_and_threads) {
  std::uint64_t seed = test_seed();
  constexpr int nodes = 12;
  constexpr int laps = 300;
  std::vector<std::unique_ptr<goro::wait_group>> turn;
  for (int i = 0; i < nodes; ++i) {
    turn.push_back(std::make_unique<goro::wait_group>());
    turn.back()->add(1);
  }
  std::atomic<long> hops{0};
  goro::wait_group finished;
  std::vector<std::thread> threads;
  auto node = [&](int i) {
    std::mt19937_64 rng(seed + static_cast<std::uint64_t>(i));
    for (int lap = 0; lap < laps; ++lap) {
      turn[static_cast<std::size_t>(i)]->wait();
      turn[static_cast<std::size_t>(i)]->add(1);  // re-arm: the token is here, nobody else signals
      hops.fetch_add(1);
      switch (rng() % 4) {
        case 0: goro::yield(); break;
        case 1: goro::sleep(std::chrono::microseconds(rng() % 100)); break;
        default: break;
      }
      turn[static_cast<std::size_t>((i + 1) % nodes)]->done();
    }
    finished.done();
  };
  finished.add(nodes);
  for (int i = 0; i < nodes; ++i) {
    if (i % 4 == 3) {
      threads.emplace_back(node, i);
    } else {
      goro::go(node, i);
    }
  }
  turn[0]->done();  // start the token
  finished.wait();
  for (auto& t : threads) t.join();
  EXPECT_EQ(hops.load(), static_cast<long>(nodes) * laps) << "seed " << seed;
  turn[0]->wait();  // the last hop handed the token back to node 0
  // Every other node re-armed its turn after its last wait: disarm before the
  // wait_groups go (one destroyed with a non-zero counter is a fatal error).
  for (int i = 1; i < nodes; ++i) turn[static_cast<std::size_t>(i)]->done();
}

// Goroutines that randomly yield, sleep, spawn children and wait for them, for a
// bounded time. Every spawned goroutine must run exactly once.
TEST_P(stress, random_spawn_yield_sleep_wait) {
  std::uint64_t seed = test_seed();
  auto until = steady::now() + 1500ms;
  std::atomic<long> spawned{0}, ran{0};
  goro::wait_group all;
  for (int w = 0; w < 16; ++w) {
    all.go([&, w] {
      std::mt19937_64 rng(seed * 31 + static_cast<std::uint64_t>(w));
      while (steady::now() < until) {
        switch (rng() % 5) {
          case 0: goro::yield(); break;
          case 1: goro::sleep(std::chrono::microseconds(rng() % 200)); break;
          case 2: {
            goro::wait_group children;
            int n = static_cast<int>(rng() % 20);
            for (int c = 0; c < n; ++c) {
              spawned.fetch_add(1);
              children.go([&] {
                if (ran.fetch_add(1) % 3 == 0) goro::yield();
                ran.fetch_add(0);
              });
            }
            children.wait();
            break;
          }
          default: {
            volatile int x = 0;
            for (int i = 0; i < static_cast<int>(rng() % 1000); ++i) x = x + i;
            break;
          }
        }
      }
    });
  }
  all.wait();
  EXPECT_EQ(ran.load(), spawned.load()) << "seed " << seed;
  EXPECT_GT(spawned.load(), 0) << "seed " << seed;
}

}  // namespace
