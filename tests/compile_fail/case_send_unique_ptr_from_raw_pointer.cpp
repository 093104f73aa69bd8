// case_send converts only implicitly: a raw pointer does not become a unique_ptr
// (which would take ownership of a stack address here).
// expect-error: goro::case_send: the value does not convert implicitly to the channel's element type
#include <goro/select.hpp>

#include <memory>

int main() {
  auto ch = goro::make_chan<std::unique_ptr<int>>(1);
  int on_stack = 1;
  return goro::select(goro::case_send(ch, &on_stack));  // error-here
}
