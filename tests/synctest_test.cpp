// synctest_test.cpp — virtual time in a bubble (goro/synctest.hpp), checked against Go
// 1.25's testing/synctest: its documented examples, durable and non-durable blocking,
// deadlocks reported as test failures, and the bubble's borders.
#include <atomic>
#include <map>
#include <string>
#include <thread>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;
using goro::time_point;

class synctest : public procs_test {};
GORO_PROCS_SUITE(synctest);

// The bubble's clock starts at 2000-01-01 00:00:00 UTC, as seconds of steady_clock's epoch.
const time_point bubble_epoch{std::chrono::seconds(946'684'800)};

TEST_P(synctest, the_clock_starts_at_a_fixed_instant_and_outside_it_is_real) {
  time_point inside;
  goro::synctest::run([&] { inside = goro::now(); });
  EXPECT_EQ(inside, bubble_epoch);
  auto before = steady::now();
  auto outside = goro::now();
  EXPECT_GE(outside, before);
  EXPECT_LE(outside, steady::now());
}

TEST_P(synctest, a_one_hour_timeout_passes_in_no_real_time) {
  auto t0 = steady::now();
  goro::synctest::run([] {
    auto start = goro::now();
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
    EXPECT_FALSE(ctx.done().recv().has_value());  // closed: no value
    EXPECT_TRUE(ctx.err().is(goro::deadline_exceeded));
    EXPECT_EQ(goro::now() - start, 1h);
    cancel();
  });
  EXPECT_LT(ms_since(t0), 2000.0) << "the hour was waited for on the real clock";
}

TEST_P(synctest, a_ticker_ticks_a_thousand_times_at_exact_fake_instants) {
  auto t0 = steady::now();
  goro::synctest::run([] {
    auto start = goro::now();
    goro::ticker tk(1s);
    for (int i = 1; i <= 1000; ++i) {
      auto v = tk.c().recv();
      ASSERT_TRUE(v.has_value());
      ASSERT_EQ(*v, start + i * 1s) << "tick " << i;
    }
    EXPECT_EQ(goro::now(), start + 1000s);
  });
  EXPECT_LT(ms_since(t0), 5000.0);
}

TEST_P(synctest, sleep_after_and_timers_follow_the_fake_clock) {
  goro::synctest::run([] {
    auto start = goro::now();
    goro::sleep(90min);
    EXPECT_EQ(goro::now(), start + 90min);
    auto v = goro::after(250ms).recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, start + 90min + 250ms);
    goro::timer t(1h);
    EXPECT_TRUE(t.reset(2h));
    EXPECT_EQ(*t.c().recv(), start + 90min + 250ms + 2h);
    EXPECT_FALSE(t.stop());
  });
}

// Go's example "context.AfterFunc" from the testing/synctest documentation.
TEST_P(synctest, go_example_context_after_func) {
  goro::synctest::run([] {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    std::atomic<bool> called{false};
    (void)goro::after_func(ctx, [&] { called = true; });
    goro::synctest::wait();
    EXPECT_FALSE(called) << "before the context is cancelled: after_func called";
    cancel();
    goro::synctest::wait();
    EXPECT_TRUE(called) << "after the context is cancelled: after_func not called";
  });
}

// Go's example "context.WithTimeout" from the testing/synctest documentation.
TEST_P(synctest, go_example_context_with_timeout) {
  goro::synctest::run([] {
    constexpr auto timeout = 5s;
    auto [ctx, cancel] = goro::with_timeout(goro::background(), timeout);
    goro::sleep(timeout - 1ns);
    goro::synctest::wait();
    EXPECT_FALSE(ctx.err()) << "before the timeout: " << ctx.err();
    goro::sleep(1ns);
    goro::synctest::wait();
    EXPECT_TRUE(ctx.err().is(goro::deadline_exceeded)) << "after the timeout: " << ctx.err();
    cancel();
  });
}

// A cache whose entries expire, swept by a goroutine on a ticker: the kind of code the
// fake clock is for (hours of expiry checked in microseconds).
class expiring_cache {
 public:
  expiring_cache(std::chrono::nanoseconds ttl, std::chrono::nanoseconds sweep) : ttl_(ttl) {
    wg_.go([this, sweep] {
      goro::ticker tk(sweep);
      for (;;) {
        std::optional<time_point> tick;
        std::optional<std::monostate> stop;
        if (goro::select(goro::case_recv(tk.c(), tick), goro::case_recv(stop_, stop)) == 1) {
          return;
        }
        std::lock_guard lk(mu_);
        std::erase_if(items_, [&](const auto& kv) { return kv.second.second <= *tick; });
      }
    });
  }
  ~expiring_cache() {
    stop_.close();
    wg_.wait();
  }
  void put(const std::string& k, int v) {
    std::lock_guard lk(mu_);
    items_[k] = {v, goro::now() + ttl_};
  }
  std::size_t size() {
    std::lock_guard lk(mu_);
    return items_.size();
  }

 private:
  std::chrono::nanoseconds ttl_;
  goro::mutex mu_;
  std::map<std::string, std::pair<int, time_point>> items_;
  goro::chan<std::monostate> stop_ = goro::make_chan<std::monostate>();
  goro::wait_group wg_;
};

TEST_P(synctest, a_ticker_driven_cache_expires_entries_on_the_fake_clock) {
  goro::synctest::run([] {
    expiring_cache cache(30min, 1min);
    cache.put("a", 1);
    goro::sleep(20min);
    cache.put("b", 2);
    goro::synctest::wait();
    EXPECT_EQ(cache.size(), 2u);
    goro::sleep(10min);  // "a" is 30 min old: the sweep at minute 30 drops it
    goro::synctest::wait();
    EXPECT_EQ(cache.size(), 1u);
    goro::sleep(20min);
    goro::synctest::wait();
    EXPECT_EQ(cache.size(), 0u);
  });
}

TEST_P(synctest, wait_returns_once_the_others_are_durably_blocked) {
  goro::synctest::run([] {
    auto in = goro::make_chan<int>();
    auto out = goro::make_chan<int>(1);
    std::atomic<int> stage{0};
    goro::wait_group wg;
    wg.go([&] {
      stage = 1;
      auto v = in.recv();  // durable: a channel of the bubble
      stage = 2;
      out.send(*v * 2);
    });
    goro::synctest::wait();
    EXPECT_EQ(stage.load(), 1);
    in.send(21);
    goro::synctest::wait();
    EXPECT_EQ(stage.load(), 2);
    EXPECT_EQ(out.len(), 1u);
    EXPECT_EQ(*out.recv(), 42);
    wg.wait();
  });
}

TEST_P(synctest, time_stands_still_while_a_goroutine_computes) {
  goro::synctest::run([] {
    auto start = goro::now();
    std::atomic<bool> done{false};
    goro::go([&] {
      auto until = steady::now() + 30ms;  // real time, no blocking
      while (steady::now() < until) goro::yield();
      done = true;
    });
    goro::sleep(1ms);  // cannot end while the other goroutine is not blocked
    EXPECT_TRUE(done) << "the fake clock moved while a goroutine was running";
    EXPECT_EQ(goro::now(), start + 1ms);
  });
}

TEST_P(synctest, a_channel_from_outside_is_not_a_durable_block) {
  // Go: operations on channels created outside the bubble are not durably blocking;
  // wait() returns only after the outside sender released the goroutine.
  auto outside = goro::make_chan<int>();
  std::thread sender([&] {
    std::this_thread::sleep_for(50ms);
    outside.send(7);
  });
  auto t0 = steady::now();
  std::atomic<int> got{0};
  goro::synctest::run([&] {
    goro::go([&] { got = *outside.recv(); });
    goro::synctest::wait();
    EXPECT_EQ(got.load(), 7);
  });
  EXPECT_GE(ms_since(t0), 45.0);
  sender.join();
}

TEST_P(synctest, primitives_of_the_bubble_block_durably) {
  goro::synctest::run([] {
    auto start = goro::now();
    goro::wait_group wg;
    goro::semaphore sem(1);
    goro::mutex mu;
    goro::cond cv;
    bool ready = false;
    sem.acquire();
    wg.add(1);
    std::atomic<int> woke{0};
    goro::go([&] {
      wg.wait();  // durable: the bubble's wait_group
      woke.fetch_add(1);
    });
    goro::go([&] {
      sem.acquire();  // durable: the bubble's semaphore
      woke.fetch_add(1);
      sem.release();
    });
    goro::go([&] {
      std::unique_lock lk(mu);
      while (!ready) cv.wait(lk);  // durable
      woke.fetch_add(1);
    });
    goro::sleep(1h);  // reachable only if the three above are durably blocked
    EXPECT_EQ(goro::now(), start + 1h);
    EXPECT_EQ(woke.load(), 0);
    wg.done();
    sem.release();
    {
      std::lock_guard lk(mu);
      ready = true;
    }
    cv.broadcast();
    goro::synctest::wait();
    EXPECT_EQ(woke.load(), 3);
  });
}

TEST_P(synctest, select_over_bubble_channels_and_timers_is_durable) {
  goro::synctest::run([] {
    auto start = goro::now();
    auto never = goro::make_chan<int>();
    std::optional<int> v;
    std::optional<time_point> fired;
    EXPECT_EQ(goro::select(goro::case_recv(never, v), goro::case_recv(goro::after(3s), fired)), 1);
    EXPECT_EQ(*fired, start + 3s);
  });
}

TEST_P(synctest, run_waits_for_goroutines_that_finish_after_the_root_returns) {
  std::atomic<int> done{0};
  goro::synctest::run([&] {
    auto ping = goro::make_chan<int>();
    goro::go([&, ping] {
      goro::go([&, ping] {
        for (int i = 0; i < 100; ++i) ping.send(i);
        done.fetch_add(1);
      });
      for (int i = 0; i < 100; ++i) (void)ping.recv();
      done.fetch_add(1);
    });
  });  // the root returned at once; its descendants needed no time to finish
  EXPECT_EQ(done.load(), 2);
}

TEST_P(synctest, timers_due_now_fire_before_wait_returns) {
  // Go: Wait returns only once no timer is due at the current fake instant.
  goro::synctest::run([] {
    goro::timer now(0ms);
    goro::timer past(1h);
    EXPECT_TRUE(past.reset(-1s));
    std::atomic<bool> woke{false};
    goro::go([&] {
      (void)goro::after(0ms).recv();
      woke = true;
    });
    goro::synctest::wait();
    EXPECT_EQ(now.c().len(), 1u);
    EXPECT_EQ(past.c().len(), 1u);
    EXPECT_TRUE(woke);
  });
}

TEST_P(synctest, a_ticker_nobody_reads_does_not_stop_a_long_sleep) {
  auto t0 = steady::now();
  goro::synctest::run([] {
    auto start = goro::now();
    goro::ticker unread(1ms);
    goro::sleep(24h);  // 86.4 million ticks dropped
    EXPECT_EQ(goro::now(), start + 24h);
    auto first = unread.c().try_recv();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(*first, start + 1ms) << "the buffered tick is the first one";
  });
  EXPECT_LT(ms_since(t0), 5000.0);
}

TEST_P(synctest, closing_a_bubble_channel_from_outside_panics_but_its_contexts_cancel) {
  goro::chan<int> c;
  goro::context child;
  auto [parent, cancel_parent] = goro::with_cancel(goro::background());
  goro::synctest::run([&, parent = parent] {
    c = goro::make_chan<int>();
    auto [ctx, cancel] = goro::with_cancel(parent);
    child = ctx;
    (void)cancel;
  });
  try {
    c.close();
    ADD_FAILURE() << "close from outside the bubble did not throw";
  } catch (const goro::panic_error& e) {
    EXPECT_STREQ(e.what(), "close of a synctest channel from outside its bubble");
  }
  cancel_parent();  // reaches the bubble's context: no panic
  EXPECT_TRUE(child.err().is(goro::canceled));
}

TEST_P(synctest, run_works_from_a_goroutine) {
  auto done = goro::make_chan<time_point>(1);
  goro::go([&] {
    goro::synctest::run([] { goro::sleep(1h); });
    done.send(goro::now());
  });
  auto v = done.recv();
  ASSERT_TRUE(v.has_value());
  EXPECT_LT(*v, bubble_epoch) << "the goroutine outside the bubble sees the real clock";
}

TEST_P(synctest, bubbles_on_two_threads_keep_their_own_clocks) {
  time_point a, b;
  std::thread other([&] {
    goro::synctest::run([&] {
      goro::sleep(5s);
      b = goro::now();
    });
  });
  goro::synctest::run([&] {
    goro::sleep(7s);
    a = goro::now();
  });
  other.join();
  EXPECT_EQ(a, bubble_epoch + 7s);
  EXPECT_EQ(b, bubble_epoch + 5s);
}

TEST_P(synctest, what_the_root_throws_comes_out_of_run) {
  EXPECT_THROW(goro::synctest::run([] {
                 goro::sleep(1s);
                 throw std::runtime_error("from the root");
               }),
               std::runtime_error);
}

TEST_P(synctest, pending_timers_and_deadlines_go_with_the_bubble) {
  // An unstopped ticker, a long after() and a context nobody cancels do not keep the
  // bubble (or anything) alive once its goroutines are gone.
  goro::context kept;
  goro::synctest::run([&] {
    auto tick = goro::tick(1s);
    auto late = goro::after(24h);
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
    kept = ctx;
    goro::sleep(1500ms);
    EXPECT_TRUE(tick.try_recv().has_value());
    (void)cancel;  // never called
  });
  EXPECT_FALSE(kept.err()) << "the bubble's hour never passed";
}

TEST_P(synctest, timers_of_a_bubble_used_from_outside_panic_and_are_destroyed_quietly) {
  std::optional<goro::timer> t;
  goro::chan<int> c;
  goro::synctest::run([&] {
    t.emplace(1h);
    c = goro::make_chan<int>(1);
  });
  EXPECT_THROW(t->stop(), goro::panic_error);
  EXPECT_THROW(t->reset(1s), goro::panic_error);
  try {
    c.send(1);
    ADD_FAILURE() << "send from outside the bubble did not throw";
  } catch (const goro::panic_error& e) {
    EXPECT_STREQ(e.what(), "send on a synctest channel from outside its bubble");
  }
  EXPECT_THROW((void)c.try_recv(), goro::panic_error);
  std::optional<int> v;
  EXPECT_THROW(goro::select(goro::case_recv(c, v), goro::case_default()), goro::panic_error);
  t.reset();  // the destructor does not throw
}

TEST_P(synctest, misuse_is_a_panic) {
  EXPECT_THROW(goro::synctest::wait(), goro::panic_error);  // outside a bubble
  goro::synctest::run([] {
    EXPECT_THROW(goro::synctest::run([] {}), goro::panic_error);  // nested
  });
}

// Deadlocks leave the bubble's goroutines parked for good, so these tests do not run
// under the leak-checking fixture.
TEST(synctest_deadlock, is_a_panic_with_the_bubble_dump) {
  try {
    goro::synctest::run([] {
      auto never = goro::make_chan<int>();
      goro::wait_group wg;
      wg.go([&] { (void)never.recv(); });
      wg.wait();
    });
    ADD_FAILURE() << "a deadlocked bubble returned";
  } catch (const goro::panic_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("synctest: deadlock: all goroutines in the bubble are durably blocked"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("[chan receive (durable)]"), std::string::npos) << m;
    EXPECT_NE(m.find("[sync.WaitGroup.Wait (durable)]"), std::string::npos) << m;
    EXPECT_NE(m.find("synctest_test.cpp"), std::string::npos) << "no creation site:\n" << m;
  }
}

TEST(synctest_deadlock, only_the_bubbles_goroutines_are_in_the_dump) {
  auto outside = goro::make_chan<int>();
  goro::wait_group outer;
  outer.go([&] { (void)outside.recv(); });
  try {
    goro::synctest::run([] { goro::select(); });
    ADD_FAILURE() << "a deadlocked bubble returned";
  } catch (const goro::panic_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("[select (no cases) (durable)]"), std::string::npos) << m;
    EXPECT_EQ(m.find("[chan receive"), std::string::npos) << "a goroutine outside:\n" << m;
  }
  outside.close();
  outer.wait();
}

TEST(synctest_deadlock, the_root_returning_stops_time) {
  // Go: time stops once the bubble's root goroutine has returned; what is left
  // blocked then is a deadlock.
  try {
    goro::synctest::run([] { goro::go([] { goro::sleep(10h); }); });
    ADD_FAILURE() << "run returned";
  } catch (const goro::panic_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("the root function has returned"), std::string::npos) << m;
    EXPECT_NE(m.find("[sleep (durable)]"), std::string::npos) << m;
  }
}

TEST(synctest_deadlock, what_the_root_threw_comes_before_the_deadlock_it_left) {
  EXPECT_THROW(goro::synctest::run([] {
                 auto never = goro::make_chan<int>();
                 goro::go([never] { (void)never.recv(); });
                 throw std::runtime_error("the check failed");
               }),
               std::runtime_error);
}

TEST(synctest_deadlock, a_ticker_nobody_reads_does_not_hide_it) {
  auto t0 = steady::now();
  EXPECT_THROW(goro::synctest::run([] {
                 goro::ticker tk(1h);
                 auto never = goro::make_chan<int>();
                 (void)never.recv();
               }),
               goro::panic_error);
  EXPECT_LT(ms_since(t0), 2000.0) << "the ticker was fired until a limit";
}

}  // namespace
