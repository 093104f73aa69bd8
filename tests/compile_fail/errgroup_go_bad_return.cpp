// An errgroup task returns goro::error (nil for success) or void.
// expect-error: the task must return goro::error \(nil for success\) or void
#include <goro/errgroup.hpp>

int main() {
  goro::errgroup g;
  g.go([] { return 42; });  // error-here
  (void)g.wait();
}
