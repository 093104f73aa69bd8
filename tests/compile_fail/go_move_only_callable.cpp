// A move-only lambda passed as an lvalue: go would have to copy it.
// expect-error: this one cannot be copied: pass it with std::move
#include <goro/runtime.hpp>

#include <memory>

int main() {
  auto f = [p = std::make_unique<int>(1)] { (void)p; };
  goro::go(f);  // error-here
}
