// sync_test — mutex, rw_mutex, once, cond (goro/sync.hpp), from Go's semantics.
#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class sync_ : public procs_test {};
GORO_PROCS_SUITE(sync_);

TEST_P(sync_, mutex_excludes_goroutines_and_threads) {
  goro::mutex mu;
  long counter = 0;  // plain int: only the mutex protects it (TSAN checks that)
  goro::wait_group wg;
  constexpr int goroutines = 1000, iters = 100, threads = 2, thread_iters = 5000;
  for (int g = 0; g < goroutines; ++g) {
    wg.go([&] {
      for (int i = 0; i < iters; ++i) {
        std::lock_guard lk(mu);
        ++counter;
        if (i % 10 == 0) goro::yield();  // sometimes hold it across a switch
      }
    });
  }
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < thread_iters; ++i) {
        std::unique_lock lk(mu);
        ++counter;
      }
    });
  }
  wg.wait();
  for (auto& t : ts) t.join();
  std::lock_guard lk(mu);
  EXPECT_EQ(counter, long{goroutines} * iters + long{threads} * thread_iters);
}

TEST_P(sync_, mutex_try_lock_and_scoped_lock) {
  goro::mutex a, b;
  EXPECT_TRUE(a.try_lock());
  EXPECT_FALSE(a.try_lock());
  a.unlock();
  {
    std::scoped_lock both(a, b);
    EXPECT_FALSE(a.try_lock());
    EXPECT_FALSE(b.try_lock());
  }
  EXPECT_TRUE(b.try_lock());
  b.unlock();
}

TEST_P(sync_, mutex_may_be_unlocked_by_another_goroutine) {
  goro::mutex mu;
  mu.lock();
  goro::wait_group wg;
  wg.go([&] { mu.unlock(); });
  wg.wait();
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
}

TEST_P(sync_, a_waiter_is_not_starved_by_a_hammering_goroutine) {
  // One goroutine locks and unlocks in a tight loop; another must still get the lock
  // within a bounded number of the hammer's iterations (starvation mode hands it over
  // once it has waited 1 ms).
  goro::mutex mu;
  std::atomic<bool> stop{false};
  std::atomic<long> hammer_iters{0};
  goro::wait_group wg;
  wg.go([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      mu.lock();
      hammer_iters.fetch_add(1, std::memory_order_relaxed);
      volatile int spin = 0;
      for (int i = 0; i < 50; ++i) spin = spin + i;
      mu.unlock();
    }
  });
  EXPECT_TRUE(eventually([&] { return hammer_iters.load() > 1000; }));
  long max_wait_iters = 0;
  for (int round = 0; round < 20; ++round) {
    long before = hammer_iters.load();
    mu.lock();
    long waited = hammer_iters.load() - before;
    mu.unlock();
    max_wait_iters = std::max(max_wait_iters, waited);
    goro::sleep(1ms);
  }
  stop = true;
  wg.wait();
  EXPECT_LT(max_wait_iters, 2'000'000) << "the waiter starved";
}

TEST(sync_fatal, unlock_of_unlocked_mutex_is_fatal) {
  EXPECT_DEATH(
      {
        goro::mutex mu;
        mu.unlock();
      },
      "fatal error: sync: unlock of unlocked mutex");
}

TEST(sync_fatal, unlock_of_unlocked_rw_mutex_is_fatal) {
  EXPECT_DEATH(
      {
        goro::rw_mutex rw;
        rw.unlock();
      },
      "fatal error: sync: Unlock of unlocked RWMutex");
  EXPECT_DEATH(
      {
        goro::rw_mutex rw;
        rw.unlock_shared();
      },
      "fatal error: sync: RUnlock of unlocked RWMutex");
}

TEST_P(sync_, rw_mutex_readers_share_writers_exclude) {
  goro::rw_mutex rw;
  std::atomic<int> readers_in{0}, max_readers{0};
  std::atomic<bool> writer_in{false}, overlap{false};
  goro::wait_group wg;
  for (int r = 0; r < 8; ++r) {
    wg.go([&] {
      for (int i = 0; i < 50; ++i) {
        std::shared_lock lk(rw);
        if (writer_in.load()) overlap = true;
        int now = readers_in.fetch_add(1) + 1;
        int seen = max_readers.load();
        while (now > seen && !max_readers.compare_exchange_weak(seen, now)) {
        }
        goro::sleep(50us);
        readers_in.fetch_sub(1);
      }
    });
  }
  for (int w = 0; w < 2; ++w) {
    wg.go([&] {
      for (int i = 0; i < 20; ++i) {
        std::lock_guard lk(rw);
        if (writer_in.exchange(true) || readers_in.load() != 0) overlap = true;
        goro::yield();
        writer_in = false;
      }
    });
  }
  wg.wait();
  EXPECT_FALSE(overlap.load()) << "a writer overlapped readers or another writer";
  EXPECT_GE(max_readers.load(), 2) << "readers never held the lock together";
}

TEST_P(sync_, rw_mutex_waiting_writer_blocks_new_readers) {
  goro::rw_mutex rw;
  rw.lock_shared();  // an active reader
  std::atomic<bool> writer_done{false}, late_reader_done{false};
  goro::wait_group wg;
  wg.go([&] {
    rw.lock();
    writer_done = true;
    rw.unlock();
  });
  // Until the writer waits (a fixed sleep was too short under qemu with 4 processors
  // on 2 cores: the writer had not run yet, the reader got in and held the lock).
  auto waiting_in = [](const char* reason) {
    return eventually([reason] { return goro::debug::goroutines(2).find(reason) != std::string::npos; });
  };
  if (!waiting_in("[sync.RWMutex.Lock")) {
    ADD_FAILURE() << "the writer never waited\n" << goro::debug::goroutines(2);
    rw.unlock_shared();
    wg.wait();
    return;
  }
  if (rw.try_lock_shared()) {
    rw.unlock_shared();
    rw.unlock_shared();
    wg.wait();
    FAIL() << "a new reader got in past a waiting writer";
  }
  wg.go([&] {
    rw.lock_shared();
    late_reader_done = true;
    rw.unlock_shared();
  });
  EXPECT_TRUE(waiting_in("[sync.RWMutex.RLock")) << goro::debug::goroutines(2);
  EXPECT_FALSE(writer_done.load());
  EXPECT_FALSE(late_reader_done.load());
  rw.unlock_shared();  // the writer goes first, then the late reader
  wg.wait();
  EXPECT_TRUE(writer_done.load());
  EXPECT_TRUE(late_reader_done.load());
  EXPECT_TRUE(rw.try_lock());
  EXPECT_FALSE(rw.try_lock_shared());
  rw.unlock();
}

TEST_P(sync_, once_runs_once_under_concurrency) {
  goro::once once;
  std::atomic<int> runs{0};
  std::atomic<int> saw_done{0};
  goro::wait_group wg;
  for (int i = 0; i < 200; ++i) {
    wg.go([&] {
      once.call([&] {
        goro::sleep(5ms);  // others arrive while it runs and must wait
        runs.fetch_add(1);
      });
      if (runs.load() == 1) saw_done.fetch_add(1);
    });
  }
  wg.wait();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(saw_done.load(), 200) << "a caller returned before f finished";
  EXPECT_TRUE(once.done());
}

TEST_P(sync_, once_is_not_done_when_f_throws) {
  goro::once once;
  int calls = 0;
  EXPECT_THROW(once.call([&] {
    ++calls;
    throw std::runtime_error("first");
  }),
               std::runtime_error);
  EXPECT_FALSE(once.done());
  once.call([&] { ++calls; });
  once.call([&] { ++calls; });
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(once.done());
}

TEST_P(sync_, cond_signal_wakes_one_broadcast_wakes_all) {
  goro::mutex mu;
  goro::cond cv;
  int ready = 0;  // under mu
  int woken = 0;  // under mu
  goro::wait_group wg;
  constexpr int n = 10;
  for (int i = 0; i < n; ++i) {
    wg.go([&] {
      std::unique_lock lk(mu);
      while (ready == 0) cv.wait(lk);
      --ready;
      ++woken;
    });
  }
  std::this_thread::sleep_for(20ms);
  {
    std::lock_guard lk(mu);
    ready = 1;
  }
  cv.signal();
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lk(mu);
    return woken == 1;
  }));
  std::this_thread::sleep_for(20ms);
  {
    std::lock_guard lk(mu);
    EXPECT_EQ(woken, 1) << "signal woke more than one";
    ready = n - 1;
  }
  cv.broadcast();
  wg.wait();
  EXPECT_EQ(woken, n);
}

TEST_P(sync_, cond_signal_between_unlock_and_park_is_not_lost) {
  goro::mutex mu;
  goro::cond cv;
  for (int round = 0; round < 200; ++round) {
    bool flag = false;
    goro::wait_group wg;
    wg.go([&] {
      std::unique_lock lk(mu);
      while (!flag) cv.wait(lk);
    });
    goro::yield();
    {
      std::lock_guard lk(mu);
      flag = true;
    }
    cv.signal();
    wg.wait();
  }
}

// Go's sync.OnceFunc: copies share one call; concurrent first calls run f once and
// wait for it; f is released after it ran.
TEST_P(sync_, once_func_runs_f_once_across_copies_and_goroutines) {
  std::atomic<int> runs{0};
  auto token = std::make_shared<int>(0);
  auto f = goro::once_func([&runs, token] {
    goro::sleep(2ms);  // the other callers arrive meanwhile and wait
    runs++;
  });
  token.reset();
  goro::wait_group wg;
  std::atomic<int> returned_after_run{0};
  for (int i = 0; i < 20; ++i) {
    wg.go([f, &runs, &returned_after_run] {
      f();
      if (runs.load() == 1) returned_after_run++;
    });
  }
  wg.wait();
  f();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(returned_after_run.load(), 20) << "a caller returned before f had finished";
}

// Go: if f panics, the returned function panics with the same value on every call,
// and f does not run again (unlike once::call, std::call_once's rule).
TEST_P(sync_, once_func_rethrows_the_first_exception_on_every_call) {
  int runs = 0;
  auto f = goro::once_func([&runs] {
    ++runs;
    throw std::runtime_error("broken " + std::to_string(runs));
  });
  for (int i = 0; i < 3; ++i) {
    try {
      f();
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "broken 1");
    }
  }
  EXPECT_EQ(runs, 1);
}

// Go's sync.OnceValue: the first call computes, every call returns the same value.
TEST_P(sync_, once_value_computes_once_and_returns_copies) {
  std::atomic<int> runs{0};
  auto config = goro::once_value([&runs] {
    runs++;
    return std::vector<int>{1, 2, 3};
  });
  goro::wait_group wg;
  std::atomic<int> right{0};
  for (int i = 0; i < 10; ++i) {
    wg.go([config, &right] {
      if (config() == std::vector<int>{1, 2, 3}) right++;
    });
  }
  wg.wait();
  auto v = config();
  v.push_back(4);  // a copy: the next call is unaffected
  EXPECT_EQ(config().size(), 3u);
  EXPECT_EQ(right.load(), 10);
  EXPECT_EQ(runs.load(), 1);
  auto failing = goro::once_value([]() -> int { throw std::logic_error("no value"); });
  EXPECT_THROW((void)failing(), std::logic_error);
  EXPECT_THROW((void)failing(), std::logic_error);
}

// semaphore_guard: acquires and releases for a scope; adopt_lock takes over units
// from a successful acquire(ctx, n).
TEST_P(sync_, semaphore_guard_releases_at_scope_exit) {
  goro::semaphore sem(3);
  {
    goro::semaphore_guard two(sem, 2);
    EXPECT_FALSE(sem.try_acquire(2));
    ASSERT_FALSE(sem.acquire(goro::background(), 1));
    goro::semaphore_guard adopted(sem, 1, std::adopt_lock);
    EXPECT_FALSE(sem.try_acquire(1));
  }
  EXPECT_TRUE(sem.try_acquire(3)) << "a guard did not release its units";
  sem.release(3);
}

}  // namespace
