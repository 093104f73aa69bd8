// scheduler_test — properties of the scheduler as a whole: work is spread over the
// processors, and an idle runtime sleeps. Timing-sensitive, so ctest runs these alone
// (RUN_SERIAL): a test running beside them on a 2-core machine would steal the CPU.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

TEST(scheduler, two_processors_run_two_cpu_bound_goroutines_at_once) {
  goro::set_max_procs(2);
  auto burn = [] {
    volatile std::uint64_t x = 0;
    for (std::uint64_t i = 0; i < 250'000'000; ++i) x = x + i;
  };
  // Best of five: the machine is shared, and one slow attempt says nothing.
  double best = 10;
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
  }
  EXPECT_TRUE(different_threads) << "both goroutines always ran on one thread";
  EXPECT_LT(best, 0.75) << "two goroutines did not run in parallel on two processors";
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

}  // namespace
