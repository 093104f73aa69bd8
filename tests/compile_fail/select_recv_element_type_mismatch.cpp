// select_recv's channels and its std::optional must have the same element type.
// expect-error: goro::select_recv takes a forward range of goro::chan<T> or goro::recv_chan<T> lvalues
#include <goro/select.hpp>

#include <vector>

int main() {
  std::vector<goro::chan<int>> inputs{goro::make_chan<int>(1)};
  std::optional<long> v;
  return goro::select_recv(inputs, v, goro::case_default());  // error-here
}
