// Values are moved in and out of a channel: its element type cannot be const.
// expect-error: T is a non-const object type
#include <goro/chan.hpp>

int main() {
  auto ch = goro::make_chan<const int>(1);  // error-here
  (void)ch;
}
