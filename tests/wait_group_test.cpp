// wait_group_test — goro::wait_group from goroutines and plain threads, in every mix.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class wait_group : public procs_test {};
GORO_PROCS_SUITE(wait_group);

TEST_P(wait_group, wait_on_zero_returns_at_once) {
  goro::wait_group wg;
  wg.wait();
  wg.add(2);
  wg.add(-2);
  wg.wait();
}

TEST_P(wait_group, thread_waits_for_goroutines) {
  goro::wait_group wg;
  std::atomic<int> done{0};
  wg.add(100);
  for (int i = 0; i < 100; ++i) {
    goro::go([&] {
      goro::sleep(1ms);
      done.fetch_add(1);
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(done.load(), 100);
}

TEST_P(wait_group, goroutine_waits_for_threads) {
  goro::wait_group wg, finished;
  std::atomic<int> seen{-1};
  std::atomic<int> done{0};
  wg.add(4);
  finished.add(1);
  goro::go([&] {
    wg.wait();
    seen = done.load();
    finished.done();
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      std::this_thread::sleep_for(5ms);
      done.fetch_add(1);
      wg.done();
    });
  }
  finished.wait();
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.load(), 4);
}

TEST_P(wait_group, releases_every_waiter_goroutines_and_threads) {
  goro::wait_group gate, all_out;
  gate.add(1);
  constexpr int goroutines = 50, threads = 3;
  all_out.add(goroutines + threads);
  std::atomic<int> released{0};
  for (int i = 0; i < goroutines; ++i) {
    goro::go([&] {
      gate.wait();
      released.fetch_add(1);
      all_out.done();
    });
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&] {
      gate.wait();
      released.fetch_add(1);
      all_out.done();
    });
  }
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(released.load(), 0) << "a waiter returned before the counter reached zero";
  gate.done();
  all_out.wait();
  for (auto& t : ts) t.join();
  EXPECT_EQ(released.load(), goroutines + threads);
}

TEST_P(wait_group, negative_counter_is_a_panic_and_leaves_the_counter) {
  goro::wait_group wg;
  try {
    wg.done();
    FAIL() << "no panic";
  } catch (const goro::panic_error& e) {
    EXPECT_EQ(std::string(e.what()), "sync: negative WaitGroup counter");
  }
  wg.add(1);
  EXPECT_THROW(wg.add(-2), goro::panic_error);
  wg.done();  // the counter is still 1, so this brings it to zero
  wg.wait();
}

TEST_P(wait_group, negative_counter_panics_inside_a_goroutine_too) {
  goro::wait_group wg, finished;
  std::atomic<bool> threw{false};
  finished.add(1);
  goro::go([&] {
    try {
      wg.add(-1);
    } catch (const goro::panic_error&) {
      threw = true;
    }
    finished.done();
  });
  finished.wait();
  EXPECT_TRUE(threw);
}

TEST_P(wait_group, is_reusable_after_wait) {
  goro::wait_group wg;
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> n{0};
    for (int i = 0; i < 20; ++i) {
      wg.go([&] {
        goro::yield();
        n.fetch_add(1);
      });
    }
    wg.wait();
    ASSERT_EQ(n.load(), 20) << "round " << round;
  }
}

TEST_P(wait_group, go_runs_and_counts_down_even_when_nested) {
  goro::wait_group outer;
  std::atomic<int> leaves{0};
  for (int i = 0; i < 10; ++i) {
    outer.go([&] {
      goro::wait_group inner;
      for (int j = 0; j < 10; ++j) inner.go([&] { leaves.fetch_add(1); });
      inner.wait();
    });
  }
  outer.wait();
  EXPECT_EQ(leaves.load(), 100);
}

// wg.go(f, args...): the arguments are copied per goroutine (each gets its own i), a
// move-only callable and argument are moved in, and both are destroyed before wait()
// returns (nothing of them outlives the wait).
TEST_P(wait_group, go_takes_arguments_and_destroys_them_before_wait_returns) {
  constexpr int n = 50;
  std::vector<std::atomic<int>> seen(n);
  auto alive = std::make_shared<int>(0);
  {
    goro::wait_group wg;
    for (int i = 0; i < n; ++i) {
      wg.go([&seen](int v, std::shared_ptr<int> keep) { seen[static_cast<std::size_t>(v)]++; (void)keep; },
            i, alive);
    }
    wg.go([p = std::make_unique<int>(1), keep = alive] { (void)p; (void)keep; });
    goro::spawn_options opts;
    opts.name = "named";
    wg.go(opts, [](std::unique_ptr<int> p) { EXPECT_EQ(*p, 3); }, std::make_unique<int>(3));
    wg.wait();
    EXPECT_EQ(alive.use_count(), 1) << "a callable or an argument outlived wait()";
  }
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)].load(), 1) << i;
}

TEST_P(wait_group, wait_blocks_until_the_last_done) {
  goro::wait_group wg;
  wg.add(1);
  std::atomic<bool> finished{false};
  goro::wait_group observer;
  observer.add(1);
  goro::go([&] {
    wg.wait();
    finished = true;
    observer.done();
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(finished.load());
  wg.done();
  observer.wait();
  EXPECT_TRUE(finished.load());
}

}  // namespace

namespace {

// One processor, and the goroutine that brings the counter to zero keeps it: the
// released waiter runs only after the wait_group has been reused.
TEST(wait_group_reuse, reuse_before_wait_has_returned_panics_in_wait) {
  int before = goro::max_procs();
  goro::set_max_procs(1);
  goro::wait_group wg, finished;
  std::string message;  // written by the waiter before finished.done()
  std::atomic<bool> waiting{false};
  wg.add(1);
  finished.add(1);
  goro::go([&] {
    waiting.store(true);
    try {
      wg.wait();
    } catch (const goro::panic_error& e) {
      message = e.what();
    }
    finished.done();
  });
  ASSERT_TRUE(eventually([&] { return waiting.load(); }));
  std::this_thread::sleep_for(20ms);  // the waiter parks
  finished.add(1);
  goro::go([&] {
    wg.done();   // releases the waiter, which cannot run yet
    wg.add(1);   // reuse before its wait has returned
    finished.done();
  });
  finished.wait();
  EXPECT_EQ(message, "sync: WaitGroup is reused before previous Wait has returned");
  wg.done();
  goro::set_max_procs(before);
}

}  // namespace
