// tsan_fiber_reuse — ThreadSanitizer builds only: the fibers of exited goroutines are
// reused (switch.cpp), and a reused fiber must start clean. Thousands of goroutines run
// one after another (each on a fiber an earlier one used), then two race on a counter:
// the race must be reported, and each stack in the report must end in one
// goroutine_entry frame, not in a pile of frames left behind by the fiber's earlier
// goroutines (which would also overflow the fiber's fixed-size shadow stack in time).
#include <goro/goro.hpp>

#include <atomic>
#include <cstdio>

int main() {
  goro::set_max_procs(2);
  return goro::run([] {
    for (int i = 0; i < 5'000; ++i) {
      goro::wait_group wg;
      wg.go([] {});
      wg.wait();
    }
    long counter = 0;
    std::atomic<int> arrived{0};
    goro::wait_group wg;
    for (int g = 0; g < 2; ++g) {
      wg.go([&] {
        // Both really run at once, on two threads (see examples/racy_counter.cpp).
        arrived.fetch_add(1, std::memory_order_relaxed);
        while (arrived.load(std::memory_order_relaxed) < 2) {
        }
        for (int i = 0; i < 20'000; ++i) ++counter;  // data race
      });
    }
    wg.wait();
    std::printf("counter %ld\n", counter);
  });
}
