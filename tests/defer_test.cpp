// defer_test — goro/defer.hpp: Go's defer as a scope guard.
#include <stdexcept>
#include <string>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

TEST(defer, runs_at_scope_exit_in_reverse_order) {
  std::string order;
  {
    auto a = goro::defer([&] { order += "a"; });
    auto b = goro::defer([&] { order += "b"; });
    order += "body,";
  }
  EXPECT_EQ(order, "body,ba");  // Go: deferred calls run last-in, first-out
}

TEST(defer, runs_when_an_exception_leaves_the_scope) {
  bool ran = false;
  try {
    auto d = goro::defer([&] { ran = true; });
    throw std::runtime_error("fail");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(ran);
}

TEST(defer, cancel_drops_the_call_and_run_makes_it_now_once) {
  int calls = 0;
  {
    auto d = goro::defer([&] { ++calls; });
    d.cancel();
  }
  EXPECT_EQ(calls, 0);
  {
    auto d = goro::defer([&] { ++calls; });
    std::move(d).run();
    EXPECT_EQ(calls, 1);
  }
  EXPECT_EQ(calls, 1);
}

// A moved-from deferred does not call; the one it moved to does, once.
TEST(defer, moving_transfers_the_call) {
  int calls = 0;
  {
    auto outer = [&] { return goro::defer([&] { ++calls; }); }();
    EXPECT_EQ(calls, 0);
  }
  EXPECT_EQ(calls, 1);
}

// Go's `defer close(out)` and `defer wg.Done()` in a producer goroutine: the consumer
// sees every value, then the close, even when the producer leaves early.
TEST(defer, closes_a_channel_and_signals_a_wait_group_from_a_goroutine) {
  auto out = goro::make_chan<int>();
  goro::wait_group wg;
  wg.add(1);
  goro::go([out, &wg] {
    auto done = goro::defer([&] { wg.done(); });
    auto closer = goro::defer([&] { out.close(); });
    for (int i = 0;; ++i) {
      if (i == 3) return;  // the early return still closes and signals
      out.send(i);
    }
  });
  std::vector<int> got;
  for (int v : out) got.push_back(v);
  wg.wait();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
}

// An exception from the deferred call leaves the destructor, like a panic in a
// deferred function.
TEST(defer, an_exception_from_the_call_propagates) {
  auto ch = goro::make_chan<int>();
  ch.close();
  EXPECT_THROW({ auto d = goro::defer([&] { ch.close(); }); }, goro::panic_error);
}

}  // namespace
