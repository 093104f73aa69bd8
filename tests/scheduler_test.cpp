// scheduler_test — properties of the scheduler as a whole: work is spread over the
// processors, and an idle runtime sleeps. Timing-sensitive, so ctest runs these alone
// (RUN_SERIAL): a test running beside them on a 2-core machine would steal the CPU.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "runtime/run_queue.hpp"
#include "support/fixture.hpp"

namespace {

using namespace goro_test;

TEST(scheduler, two_processors_run_two_cpu_bound_goroutines_at_once) {
  goro::set_max_procs(2);
  auto burn = [] {
    volatile std::uint64_t x = 0;
    for (std::uint64_t i = 0; i < 250'000'000; ++i) x = x + i;
  };
  // Best of five: the machine is shared, and one slow attempt says nothing. Each attempt
  // also times two plain threads: a virtual machine whose two vCPUs share one core for a
  // while runs those no faster than one after the other either, and then nothing here
  // can show goro's parallelism.
  double best = 10, threads_best = 10;
  bool different_threads = false;
  for (int attempt = 0; attempt < 5 && (best > 0.75 || !different_threads); ++attempt) {
    goro::wait_group wg;
    auto t0 = steady::now();
    wg.go([&] {
      burn();
      burn();
    });
    wg.wait();
    double serial = ms_since(t0);
    std::atomic<long> tid[2] = {0, 0};
    t0 = steady::now();
    for (int i = 0; i < 2; ++i) {
      wg.go([&, i] {
        burn();
        tid[i] = static_cast<long>(syscall(SYS_gettid));
      });
    }
    wg.wait();
    double parallel = ms_since(t0);
    best = std::min(best, parallel / serial);
    if (tid[0].load() != tid[1].load()) different_threads = true;
    t0 = steady::now();
    std::thread a(burn), b(burn);
    a.join();
    b.join();
    threads_best = std::min(threads_best, ms_since(t0) / serial);
  }
  EXPECT_TRUE(different_threads) << "both goroutines always ran on one thread";
  if (best >= 0.75 && threads_best >= 0.75) {
    GTEST_SKIP() << "the machine ran two plain threads no faster than one after the other ("
                 << threads_best << " of the serial time; goroutines " << best << ")";
  }
  EXPECT_LT(best, 0.75) << "two goroutines did not run in parallel on two processors (plain "
                           "threads: "
                        << threads_best << " of the serial time)";
}

// CPU time this process has used, in ms.
double process_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

TEST(scheduler, an_idle_runtime_burns_no_cpu) {
  goro::wait_group wg;
  for (int i = 0; i < 1000; ++i) wg.go([] { goro::sleep(1ms); });
  wg.wait();
  std::this_thread::sleep_for(200ms);  // spinning ends, idle-time work is done
  double before = process_cpu_ms();
  std::this_thread::sleep_for(1s);
  double used = process_cpu_ms() - before;
  EXPECT_LT(used, 20.0) << "an idle runtime used " << used << " ms of CPU in 1 s";
}

TEST(scheduler, a_goroutine_blocked_in_a_system_call_costs_no_cpu_when_nothing_else_runs) {
  // Go's retake hands a processor in a system call off after 10 ms even with nothing
  // waiting, so that the monitor may sleep; goro does the same.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  goro::wait_group wg;
  for (int i = 0; i < 3; ++i) {
    wg.go([fd = fds[0]] {
      char c;
      (void)!read(fd, &c, 1);
    });
  }
  std::this_thread::sleep_for(300ms);
  double before = process_cpu_ms();
  std::this_thread::sleep_for(1s);
  double used = process_cpu_ms() - before;
  ASSERT_EQ(write(fds[1], "xyz", 3), 3);
  wg.wait();
  close(fds[0]);
  close(fds[1]);
  EXPECT_LT(used, 20.0) << "goroutines blocked in read cost " << used << " ms of CPU in 1 s";
}

TEST(scheduler, a_goroutine_from_a_plain_thread_runs_while_every_processor_is_busy) {
  // The global queue (where a plain thread's spawn goes) is checked every 61st schedule,
  // so busy processors whose own queues never empty still take it.
  for (int procs : {1, 2}) {
    goro::set_max_procs(procs);
    std::atomic<bool> stop{false}, ran{false};
    goro::wait_group busy;
    for (int i = 0; i < procs + 1; ++i) {
      busy.go([&] {
        while (!stop.load()) goro::yield();
      });
    }
    std::this_thread::sleep_for(20ms);
    auto t0 = steady::now();
    goro::go([&] { ran = true; });
    bool in_time = eventually([&] { return ran.load(); }, 3000ms);
    double waited = ms_since(t0);
    stop = true;
    busy.wait();
    EXPECT_TRUE(in_time) << procs << " processors";
    EXPECT_LT(waited, 1000.0) << procs << " processors";
  }
  goro::set_max_procs(2);
}

// Go's newproc puts the new goroutine first in line and lets the spawner go on: a
// spawning loop runs until its time slice ends, its overflow going to the global
// queue. A spawner that yielded whenever its processor's ring was full went to the
// back of the global queue, behind its own overflow: with goroutines that yield in a
// loop it made about one spawn per 5 ms (3,000 spawns took 13 s instead of 3 ms).
TEST(scheduler, a_spawning_loop_is_not_starved_by_what_it_spawned) {
#if !defined(NDEBUG) || defined(GORO_ASAN) || defined(GORO_TSAN)
  // Each spawned goroutine computes ~6.5 us natively between yields; ThreadSanitizer's
  // debug build makes it ~20x longer, and the time slices the loop gets then make it
  // take a minute, as they would in Go.
  GTEST_SKIP() << "times the loop against goroutines computing microseconds natively";
#endif
  goro::set_max_procs(1);
  constexpr long n = 3'000;
  std::atomic<bool> stop{false};
  double loop_ms = 0;
  goro::wait_group wg, spawner;
  spawner.go([&] {
    auto t0 = steady::now();
    for (long i = 0; i < n; ++i) {
      wg.go([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          volatile std::uint64_t x = 1;
          for (int k = 0; k < 5000; ++k) x = x * 6364136223846793005ULL + 1;
          goro::yield();
        }
      });
    }
    loop_ms = ms_since(t0);
    stop = true;
  });
  spawner.wait();
  wg.wait();
  goro::set_max_procs(2);
  EXPECT_LT(loop_ms, 1000.0) << "spawning " << n << " goroutines took " << loop_ms << " ms";
}

// Two goroutines that compute briefly and yield, queued on one processor behind a
// third that computed for 30 ms while the other processor was busy too: the idle
// processor must take one of them, as Go's runqsteal does. A thief that left every
// goroutine queued during its victim's last runs never did: each yield queues the
// goroutine anew, and both ran on one thread for as long as they ran.
TEST(scheduler, goroutines_that_yield_in_a_loop_spread_over_idle_processors) {
  goro::set_max_procs(2);
  auto work = [](long n) {
    volatile std::uint64_t x = 1;
    for (long i = 0; i < n; ++i) x = x * 6364136223846793005ULL + 1;
  };
  std::atomic<bool> hog_on{false};
  goro::wait_group start, done;
  start.add(1);
  done.go([&] {  // keeps a processor busy for 30 ms
    hog_on = true;
    auto t0 = steady::now();
    while (ms_since(t0) < 30) work(1000);
  });
  while (!hog_on.load()) std::this_thread::sleep_for(100us);
  std::atomic<long> tid[2] = {0, 0};
  std::atomic<long> same{0}, samples{0};
  for (int i = 0; i < 2; ++i) {
    done.go([&, i] {
      start.wait();
      for (long j = 0; j < 1'000'000; ++j) {
        work(100);
        if (j % 1024 == 0) {
          tid[i] = static_cast<long>(syscall(SYS_gettid));
          ++samples;
          if (tid[0].load() == tid[1].load()) ++same;
        }
        goro::yield();
      }
    });
  }
  start.done();
  done.wait();
  EXPECT_LT(same.load() * 2, samples.load())
      << same.load() << " of " << samples.load()
      << " samples saw both yielding goroutines on one thread";
}

}  // namespace

namespace goro::detail {
namespace {

// The thief's side of steal_rule, on queues driven by hand: a fake schedtick for each
// owner, and goroutine pointers that are only compared.
class steal_rule_test : public ::testing::Test {
 protected:
  void SetUp() override {
    victim.bind_tick(&victim_tick);
    thief.bind_tick(&thief_tick);
  }
  goroutine* g(int i) { return reinterpret_cast<goroutine*>(&items[i]); }
  void queue(int i, bool next = false) { victim.push(g(i), next, overflow); }

  std::atomic<std::uint64_t> victim_tick{1000}, thief_tick{0};
  local_run_queue victim, thief;
  global_run_queue overflow;
  int items[8] = {};
  static constexpr std::uint32_t settle = steal_rule::settle_runs;
};

TEST_F(steal_rule_test, goroutines_queued_during_the_victims_last_runs_stay) {
  queue(0);
  queue(1);
  queue(2);
  EXPECT_EQ(thief.steal_from(victim, steal_rule{}), nullptr);
  victim_tick = 1000 + settle - 1;
  EXPECT_EQ(thief.steal_from(victim, steal_rule{}), nullptr);
  EXPECT_EQ(victim.size(), 3u);
  // Settled: about half of them (2 of 3), oldest first; the thief runs the last it took.
  victim_tick = 1000 + settle;
  EXPECT_EQ(thief.steal_from(victim, steal_rule{}), g(1));
  EXPECT_EQ(thief.pop(), g(0));
  EXPECT_EQ(victim.pop(), g(2));
}

TEST_F(steal_rule_test, only_the_settled_head_of_the_ring_is_taken) {
  queue(0);
  queue(1);
  victim_tick = 1000 + settle - 2;
  queue(2);
  queue(3);
  queue(4);
  victim_tick = 1000 + settle;  // 0 and 1 settled; 2, 3 and 4 queued 2 runs ago
  EXPECT_EQ(thief.steal_from(victim, steal_rule{}), g(0));
  EXPECT_EQ(thief.pop(), nullptr);
  EXPECT_EQ(victim.size(), 4u);
}

TEST_F(steal_rule_test, goroutines_seen_before_the_thief_slept_may_be_taken) {
  queue(0);
  queue(1);
  queue(2);
  steal_rule after{.seen = true, .seen_tail = victim.tail()};
  queue(3);
  queue(4);
  queue(5);
  victim_tick += 5;  // the victim kept scheduling: not stuck
  // 0, 1, 2 waited through the sleep: half of them; 3, 4, 5 came after it.
  EXPECT_EQ(thief.steal_from(victim, after), g(1));
  EXPECT_EQ(thief.pop(), g(0));
  EXPECT_EQ(victim.size(), 4u);
}

TEST_F(steal_rule_test, a_stuck_victim_gives_up_anything_and_runnext_last) {
  queue(0);
  queue(1);
  queue(2, /*next=*/true);
  steal_rule stuck{.runnext = true, .any = true};
  EXPECT_EQ(thief.steal_from(victim, stuck), g(0));  // the ring first: half of 2
  EXPECT_EQ(thief.pop(), nullptr);
  EXPECT_EQ(thief.steal_from(victim, stuck), g(1));
  EXPECT_EQ(thief.steal_from(victim, stuck), g(2));  // then runnext
  EXPECT_TRUE(victim.empty());
  // Without `runnext`, a victim's runnext stays.
  queue(3, /*next=*/true);
  EXPECT_EQ(thief.steal_from(victim, steal_rule{.any = true}), nullptr);
  EXPECT_EQ(victim.pop(), g(3));
}

TEST_F(steal_rule_test, goroutines_a_thief_took_are_warm_on_the_thief) {
  for (int i = 0; i < 4; ++i) queue(i);
  victim_tick += settle;
  EXPECT_EQ(thief.steal_from(victim, steal_rule{}), g(1));  // 0 queued on the thief
  local_run_queue third;
  std::atomic<std::uint64_t> third_tick{0};
  third.bind_tick(&third_tick);
  EXPECT_EQ(third.steal_from(thief, steal_rule{}), nullptr);
  thief_tick += settle;
  EXPECT_EQ(third.steal_from(thief, steal_rule{}), g(0));
}

}  // namespace
}  // namespace goro::detail
