// A case kept in a variable: it does not keep its channel alive, and a send case's
// value is moved out by the first select that runs it.
// expect-error: make the cases in the call
#include <goro/select.hpp>

int main() {
  auto r = goro::case_recv(goro::make_chan<int>(1));  // the channel is gone after this line
  return goro::select(r, goro::case_default());  // error-here
}
