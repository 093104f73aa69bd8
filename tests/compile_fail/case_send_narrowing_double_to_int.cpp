// case_send rejects a narrowing arithmetic conversion, as T{v} does: 2.9 would arrive
// as 2.
// expect-error: goro::case_send: narrowing conversion to the channel's element type
#include <goro/select.hpp>

int main() {
  auto ch = goro::make_chan<int>(1);
  return goro::select(goro::case_send(ch, 2.9));  // error-here
}
