// select_test — goro/select.hpp: readiness, default, fairness, nil cases, send and
// receive on one channel, closes, and a randomised many-to-many stress.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class select_ : public procs_test {};
GORO_PROCS_SUITE(select_);

TEST_P(select_, runs_the_ready_case) {
  auto a = goro::make_chan<int>(1), b = goro::make_chan<int>(1);
  b.send(5);
  std::optional<int> va, vb;
  EXPECT_EQ(goro::select(goro::case_recv(a, va), goro::case_recv(b, vb)), 1);
  EXPECT_EQ(vb, 5);
  EXPECT_FALSE(va.has_value());
}

TEST_P(select_, default_never_blocks) {
  auto a = goro::make_chan<int>();
  std::optional<int> v;
  auto t0 = steady::now();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(goro::select(goro::case_recv(a, v), goro::case_send(a, 1), goro::case_default()), 2);
  }
  EXPECT_LT(ms_since(t0), 1000.0);
}

TEST_P(select_, blocks_until_a_case_is_ready) {
  auto a = goro::make_chan<int>(), b = goro::make_chan<int>();
  goro::wait_group wg;
  auto t0 = steady::now();  // before the sender starts its 20 ms
  wg.go([&] {
    goro::sleep(20ms);
    b.send(8);
  });
  std::optional<int> va, vb;
  EXPECT_EQ(goro::select(goro::case_recv(a, va), goro::case_recv(b, vb)), 1);
  EXPECT_GE(ms_since(t0), 15.0);
  EXPECT_EQ(vb, 8);
  wg.wait();
}

TEST_P(select_, chooses_uniformly_among_ready_cases) {
  // Four always-ready cases: a chi-square test over 100,000 selects (3 degrees of
  // freedom; 16.27 is the 0.1% critical value, so a fair select fails 1 run in 1000).
  constexpr int n = 100'000;
  std::array<goro::chan<int>, 4> chs;
  for (auto& c : chs) {
    c = goro::make_chan<int>(1);
    c.send(0);
  }
  std::array<int, 4> hits{};
  std::optional<int> v;
  for (int i = 0; i < n; ++i) {
    int k = goro::select(goro::case_recv(chs[0], v), goro::case_recv(chs[1], v),
                         goro::case_recv(chs[2], v), goro::case_recv(chs[3], v));
    ++hits[static_cast<std::size_t>(k)];
    chs[static_cast<std::size_t>(k)].send(0);  // make it ready again
  }
  double chi2 = 0;
  for (int h : hits) chi2 += (h - n / 4.0) * (h - n / 4.0) / (n / 4.0);
  EXPECT_LT(chi2, 16.27) << hits[0] << " " << hits[1] << " " << hits[2] << " " << hits[3];
}

TEST_P(select_, send_and_receive_on_the_same_channel) {
  auto ch = goro::make_chan<int>();
  std::atomic<int> sends{0}, recvs{0};
  goro::wait_group wg;
  for (int g = 0; g < 2; ++g) {
    wg.go([&, g] {
      for (int i = 0; i < 500; ++i) {
        std::optional<int> v;
        if (goro::select(goro::case_send(ch, g), goro::case_recv(ch, v)) == 0) {
          sends.fetch_add(1);
        } else {
          recvs.fetch_add(1);
        }
      }
    });
  }
  wg.wait();
  EXPECT_EQ(sends.load(), recvs.load());
  EXPECT_EQ(sends.load() + recvs.load(), 1000);
}

TEST_P(select_, nil_cases_are_never_ready) {
  goro::chan<int> nil;
  auto ready = goro::make_chan<int>(1);
  ready.send(1);
  std::optional<int> v;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(
        goro::select(goro::case_recv(nil, v), goro::case_send(nil, 2), goro::case_recv(ready, v)),
        2);
    ready.send(1);
  }
  EXPECT_EQ(goro::select(goro::case_recv(nil, v), goro::case_default()), 1);
}

TEST(select_forever, no_cases_blocks_forever) {
  EXPECT_EXIT(
      {
        std::atomic<bool> returned{false};
        goro::go([&] {
          goro::select();
          returned = true;
        });
        goro::go([&] {
          goro::chan<int> nil;
          goro::select(goro::case_recv(nil));
          returned = true;
        });
        std::this_thread::sleep_for(200ms);
        std::exit(returned ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_P(select_, receive_case_sees_close_as_nullopt) {
  auto ch = goro::make_chan<int>();
  goro::wait_group wg;
  std::optional<int> v = 99;
  std::atomic<int> idx{-1};
  wg.go([&] { idx = goro::select(goro::case_recv(ch, v)); });
  std::this_thread::sleep_for(20ms);
  ch.close();
  wg.wait();
  EXPECT_EQ(idx.load(), 0);
  EXPECT_FALSE(v.has_value());
}

TEST_P(select_, send_case_on_a_closed_channel_panics) {
  auto ch = goro::make_chan<int>();
  ch.close();
  EXPECT_THROW(goro::select(goro::case_send(ch, 1)), goro::panic_error);
  auto blocked = goro::make_chan<int>();
  goro::wait_group wg;
  std::atomic<bool> panicked{false};
  wg.go([&] {
    try {
      goro::select(goro::case_send(blocked, 1));
    } catch (const goro::panic_error&) {
      panicked = true;
    }
  });
  std::this_thread::sleep_for(20ms);
  blocked.close();
  wg.wait();
  EXPECT_TRUE(panicked.load());
}

TEST_P(select_, a_plain_thread_can_select) {
  auto a = goro::make_chan<int>(), b = goro::make_chan<int>();
  goro::go([b] { b.send(3); });
  std::optional<int> va, vb;
  EXPECT_EQ(goro::select(goro::case_recv(a, va), goro::case_recv(b, vb)), 1);
  EXPECT_EQ(vb, 3);
}

// Producers send through random select cases over several channels, consumers receive
// through random selects, channels are closed at random moments once their producers
// are done; every value sent must be received exactly once.
TEST_P(select_, stress_many_to_many_with_random_cases_and_closes) {
  std::uint64_t seed = test_seed();
  constexpr int nchan = 4, producers = 6, per = 1500;
  std::array<goro::chan<int>, nchan> chs;
  std::mt19937_64 setup(seed);
  for (auto& c : chs) c = goro::make_chan<int>(setup() % 3);
  std::vector<std::atomic<int>> seen(producers * per);
  std::atomic<int> received{0};
  goro::wait_group prod, cons;
  for (int p = 0; p < producers; ++p) {
    prod.go([&, p] {
      std::mt19937_64 rng(seed + 17 * static_cast<std::uint64_t>(p));
      for (int i = 0; i < per; ++i) {
        int v = p * per + i;
        std::size_t a = rng() % nchan, b = rng() % nchan;
        if (rng() % 8 == 0) goro::yield();
        goro::select(goro::case_send(chs[a], v), goro::case_send(chs[b], v));
      }
    });
  }
  for (int c = 0; c < 5; ++c) {
    cons.go([&, c] {
      std::mt19937_64 rng(seed * 3 + static_cast<std::uint64_t>(c));
      std::array<bool, nchan> open{true, true, true, true};
      int live = nchan;
      while (live > 0) {
        std::optional<int> v[nchan];
        // Nil out closed channels so select keeps waiting on the others.
        goro::chan<int> use[nchan];
        for (int k = 0; k < nchan; ++k)
          use[k] = open[static_cast<std::size_t>(k)] ? chs[static_cast<std::size_t>(k)]
                                                     : goro::chan<int>{};
        int k = goro::select(goro::case_recv(use[0], v[0]), goro::case_recv(use[1], v[1]),
                             goro::case_recv(use[2], v[2]), goro::case_recv(use[3], v[3]));
        if (!v[k]) {
          open[static_cast<std::size_t>(k)] = false;
          --live;
          continue;
        }
        seen[static_cast<std::size_t>(*v[k])].fetch_add(1);
        received.fetch_add(1);
        if (rng() % 16 == 0) goro::yield();
      }
    });
  }
  prod.wait();
  std::vector<int> order{0, 1, 2, 3};
  std::shuffle(order.begin(), order.end(), setup);
  for (int k : order) {
    if (setup() % 2) goro::sleep(std::chrono::microseconds(setup() % 500));
    chs[static_cast<std::size_t>(k)].close();
  }
  cons.wait();
  EXPECT_EQ(received.load(), producers * per) << "seed " << seed;
  for (std::size_t i = 0; i < seen.size(); ++i)
    ASSERT_EQ(seen[i].load(), 1) << "value " << i << " seed " << seed;
}

}  // namespace
