// chan_test — goro/chan.hpp, from Go's channel semantics: FIFO, hand-off, buffering,
// close, panics, nil channels, move-only values, goroutine/thread mixes.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
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
  EXPECT_EQ(message([&] { ch.try_send(1); }), "send on closed channel");
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

}  // namespace
