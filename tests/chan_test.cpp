// chan_test — goro/chan.hpp, from Go's channel semantics: FIFO, hand-off, buffering,
// close, panics, nil channels, move-only values, goroutine/thread mixes; the
// context-aware send and receive, the status of a non-blocking receive, channels as
// input ranges and the directional views.
#include <atomic>
#include <iterator>
#include <memory>
#include <ranges>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class chan : public procs_test {};
GORO_PROCS_SUITE(chan);

TEST_P(chan, values_from_one_sender_arrive_in_order) {
  for (std::size_t cap : {0u, 1u, 7u, 1024u}) {
    auto ch = goro::make_chan<int>(cap);
    goro::go([ch] {
      for (int i = 0; i < 5000; ++i) ch.send(i);
      ch.close();
    });
    int expect = 0;
    for (int v : ch) ASSERT_EQ(v, expect++) << "cap " << cap;
    EXPECT_EQ(expect, 5000);
  }
}

TEST_P(chan, unbuffered_send_completes_only_after_the_receive) {
  auto ch = goro::make_chan<int>();
  std::atomic<bool> sent{false};
  goro::wait_group wg;
  wg.go([&] {
    ch.send(1);
    sent = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(sent.load()) << "unbuffered send returned with no receiver";
  EXPECT_EQ(ch.recv(), 1);
  wg.wait();
  EXPECT_TRUE(sent.load());
}

TEST_P(chan, buffered_channel_takes_exactly_cap_sends_without_a_receiver) {
  auto ch = goro::make_chan<int>(3);
  std::atomic<int> sent{0};
  goro::wait_group wg;
  wg.go([&] {
    for (int i = 0; i < 4; ++i) {
      ch.send(i);
      sent.fetch_add(1);
    }
  });
  EXPECT_TRUE(eventually([&] { return sent.load() == 3; }));
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(sent.load(), 3) << "a 4th send went through a full buffer";
  EXPECT_EQ(ch.len(), 3u);
  EXPECT_EQ(ch.cap(), 3u);
  EXPECT_EQ(ch.recv(), 0);
  wg.wait();
  EXPECT_EQ(ch.recv(), 1);
  EXPECT_EQ(ch.recv(), 2);
  EXPECT_EQ(ch.recv(), 3);
}

TEST_P(chan, close_drains_buffered_values_first_then_reports_closed) {
  auto ch = goro::make_chan<std::string>(4);
  ch.send("a");
  ch.send("b");
  ch.close();
  EXPECT_EQ(ch.recv(), "a");
  EXPECT_EQ(ch.try_recv(), "b");
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(ch.try_recv(), std::nullopt);
}

TEST_P(chan, close_wakes_every_blocked_receiver_goroutines_and_threads) {
  auto ch = goro::make_chan<int>();
  std::atomic<int> woke{0};
  goro::wait_group wg;
  for (int i = 0; i < 20; ++i) {
    wg.go([&] {
      if (!ch.recv()) woke.fetch_add(1);
    });
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < 2; ++i) {
    ts.emplace_back([&] {
      if (!ch.recv()) woke.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(woke.load(), 0);
  ch.close();
  wg.wait();
  for (auto& t : ts) t.join();
  EXPECT_EQ(woke.load(), 22);
}

TEST_P(chan, panics_with_gos_messages) {
  auto ch = goro::make_chan<int>(1);
  ch.close();
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const goro::panic_error& e) {
      return std::string(e.what());
    }
    return std::string("no panic");
  };
  EXPECT_EQ(message([&] { ch.send(1); }), "send on closed channel");
  EXPECT_EQ(message([&] { (void)ch.try_send(1); }), "send on closed channel");
  EXPECT_EQ(message([&] { ch.close(); }), "close of closed channel");
  goro::chan<int> nil;
  EXPECT_EQ(message([&] { nil.close(); }), "close of nil channel");
  EXPECT_EQ(message([&] {
              goro::make_chan<int>(static_cast<std::size_t>(-1));
            }).rfind("makechan: size out of range", 0),
            0u);
}

TEST_P(chan, a_sender_blocked_when_the_channel_closes_panics) {
  auto ch = goro::make_chan<int>();
  std::atomic<bool> panicked{false};
  goro::wait_group wg;
  wg.go([&] {
    try {
      ch.send(1);
    } catch (const goro::panic_error&) {
      panicked = true;
    }
  });
  std::this_thread::sleep_for(20ms);
  ch.close();
  wg.wait();
  EXPECT_TRUE(panicked.load());
}

TEST_P(chan, nil_channel_never_ready_without_blocking_ops) {
  goro::chan<int> nil;
  EXPECT_FALSE(nil);
  EXPECT_FALSE(nil.try_send(1));
  EXPECT_EQ(nil.try_recv(), std::nullopt);
  EXPECT_EQ(nil.len(), 0u);
  EXPECT_EQ(nil.cap(), 0u);
}

TEST(chan_nil, send_and_receive_block_forever) {
  // Run in a child process: the blocked goroutine can never be collected.
  EXPECT_EXIT(
      {
        std::atomic<int> returned{0};
        goro::chan<int> nil;
        goro::go([&] {
          nil.recv();
          returned = 1;
        });
        goro::go([&] {
          nil.send(1);
          returned = 2;
        });
        std::thread([&] {
          nil.recv();
          returned = 3;
        }).detach();
        std::this_thread::sleep_for(200ms);
        std::exit(returned.load() == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_P(chan, move_only_values_are_moved_through) {
  auto ch = goro::make_chan<std::unique_ptr<int>>(2);
  goro::wait_group wg;
  wg.go([ch] {
    for (int i = 0; i < 100; ++i) ch.send(std::make_unique<int>(i));
    ch.close();
  });
  int expect = 0;
  for (auto& p : ch) {
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, expect++);
  }
  wg.wait();
  EXPECT_EQ(expect, 100);
  auto unbuffered = goro::make_chan<std::unique_ptr<int>>();
  auto keep = std::make_unique<int>(5);
  EXPECT_FALSE(unbuffered.try_send(std::move(keep)));
  ASSERT_TRUE(keep) << "a failed try_send must not consume the value";
}

TEST_P(chan, values_are_not_copied_twice) {
  struct counted {
    std::atomic<int>* copies;
    counted(std::atomic<int>* c) : copies(c) {}
    counted(const counted& o) : copies(o.copies) { copies->fetch_add(1); }
    counted(counted&&) noexcept = default;
  };
  std::atomic<int> copies{0};
  auto ch = goro::make_chan<counted>(1);
  counted v(&copies);
  ch.send(v);  // one copy, from the lvalue
  auto got = ch.recv();
  EXPECT_TRUE(got.has_value());
  EXPECT_EQ(copies.load(), 1);
}

TEST_P(chan, threads_and_goroutines_in_every_direction) {
  auto to_goroutine = goro::make_chan<int>();
  auto to_thread = goro::make_chan<int>();
  goro::wait_group wg;
  wg.go([&] {
    for (int i = 0; i < 500; ++i) {
      auto v = to_goroutine.recv();
      to_thread.send(*v + 1);
    }
  });
  std::thread t([&] {
    for (int i = 0; i < 500; ++i) {
      to_goroutine.send(i);
      EXPECT_EQ(to_thread.recv(), i + 1);
    }
  });
  t.join();
  wg.wait();
  // thread to thread through the same runtime mechanism
  auto tt = goro::make_chan<int>();
  std::thread a([&] { tt.send(9); });
  EXPECT_EQ(tt.recv(), 9);
  a.join();
}

TEST_P(chan, directional_views_share_the_channel) {
  auto ch = goro::make_chan<int>(1);
  goro::send_chan<int> out = ch;
  goro::recv_chan<int> in = ch;
  out.send(4);
  EXPECT_EQ(in.len(), 1u);
  EXPECT_EQ(in.recv(), 4);
  out.close();
  EXPECT_EQ(in.recv(), std::nullopt);
  goro::chan<int> copy = ch;
  EXPECT_TRUE(copy == ch);
}

TEST_P(chan, many_senders_many_receivers_every_value_once) {
  constexpr int senders = 8, receivers = 8, per = 2000;
  auto ch = goro::make_chan<int>(16);
  std::vector<std::atomic<int>> seen(senders * per);
  goro::wait_group producers, consumers;
  for (int s = 0; s < senders; ++s) {
    producers.go([&, s] {
      for (int i = 0; i < per; ++i) ch.send(s * per + i);
    });
  }
  for (int r = 0; r < receivers; ++r) {
    consumers.go([&] {
      for (int v : ch) seen[static_cast<std::size_t>(v)].fetch_add(1);
    });
  }
  producers.wait();
  ch.close();
  consumers.wait();
  for (auto& s : seen) ASSERT_EQ(s.load(), 1);
}

// --- recv(ctx) and send(ctx, v): a select against ctx.done() ---

TEST_P(chan, recv_ctx_returns_the_value_that_arrives_before_ctx_is_done) {
  auto ch = goro::make_chan<int>();
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::wait_group wg;
  wg.go([ch] {
    goro::sleep(10ms);
    ch.send(7);
  });
  EXPECT_EQ(ch.recv(ctx), 7);
  EXPECT_FALSE(ctx.err());
  wg.wait();
  cancel();
}

TEST_P(chan, recv_ctx_gives_up_on_cancel_without_receiving_goroutines_and_threads) {
  auto ch = goro::make_chan<int>();
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  std::atomic<int> gave_up{0};
  goro::wait_group wg;
  for (int i = 0; i < 4; ++i) {
    wg.go([&, ctx = ctx] {
      if (!ch.recv(ctx) && ctx.err().is(goro::canceled)) gave_up.fetch_add(1);
    });
  }
  std::thread t([&, ctx = ctx] {
    if (!ch.recv(ctx) && ctx.err().is(goro::canceled)) gave_up.fetch_add(1);
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(gave_up.load(), 0) << "recv(ctx) returned before ctx was done";
  cancel();
  wg.wait();
  t.join();
  EXPECT_EQ(gave_up.load(), 5);
  // No receiver is left waiting: an unbuffered send cannot complete.
  EXPECT_FALSE(ch.try_send(1));
}

TEST_P(chan, recv_ctx_ends_at_the_deadline_with_deadline_exceeded) {
  auto ch = goro::make_chan<int>(1);
  // t0 before the deadline is set: a test thread preempted between the two must not
  // count its lost time against the 20 ms.
  auto t0 = steady::now();
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 20ms);
  EXPECT_EQ(ch.recv(ctx), std::nullopt);
  EXPECT_GE(ms_since(t0), 19.0);
  EXPECT_TRUE(ctx.err().is(goro::deadline_exceeded));
  ch.send(3);  // the buffer is untouched: the value waits for the next receive
  EXPECT_EQ(ch.recv(), 3);
  cancel();
}

TEST_P(chan, recv_ctx_on_a_closed_channel_drains_then_reports_closed_with_ctx_live) {
  auto ch = goro::make_chan<int>(2);
  ch.send(1);
  ch.close();
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  EXPECT_EQ(ch.recv(ctx), 1);
  EXPECT_EQ(ch.recv(ctx), std::nullopt);
  EXPECT_FALSE(ctx.err()) << "closed and drained, not cancelled";
  cancel();
}

TEST_P(chan, recv_ctx_on_nil_waits_for_ctx_and_background_waits_for_the_value) {
  goro::chan<int> nil;
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 10ms);
  EXPECT_EQ(nil.recv(ctx), std::nullopt);
  EXPECT_TRUE(ctx.err().is(goro::deadline_exceeded));
  // background() can never be done: recv(ctx) is recv().
  auto ch = goro::make_chan<int>();
  goro::wait_group wg;
  wg.go([ch] {
    goro::sleep(10ms);
    ch.send(5);
  });
  EXPECT_EQ(ch.recv(goro::background()), 5);
  wg.wait();
  cancel();
}

TEST_P(chan, send_ctx_delivers_and_returns_nil) {
  auto ch = goro::make_chan<std::string>();
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::wait_group wg;
  std::optional<std::string> got;
  wg.go([&] { got = ch.recv(); });
  EXPECT_FALSE(ch.send(ctx, std::string("hello")));
  wg.wait();
  EXPECT_EQ(got, "hello");
  cancel();
}

TEST_P(chan, send_ctx_gives_up_on_cancel_and_keeps_the_value) {
  auto ch = goro::make_chan<std::unique_ptr<int>>();
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  std::atomic<bool> kept{false};
  goro::error err;
  goro::wait_group wg;
  wg.go([&, ctx = ctx] {
    auto p = std::make_unique<int>(9);
    err = ch.send(ctx, std::move(p));
    kept = p && *p == 9;  // not sent, so not moved from
  });
  std::this_thread::sleep_for(20ms);
  cancel();
  wg.wait();
  EXPECT_TRUE(err.is(goro::canceled)) << err.message();
  EXPECT_TRUE(kept.load());
  EXPECT_EQ(ch.try_recv(), std::nullopt) << "no sender is left waiting";
}

TEST_P(chan, send_ctx_on_a_closed_channel_panics_and_on_nil_waits_for_ctx) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto ch = goro::make_chan<int>(1);
  ch.close();
  EXPECT_THROW((void)ch.send(ctx, 1), goro::panic_error);
  goro::send_chan<int> nil;
  auto [tctx, tcancel] = goro::with_timeout(ctx, 10ms);
  EXPECT_TRUE(nil.send(tctx, 1).is(goro::deadline_exceeded));
  tcancel();
  cancel();
}

TEST_P(chan, when_both_ctx_and_the_channel_are_ready_either_may_win_as_in_go) {
  // Go's select picks at random among ready cases; so do recv(ctx) and send(ctx, v).
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  cancel();
  auto ch = goro::make_chan<int>(1);
  int received = 0, sent = 0;
  for (int i = 0; i < 400; ++i) {
    if (ch.len() == 0) ch.send(i);
    if (ch.recv(ctx)) ++received;
  }
  for (int i = 0; i < 400; ++i) {
    (void)ch.try_recv();  // room for one: the send is ready
    if (!ch.send(ctx, i)) ++sent;
  }
  // Each count is Binomial(400, 1/2): 0 or 400 has probability 2^-399.
  EXPECT_GT(received, 0);
  EXPECT_LT(received, 400);
  EXPECT_GT(sent, 0);
  EXPECT_LT(sent, 400);
}

// --- try_recv(recv_status&): empty and closed told apart ---

TEST_P(chan, try_recv_status_tells_empty_from_closed) {
  goro::recv_status st = goro::recv_status::received;
  auto ch = goro::make_chan<int>(2);
  EXPECT_EQ(ch.try_recv(st), std::nullopt);
  EXPECT_EQ(st, goro::recv_status::would_block) << "open and empty";
  ch.send(1);
  ch.send(2);
  ch.close();
  EXPECT_EQ(ch.try_recv(st), 1);
  EXPECT_EQ(st, goro::recv_status::received) << "closed, buffered values come first";
  EXPECT_EQ(ch.try_recv(st), 2);
  EXPECT_EQ(st, goro::recv_status::received);
  EXPECT_EQ(ch.try_recv(st), std::nullopt);
  EXPECT_EQ(st, goro::recv_status::closed) << "closed and drained";
  EXPECT_EQ(ch.try_recv(st), std::nullopt);
  EXPECT_EQ(st, goro::recv_status::closed);
  goro::recv_chan<int> nil;
  st = goro::recv_status::closed;
  EXPECT_EQ(nil.try_recv(st), std::nullopt);
  EXPECT_EQ(st, goro::recv_status::would_block) << "nil is never ready, never closed";
}

TEST_P(chan, try_recv_status_takes_from_a_waiting_sender_of_an_unbuffered_channel) {
  auto ch = goro::make_chan<int>();
  goro::wait_group wg;
  wg.go([ch] { ch.send(8); });
  goro::recv_status st = goro::recv_status::would_block;
  std::optional<int> v;
  EXPECT_TRUE(eventually([&] {
    v = ch.try_recv(st);
    return v.has_value();
  }));
  EXPECT_EQ(v, 8);
  EXPECT_EQ(st, goro::recv_status::received);
  wg.wait();
}

// --- channels as input ranges ---

static_assert(std::ranges::input_range<goro::chan<int>>);
static_assert(std::ranges::input_range<goro::recv_chan<int>>);
static_assert(std::ranges::input_range<const goro::chan<std::unique_ptr<int>>>);
static_assert(!std::ranges::input_range<goro::send_chan<int>>);
static_assert(std::input_iterator<std::ranges::iterator_t<goro::chan<int>>>);
static_assert(std::is_same_v<std::ranges::range_reference_t<goro::chan<int>>, int&>);
static_assert(!std::ranges::forward_range<goro::chan<int>>, "single pass, as Go's range");

TEST_P(chan, take_receives_exactly_n_and_leaves_the_rest_in_the_channel) {
  auto ch = goro::make_chan<int>(4);
  for (int i = 1; i <= 4; ++i) ch.send(i);
  std::vector<int> got;
  for (int v : ch | std::views::take(3)) got.push_back(v);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(ch.len(), 1u) << "take(3) received a fourth value";
  EXPECT_EQ(ch.try_recv(), 4);
}

TEST_P(chan, take_on_an_unbuffered_channel_does_not_wait_for_a_fourth_value) {
  // With an eager iterator the loop would block in ++ after the third value until a
  // fourth arrived; the sender here sends three and then waits for the loop's result.
  auto ch = goro::make_chan<int>();
  auto done = goro::make_chan<int>();
  goro::wait_group wg;
  wg.go([&] {
    for (int i = 0; i < 3; ++i) ch.send(i);
    EXPECT_EQ(done.recv(), 3);
  });
  int sum = 0;
  for (int v : ch | std::views::take(3)) sum += v;
  done.send(sum);
  wg.wait();
}

TEST_P(chan, range_adaptors_and_algorithms_consume_until_closed) {
  auto ch = goro::make_chan<int>();
  goro::go([ch] {
    for (int i = 0; i < 10; ++i) ch.send(i);
    ch.close();
  });
  goro::recv_chan<int> in = ch;
  std::vector<int> odd_squares;
  for (int v : in | std::views::filter([](int x) { return x % 2 == 1; }) |
                   std::views::transform([](int x) { return x * x; })) {
    odd_squares.push_back(v);
  }
  EXPECT_EQ(odd_squares, (std::vector<int>{1, 9, 25, 49, 81}));
  EXPECT_EQ(std::ranges::distance(in), 0) << "closed and drained: an empty range";
}

TEST_P(chan, an_iterator_receives_only_when_read_and_drop_skips_values) {
  auto ch = goro::make_chan<int>(4);
  for (int i = 0; i < 4; ++i) ch.send(i);
  auto it = ch.begin();
  EXPECT_EQ(ch.len(), 4u) << "begin() received before the value was read";
  EXPECT_EQ(*it, 0);
  EXPECT_EQ(*it, 0) << "reading twice receives once";
  EXPECT_EQ(ch.len(), 3u);
  ++it;  // past 0
  ++it;  // past 1, received and dropped
  EXPECT_EQ(ch.len(), 2u);
  for (int v : ch | std::views::drop(1) | std::views::take(1)) EXPECT_EQ(v, 3);
  EXPECT_EQ(ch.len(), 0u);
}

// --- chan<T> as send_chan<T> and recv_chan<T> ---

static_assert(std::is_base_of_v<goro::recv_chan<int>, goro::chan<int>>);
static_assert(std::is_base_of_v<goro::send_chan<int>, goro::chan<int>>);
static_assert(sizeof(goro::chan<int>) == 2 * sizeof(std::shared_ptr<int>));
static_assert(sizeof(goro::recv_chan<int>) == sizeof(std::shared_ptr<int>));
static_assert(sizeof(goro::send_chan<int>) == sizeof(std::shared_ptr<int>));
static_assert(!std::is_convertible_v<goro::recv_chan<int>, goro::chan<int>>);
static_assert(!std::is_convertible_v<goro::send_chan<int>, goro::recv_chan<int>>);

template <class T>
std::vector<T> drain(goro::recv_chan<T> in) {
  std::vector<T> out;
  for (T v : in) out.push_back(v);
  return out;
}
template <class T>
void fill(goro::send_chan<T> out, T first, int n) {
  for (int i = 0; i < n; ++i) out.send(first + static_cast<T>(i));
  out.close();
}

TEST_P(chan, a_chan_is_deduced_as_either_directional_view) {
  auto ch = goro::make_chan<long>(8);
  fill(ch, 10L, 3);  // send_chan<T> deduced from chan<long>
  EXPECT_EQ(drain(ch), (std::vector<long>{10, 11, 12}));  // recv_chan<T> likewise
  EXPECT_TRUE(std::ranges::empty(drain(ch))) << "closed and drained";
}

// Moving a chan into one of its views (consume(std::move(ch))) leaves the chan whole,
// never half nil (false, yet able to send).
TEST_P(chan, moving_a_chan_into_a_view_leaves_the_chan_consistent) {
  auto ch = goro::make_chan<int>(4);
  goro::recv_chan<int> r = std::move(ch);
  EXPECT_EQ(static_cast<bool>(ch), ch != goro::chan<int>{});
  goro::send_chan<int> s;
  s = std::move(ch);
  s.send(1);
  EXPECT_EQ(r.recv(), 1);
  goro::chan<int> moved = std::move(ch);  // chan to chan: moves the whole handle
  EXPECT_TRUE(moved);
  EXPECT_TRUE(moved == r);
}

// Go's map[chan T]V: channels key unordered containers by identity.
TEST_P(chan, channels_are_hashable_keys_by_identity) {
  auto a = goro::make_chan<int>();
  auto b = goro::make_chan<int>();
  std::unordered_map<goro::chan<int>, std::string> names{{a, "a"}, {b, "b"}};
  goro::chan<int> copy = a;
  EXPECT_EQ(names.at(copy), "a");
  EXPECT_EQ(names.count(goro::chan<int>{}), 0u);
  std::unordered_set<goro::recv_chan<int>> inputs{a, b, a};
  EXPECT_EQ(inputs.size(), 2u);
  EXPECT_EQ(std::hash<goro::recv_chan<int>>()(a), std::hash<goro::chan<int>>()(a));
  EXPECT_EQ(std::hash<goro::send_chan<int>>()(goro::chan<int>{}),
            std::hash<goro::send_chan<int>>()(goro::send_chan<int>{}));
}

TEST_P(chan, views_of_one_channel_compare_equal_and_nil_views_are_false) {
  auto ch = goro::make_chan<int>(1);
  goro::send_chan<int> out = ch;
  goro::recv_chan<int> in = ch;
  goro::chan<int> other = goro::make_chan<int>(1);
  EXPECT_TRUE(out == ch);
  EXPECT_TRUE(in == ch);
  EXPECT_TRUE(ch == out);
  EXPECT_FALSE(in == other);
  EXPECT_TRUE(in);
  EXPECT_TRUE(out);
  goro::chan<int> nil;
  in = nil;
  out = nil;
  EXPECT_FALSE(in);
  EXPECT_FALSE(out);
  EXPECT_TRUE(in == goro::recv_chan<int>{});
  goro::chan<int> copy = ch;
  copy = goro::chan<int>{};
  EXPECT_FALSE(copy);
  EXPECT_TRUE(ch) << "assigning a copy leaves the original";
}

}  // namespace
