// Seven parameters, six arguments: one sentence, not a list of overloads.
// expect-error: f cannot be called with \(copies of\) these arguments
// max-lines: 20
#include <goro/runtime.hpp>

void seven(int, int, int, int, int, int, int) {}

int main() {
  goro::go(seven, 1, 2, 3, 4, 5, 6);  // error-here
}
