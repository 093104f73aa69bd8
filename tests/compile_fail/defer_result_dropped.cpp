// `goro::defer(f);` as a statement runs f at once: the result is [[nodiscard]].
// expect-error: ignoring return value|unused-result|nodiscard
#pragma GCC diagnostic error "-Wunused-result"
#include <goro/defer.hpp>

int main() {
  int calls = 0;
  goro::defer([&] { ++calls; });  // error-here
  return calls;
}
