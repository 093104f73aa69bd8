// process_test — the runtime across the life of a process: globals built before it
// starts and destroyed after main, several goro::run calls, plain threads that come
// and go, counts read while goroutines churn. Cases that end a process run in a child
// (gtest death tests re-execute the binary; see support/test_main.cpp).
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

// ---- error constants outside main's lifetime ------------------------------------------

// Built during static initialization, possibly before the library's own globals: the
// sentinels must already exist (a context cancelled here reported a null err()).
struct cancels_while_the_program_starts {
  bool canceled = false;
  std::string message;
  std::string eof_text;
  cancels_while_the_program_starts() {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    cancel();
    canceled = ctx.err().is(goro::canceled);
    message = ctx.err().message();
    eof_text = goro::eof.message();
  }
} const at_start;

TEST(process_globals, a_context_cancelled_in_a_global_constructor_reports_canceled) {
  EXPECT_TRUE(at_start.canceled);
  EXPECT_EQ(at_start.message, "context canceled");
  EXPECT_EQ(at_start.eof_text, "EOF");
}

bool cancel_reports_canceled() {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  cancel();
  return ctx.err().is(goro::canceled) && ctx.err().message() == "context canceled";
}

struct cancels_at_exit {
  ~cancels_at_exit() {
    bool ok = cancel_reports_canceled() &&
              goro::net::err_closed.message() == "use of closed network connection" &&
              goro::deadline_exceeded.message() == "context deadline exceeded";
    std::fputs(ok ? "exit-cancel ok\n" : "exit-cancel WRONG\n", stderr);
  }
};

void cancel_during_exit() {
  static cancels_at_exit at_exit;
  (void)at_exit;
  goro::go([] {
    for (;;) {
      if (!cancel_reports_canceled()) {
        std::fputs("goroutine saw a wrong error\n", stderr);
        _exit(4);
      }
      goro::yield();
    }
  });
  std::this_thread::sleep_for(20ms);
  std::exit(0);
}

TEST(process_globals, contexts_cancelled_after_exit_began_still_report_canceled) {
  // A global's destructor and an abandoned goroutine both cancel contexts while exit()
  // destroys globals; the sentinels are never destroyed (ASAN saw a use after free).
  EXPECT_EXIT(cancel_during_exit(), ::testing::ExitedWithCode(0), "exit-cancel ok");
}

// ---- wait_group::go -------------------------------------------------------------------

TEST(process_wait_group, wait_returns_after_the_tasks_captures_are_destroyed) {
  // As std::thread::join: everything a task captured is gone once wait() returns.
  struct tracked {
    std::atomic<int>* alive;
    explicit tracked(std::atomic<int>* a) : alive(a) { alive->fetch_add(1); }
    tracked(const tracked& o) : alive(o.alive) { alive->fetch_add(1); }
    ~tracked() {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a slow destructor
      alive->fetch_sub(1);
    }
  };
  auto rounds = [](bool from_goroutine) {
    for (int round = 0; round < 100; ++round) {
      std::atomic<int> alive{0};
      goro::wait_group wg;
      for (int i = 0; i < 3; ++i) {
        tracked t(&alive);
        wg.go([t] { (void)t; });
      }
      wg.wait();
      ASSERT_EQ(alive.load(), 0) << "a task's capture outlived wait(), round " << round
                                 << (from_goroutine ? " (waiting in a goroutine)" : "");
    }
  };
  rounds(false);  // wait() on a plain thread
  auto done = goro::make_chan<int>();
  goro::go([&] {
    rounds(true);
    done.send(1);
  });
  done.recv();
}

TEST(process_wait_group, run_does_not_call_goroutines_that_main_waited_for_abandoned) {
  EXPECT_EXIT(
      {
        for (int i = 0; i < 300; ++i) {
          goro::run([] {
            goro::wait_group wg;
            for (int j = 0; j < 4; ++j) wg.go([] {});
            wg.wait();
          });
        }
        std::fputs("done\n", stderr);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "^done\n$");
}

// ---- num_goroutine ----------------------------------------------------------------------

TEST(process_count, num_goroutine_never_undercounts_while_goroutines_churn) {
  goro::set_max_procs(4);
  constexpr int steady_count = 100;
  auto stop = goro::make_chan<int>();
  goro::wait_group steady;
  for (int i = 0; i < steady_count; ++i) {
    steady.go([stop] { stop.recv(); });
  }
  std::atomic<bool> churning{true};
  goro::wait_group churners;
  for (int c = 0; c < 3; ++c) {
    churners.go([&] {
      while (churning.load(std::memory_order_relaxed)) {
        goro::wait_group wg;
        for (int i = 0; i < 16; ++i) wg.go([] { goro::yield(); });
        wg.wait();
      }
    });
  }
  // At least the steady goroutines and the three churners exist the whole time.
  std::size_t lowest = SIZE_MAX;
  auto until = steady::now() + 300ms;
  while (steady::now() < until) lowest = std::min(lowest, goro::num_goroutine());
  churning = false;
  churners.wait();
  stop.close();
  steady.wait();
  EXPECT_GE(lowest, static_cast<std::size_t>(steady_count + 3));
}

// ---- the deadlock detector and several runs -------------------------------------------

TEST(process_deadlock, a_plain_thread_that_used_goro_earlier_does_not_turn_the_detector_off) {
  EXPECT_EXIT(
      {
        auto ch = goro::make_chan<int>();
        std::thread plain([ch] { ch.recv(); });  // waits on a goroutine, then ends
        goro::go([ch] { ch.send(1); });
        plain.join();
        goro::run([] {
          auto never = goro::make_chan<int>();
          never.recv();
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!");
}

TEST(process_deadlock, concurrent_runs_leave_each_others_goroutines_alone) {
  EXPECT_EXIT(
      {
        std::thread long_run([] {
          goro::run([] {
            auto stop = goro::make_chan<int>();
            goro::go(goro::spawn_options{.name = "long-helper"}, [stop] { stop.recv(); });
            goro::sleep(300ms);
            stop.close();
            goro::sleep(20ms);
          });
        });
        std::this_thread::sleep_for(50ms);
        goro::run([] { goro::sleep(20ms); });  // ends while the other run is busy
        long_run.join();
        std::fputs("done\n", stderr);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "^done\n$");
}

TEST(process_deadlock, a_deadlock_while_another_run_waits_on_a_timer_is_not_reported) {
  // Two runs: one deadlocked for a while, the other asleep on a timer that will end it
  // (and then the first is truly stuck, with nothing left to wake it).
  EXPECT_EXIT(
      {
        auto ch = goro::make_chan<int>();
        std::thread other([ch] {
          goro::run([ch] {
            goro::sleep(300ms);
            ch.send(1);
          });
        });
        goro::run([ch] { ch.recv(); });
        other.join();
        std::fputs("done\n", stderr);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "done\n$");
}

}  // namespace
