// case_send rejects a pointer converted to bool (narrowing for T{v} since C++20).
// expect-error: goro::case_send: narrowing conversion to the channel's element type
#include <goro/select.hpp>

int main() {
  auto flags = goro::make_chan<bool>(1);
  int x = 0;
  return goro::select(goro::case_send(flags, &x));  // error-here
}
