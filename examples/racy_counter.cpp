// racy_counter — the classic unsynchronised counter, and three correct versions.
//   racy_counter racy | atomic | mutex | channel
// Built with -DGORO_SANITIZE=thread, `racy` is reported by ThreadSanitizer as a data
// race between two goroutines; the others report nothing (CI checks both).
#include <goro/goro.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "racy";
  goro::set_max_procs(2);  // two goroutines really run at once
  return goro::run([mode] {
    constexpr int goroutines = 4, iters = 20'000;
    goro::wait_group wg;
    long result = 0;
    if (std::strcmp(mode, "racy") == 0) {
      long counter = 0;
      // Make sure two of them really run at once, on two threads: each spins (without
      // yielding) until a second one has arrived, which the other processor can only
      // do by stealing it. The flag is relaxed, so it orders nothing: the increments
      // that follow are as unsynchronised as they look.
      std::atomic<int> arrived{0};
      for (int g = 0; g < goroutines; ++g) {
        wg.go([&] {
          arrived.fetch_add(1, std::memory_order_relaxed);
          while (arrived.load(std::memory_order_relaxed) < 2) {
          }
          for (int i = 0; i < iters; ++i) ++counter;  // data race
        });
      }
      wg.wait();
      result = counter;
    } else if (std::strcmp(mode, "atomic") == 0) {
      std::atomic<long> counter{0};
      for (int g = 0; g < goroutines; ++g) {
        wg.go([&] {
          for (int i = 0; i < iters; ++i) counter.fetch_add(1, std::memory_order_relaxed);
        });
      }
      wg.wait();
      result = counter.load();
    } else if (std::strcmp(mode, "mutex") == 0) {
      goro::mutex mu;
      long counter = 0;
      for (int g = 0; g < goroutines; ++g) {
        wg.go([&] {
          for (int i = 0; i < iters; ++i) {
            std::lock_guard lk(mu);
            ++counter;
          }
        });
      }
      wg.wait();
      result = counter;
    } else {
      auto increments = goro::make_chan<int>(64);
      long counter = 0;  // owned by the receiving goroutine
      goro::wait_group owner;
      owner.go([&] {
        for (int d : increments) counter += d;
      });
      for (int g = 0; g < goroutines; ++g) {
        wg.go([&] {
          for (int i = 0; i < iters; ++i) increments.send(1);
        });
      }
      wg.wait();
      increments.close();
      owner.wait();
      result = counter;
    }
    std::printf("%s: counter = %ld (want %d)\n", mode, result, goroutines * iters);
  });
}
