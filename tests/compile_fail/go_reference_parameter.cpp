// goro::go copies its arguments like std::thread: a reference parameter needs std::ref.
// expect-error: wrap that argument in std::ref
#include <goro/runtime.hpp>

void bump(int& x) { ++x; }

int main() {
  int counter = 0;
  goro::go(bump, counter);  // error-here
}
