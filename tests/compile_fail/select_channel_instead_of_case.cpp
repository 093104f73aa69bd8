// goro::select given channels where cases were meant (Go's `case v := <-a:` is
// goro::case_recv(a, v) here): rejected with one sentence naming the case makers.
// expect-error: goro::select takes cases: goro::case_recv\(ch\), goro::case_send\(ch, v\), goro::case_default\(\)
#include <goro/select.hpp>

int main() {
  auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1);
  return goro::select(a, b);  // error-here
}
