// wait_group::go takes arguments as goro::go does, with the same checks.
// expect-error: wrap that argument in std::ref
#include <goro/wait_group.hpp>

void worker(int& slot) { slot = 1; }

int main() {
  goro::wait_group wg;
  int slot = 0;
  wg.go(worker, slot);  // error-here
  wg.wait();
}
