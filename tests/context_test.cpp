// context_test — goro::error, goro::context and goro::errgroup, from Go's semantics.
#include <atomic>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

inline const goro::context_key<std::string> request_id{"request_id"};
inline const goro::context_key<int> depth_key{"depth"};
inline const goro::context_key<std::string> other_key{"request_id"};  // same name, other key

class context : public procs_test {};
GORO_PROCS_SUITE(context);

TEST(error, nil_messages_wrapping_and_is) {
  goro::error nil;
  EXPECT_FALSE(nil);
  EXPECT_TRUE(nil.is(goro::error{}));
  auto base = goro::make_error("disk full");
  auto wrapped = goro::wrap(goro::wrap(base, "writing block"), "saving file");
  EXPECT_EQ(wrapped.message(), "saving file: writing block: disk full");
  EXPECT_TRUE(wrapped.is(base));
  EXPECT_FALSE(wrapped.is(goro::make_error("disk full"))) << "identity, not text";
  EXPECT_EQ(wrapped.unwrap().unwrap(), base);
  EXPECT_FALSE(goro::wrap(nil, "context")) << "wrapping nil stays nil";
  auto code = goro::error::from(std::make_error_code(std::errc::connection_refused));
  EXPECT_TRUE(goro::wrap(code, "dial").is(std::make_error_code(std::errc::connection_refused)));
  EXPECT_FALSE(goro::error::from(std::error_code{}));
  auto ex = goro::error::from(std::make_exception_ptr(std::runtime_error("boom")));
  EXPECT_EQ(ex.message(), "boom");
  EXPECT_TRUE(ex.exception() != nullptr);
  EXPECT_EQ(goro::canceled.message(), "context canceled");
  EXPECT_EQ(goro::deadline_exceeded.message(), "context deadline exceeded");
}

TEST_P(context, background_is_never_done) {
  auto bg = goro::background();
  EXPECT_FALSE(bg.err());
  EXPECT_FALSE(bg.deadline().has_value());
  EXPECT_FALSE(bg.done()) << "background's done() is the nil channel";
  EXPECT_FALSE(bg.stop_token().stop_possible());
  EXPECT_EQ(goro::select(goro::case_recv(bg.done()), goro::case_default()), 1);
}

TEST_P(context, cancel_closes_done_and_sets_err_idempotently) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  EXPECT_FALSE(ctx.err());
  goro::wait_group wg;
  std::atomic<bool> woke{false};
  wg.go([&, c = ctx] {
    c.done().recv();
    woke = true;
  });
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(woke.load());
  cancel();
  cancel();  // idempotent
  wg.wait();
  EXPECT_TRUE(woke.load());
  EXPECT_TRUE(ctx.err().is(goro::canceled));
  EXPECT_TRUE(goro::cause(ctx).is(goro::canceled));
}

TEST_P(context, done_in_a_select_wakes_a_parked_goroutine) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto jobs = goro::make_chan<int>();
  std::atomic<int> idx{-1};
  goro::wait_group wg;
  wg.go([&, c = ctx] {
    std::optional<int> job;
    idx = goro::select(goro::case_recv(jobs, job), goro::case_recv(c.done()));
  });
  std::this_thread::sleep_for(10ms);
  cancel();
  wg.wait();
  EXPECT_EQ(idx.load(), 1);
}

TEST_P(context, cancellation_reaches_a_deep_and_wide_tree) {
  auto [root, cancel] = goro::with_cancel(goro::background());
  // depth 100
  std::vector<goro::context> chain{root};
  std::vector<goro::cancel_func> keep;
  for (int i = 0; i < 100; ++i) {
    auto [c, f] = goro::with_cancel(goro::with_value(chain.back(), depth_key, i));
    chain.push_back(c);
    keep.push_back(f);
  }
  // width 10,000
  std::vector<goro::context> wide;
  for (int i = 0; i < 10'000; ++i) {
    auto [c, f] = goro::with_cancel(root);
    wide.push_back(c);
    keep.push_back(f);
  }
  EXPECT_EQ(goro::detail::context_child_count(root), 10'001u);
  cancel();
  EXPECT_TRUE(chain.back().err().is(goro::canceled));
  EXPECT_EQ(*chain.back().value(depth_key), 99);
  for (auto& c : wide) ASSERT_TRUE(c.err());
  EXPECT_EQ(chain.back().done().recv(), std::nullopt);  // closed
}

TEST_P(context, a_cancelled_child_detaches_from_its_parent) {
  auto [root, cancel_root] = goro::with_cancel(goro::background());
  for (int i = 0; i < 1000; ++i) {
    auto [c, cancel] = goro::with_cancel(root);
    cancel();
  }
  EXPECT_EQ(goro::detail::context_child_count(root), 0u);
  {
    auto [c, cancel] = goro::with_cancel(root);  // dropped without cancel
    EXPECT_EQ(goro::detail::context_child_count(root), 1u);
  }
  EXPECT_EQ(goro::detail::context_child_count(root), 0u) << "a destroyed child stayed registered";
  cancel_root();
}

TEST_P(context, children_dropped_and_made_while_their_parent_is_cancelled) {
  // The cancel walks the parent's children under its lock while goroutines drop theirs
  // (a dying child unlinks itself under that lock) and keep making new ones (born
  // cancelled once the parent is): every child still held ends cancelled, grandchildren
  // behind a value node too, and none stays registered.
  for (int round = 0; round < 20; ++round) {
    auto [root, cancel] = goro::with_cancel(goro::background());
    goro::wait_group wg;
    std::atomic<bool> cancelled{false};
    std::atomic<int> made{0}, held_uncancelled{0};
    for (int w = 0; w < 4; ++w) {
      wg.go([&, r = root] {
        std::vector<goro::context> held;
        for (int i = 0; !cancelled.load() || i < 100; ++i) {
          auto [c, cancel_c] = goro::with_cancel(r);
          auto [gc, cancel_gc] = goro::with_cancel(goro::with_value(c, depth_key, i));
          if (i % 3 == 0) held.push_back(gc);  // the others are dropped at once
          if (i % 5 == 0) cancel_c();          // some cancelled by hand as well
          if (held.size() > 64) held.erase(held.begin());
          if (i % 16 == 0) goro::yield();
          ++made;
        }
        for (auto& c : held) {
          if (!c.err() || c.done().recv().has_value()) ++held_uncancelled;  // closed: nullopt
        }
      });
    }
    while (made.load() < 400) goro::yield();
    cancel();
    cancelled = true;
    wg.wait();
    EXPECT_EQ(held_uncancelled.load(), 0) << "round " << round;
    EXPECT_EQ(goro::detail::context_child_count(root), 0u) << "round " << round;
  }
}

TEST_P(context, child_of_a_cancelled_parent_is_born_cancelled) {
  auto [root, cancel] = goro::with_cancel(goro::background());
  cancel();
  auto [child, c2] = goro::with_cancel(root);
  EXPECT_TRUE(child.err().is(goro::canceled));
}

TEST_P(context, timeout_fires_within_a_bounded_overshoot) {
  auto t0 = steady::now();
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 30ms);
  ASSERT_TRUE(ctx.deadline().has_value());
  ctx.done().recv();
  double took = ms_since(t0);
  EXPECT_GE(took, 29.0);
  EXPECT_LT(took, 1000.0);
  EXPECT_TRUE(ctx.err().is(goro::deadline_exceeded));
  EXPECT_TRUE(goro::cause(ctx).is(goro::deadline_exceeded));
  auto [past, c2] = goro::with_timeout(goro::background(), -1s);
  EXPECT_TRUE(past.err().is(goro::deadline_exceeded)) << "a past deadline is done at once";
}

TEST_P(context, cancel_before_the_deadline_releases_the_timer) {
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 1h);
  cancel();
  EXPECT_TRUE(ctx.err().is(goro::canceled));
  // A child with a later deadline inherits the parent's earlier one.
  auto [p, pc] = goro::with_timeout(goro::background(), 50ms);
  auto [c, cc] = goro::with_timeout(p, 1h);
  EXPECT_EQ(c.deadline(), p.deadline());
  c.done().recv();
  EXPECT_TRUE(c.err().is(goro::deadline_exceeded));
}

TEST_P(context, values_shadow_and_look_up_through_the_chain) {
  auto a = goro::with_value(goro::background(), request_id, std::string("r-1"));
  auto [b, cancel] = goro::with_cancel(a);
  auto c = goro::with_value(b, request_id, std::string("r-2"));
  EXPECT_EQ(*a.value(request_id), "r-1");
  EXPECT_EQ(*b.value(request_id), "r-1");
  EXPECT_EQ(*c.value(request_id), "r-2");
  EXPECT_EQ(c.value(other_key), nullptr) << "keys with equal names must not collide";
  EXPECT_EQ(goro::background().value(request_id), nullptr);
  cancel();
}

TEST_P(context, without_cancel_keeps_values_but_not_cancellation) {
  auto [ctx, cancel] = goro::with_timeout(goro::with_value(goro::background(), depth_key, 7), 1h);
  auto detached = goro::without_cancel(ctx);
  cancel();
  EXPECT_TRUE(ctx.err());
  EXPECT_FALSE(detached.err());
  EXPECT_FALSE(detached.deadline().has_value());
  EXPECT_EQ(*detached.value(depth_key), 7);
}

TEST_P(context, cancel_cause_is_reported) {
  auto [ctx, cancel] = goro::with_cancel_cause(goro::background());
  auto [child, c2] = goro::with_cancel(ctx);
  auto shutdown = goro::make_error("shutdown");
  cancel(shutdown);
  EXPECT_TRUE(ctx.err().is(goro::canceled));
  EXPECT_EQ(goro::cause(ctx), shutdown);
  EXPECT_EQ(goro::cause(child), shutdown) << "children inherit the cause";
  EXPECT_FALSE(goro::cause(goro::background()));
}

// Go's TestCause cases for WithDeadlineCause / WithTimeoutCause.
TEST_P(context, a_deadline_with_a_cause_reports_it_when_the_deadline_passes) {
  auto cause_err = goro::make_error("cause error");
  {
    auto [ctx, cancel] = goro::with_timeout_cause(goro::background(), 0ms, cause_err);
    EXPECT_EQ(ctx.err(), goro::deadline_exceeded) << "a passed deadline is done at once";
    EXPECT_EQ(goro::cause(ctx), cause_err);
    cancel();
    EXPECT_EQ(goro::cause(ctx), cause_err) << "the first cancellation's cause stays";
  }
  {
    auto t0 = steady::now();
    auto [ctx, cancel] = goro::with_timeout_cause(goro::background(), 20ms, cause_err);
    auto [child, child_cancel] = goro::with_cancel(ctx);
    EXPECT_FALSE(goro::cause(ctx)) << "nil while not done";
    child.done().recv();
    EXPECT_GE(ms_since(t0), 19.0);
    EXPECT_EQ(ctx.err(), goro::deadline_exceeded);
    EXPECT_EQ(goro::cause(ctx), cause_err);
    EXPECT_EQ(goro::cause(child), cause_err) << "children inherit the cause";
    EXPECT_TRUE(child.err().is(goro::deadline_exceeded));
  }
  {
    auto [ctx, cancel] =
        goro::with_deadline_cause(goro::background(), steady::now() - 1s, cause_err);
    EXPECT_EQ(ctx.err(), goro::deadline_exceeded);
    EXPECT_EQ(goro::cause(ctx), cause_err);
  }
}

TEST_P(context, a_deadline_cause_is_not_used_when_the_context_ends_otherwise) {
  auto cause_err = goro::make_error("cause error");
  {  // cancelled first: Canceled, as WithTimeout
    auto [ctx, cancel] = goro::with_timeout_cause(goro::background(), 1h, cause_err);
    cancel();
    EXPECT_EQ(ctx.err(), goro::canceled);
    EXPECT_EQ(goro::cause(ctx), goro::canceled);
  }
  {  // the parent cancelled with its own cause
    auto finished_early = goro::make_error("finished early");
    auto [parent, cancel_parent] = goro::with_cancel_cause(goro::background());
    auto [ctx, cancel] = goro::with_timeout_cause(parent, 1h, cause_err);
    cancel_parent(finished_early);
    EXPECT_EQ(ctx.err(), goro::canceled);
    EXPECT_EQ(goro::cause(ctx), finished_early);
  }
  {  // the parent's deadline comes first: the child relies on it, and it has no cause
    auto [parent, cancel_parent] = goro::with_timeout(goro::background(), 20ms);
    auto [ctx, cancel] = goro::with_timeout_cause(parent, 1h, cause_err);
    ctx.done().recv();
    EXPECT_EQ(ctx.err(), goro::deadline_exceeded);
    EXPECT_EQ(goro::cause(ctx), goro::deadline_exceeded);
  }
  {  // a nil cause is deadline_exceeded
    auto [ctx, cancel] = goro::with_timeout_cause(goro::background(), -1s, goro::error{});
    EXPECT_EQ(goro::cause(ctx), goro::deadline_exceeded);
  }
}

TEST_P(context, after_func_runs_once_and_stop_prevents_it) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  std::atomic<int> runs{0};
  goro::wait_group ran;
  ran.add(1);
  auto stop = goro::after_func(ctx, [&] {
    runs.fetch_add(1);
    ran.done();
  });
  cancel();
  cancel();
  ran.wait();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_FALSE(stop()) << "stop after f started must report false";

  auto [ctx2, cancel2] = goro::with_cancel(goro::background());
  std::atomic<int> runs2{0};
  auto stop2 = goro::after_func(ctx2, [&] { runs2.fetch_add(1); });
  EXPECT_TRUE(stop2());
  EXPECT_FALSE(stop2());
  cancel2();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(runs2.load(), 0);
}

TEST_P(context, after_func_takes_a_move_only_callable) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto got = goro::make_chan<int>(1);
  auto owned = std::make_unique<int>(42);
  auto stop = goro::after_func(ctx, [owned = std::move(owned), got] { got.send(*owned); });
  cancel();
  EXPECT_EQ(got.recv(), 42);
  EXPECT_FALSE(stop());
}

TEST_P(context, after_func_destroys_a_stopped_callable_without_running_it) {
  struct tracked {
    std::shared_ptr<std::atomic<int>> destroyed;
    std::unique_ptr<int> move_only = std::make_unique<int>(0);
    tracked(std::shared_ptr<std::atomic<int>> d) : destroyed(std::move(d)) {}
    tracked(tracked&&) = default;
    ~tracked() {
      if (destroyed && move_only) destroyed->fetch_add(1);  // the moved-from copy does not count
    }
    void operator()() const { ADD_FAILURE() << "a stopped after_func ran"; }
  };
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto stop = goro::after_func(ctx, tracked(destroyed));
  EXPECT_EQ(destroyed->load(), 0);
  EXPECT_TRUE(stop());
  EXPECT_EQ(destroyed->load(), 1) << "stopping releases f at once";
  cancel();
}

TEST_P(context, stop_token_interop_both_ways) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  std::stop_token tok = ctx.stop_token();
  EXPECT_TRUE(tok.stop_possible());
  EXPECT_FALSE(tok.stop_requested());
  cancel();
  EXPECT_TRUE(tok.stop_requested());

  std::stop_source src;
  auto linked = goro::with_stop_token(goro::background(), src.get_token());
  EXPECT_FALSE(linked.err());
  src.request_stop();
  EXPECT_TRUE(linked.err().is(goro::canceled));
  std::stop_source already;
  already.request_stop();
  EXPECT_TRUE(goro::with_stop_token(goro::background(), already.get_token()).err());
}

TEST_P(context, cancel_from_a_plain_thread_wakes_goroutines) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::wait_group wg;
  std::atomic<int> woke{0};
  for (int i = 0; i < 100; ++i) {
    wg.go([&, c = ctx] {
      c.done().recv();
      woke.fetch_add(1);
    });
  }
  std::thread([c = cancel] { c(); }).join();
  wg.wait();
  EXPECT_EQ(woke.load(), 100);
}

// Races cancel() (or the context's destruction) with its deadline firing on a worker:
// both sides let go of the deadline's timer, which must be freed once, after both.
// Under ASAN a second free or a late touch is reported.
void race_the_deadline(bool drop_instead_of_cancel) {
  std::mt19937_64 rng(test_seed());
  std::uniform_int_distribution<int> lead_us(0, 12);
  auto until = steady::now() + 1500ms;
  for (int round = 0; round < 20'000 && steady::now() < until; ++round) {
    auto deadline = steady::now() + 30us;
    auto lead = std::chrono::microseconds(lead_us(rng));
    auto [ctx, cancel] = goro::with_deadline(goro::background(), deadline);
    goro::wait_group wg;
    if (!drop_instead_of_cancel) wg.go([c = ctx] { c.done().recv(); });
    while (steady::now() < deadline - lead) {
    }
    if (drop_instead_of_cancel) {
      ctx = goro::context();
      cancel = goro::cancel_func();
    } else {
      cancel();
    }
    wg.wait();
  }
}

TEST_P(context, cancel_racing_the_deadline_frees_its_timer_once) { race_the_deadline(false); }

TEST_P(context, dropping_a_context_as_its_deadline_fires_frees_its_timer_once) {
  race_the_deadline(true);
}

TEST_P(context, a_cancel_chain_far_deeper_than_a_goroutine_stack_is_cancelled_and_destroyed) {
  // Each level would take a stack frame if cancellation or destruction recursed; the
  // goroutine's stack is 64 KiB.
  constexpr int depth = 100'000;
  std::atomic<bool> all_done{false};
  goro::wait_group wg;
  wg.go([&] {
    auto [root, cancel] = goro::with_cancel(goro::background());
    goro::context leaf = root;
    for (int i = 0; i < depth; ++i) leaf = goro::with_cancel(leaf).first;
    cancel();
    all_done = leaf.err().is(goro::canceled);
  });  // the chain is destroyed here, on the goroutine
  wg.wait();
  EXPECT_TRUE(all_done.load());
}

TEST_P(context, a_value_chain_far_deeper_than_a_goroutine_stack_is_destroyed) {
  constexpr int depth = 100'000;
  std::atomic<int> deepest{-1};
  goro::wait_group wg;
  wg.go([&] {
    goro::context leaf = goro::background();
    for (int i = 0; i < depth; ++i) leaf = goro::with_value(leaf, depth_key, i);
    deepest = *leaf.value(depth_key);
  });
  wg.wait();
  EXPECT_EQ(deepest.load(), depth - 1);
}

TEST_P(context, a_deep_mixed_chain_uncancelled_is_destroyed_on_a_goroutine) {
  // Cancel nodes dropped without cancel unregister from their parent and release
  // their timers on the way up.
  constexpr int depth = 50'000;
  goro::wait_group wg;
  std::atomic<std::size_t> registered{0};
  auto [root, cancel] = goro::with_cancel(goro::background());
  wg.go([&, r = root] {
    goro::context leaf = r;
    auto t0 = steady::now();
    for (int i = 0; i < depth; ++i) {
      // Each deadline earlier than its parent's, so each level arms a timer.
      auto deadline = t0 + 1h - std::chrono::milliseconds(i);
      leaf = goro::with_deadline(goro::with_value(leaf, depth_key, i), deadline).first;
    }
    registered = goro::detail::context_child_count(r);
  });
  wg.wait();
  EXPECT_EQ(registered.load(), 1u);
  EXPECT_EQ(goro::detail::context_child_count(root), 0u) << "a destroyed child stayed registered";
  cancel();
}

TEST_P(context, far_future_deadlines_are_not_done) {
  // nanotime() + (deadline - now) must saturate, not wrap into the past.
  auto [max, c1] = goro::with_deadline(goro::background(), goro::time_point::max());
  auto [near_max, c2] = goro::with_deadline(goro::background(), goro::time_point::max() - 1h);
  auto [hours, c3] = goro::with_timeout(goro::background(), std::chrono::hours::max());
  auto [nanos, c4] = goro::with_timeout(goro::background(), std::chrono::nanoseconds::max());
  auto [child, c5] = goro::with_deadline(max, goro::time_point::max());
  std::this_thread::sleep_for(20ms);
  for (const goro::context* c : {&max, &near_max, &hours, &nanos, &child}) {
    EXPECT_FALSE(c->err());
    EXPECT_EQ(goro::select(goro::case_recv(c->done()), goro::case_default()), 1);
  }
  EXPECT_EQ(max.deadline(), goro::time_point::max());
  c1();
  EXPECT_TRUE(child.err().is(goro::canceled)) << "the far-future parent still cancels";
  c2();
  c3();
  c4();
}

// Counts destructions that ran neither on a goroutine nor on the test's own thread.
std::thread::id value_test_thread;
std::atomic<int> values_destroyed_off_goroutines{0};
struct destruction_tracker {
  ~destruction_tracker() {
    if (goro::this_goroutine::id() == 0 && std::this_thread::get_id() != value_test_thread) {
      ++values_destroyed_off_goroutines;
    }
  }
};
inline const goro::context_key<destruction_tracker> tracker_key{"tracker"};

TEST_P(context, a_deadline_racing_a_cancel_destroys_no_value_on_a_scheduler_stack) {
  // A deadline fires on a worker's scheduler stack just as the goroutine that made the
  // context cancels it by hand and drops it: whichever reference goes last, the user's
  // values are destroyed on a goroutine, never on the scheduler's stack.
  value_test_thread = std::this_thread::get_id();
  values_destroyed_off_goroutines = 0;
  for (int round = 0; round < 60; ++round) {
    goro::wait_group wg;
    auto base = goro::now() + 2ms;
    for (int i = 0; i < 2000; ++i) {
      wg.go([base, i] {
        auto [ctx, cancel] = goro::with_deadline(
            goro::with_value(goro::background(), tracker_key, destruction_tracker{}),
            base + std::chrono::nanoseconds(i * 37 % 20'000));
        goro::sleep_until(base - 10us + std::chrono::nanoseconds(i * 53 % 30'000));
        cancel();
        ctx = goro::context();
        cancel = goro::cancel_func();  // the last handle: the timer may hold the last reference
      });
    }
    wg.wait();
  }
  goro::sleep(20ms);  // for the goroutines that drop the timers' references
  EXPECT_EQ(values_destroyed_off_goroutines.load(), 0);
}

TEST_P(context, a_deadline_runs_stop_callbacks_on_a_goroutine) {
  // A deadline fires on a worker's scheduler stack; a std::stop_callback is user code
  // and may park, so it must run on a goroutine, as Go runs a timer's AfterFunc.
  // A deadline that passes before the callback is registered runs it inline, on this
  // plain thread, as std::stop_callback does: that round says nothing and is retried
  // with a longer timeout (a slow emulator took more than 5 ms to get here).
  for (auto timeout : {5ms, 50ms, 500ms}) {
    auto [ctx, cancel] = goro::with_timeout(goro::background(), timeout);
    std::atomic<bool> registering{true};
    std::atomic<bool> ran_inline{false};
    std::atomic<std::uint64_t> ran_on{~std::uint64_t{0}};
    goro::wait_group ran;
    ran.add(1);
    const auto registrar = std::this_thread::get_id();
    std::stop_callback on_stop(ctx.stop_token(), [&] {
      ran_inline = registering.load() && std::this_thread::get_id() == registrar;
      goro::sleep(1ms);  // parks: only possible on a goroutine
      ran_on = goro::this_goroutine::id();
      ran.done();
    });
    registering = false;
    ctx.done().recv();
    EXPECT_TRUE(ctx.err().is(goro::deadline_exceeded));
    ran.wait();
    if (ran_inline) continue;
    EXPECT_NE(ran_on.load(), 0u) << "the stop callback ran off any goroutine";
    return;
  }
  GTEST_SKIP() << "every deadline passed before its callback was registered";
}

// ---- errgroup ----

TEST_P(context, errgroup_returns_the_first_error_and_cancels_siblings) {
  auto [g, gctx] = goro::errgroup::with_context(goro::background());
  auto first = goro::make_error("first");
  std::atomic<int> saw_cancel{0};
  g.go([&] {
    goro::sleep(5ms);
    return first;
  });
  for (int i = 0; i < 10; ++i) {
    g.go([&, c = gctx]() -> goro::error {
      c.done().recv();
      saw_cancel.fetch_add(1);
      return goro::wrap(c.err(), "sibling");
    });
  }
  goro::error err = g.wait();
  EXPECT_EQ(err, first);
  EXPECT_EQ(saw_cancel.load(), 10);
  EXPECT_EQ(goro::cause(gctx), first);
}

TEST_P(context, errgroup_wait_cancels_its_context_on_success) {
  auto [g, gctx] = goro::errgroup::with_context(goro::background());
  for (int i = 0; i < 5; ++i) g.go([] { return goro::error{}; });
  EXPECT_FALSE(g.wait());
  EXPECT_TRUE(gctx.err().is(goro::canceled));
}

TEST_P(context, errgroup_respects_its_limit) {
  goro::errgroup g;
  g.set_limit(3);
  std::atomic<int> running{0}, peak{0};
  for (int i = 0; i < 50; ++i) {
    g.go([&] {
      int now = running.fetch_add(1) + 1;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      goro::sleep(200us);
      running.fetch_sub(1);
    });
  }
  EXPECT_FALSE(g.wait());
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 2);
}

TEST_P(context, errgroup_try_go_refuses_at_the_limit) {
  goro::errgroup g;
  g.set_limit(1);
  goro::wait_group gate;
  gate.add(1);
  EXPECT_TRUE(g.try_go([&] { gate.wait(); }));
  EXPECT_FALSE(g.try_go([] {}));
  EXPECT_THROW(g.set_limit(5), goro::panic_error);
  gate.done();
  EXPECT_FALSE(g.wait());
  EXPECT_TRUE(g.try_go([] {}));
  EXPECT_FALSE(g.wait());
}

TEST_P(context, errgroup_turns_exceptions_into_errors) {
  goro::errgroup g;
  g.go([]() -> goro::error { throw std::runtime_error("task blew up"); });
  goro::error err = g.wait();
  ASSERT_TRUE(err);
  EXPECT_EQ(err.message(), "task blew up");
}

// ---- semaphore with a context (goro/semaphore.hpp) ----

TEST_P(context, semaphore_acquire_gives_up_when_the_context_ends) {
  goro::semaphore sem(2);
  sem.acquire(2);
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 20ms);
  goro::error err = sem.acquire(ctx, 1);
  EXPECT_TRUE(err.is(goro::deadline_exceeded));
  sem.release(2);
  EXPECT_TRUE(sem.try_acquire(2)) << "a cancelled acquire left units behind";
  sem.release(2);
  EXPECT_FALSE(sem.acquire(goro::background(), 2));
  sem.release(2);
}

TEST_P(context, semaphore_cancelled_head_lets_the_queue_move) {
  goro::semaphore sem(10);
  sem.acquire(5);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  std::atomic<bool> big_failed{false}, small_done{false};
  goro::wait_group wg;
  // Each waiter is seen parked before the next one comes (not a fixed sleep: under
  // emulation a goroutine can take longer than that to start).
  auto parked_acquirers = [] {
    std::string dump = goro::debug::goroutines(2);
    std::size_t n = 0;
    for (auto at = dump.find("[semacquire"); at != std::string::npos;
         at = dump.find("[semacquire", at + 1)) {
      ++n;
    }
    return n;
  };
  wg.go([&, c = ctx] { big_failed = bool(sem.acquire(c, 10)); });
  ASSERT_TRUE(eventually([&] { return parked_acquirers() == 1; }));
  wg.go([&] {
    sem.acquire(1);  // queued behind the 10
    small_done = true;
    sem.release(1);
  });
  ASSERT_TRUE(eventually([&] { return parked_acquirers() == 2; }));
  EXPECT_FALSE(small_done.load());
  cancel();  // the 10 leaves; the 1 fits and must go through
  wg.wait();
  EXPECT_TRUE(big_failed.load());
  EXPECT_TRUE(small_done.load());
  sem.release(5);
  EXPECT_TRUE(sem.try_acquire(10));
  sem.release(10);
}

TEST(context_exit, deadlines_firing_while_the_process_exits_use_no_destroyed_error) {
  // Timers keep firing on workers while exit() destroys globals; a deadline's error is
  // the deadline_exceeded sentinel, which must outlive that (ASAN saw it freed, and
  // its report then deadlocked with LeakSanitizer's exit check).
  EXPECT_EXIT(
      {
        std::vector<goro::context> keep;
        auto start = steady::now();
        for (int i = 0; i < 20000; ++i) {
          auto made = goro::with_deadline(goro::background(),
                                          start + 20ms + std::chrono::microseconds(i / 2));
          if (i % 2 == 0) keep.push_back(made.first);  // some stay referenced, some dropped
        }
        while (steady::now() < start + 20ms) {
        }
        std::exit(0);  // destroys globals while deadlines fire for the next 10 ms
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
