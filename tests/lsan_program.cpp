// lsan_program — run by ctest in the AddressSanitizer build, with leak detection on.
//
//   lsan_program parked   main returns from goro::run while 10 goroutines are parked,
//                         each holding heap objects: LeakSanitizer must find them
//                         reachable (goroutine stacks are root regions) and stay quiet.
//   lsan_program leak     the same, plus an allocation nothing points to: LeakSanitizer
//                         must still report it.
#include <goro/goro.hpp>

#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

void park_holding_heap_objects(goro::wait_group& holding, goro::chan<int> never) {
  auto owned = std::make_unique<std::vector<int>>(1000, 7);
  holding.done();
  never.recv();  // never sent to nor closed: parked until the process exits
  std::printf("unreachable %d\n", (*owned)[0]);
}

}  // namespace

int main(int argc, char** argv) {
  bool leak = argc > 1 && std::strcmp(argv[1], "leak") == 0;
  return goro::run([leak] {
    goro::wait_group holding;
    auto never = goro::make_chan<int>();
    for (int i = 0; i < 10; ++i) {
      holding.add(1);
      goro::go([&holding, never] { park_holding_heap_objects(holding, never); });
    }
    holding.wait();
    if (leak) {
      // On a plain thread that has ended by the time LeakSanitizer looks: a stale copy
      // of the pointer on a goroutine stack (a root region while its goroutine lives)
      // would hide the leak now and then.
      std::thread([] {
        int* lost = new int[16];
        lost[0] = 1;
        std::printf("leaked %d\n", lost[0]);
        lost = nullptr;  // the only pointer is gone
      }).join();
    }
    return 0;
  });
}
