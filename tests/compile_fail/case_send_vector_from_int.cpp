// case_send converts only implicitly: a 5 is not a std::vector<int> (the explicit
// constructor would make five zeros, where ch.send(5) does not compile).
// expect-error: goro::case_send: the value does not convert implicitly to the channel's element type
#include <goro/select.hpp>

#include <vector>

int main() {
  auto ch = goro::make_chan<std::vector<int>>(1);
  return goro::select(goro::case_send(ch, 5));  // error-here
}
