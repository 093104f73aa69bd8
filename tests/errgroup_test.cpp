// errgroup_test — goro::errgroup's limit: when set_limit may change it (x/sync's
// SetLimit). The group's other behaviour is tested with contexts in context_test.
#include <string>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class errgroup : public procs_test {};
GORO_PROCS_SUITE(errgroup);

TEST_P(errgroup, set_limit_with_no_limit_set_is_allowed_while_tasks_run) {
  goro::errgroup g;
  auto gate = goro::make_chan<int>();
  g.go([gate] { gate.recv(); });
  EXPECT_NO_THROW(g.set_limit(2));
  gate.close();
  EXPECT_FALSE(g.wait());
}

TEST_P(errgroup, removing_the_limit_never_panics) {
  goro::errgroup g;
  g.set_limit(1);
  auto gate = goro::make_chan<int>();
  g.go([gate] { gate.recv(); });  // holds the only token
  EXPECT_NO_THROW(g.set_limit(-1));
  // No limit now: these start although the first still runs.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(g.try_go([gate] { gate.recv(); }));
  gate.close();
  EXPECT_FALSE(g.wait());
}

TEST_P(errgroup, changing_a_limit_whose_tokens_are_held_panics) {
  goro::errgroup g;
  g.set_limit(2);
  auto gate = goro::make_chan<int>();
  g.go([gate] { gate.recv(); });
  try {
    g.set_limit(3);
    ADD_FAILURE() << "set_limit with a token held returned";
  } catch (const goro::panic_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "errgroup: modify limit while 1 goroutines in the group are still active");
  }
  gate.close();
  EXPECT_FALSE(g.wait());
  EXPECT_NO_THROW(g.set_limit(3));  // every token returned
}

}  // namespace
