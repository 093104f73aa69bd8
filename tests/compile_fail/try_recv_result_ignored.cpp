// The results of try_recv, try_send, recv(ctx) and send(ctx, v) are [[nodiscard]]: a
// value received and dropped is lost. Shown as an error here (the build warns).
// expect-error: ignoring return value|nodiscard
#pragma GCC diagnostic error "-Wunused-result"
#include <goro/chan.hpp>

int main() {
  auto ch = goro::make_chan<int>(1);
  ch.try_recv();  // error-here
}
