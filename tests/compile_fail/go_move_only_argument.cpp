// A move-only argument passed as an lvalue: go would have to copy it.
// expect-error: one of them is move-only: pass it with std::move
#include <goro/runtime.hpp>

#include <memory>

void take(std::unique_ptr<int> p) { (void)p; }

int main() {
  auto p = std::make_unique<int>(1);
  goro::go(take, p);  // error-here
}
