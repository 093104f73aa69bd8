// after_func copies f like go does: a move-only callable needs std::move.
// expect-error: cannot be copied: pass it with std::move
#include <goro/time.hpp>

#include <memory>

int main() {
  auto f = [p = std::make_unique<int>(1)] { (void)p; };
  (void)goro::after_func(std::chrono::seconds(1), f);  // error-here
}
