// After select_recv's list come cases, not channels.
// expect-error: goro::select_recv: after the list come cases
#include <goro/select.hpp>

#include <vector>

int main() {
  std::vector<goro::chan<int>> inputs{goro::make_chan<int>(1)};
  auto stop = goro::make_chan<int>();
  std::optional<int> v;
  return goro::select_recv(inputs, v, stop);  // error-here
}
