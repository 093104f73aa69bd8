// An atomic (or a mutex) can be neither copied nor moved: go needs std::ref, not std::move.
// expect-error: can be neither copied nor moved from here.*std::ref
#include <goro/runtime.hpp>

#include <atomic>

void count(std::atomic<int>& n) { ++n; }

int main() {
  std::atomic<int> n{0};
  goro::go(count, n);  // error-here
}
