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

// g.go(f, args...): arguments copied per task, move-only callables and arguments
// moved in (a std::function could not hold them), and every task's callable and
// arguments destroyed by the time wait() returns.
TEST_P(errgroup, go_takes_arguments_and_move_only_tasks) {
  auto alive = std::make_shared<int>(0);
  goro::errgroup g;
  std::atomic<int> sum{0};
  for (int i = 1; i <= 10; ++i) {
    g.go([&sum](int v, std::shared_ptr<int> keep) -> goro::error {
      sum += v;
      (void)keep;
      return {};
    }, i, alive);
  }
  g.go([p = std::make_unique<int>(100), &sum, keep = alive] { sum += *p; (void)keep; });
  EXPECT_TRUE(g.try_go([](std::unique_ptr<int> p) -> goro::error {
    return *p == 7 ? goro::error{} : goro::make_error("wrong argument");
  }, std::make_unique<int>(7)));
  EXPECT_FALSE(g.wait());
  EXPECT_EQ(sum.load(), 155);
  EXPECT_EQ(alive.use_count(), 1) << "a task outlived wait()";
}

// The first error of tasks started with arguments is the group's.
TEST_P(errgroup, a_task_with_arguments_reports_its_error) {
  goro::errgroup g;
  auto fail_at = [](int i, int bad) -> goro::error {
    return i == bad ? goro::make_error("task " + std::to_string(i)) : goro::error{};
  };
  for (int i = 0; i < 5; ++i) g.go(fail_at, i, 3);
  goro::error err = g.wait();
  ASSERT_TRUE(err);
  EXPECT_EQ(err.message(), "task 3");
}

}  // namespace
