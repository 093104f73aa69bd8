// A select has at most one default, as in Go.
// expect-error: goro::select: at most one case_default\(\)
#include <goro/select.hpp>

int main() {
  auto a = goro::make_chan<int>(1);
  return goro::select(goro::case_recv(a), goro::case_default(), goro::case_default());  // error-here
}
