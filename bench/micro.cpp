// goro-micro — Google Benchmark micro-benchmarks, each beside a std::thread baseline.
#include <benchmark/benchmark.h>
#include <goro/goro.hpp>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace {

// Spawning and joining 1,000 goroutines vs 1,000 threads.
void BM_goro_spawn_join_1000(benchmark::State& state) {
  for (auto _ : state) {
    goro::wait_group wg;
    for (int i = 0; i < 1000; ++i) wg.go([] {});
    wg.wait();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_goro_spawn_join_1000)->UseRealTime();

void BM_thread_spawn_join_1000(benchmark::State& state) {
  for (auto _ : state) {
    std::vector<std::thread> ts;
    ts.reserve(1000);
    for (int i = 0; i < 1000; ++i) ts.emplace_back([] {});
    for (auto& t : ts) t.join();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_thread_spawn_join_1000)->UseRealTime();

// A wait_group released by another goroutine vs by another thread.
void BM_goro_wait_group_handoff(benchmark::State& state) {
  for (auto _ : state) {
    goro::wait_group wg;
    wg.add(1);
    goro::go([&wg] { wg.done(); });
    wg.wait();
  }
}
BENCHMARK(BM_goro_wait_group_handoff)->UseRealTime();

void BM_thread_handoff(benchmark::State& state) {
  for (auto _ : state) {
    std::atomic<bool> flag{false};
    std::thread t([&] {
      flag.store(true);
      flag.notify_one();
    });
    flag.wait(false);
    t.join();
  }
}
BENCHMARK(BM_thread_handoff)->UseRealTime();

// Uncontended lock/unlock: goro::mutex vs std::mutex.
void BM_goro_mutex_uncontended(benchmark::State& state) {
  goro::mutex mu;
  for (auto _ : state) {
    mu.lock();
    mu.unlock();
  }
}
BENCHMARK(BM_goro_mutex_uncontended);

void BM_std_mutex_uncontended(benchmark::State& state) {
  std::mutex mu;
  for (auto _ : state) {
    mu.lock();
    mu.unlock();
  }
}
BENCHMARK(BM_std_mutex_uncontended);

// Read-lock/unlock: goro::rw_mutex vs std::shared_mutex.
void BM_goro_rw_mutex_read(benchmark::State& state) {
  goro::rw_mutex rw;
  for (auto _ : state) {
    rw.lock_shared();
    rw.unlock_shared();
  }
}
BENCHMARK(BM_goro_rw_mutex_read);

void BM_std_shared_mutex_read(benchmark::State& state) {
  std::shared_mutex rw;
  for (auto _ : state) {
    rw.lock_shared();
    rw.unlock_shared();
  }
}
BENCHMARK(BM_std_shared_mutex_read);

// A channel round trip between a goroutine and the benchmark thread vs a thread pair
// on std::mutex + std::condition_variable is left to goro-workloads pingpong (W2).

}  // namespace

BENCHMARK_MAIN();
