// semaphore_test — goro::semaphore: weights, FIFO, try_acquire, misuse.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class semaphore : public procs_test {};
GORO_PROCS_SUITE(semaphore);

TEST_P(semaphore, bounds_concurrency_by_weight) {
  goro::semaphore sem(4);
  std::atomic<int> in{0}, peak{0};
  goro::wait_group wg;
  for (int i = 0; i < 100; ++i) {
    wg.go([&, i] {
      int w = 1 + i % 2;
      sem.acquire(w);
      int now = in.fetch_add(w) + w;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      goro::sleep(100us);
      in.fetch_sub(w);
      sem.release(w);
    });
  }
  wg.wait();
  EXPECT_LE(peak.load(), 4);
  EXPECT_GE(peak.load(), 2);
}

TEST_P(semaphore, a_large_request_is_not_overtaken_by_small_ones) {
  goro::semaphore sem(10);
  sem.acquire(5);  // 5 free
  std::atomic<int> order{0};
  std::atomic<int> big_rank{-1}, small_rank{-1};
  goro::wait_group wg;
  wg.go([&] {
    sem.acquire(10);  // waits for all 10
    big_rank = order.fetch_add(1);
    sem.release(10);
  });
  // Until it waits (a fixed 20 ms sleep was too short under qemu with 4 processors on
  // 2 cores: the goroutine had not run yet, and try_acquire rightly succeeded).
  auto waiters = [] {
    std::string dump = goro::debug::goroutines(2);
    int n = 0;
    for (auto at = dump.find("[semacquire"); at != std::string::npos;
         at = dump.find("[semacquire", at + 1)) {
      ++n;
    }
    return n;
  };
  if (!eventually([&] { return waiters() == 1; })) {
    sem.release(5);
    wg.wait();
    FAIL() << "the large request never waited";
  }
  if (sem.try_acquire(1)) {
    sem.release(1);
    sem.release(5);
    wg.wait();
    FAIL() << "try_acquire jumped the queue";
  }
  wg.go([&] {
    sem.acquire(1);  // would fit now, but the 10 is first in line
    small_rank = order.fetch_add(1);
    sem.release(1);
  });
  EXPECT_TRUE(eventually([&] { return waiters() == 2; })) << goro::debug::goroutines(2);
  EXPECT_EQ(small_rank.load(), -1);
  sem.release(5);
  wg.wait();
  EXPECT_EQ(big_rank.load(), 0);
  EXPECT_EQ(small_rank.load(), 1);
}

TEST_P(semaphore, try_acquire_never_blocks) {
  goro::semaphore sem(2);
  EXPECT_TRUE(sem.try_acquire(2));
  EXPECT_FALSE(sem.try_acquire(1));
  sem.release(1);
  EXPECT_TRUE(sem.try_acquire(1));
  EXPECT_TRUE(sem.try_acquire(0));
  sem.release(2);
}

TEST_P(semaphore, misuse_panics_with_a_message) {
  EXPECT_THROW(goro::semaphore(-1), goro::panic_error);
  goro::semaphore sem(3);
  EXPECT_THROW(sem.acquire(-1), goro::panic_error);
  EXPECT_THROW(sem.release(-1), goro::panic_error);
  try {
    sem.acquire(4);
    FAIL() << "acquire beyond the size returned";
  } catch (const goro::panic_error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the size"), std::string::npos);
  }
  sem.acquire(1);
  try {
    sem.release(2);
    FAIL() << "over-release accepted";
  } catch (const goro::panic_error& e) {
    EXPECT_NE(std::string(e.what()).find("released more than held"), std::string::npos);
  }
  sem.release(1);  // the count was left unchanged by the failed release
  EXPECT_TRUE(sem.try_acquire(3));
  sem.release(3);
}

TEST_P(semaphore, acquire_with_a_done_context_fails_even_when_units_are_free) {
  goro::semaphore sem(2);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  cancel();
  EXPECT_EQ(sem.acquire(ctx, 1), goro::canceled);
  EXPECT_TRUE(sem.try_acquire(2)) << "the failed acquire kept units";
  sem.release(2);
}

TEST_P(semaphore, acquire_beyond_the_size_waits_for_the_context) {
  goro::semaphore sem(3);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  std::atomic<bool> returned{false};
  goro::error got;  // written by the goroutine before `returned`
  goro::wait_group wg;
  wg.go([&, ctx = ctx] {
    got = sem.acquire(ctx, 4);
    returned.store(true);
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(returned.load()) << "a request beyond the size returned before ctx was done";
  // The doomed request is not queued: others are served meanwhile.
  EXPECT_TRUE(sem.try_acquire(3));
  sem.release(3);
  EXPECT_EQ(sem.acquire(ctx, 1), goro::error{});
  sem.release(1);
  cancel();
  wg.wait();
  EXPECT_EQ(got, goro::canceled);
  EXPECT_TRUE(sem.try_acquire(3));
  sem.release(3);
}

// One processor, and the releasing goroutine keeps it: the waiter is granted its unit
// and runs only after its context has been cancelled too.
TEST(semaphore_race, a_grant_that_races_with_cancellation_is_given_back) {
  int before = goro::max_procs();
  goro::set_max_procs(1);
  goro::semaphore sem(1);
  sem.acquire(1);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::error got;
  std::atomic<bool> queued{false};
  goro::wait_group wg;
  wg.go([&, ctx = ctx] {
    queued.store(true);
    got = sem.acquire(ctx, 1);  // queued: the unit is held
  });
  ASSERT_TRUE(eventually([&] { return queued.load(); }));
  std::this_thread::sleep_for(20ms);  // the waiter parks
  wg.go([&, cancel = cancel] {
    sem.release(1);  // grants the waiter its unit; it cannot run yet
    cancel();
  });
  wg.wait();
  EXPECT_EQ(got, goro::canceled);
  EXPECT_TRUE(sem.try_acquire(1)) << "the unit granted to a cancelled acquire was kept";
  sem.release(1);
  goro::set_max_procs(before);
}

TEST_P(semaphore, threads_and_goroutines_share_it) {
  goro::semaphore sem(1);
  long counter = 0;  // protected by the semaphore as a lock
  goro::wait_group wg;
  for (int i = 0; i < 50; ++i) {
    wg.go([&] {
      for (int k = 0; k < 100; ++k) {
        sem.acquire();
        ++counter;
        sem.release();
      }
    });
  }
  std::thread t([&] {
    for (int k = 0; k < 2000; ++k) {
      sem.acquire();
      ++counter;
      sem.release();
    }
  });
  wg.wait();
  t.join();
  EXPECT_EQ(counter, 50 * 100 + 2000);
}

}  // namespace
