// hello — a first goro program: goroutines, a wait_group and sleep.
#include <goro/goro.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main() {
  return goro::run([] {
    std::printf("goro: %d processors\n", goro::max_procs());
    goro::wait_group wg;
    for (int i = 1; i <= 5; ++i) {
      wg.add(1);  // before go(), so wait() cannot miss it
      // i is copied into the goroutine: each prints its own value.
      goro::go(
          [&wg](int n) {
            goro::sleep(n * 10ms);
            std::printf("goroutine %llu: worker %d done after %d ms\n",
                        static_cast<unsigned long long>(goro::this_goroutine::id()), n, n * 10);
            wg.done();
          },
          i);
    }
    wg.wait();
    std::printf("all workers done; %zu goroutine(s) left\n", goro::num_goroutine());
  });
}
