// runtime_test — goro/runtime.hpp: go, run, yield, ids, counts, processors, panics,
// migration between threads, work spreading and an idle runtime's CPU use.
#include <cfenv>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class runtime : public procs_test {};
GORO_PROCS_SUITE(runtime);

long os_thread_id() { return static_cast<long>(syscall(SYS_gettid)); }

// A thread_local read the way README's limitations section says is safe across a park:
// through a function that is not inlined. Inside one function, compilers may compute a
// thread_local's address once (aarch64 keeps the thread pointer in a register for the
// whole function) and reuse it after the goroutine moved to another thread.
thread_local int canary = 0;
[[gnu::noinline]] int& this_threads_canary() {
  asm volatile("" ::: "memory");
  return canary;
}

TEST_P(runtime, go_runs_the_function_with_copied_arguments) {
  goro::wait_group wg;
  std::string text = "before";
  std::atomic<bool> saw_copy{false};
  goro::wait_group gate;
  gate.add(1);
  wg.add(1);
  goro::go(
      [&](std::string s) {
        gate.wait();
        saw_copy = (s == "before");
        wg.done();
      },
      text);
  text = "after";  // the goroutine holds its own copy
  gate.done();
  wg.wait();
  EXPECT_TRUE(saw_copy);
}

TEST_P(runtime, loop_variable_pitfall_cannot_happen) {
  constexpr int n = 1000;
  std::vector<std::atomic<int>> seen(n);
  goro::wait_group wg;
  wg.add(n);
  for (int i = 0; i < n; ++i) {
    goro::go(
        [&](int v) {
          seen[static_cast<std::size_t>(v)].fetch_add(1);
          wg.done();
        },
        i);
  }
  wg.wait();
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)].load(), 1) << i;
}

TEST_P(runtime, move_only_arguments_are_moved_in) {
  goro::wait_group wg;
  std::atomic<int> got{0};
  wg.add(1);
  goro::go(
      [&](std::unique_ptr<int> p) {
        got = *p;
        wg.done();
      },
      std::make_unique<int>(42));
  wg.wait();
  EXPECT_EQ(got, 42);
}

// Captures of every size from a pointer to a few hundred bytes (small tasks come from
// per-processor pools by 16-byte class, larger ones from the heap) and over-aligned
// ones, started from goroutines and from a plain thread, ending on any processor: each
// goroutine sees exactly its own bytes, at its type's alignment.
template <std::size_t N, std::size_t Align = alignof(std::max_align_t)>
struct alignas(Align) payload {
  unsigned char bytes[N];
};
template <std::size_t N, std::size_t Align = alignof(std::max_align_t)>
void start_with_payload(goro::wait_group& wg, std::atomic<int>& bad, int seed) {
  payload<N, Align> p;
  for (std::size_t i = 0; i < N; ++i) p.bytes[i] = static_cast<unsigned char>(seed + i);
  wg.go([&bad, p, seed] {
    if (reinterpret_cast<std::uintptr_t>(&p) % Align != 0) ++bad;
    goro::yield();  // maybe to another processor before the task is freed there
    for (std::size_t i = 0; i < N; ++i) {
      if (p.bytes[i] != static_cast<unsigned char>(seed + i)) ++bad;
    }
  });
}
void start_payloads(goro::wait_group& wg, std::atomic<int>& bad, int seed) {
  start_with_payload<1>(wg, bad, seed);
  start_with_payload<8>(wg, bad, seed);
  start_with_payload<24>(wg, bad, seed);
  start_with_payload<40>(wg, bad, seed);
  start_with_payload<48>(wg, bad, seed);
  start_with_payload<56>(wg, bad, seed);
  start_with_payload<72>(wg, bad, seed);
  start_with_payload<300>(wg, bad, seed);
  start_with_payload<8, 64>(wg, bad, seed);
  start_with_payload<40, 128>(wg, bad, seed);
}

TEST_P(runtime, captures_of_every_size_and_alignment_arrive_intact) {
  goro::wait_group wg;
  std::atomic<int> bad{0};
  for (int round = 0; round < 200; ++round) {
    wg.go([&wg, &bad, round] { start_payloads(wg, bad, round); });
  }
  std::thread plain([&] {
    for (int round = 0; round < 200; ++round) start_payloads(wg, bad, 1000 + round);
  });
  plain.join();
  wg.wait();
  EXPECT_EQ(bad.load(), 0);
}

// No argument limit: eight arguments of mixed kinds, each copied.
TEST_P(runtime, go_takes_any_number_of_arguments) {
  goro::wait_group wg;
  std::atomic<long> sum{0};
  std::string label = "x";
  wg.add(1);
  goro::go(
      [&](int a, long b, short c, char d, std::string e, double f, unsigned g, std::size_t h) {
        sum = a + b + c + d + static_cast<long>(e.size()) + static_cast<long>(f) +
              static_cast<long>(g) + static_cast<long>(h);
        wg.done();
      },
      1, 2L, short{3}, char{4}, label, 6.0, 7u, std::size_t{8});
  wg.wait();
  EXPECT_EQ(sum.load(), 1 + 2 + 3 + 4 + 1 + 6 + 7 + 8);
}

// std::ref passes a reference, as with std::thread; the caller keeps the referent alive.
TEST_P(runtime, go_passes_a_reference_through_std_ref) {
  int counter = 0;
  goro::wait_group wg;
  wg.add(1);
  goro::go(
      [&wg](int& c) {
        c = 7;
        wg.done();
      },
      std::ref(counter));
  wg.wait();
  EXPECT_EQ(counter, 7);
}

// A move-only callable (moved in) and move-only arguments, also with options.
TEST_P(runtime, go_accepts_a_move_only_callable_and_options_with_arguments) {
  goro::wait_group wg;
  std::atomic<int> got{0};
  auto owned = std::make_unique<int>(5);
  wg.add(2);
  goro::go([p = std::move(owned), &got, &wg] {
    got += *p;
    wg.done();
  });
  goro::spawn_options opts;
  opts.name = "with-args";
  goro::go(
      opts,
      [&](std::unique_ptr<int> a, int b) {
        got += *a + b;
        wg.done();
      },
      std::make_unique<int>(30), 7);
  wg.wait();
  EXPECT_EQ(got.load(), 42);
}

// Braced options pick the options overload (a name is not the callable).
TEST_P(runtime, go_with_braced_options_names_the_goroutine) {
  goro::wait_group wg;
  std::atomic<int> got{0};
  wg.add(2);
  goro::go({"braced"}, [&] {
    got += 1;
    wg.done();
  });
  std::string_view name = "view";
  goro::go({name}, [&](int v) {
    got += v;
    wg.done();
  }, 10);
  wg.wait();
  EXPECT_EQ(got.load(), 11);
}

// The creation site a dump shows is the line of the go call itself.
TEST_P(runtime, go_records_the_callers_line) {
  auto release = goro::make_chan<int>();
  std::atomic<std::uint64_t> id{0};
  const int line = __LINE__ + 1;
  goro::go([&id, release](int) { id = goro::this_goroutine::id(); (void)release.recv(); }, 1);
  ASSERT_TRUE(eventually([&] { return id.load() != 0; }));
  std::string dump = goro::debug::goroutines(2);
  release.close();
  std::string header = "goroutine " + std::to_string(id.load()) + " [";
  auto at = dump.find(header);
  ASSERT_NE(at, std::string::npos) << dump;
  auto end = dump.find("\n\n", at);
  std::string block = dump.substr(at, end == std::string::npos ? std::string::npos : end - at);
  EXPECT_NE(block.find("runtime_test.cpp:" + std::to_string(line)), std::string::npos) << block;
}

TEST_P(runtime, ids_are_zero_on_threads_and_unique_in_goroutines) {
  EXPECT_EQ(goro::this_goroutine::id(), 0u);
  constexpr int n = 500;
  std::mutex mu;
  std::set<std::uint64_t> ids;
  goro::wait_group wg;
  for (int i = 0; i < n; ++i) {
    wg.go([&] {
      std::uint64_t id = goro::this_goroutine::id();
      std::lock_guard lk(mu);
      ids.insert(id);
    });
  }
  wg.wait();
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(ids.count(0), 0u);
}

TEST_P(runtime, num_goroutine_counts_parked_goroutines) {
  std::size_t before = goro::num_goroutine();
  goro::wait_group gate, started, finished;
  gate.add(1);
  constexpr int n = 200;
  started.add(n);
  finished.add(n);
  for (int i = 0; i < n; ++i) {
    goro::go([&] {
      started.done();
      gate.wait();
      finished.done();
    });
  }
  started.wait();
  EXPECT_GE(goro::num_goroutine(), before + n);
  gate.done();
  finished.wait();
  EXPECT_TRUE(eventually([&] { return goro::num_goroutine() <= before; }));
}

TEST_P(runtime, yield_lets_others_run_on_one_processor) {
  // Two goroutines on one processor each loop until the other has made progress; on
  // one processor that can only end if yield lets the other one run.
  goro::set_max_procs(1);
  std::atomic<int> turns[2] = {0, 0};
  std::atomic<bool> interleaved{false};
  auto deadline = steady::now() + 10s;
  goro::wait_group wg;
  for (int me = 0; me < 2; ++me) {
    wg.go([&, me] {
      for (int i = 0;; ++i) {
        int other = turns[1 - me].load();
        turns[me].fetch_add(1);
        goro::yield();
        if (turns[1 - me].load() != other) interleaved = true;
        if ((i >= 100 && turns[1 - me].load() >= 100) || steady::now() > deadline) break;
      }
    });
  }
  wg.wait();
  EXPECT_TRUE(interleaved);
  EXPECT_GE(turns[0].load(), 100);
  EXPECT_GE(turns[1].load(), 100);
  goro::yield();  // from a plain thread: just std::this_thread::yield
}

TEST_P(runtime, max_procs_reports_what_was_set) {
  EXPECT_EQ(goro::max_procs(), GetParam());
  EXPECT_THROW(goro::set_max_procs(0), goro::panic_error);
  EXPECT_THROW(goro::set_max_procs(-3), goro::panic_error);
  EXPECT_EQ(goro::max_procs(), GetParam());
}

TEST_P(runtime, changing_processors_while_goroutines_run) {
  std::atomic<bool> stop{false};
  std::atomic<long> work{0};
  goro::wait_group wg;
  for (int i = 0; i < 8; ++i) {
    wg.go([&] {
      while (!stop.load()) {
        work.fetch_add(1);
        goro::yield();
      }
    });
  }
  for (int n : {1, 3, 2, 4, 1, GetParam()}) {
    goro::set_max_procs(n);
    long at = work.load();
    EXPECT_TRUE(eventually([&] { return work.load() > at + 100; })) << "stalled at " << n;
  }
  stop = true;
  wg.wait();
}

TEST_P(runtime, invalid_stack_size_is_a_panic) {
  goro::spawn_options tiny;
  tiny.stack_size = 1024;
  EXPECT_THROW(goro::go(tiny, [] {}), goro::panic_error);
  goro::spawn_options huge;
  huge.stack_size = std::size_t{4} << 30;
  EXPECT_THROW(goro::go(huge, [] {}), goro::panic_error);
}

// Uses about `bytes` of stack, in frames the optimiser cannot elide.
__attribute__((noinline)) int use_stack(std::size_t bytes) {
  volatile char frame[1024];
  keep_whole(frame);
  frame[0] = static_cast<char>(bytes);
  frame[1023] = 1;
  if (bytes <= 1024) return frame[0] + frame[1023];
  return use_stack(bytes - 1024) + frame[1023];
}

TEST_P(runtime, spawn_options_give_a_bigger_stack_and_a_name) {
  goro::spawn_options opts;
  opts.name = "deep";
  opts.stack_size = 1 << 20;
  goro::wait_group wg;
  std::atomic<int> result{0};
  wg.add(1);
  goro::go(opts, [&] {
    result = use_stack(600 * 1024);
    wg.done();
  });
  wg.wait();
  EXPECT_GT(result.load(), 0);
}

TEST_P(runtime, goroutines_migrate_between_threads_and_keep_their_state) {
  // With one processor there is one worker thread, so there is nowhere to migrate to.
  if (GetParam() < 2) GTEST_SKIP() << "migration needs two processors";
  // Sleepers park on one processor's timer heap; whichever worker is free when the
  // timer is due fires it and runs the goroutine, so they keep changing threads.
  std::atomic<int> migrations{0};
  std::atomic<bool> consistent{true};
  goro::wait_group wg;
  auto until = steady::now() + 20s;
  for (int i = 0; i < 4; ++i) {
    wg.go([&, i] {
      std::uint64_t me = goro::this_goroutine::id();
      while (migrations.load() < 200 && steady::now() < until) {
        auto busy_until = steady::now() + std::chrono::microseconds(20 + 40 * i);
        while (steady::now() < busy_until) {
        }
        long before = os_thread_id();
        this_threads_canary() = static_cast<int>(before);
        goro::sleep(200us);
        long after = os_thread_id();
        if (after != before) {
          migrations.fetch_add(1);
          // The thread_local now belongs to another thread: it was not written here.
          if (this_threads_canary() == static_cast<int>(before)) consistent = false;
        }
        if (goro::this_goroutine::id() != me) consistent = false;
      }
    });
  }
  wg.wait();
  EXPECT_GE(migrations.load(), 200) << "goroutines never resumed on another thread";
  EXPECT_TRUE(consistent);
}

TEST_P(runtime, exception_state_follows_a_goroutine_across_threads) {
  // A goroutine that parks inside a catch block and resumes elsewhere still rethrows
  // its own exception; std::uncaught_exceptions belongs to the goroutine.
  std::atomic<int> ok{0};
  goro::wait_group wg;
  constexpr int n = 16;
  for (int i = 0; i < n; ++i) {
    wg.go([&, i] {
      try {
        try {
          throw std::runtime_error("mine " + std::to_string(i));
        } catch (const std::runtime_error&) {
          for (int k = 0; k < 20; ++k) {
            goro::sleep(20us);
            goro::yield();
          }
          throw;
        }
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "mine " + std::to_string(i)) ok.fetch_add(1);
      }
      struct checks_unwinding {
        std::atomic<int>* ok;
        ~checks_unwinding() {
          goro::yield();
          if (std::uncaught_exceptions() == 1) ok->fetch_add(1);
        }
      };
      try {
        checks_unwinding c{&ok};
        throw 7;
      } catch (int) {
      }
    });
  }
  wg.wait();
  EXPECT_EQ(ok.load(), 2 * n);
}

TEST_P(runtime, floating_point_control_state_belongs_to_each_goroutine) {
  // The rounding mode lives in MXCSR and the x87 control word, which the ABI says a
  // call preserves: a goroutine that changes it must not leak it to others.
  std::atomic<int> wrong{0};
  goro::wait_group wg;
  for (int i = 0; i < 8; ++i) {
    wg.go([&, i] {
      int mode = i % 2 ? FE_UPWARD : FE_TONEAREST;
      std::fesetround(mode);
      for (int k = 0; k < 200; ++k) {
        goro::yield();
        if (k % 50 == 0) goro::sleep(10us);
        if (std::fegetround() != mode) wrong.fetch_add(1);
      }
      std::fesetround(FE_TONEAREST);
    });
  }
  wg.wait();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(runtime_run, returns_the_exit_code_of_main) {
  EXPECT_EQ(goro::run([] { return 7; }), 7);
  EXPECT_EQ(goro::run([] {}), 0);
  int ran_in_goroutine = -1;
  goro::run([&] { ran_in_goroutine = goro::this_goroutine::id() != 0; });
  EXPECT_EQ(ran_in_goroutine, 1);
}

TEST(runtime_run, called_from_a_goroutine_is_a_panic) {
  bool threw = false;
  goro::run([&] {
    try {
      goro::run([] {});
    } catch (const goro::panic_error&) {
      threw = true;
    }
  });
  EXPECT_TRUE(threw);
}

TEST(runtime_run, warns_about_abandoned_goroutines) {
  EXPECT_EXIT(
      {
        unsetenv("GORO_EXIT_CHECK");
        goro::run([] {
          goro::wait_group started;
          started.add(1);
          goro::go([&] {
            started.done();
            goro::sleep(1h);
          });
          started.wait();
          goro::sleep(100ms);  // normally parked in sleep by now; a loaded machine may lag
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "main returned with 1 goroutine still running \\(abandoned\\); the oldest, goroutine "
      "[0-9]+ \\[(sleep|running|runnable)\\], was started at .*runtime_test.cpp:[0-9]+");
}

TEST(runtime_run, exit_check_off_is_silent) {
  EXPECT_EXIT(
      {
        setenv("GORO_EXIT_CHECK", "off", 1);
        goro::run([] { goro::go([] { goro::sleep(1h); }); });
        std::fprintf(stderr, "done\n");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "^done\n$");
}

TEST(runtime_panic, exception_escaping_a_goroutine_aborts_with_its_story) {
  EXPECT_DEATH(
      {
        goro::spawn_options opts;
        opts.name = "thrower";
        goro::go(opts, [] { throw std::runtime_error("boom"); });
        std::this_thread::sleep_for(10s);
      },
      "panic: boom \\[std::runtime_error\\]\n\ngoroutine [0-9]+ \\[running\\]:\n  name: "
      "thrower\n  thrown at:\n(.|\n)*created by .*\n\t.*runtime_test.cpp:[0-9]+");
}

}  // namespace
