// monitor_test — foreign blocking stalls only its own goroutine: a goroutine that holds
// its thread in code goro does not know (a raw system call, a std::mutex, a loop
// without a scheduling point) no longer freezes its processor, the system monitor
// hands the processor's work to another thread (monitor.cpp). Every case runs at 1, 2
// and 4 processors; with 1 processor each of them hung before the monitor existed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "runtime/fault.hpp"
#include "runtime/scheduler_internal.hpp"
#include "support/fixture.hpp"

namespace {

using namespace goro_test;

class monitor_ : public procs_test {};
GORO_PROCS_SUITE(monitor_);

// A raw nanosleep: a system call goro does not know about.
void raw_sleep(std::chrono::nanoseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1'000'000'000),
              static_cast<long>(d.count() % 1'000'000'000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

struct pipe_pair {
  int fd[2] = {-1, -1};
  pipe_pair() { EXPECT_EQ(pipe2(fd, O_CLOEXEC), 0); }
  ~pipe_pair() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  int r() const { return fd[0]; }
  int w() const { return fd[1]; }
};

// Reads exactly n bytes with raw, blocking read calls.
[[gnu::noinline]] bool raw_read_full(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

TEST_P(monitor_, two_goroutines_talk_over_a_pipe_with_raw_blocking_calls) {
  pipe_pair ping, pong;
  constexpr int rounds = 200;
  goro::wait_group wg;
  std::atomic<int> echoed{0};
  wg.go([&] {  // the echoer: blocks its thread in read() until the other one writes
    for (int i = 0; i < rounds; ++i) {
      int v = 0;
      if (!raw_read_full(ping.r(), &v, sizeof v)) return;
      ASSERT_EQ(write(pong.w(), &v, sizeof v), static_cast<ssize_t>(sizeof v));
      echoed.fetch_add(1);
    }
  });
  std::atomic<int> checked{0};
  wg.go([&] {
    for (int i = 0; i < rounds; ++i) {
      ASSERT_EQ(write(ping.w(), &i, sizeof i), static_cast<ssize_t>(sizeof i));
      int v = -1;
      ASSERT_TRUE(raw_read_full(pong.r(), &v, sizeof v));
      ASSERT_EQ(v, i);
      checked.fetch_add(1);
    }
  });
  auto t0 = steady::now();
  wg.wait();
  EXPECT_EQ(checked.load(), rounds);
  EXPECT_EQ(echoed.load(), rounds);
  EXPECT_LT(ms_since(t0), 20'000) << "the pipe conversation took far too long";
}

TEST_P(monitor_, a_goroutine_blocked_on_a_held_std_mutex_does_not_freeze_its_processor) {
  // A plain thread holds a std::mutex until goroutine A tells it to let go; goroutine B
  // blocks its thread on that mutex meanwhile. A std::mutex must be unlocked by the
  // thread that locked it, so B never parks while holding it.
  std::mutex m;
  auto let_go = goro::make_chan<int>();
  auto locked = goro::make_chan<int>(1);
  std::thread holder([&] {
    std::lock_guard lk(m);
    locked.send(1);
    let_go.recv();
  });
  locked.recv();
  goro::wait_group wg;
  std::atomic<bool> b_done{false};
  wg.go([&] {  // B: blocks its thread
    std::lock_guard lk(m);
    b_done = true;
  });
  wg.go([&] {  // A: sleeps 5 ms (a timer, on the processor B holds), then tells the holder
    goro::sleep(5ms);
    let_go.send(1);
  });
  wg.wait();
  holder.join();
  EXPECT_TRUE(b_done.load());
}

TEST_P(monitor_, a_goroutine_spinning_on_a_flag_set_by_one_queued_behind_it_finishes) {
  // With one processor the setter is queued behind the spinner and goro cannot preempt:
  // the spinner's processor is handed to another thread after a time slice.
  std::atomic<bool> flag{false};
  goro::wait_group wg;
  auto t0 = steady::now();
  for (int i = 0; i < GetParam(); ++i) {
    wg.go([&] {
      while (!flag.load(std::memory_order_acquire)) {
      }  // no scheduling point
    });
  }
  wg.go([&] { flag.store(true, std::memory_order_release); });
  wg.wait();
  EXPECT_LT(ms_since(t0), 5'000);
}

TEST_P(monitor_, timers_fire_while_every_processor_is_held_by_raw_sleeps) {
  goro::wait_group wg;
  for (int b = 0; b < GetParam(); ++b) wg.go([] { raw_sleep(400ms); });
  constexpr int sleepers = 20;
  std::vector<double> late(sleepers);
  auto start = steady::now();
  for (int i = 0; i < sleepers; ++i) {
    wg.go([&, i] {
      auto want = start + (i + 1) * 5ms;
      goro::sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(want - steady::now()));
      late[static_cast<std::size_t>(i)] =
          std::chrono::duration<double, std::milli>(steady::now() - want).count();
    });
  }
  wg.wait();
  std::sort(late.begin(), late.end());
  // Before the monitor every wake-up came ~400 ms late; the benchmark (W14) has the
  // real figure, this bound only has to survive a loaded machine.
  EXPECT_LT(late[sleepers / 2], 150.0) << "median lateness";
  EXPECT_LT(late.back(), 350.0) << "worst lateness";
}

TEST_P(monitor_, goroutines_in_raw_system_calls_overlap) {
  // 16 goroutines, each in a raw 50 ms sleep: one processor must not serialise them.
  goro::wait_group wg;
  auto t0 = steady::now();
  for (int i = 0; i < 16; ++i) wg.go([] { raw_sleep(50ms); });
  wg.wait();
  double took = ms_since(t0);
  EXPECT_LT(took, 16 * 50 * 0.5) << "raw sleeps ran one after another (" << took << " ms)";
}

TEST_P(monitor_, a_plain_thread_reading_a_socket_is_woken_while_every_processor_spins) {
  // Data arrives at ~100 ms while every processor runs a loop without a scheduling
  // point until 1.5 s; the monitor polls the network, so the plain thread's read
  // completes long before the loops end.
  auto [ln, err] = goro::net::listen("tcp", "127.0.0.1:0");
  ASSERT_FALSE(err) << err.message();
  std::string addr = ln.addr();
  goro::wait_group wg;
  wg.go([&] {
    auto [c, aerr] = ln.accept();
    ASSERT_FALSE(aerr) << aerr.message();
    goro::sleep(100ms);
    ASSERT_FALSE(c.write(std::string_view("x")).error());
    goro::sleep(200ms);
  });
  std::atomic<double> read_at{-1};
  auto t0 = steady::now();
  std::thread reader([&] {
    auto [c, derr] = goro::net::dial("tcp", addr);
    ASSERT_FALSE(derr) << derr.message();
    char b[1];
    auto [n, rerr] = c.read(std::span<char>(b));
    read_at = ms_since(t0);
    EXPECT_FALSE(rerr) << rerr.message();
    EXPECT_EQ(n, 1u);
  });
  goro::sleep(20ms);
  std::atomic<bool> stop{false};
  for (int i = 0; i < GetParam(); ++i) {
    wg.go([&stop, t0] {
      while (!stop.load(std::memory_order_relaxed) && ms_since(t0) < 1500) {
      }
    });
  }
  reader.join();
  stop = true;
  wg.wait();
  ln.close();
  EXPECT_LT(read_at.load(), 1000.0) << "the plain thread's read waited for the loops";
}

TEST_P(monitor_, a_plain_threads_read_deadline_fires_while_every_processor_spins) {
  auto [ln, err] = goro::net::listen("tcp", "127.0.0.1:0");
  ASSERT_FALSE(err) << err.message();
  std::string addr = ln.addr();
  goro::wait_group wg;
  auto done = goro::make_chan<int>(1);
  wg.go([&] {
    auto [c, aerr] = ln.accept();
    ASSERT_FALSE(aerr) << aerr.message();
    done.recv();  // holds the connection open, silent, until the reader is done
  });
  std::atomic<double> failed_at{-1};
  std::atomic<bool> stop{false};
  auto t0 = steady::now();
  std::thread reader([&] {
    auto [c, derr] = goro::net::dial("tcp", addr);
    ASSERT_FALSE(derr) << derr.message();
    c.set_read_deadline(steady::now() + 100ms);
    char b[1];
    auto [n, rerr] = c.read(std::span<char>(b));
    failed_at = ms_since(t0);
    EXPECT_TRUE(rerr.is(goro::deadline_exceeded)) << rerr.message();
    stop = true;
    done.send(1);
  });
  for (int i = 0; i < GetParam(); ++i) {
    wg.go([&stop, t0] {
      while (!stop.load(std::memory_order_relaxed) && ms_since(t0) < 2000) {
      }
    });
  }
  reader.join();
  wg.wait();
  ln.close();
  EXPECT_LT(failed_at.load(), 1000.0) << "the deadline waited for the loops";
}

TEST_P(monitor_, a_goroutine_in_a_long_raw_read_shows_its_system_call_in_the_dump) {
  pipe_pair p;
  goro::wait_group wg;
  wg.go([&] {
    char c;
    (void)raw_read_full(p.r(), &c, 1);  // blocks until the test writes
  });
  std::string dump;
  bool seen = eventually([&] {
    dump = goro::debug::goroutines(2);
    return dump.find("[syscall read, ") != std::string::npos;
  });
  EXPECT_TRUE(seen) << dump;
  EXPECT_NE(dump.find("holding its thread]"), std::string::npos) << dump;
  // The stack of the stuck goroutine, read without disturbing its thread, down to the
  // function that made the system call. (Under ThreadSanitizer and AddressSanitizer
  // their interceptor frames sit between that function and the C library's wrapper, and
  // the stack scan that bridges a frame without a frame pointer recovers only one: under
  // AddressSanitizer the walk ended in libasan's read interceptor in 9 of 15 runs.)
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  EXPECT_NE(dump.find("raw_read_full"), std::string::npos) << dump;
#endif
  std::string grouped = goro::debug::goroutines(1);
  EXPECT_NE(grouped.find("# syscall read, holding its thread"), std::string::npos) << grouped;
  ASSERT_EQ(write(p.w(), "x", 1), 1);
  wg.wait();
}

TEST_P(monitor_, a_goroutine_spinning_without_a_scheduling_point_is_named_in_the_dump) {
  std::atomic<bool> stop{false};
  goro::wait_group wg;
  wg.go([&] {
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  std::string dump;
  bool seen = eventually([&] {
    dump = goro::debug::goroutines(2);
    return dump.find(" without a scheduling point]") != std::string::npos;
  });
  stop = true;
  wg.wait();
  EXPECT_TRUE(seen) << dump;
  EXPECT_NE(dump.find("[running, "), std::string::npos) << dump;
}

TEST_P(monitor_, taking_a_dump_does_not_interrupt_a_goroutines_system_call) {
  // Go never signals a thread that is in a system call; a dump must not turn a user's
  // poll or sleep into EINTR.
  pipe_pair p;
  std::atomic<int> poll_result{-2}, poll_errno{0};
  goro::wait_group wg;
  wg.go([&] {
    pollfd pfd{p.r(), POLLIN, 0};
    int r = poll(&pfd, 1, 400);
    poll_errno = errno;
    poll_result = r;
  });
  goro::sleep(100ms);
  std::string dump = goro::debug::goroutines(2);
  (void)goro::debug::goroutines(1);
  wg.wait();
  EXPECT_NE(dump.find("[syscall poll"), std::string::npos) << dump;
  EXPECT_EQ(poll_result.load(), 0) << "poll was interrupted: errno " << poll_errno.load();
}

TEST_P(monitor_, a_dump_does_not_wait_long_for_goroutines_that_block_signals) {
  // Computing goroutines are sampled with a signal; one whose thread blocks it does
  // not answer, and the dump gives up on all of them within one budget.
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  goro::wait_group wg;
  for (int i = 0; i < 6; ++i) {
    wg.go([&] {
      sigset_t set, old;
      sigemptyset(&set);
      sigaddset(&set, SIGURG);
      pthread_sigmask(SIG_BLOCK, &set, &old);
      ready.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);  // the thread goes on running others
    });
  }
  ASSERT_TRUE(eventually([&] { return ready.load() >= std::min(6, GetParam()); }));
  goro::sleep(50ms);
  auto t0 = steady::now();
  std::string dump = goro::debug::goroutines(2);
  double took = ms_since(t0);
  stop = true;
  wg.wait();
  EXPECT_LT(took, 1000.0) << dump;
}

TEST_P(monitor_, computing_goroutines_do_not_each_get_a_thread) {
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer's runtime puts threads to sleep on its own futexes: to the monitor
  // that is blocking in the kernel, as any foreign lock is, and it hands off for it.
  GTEST_SKIP() << "ThreadSanitizer's runtime blocks computing threads in the kernel";
#endif
  // Goroutines that compute without a scheduling point are not foreign blocking: at
  // most one of them at a time gets a thread beyond max_procs (so that one queued
  // behind them still runs), never one each.
  std::atomic<int> in{0}, most{0};
  goro::wait_group wg;
  for (int i = 0; i < 12; ++i) {
    wg.go([&] {
      int k = in.fetch_add(1) + 1;
      for (int m = most.load(); k > m && !most.compare_exchange_weak(m, k);) {
      }
      auto t0 = steady::now();
      while (ms_since(t0) < 40) {
      }
      in.fetch_sub(1);
    });
  }
  wg.wait();
  // One computing hand-off beyond max_procs is the design; more appear when the kernel
  // puts computing threads to sleep for a moment (page faults on fresh stack pages
  // under memory pressure; under AddressSanitizer its allocator's locks), which the
  // monitor rightly treats as blocking. On an overloaded 2-core machine 7 were seen at
  // 4 processors. The bound says what the test is about: not one thread per goroutine
  // (12), and not more than twice max_procs and two.
  EXPECT_LE(most.load(), 2 * GetParam() + 2);
  EXPECT_LT(most.load(), 12);
}

TEST_P(monitor_, goroutines_that_block_again_and_again_are_never_lost) {
  // Senders that block in raw sleeps earn blocker credits and run on spare threads;
  // a spare started for one must run it even when a hand-off or set_max_procs gives
  // that new processor a slot first (a goroutine stayed runnable forever, 3 runs in 90).
  auto seed = test_seed();
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  for (int round = 0; round < 6; ++round) {
    auto ch = goro::make_chan<int>();
    constexpr int senders = 32, sends = 60;
    for (int g = 0; g < senders; ++g) {
      goro::go([ch] {
        for (int i = 0; i < sends; ++i) {
          raw_sleep(200us);
          ch.send(1);
        }
      });
    }
    if (rng() % 2 == 0) {
      std::thread([n = GetParam()] {
        std::this_thread::sleep_for(5ms);
        goro::set_max_procs(n + 1);
        std::this_thread::sleep_for(5ms);
        goro::set_max_procs(n);
      }).detach();
    }
    for (int i = 0; i < senders * sends; ++i) {
      std::optional<int> v;
      int k = goro::select(goro::case_recv(ch, v), goro::case_recv(goro::after(10s)));
      ASSERT_EQ(k, 0) << "a sender was lost (round " << round << ", " << i << " received)\n"
                      << goro::debug::goroutines(2);
    }
  }
  std::this_thread::sleep_for(20ms);
  goro::set_max_procs(GetParam());
}

TEST_P(monitor_, a_goroutine_that_keeps_blocking_keeps_running_on_spare_threads) {
#if defined(__SANITIZE_THREAD__)
  // Under ThreadSanitizer a blocker's run computes more than the 50 us that keeps its
  // credits (its channel operations and bookkeeping, instrumented): 20-38 of 150 runs
  // held a slot in 2 of 4 runs at 2 and 4 processors.
  GTEST_SKIP() << "ThreadSanitizer makes a blocker's runs compute too long to keep credits";
#endif
  // Caught once holding its processor in the kernel, a goroutine that blocks in the
  // kernel again on each of its later runs keeps running on spare threads, without a
  // slot: once it has run on one, it never holds a slot again. Each run looks at the
  // processor it blocked on: a spare one is retired and was not handed off; any other
  // was held. (Before it is caught, its runs hold a slot; with 2 or more processors the
  // monitor takes up to 10 ms to act when nothing waits for it.) Its credits used to run
  // out after a few runs, and most runs after its first on a spare were held again:
  // 70-140 of 150.
  constexpr int runs = 150;
  std::atomic<bool> done{false};
  bool known = false;
  int held_after = 0;
  goro::wait_group wg;
  wg.go([&] {
    for (int i = 0; i < runs; ++i) {
      raw_sleep(1ms);
      goro::detail::processor* p = goro::detail::current_processor();
      bool on_spare = p->retired.load() && !p->handed_off.load();
      if (known && !on_spare) ++held_after;
      known = known || on_spare;
      goro::yield();
    }
    done = true;
  });
  wg.go([&] {  // the work beside it, which a held slot would stall
    while (!done) goro::yield();
  });
  wg.wait();
  ASSERT_TRUE(known) << "the goroutine never ran on a spare thread";
  EXPECT_LE(held_after, 2) << "after its first run on a spare thread, a known blocker held a slot in "
                           << held_after << " of its " << runs << " runs";
}

TEST_P(monitor_, a_goroutine_that_stops_blocking_runs_within_max_procs_again) {
  // One raw block earns a goroutine credits to run on a spare thread without a slot;
  // a run in which its thread never sleeps in the kernel spends them all, so from
  // then on it computes within max_procs, as every goroutine does. A late step may
  // still see one goroutine too many now and then: a processor whose goroutine the
  // host deschedules mid-step is handed off like any held one. A goroutine that kept
  // its credits would be over the limit in most of its late steps.
  constexpr int goroutines = 6, steps = 24, late_from = 12;
  std::atomic<int> in{0}, most_late{0}, late_over{0};
  goro::wait_group wg;
  for (int g = 0; g < goroutines; ++g) {
    wg.go([&] {
      raw_sleep(20ms);
      for (int i = 0; i < steps; ++i) {
        int k = in.fetch_add(1) + 1;
        if (i >= late_from) {
          if (k > GetParam() + 1) late_over.fetch_add(1);
          for (int m = most_late.load(); k > m && !most_late.compare_exchange_weak(m, k);) {
          }
        }
        auto t0 = steady::now();
        while (ms_since(t0) < 1) {
        }
        in.fetch_sub(1);
        goro::yield();
      }
    });
  }
  wg.wait();
  constexpr int late_steps = goroutines * (steps - late_from);
  EXPECT_LE(late_over.load(), late_steps / 12)
      << "of " << late_steps << " late steps, " << late_over.load() << " ran with more than "
      << GetParam() + 1 << " goroutines computing (at most " << most_late.load() << ")";
}

TEST_P(monitor_, a_goroutine_spawning_in_a_loop_is_preempted_at_a_spawn_not_handed_off) {
  // Go preempts a goroutine that runs for a time slice; goro cannot stop one anywhere,
  // but it asks it to yield at its next preemption point, and goro::go is one. So a
  // loop that only spawns lets what it spawned run on its own processor's thread,
  // instead of keeping its thread while a new one takes the processor.
  if (GetParam() != 1) {
    GTEST_SKIP() << "needs one processor: with more, the spawned goroutines run on the other "
                    "processors' threads whether or not the spawner is preempted";
  }
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's runtime blocks computing threads in the kernel";
#endif
  // Up to three attempts: a spawner whose thread really blocks in the kernel (a page
  // fault waiting for the address space's lock while other processes load the machine)
  // is rightly handed off. Without preemption at a spawn, every attempt is handed off.
  std::string attempts;
  bool preempted = false;
  for (int attempt = 0; attempt < 3 && !preempted; ++attempt) {
    std::atomic<bool> ran{false};
    std::atomic<pid_t> ran_on{0};
    pid_t spawner_on = 0;
    long spawned = 0;
    double waited = 0;
    goro::wait_group wg, spawner;
    spawner.go([&] {
      spawner_on = gettid();
      auto t0 = steady::now();
      while (!ran.load() && ms_since(t0) < 5000) {
        wg.go([&] {
          if (!ran.exchange(true)) ran_on.store(gettid());
        });
        ++spawned;
      }
      waited = ms_since(t0);
    });
    spawner.wait();
    wg.wait();
    EXPECT_TRUE(ran.load()) << "nothing spawned ran in 5 s (" << spawned << " spawned)";
    EXPECT_GE(waited, 5.0) << "they ran before a time slice had passed";
    preempted = ran.load() && ran_on.load() == spawner_on;
    attempts += " " + std::to_string(waited) + " ms (" +
                (preempted ? "preempted" : "handed off") + ");";
  }
  EXPECT_TRUE(preempted) << "the spawned goroutines ran on another thread: the processor was "
                            "handed off in every attempt:"
                         << attempts;
}

TEST_P(monitor_, work_waiting_in_the_global_queue_runs_when_a_spawning_loop_is_preempted) {
  // A goroutine that computes and spawns now and then is preempted at a spawn; it goes
  // behind the goroutines that waited in the global queue (one a plain thread woke, here),
  // so those run within about a time slice, as in Go, even when its children finish at
  // once and the processor's own queue is empty again.
  auto ch = goro::make_chan<int>();
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> woke_ns{0};
  goro::wait_group wg;
  wg.go([&] {
    ch.recv();
    woke_ns.store(steady::now().time_since_epoch().count());
  });
  wg.go([&] {
    auto t0 = steady::now();
    while (!stop.load() && ms_since(t0) < 3000) {
      auto t1 = steady::now();
      while (ms_since(t1) < 0.5) {
      }
      wg.go([] {});
    }
  });
  std::this_thread::sleep_for(50ms);
  auto sent = steady::now();
  ch.send(1);  // from a plain thread: the receiver goes to the global queue
  while (woke_ns.load() == 0 && ms_since(sent) < 3000) std::this_thread::sleep_for(1ms);
  stop = true;
  wg.wait();
  ASSERT_NE(woke_ns.load(), 0);
  double latency = (woke_ns.load() - sent.time_since_epoch().count()) / 1e6;
  EXPECT_LT(latency, 150.0) << "the woken goroutine waited " << latency << " ms";
}

TEST_P(monitor_, num_goroutine_and_leak_checks_stay_right_while_a_processor_is_handed_off) {
  pipe_pair p;
  std::size_t before = goro::num_goroutine();
  goro::wait_group wg;
  wg.go([&] {
    char c;
    (void)raw_read_full(p.r(), &c, 1);
  });
  for (int i = 0; i < 10; ++i) wg.go([] { goro::sleep(20ms); });
  goro::sleep(5ms);
  EXPECT_EQ(goro::num_goroutine(), before + 11);
  // The sleepers end, on whichever thread took the processor (60 ms here; under
  // ThreadSanitizer on a host with costly page faults, up to a few hundred).
  EXPECT_TRUE(eventually([&] { return goro::num_goroutine() == before + 1; }))
      << goro::num_goroutine() - before << " goroutines left of 11";
  auto err = goro::debug::check_no_leaks({.grace = 0ms});
  EXPECT_TRUE(err);  // the reader is still there, and is reported
  if (err) {
    EXPECT_NE(err.message().find("syscall read"), std::string::npos) << err.message();
  }
  ASSERT_EQ(write(p.w(), "x", 1), 1);
  wg.wait();
}

TEST_P(monitor_, a_yielding_goroutine_gets_turns_beside_a_runnext_ping_pong) {
  // Two goroutines handing a value back and forth keep refilling runnext; Go gives
  // such a chain one time slice (10 ms) before the rest of the queue runs. Before,
  // the yielding goroutine here got 1 turn in 500 ms with one processor.
  goro::set_max_procs(1);
  auto ping = goro::make_chan<int>(), pong = goro::make_chan<int>();
  std::atomic<bool> stop{false};
  std::atomic<long> turns{0}, rounds{0};
  goro::wait_group wg;
  wg.go([&] {
    for (auto v : ping) pong.send(v);
    pong.close();
  });
  wg.go([&] {
    while (!stop.load()) {
      ping.send(1);
      pong.recv();
      rounds.fetch_add(1, std::memory_order_relaxed);
    }
    ping.close();
  });
  wg.go([&] {
    while (!stop.load()) {
      turns.fetch_add(1, std::memory_order_relaxed);
      goro::yield();
    }
  });
  std::this_thread::sleep_for(500ms);
  stop = true;
  wg.wait();
  EXPECT_GT(rounds.load(), 1000) << "the ping-pong itself must keep going";
  EXPECT_GE(turns.load(), 10) << "the yielding goroutine starved behind runnext";
}

TEST_P(monitor_, goroutines_queued_while_max_procs_shrinks_under_busy_processors_run) {
  // set_max_procs shrinks while a goroutine runs on a processor that loses its slot:
  // the goroutines it queues meanwhile run elsewhere instead of waiting for it.
  if (GetParam() < 2) GTEST_SKIP() << "needs a second processor to retire";
  std::atomic<bool> stop{false};
  std::atomic<bool> queued_ran{false};
  std::atomic<int> spinning{0};
  goro::wait_group wg;
  for (int i = 0; i < GetParam(); ++i) {
    wg.go([&] {
      spinning.fetch_add(1);
      while (spinning.load() < GetParam() && !stop.load()) {
      }
      goro::set_max_procs(1);  // some of us now run on retired processors
      wg.go([&] { queued_ran = true; });
      auto t0 = steady::now();
      while (!stop.load() && ms_since(t0) < 2000) {
      }
    });
  }
  EXPECT_TRUE(eventually([&] { return queued_ran.load(); }, 1500ms))
      << "goroutines queued by a retired processor waited for its goroutine";
  stop = true;
  wg.wait();
  goro::set_max_procs(GetParam());
}

TEST_P(monitor_, a_processor_handed_off_just_after_it_went_idle_retires) {
  // The monitor judges a processor from a look taken a moment before the hand-off: the
  // goroutine it saw holding the thread may park meanwhile, and the processor go idle.
  // Handed off while asleep in the idle list, it must still retire. Left there it was
  // counted idle in place of a slot: the deadlock detector (which wants npidle ==
  // nprocs) stayed quiet for good, and wakers woke it instead of a processor with a
  // slot. Here the hand-off is made by hand on a processor known to be idle.
  using namespace goro::detail;
  goro::run([] {});
  scheduler& s = *the_scheduler.load();
  processor* p = nullptr;
  ASSERT_TRUE(eventually([&] {
    if (s.npidle.load() != s.nprocs.load()) return false;
    std::lock_guard lk(s.idle_lock);
    p = s.idle_head;
    return p != nullptr;
  }));
  bool handed;
  {
    std::lock_guard lk(s.procs_lock);
    handed = hand_off_locked(s, p);
  }
  ASSERT_TRUE(handed);
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lk(s.idle_lock);
    return !p->in_idle_list && s.npidle.load() == s.nprocs.load() && p->spare.load();
  }, 3000ms)) << "npidle=" << s.npidle.load() << " nprocs=" << s.nprocs.load()
              << " in_idle_list=" << p->in_idle_list << " spare=" << p->spare.load()
              << " retired=" << p->retired.load() << " id=" << p->id
              << " created=" << s.created.load();
  // Every slot still runs goroutines.
  std::atomic<int> ran{0};
  goro::run([&] {
    goro::wait_group wg;
    for (int i = 0; i < 4 * GetParam(); ++i) wg.go([&] { ran.fetch_add(1); });
    wg.wait();
  });
  EXPECT_EQ(ran.load(), 4 * GetParam());
}

// ---- death tests: each runs in a fresh process --------------------------------

// Starts n goroutines that block in a raw read of a pipe nobody writes: each holds its
// thread for good.
void start_stuck_readers(int n) {
  int fds[2];
  if (pipe(fds) != 0) std::exit(3);
  for (int i = 0; i < n; ++i) {
    goro::go([fd = fds[0]] {
      char c;
      (void)!read(fd, &c, 1);
    });
  }
}

TEST(monitor_death, exceeding_goro_max_threads_is_a_fatal_error_naming_the_stuck_goroutines) {
  EXPECT_EXIT(
      {
        setenv("GORO_MAX_THREADS", "3", 1);
        goro::set_max_procs(1);
        start_stuck_readers(5);
        goro::sleep(10s);
        std::exit(0);
      },
      ::testing::ExitedWithCode(2),
      "program exceeds 3-thread limit(.|\n)*thread exhaustion(.|\n)*goroutine [0-9]+ \\(in "
      "system call read");
}

TEST(monitor_death, a_worker_thread_the_system_refuses_is_a_fatal_error_that_says_so) {
  // As Go's "failed to create new OS thread": a hand-off that cannot get a thread
  // ends the program with a sentence (it ended by an escaping std::system_error).
  // RLIMIT_NPROC binds only a user other than root, so the child becomes nobody.
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to run the child as another user";
  EXPECT_EXIT(
      {
        if (setgid(65534) != 0 || setuid(65534) != 0) std::exit(3);
        goro::set_max_procs(1);
        goro::wait_group started;
        started.go([] {});
        started.wait();  // the runtime and its threads exist
        rlimit r{};
        r.rlim_cur = r.rlim_max = 1;  // no new thread for this user
        if (setrlimit(RLIMIT_NPROC, &r) != 0) std::exit(4);
        start_stuck_readers(3);
        goro::sleep(10s);
        std::exit(0);
      },
      ::testing::ExitedWithCode(2),
      "runtime: failed to create new OS thread(.|\n)*fatal error: goro: newosproc");
}

TEST(monitor_death, no_deadlock_is_reported_while_a_goroutine_is_in_foreign_code) {
  EXPECT_EXIT(
      {
        int rc = goro::run([] {
          auto ch = goro::make_chan<int>();
          goro::go([ch] {
            raw_sleep(600ms);  // everyone else is asleep meanwhile
            ch.send(1);
          });
          ch.recv();
        });
        std::exit(rc == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(monitor_death, a_deadlock_after_the_foreign_call_returns_is_still_reported) {
  EXPECT_EXIT(
      {
        goro::run([] {
          auto ch = goro::make_chan<int>();
          goro::go([] { raw_sleep(300ms); });
          ch.recv();  // nobody will ever send
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(2), "all goroutines are asleep - deadlock!");
}

TEST(monitor_death, no_false_deadlock_while_a_retired_processor_runs_a_goroutine) {
  // set_max_procs shrinks while a goroutine computes on the processor that loses its
  // slot; everything else is asleep. Before, the detector counted only processors
  // [0, max_procs) and reported a deadlock while the dump listed the goroutine running.
  EXPECT_EXIT(
      {
        goro::set_max_procs(2);
        int rc = goro::run([] {
          auto ch = goro::make_chan<int>();
          auto started = goro::make_chan<int>(2);
          for (int i = 0; i < 2; ++i) {
            goro::go([ch, started] {
              started.send(1);
              auto t0 = steady::now();
              while (ms_since(t0) < 600) {
              }  // no scheduling point
              ch.send(1);
            });
          }
          started.recv();
          started.recv();
          goro::set_max_procs(1);
          ch.recv();
          ch.recv();
        });
        std::exit(rc == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// For the death tests below: with GORO_STARVE_MS=50 and stderr captured, a goroutine
// computes for `compute_first` without a scheduling point (while another waits for the
// processor, with `waiter`), then spawns small goroutines in a loop for `spawn_for`.
// Exits 0 unless a starvation line named a goroutine as running "without a scheduling
// point".
[[noreturn]] void exit_unless_the_spawner_is_named(int procs,
                                                   std::chrono::milliseconds compute_first,
                                                   std::chrono::milliseconds spawn_for,
                                                   bool waiter) {
  setenv("GORO_STARVE_MS", "50", 1);
  goro::set_max_procs(procs);
  int log = memfd_create("stderr", 0);
  if (log < 0 || dup2(log, STDERR_FILENO) < 0) std::exit(3);
  std::atomic<long> done{0};
  long spawned = 0;
  goro::wait_group wg;
  wg.go([&] {
    auto computed = steady::now() + compute_first;
    while (steady::now() < computed) asm volatile("" ::: "memory");
    auto until = steady::now() + spawn_for;
    while (steady::now() < until) {
      for (int i = 0; i < 64; ++i, ++spawned) {
        goro::go([&] {
          for (int k = 0; k < 200; ++k) asm volatile("" ::: "memory");
          done.fetch_add(1, std::memory_order_relaxed);
        });
      }
    }
  });
  if (waiter) wg.go([] {});
  wg.wait();
  while (done.load() < spawned) goro::sleep(1ms);
  char text[4096] = {};
  ssize_t n = pread(log, text, sizeof text - 1, 0);
  if (n > 0) std::fputs(text, stdout);
  std::exit(n >= 0 && std::strstr(text, "without a scheduling point") == nullptr ? 0 : 1);
}

TEST(monitor_death, a_spawning_loop_whose_work_others_serve_is_not_named) {
  // A goroutine that spawns in a loop for 400 ms, with a second processor taking what
  // it spawns: nobody waits for its processor (a thief takes from its ring, the other
  // processor pops the global queue), so it is not named as running "without a
  // scheduling point" while goroutines waited. Before, every goroutine queued anywhere
  // counted as waiting for it.
  EXPECT_EXIT(exit_unless_the_spawner_is_named(2, 0ms, 400ms, false),
              ::testing::ExitedWithCode(0), "");
}

TEST(monitor_death, a_goroutine_handed_off_for_computing_yields_at_its_next_spawn) {
  // One processor: a goroutine computes 40 ms without a scheduling point while another
  // waits, so the monitor asks it to yield and then hands its processor off; then it
  // spawns in a loop for 300 ms. Its first spawn is a preemption point: it goes back in
  // line for a slot, as Go's goroutine leaving a system call without a P does, instead
  // of spawning outside max_procs for good (and being named as running "without a
  // scheduling point").
  EXPECT_EXIT(exit_unless_the_spawner_is_named(1, 40ms, 300ms, true),
              ::testing::ExitedWithCode(0), "");
}

TEST(monitor_death, goroutines_stuck_together_are_named_in_one_starvation_line) {
  EXPECT_EXIT(
      {
        setenv("GORO_STARVE_MS", "50", 1);
        goro::set_max_procs(1);
        start_stuck_readers(5);
        goro::sleep(1500ms);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "has held its thread for [0-9]+ ms in system call read while [0-9]+ goroutine\\(s\\) "
      "waited to run; its processor was handed to another thread \\(created at "
      "[^)]*\\); [0-9]+ more goroutine\\(s\\) hold their threads too");
}

TEST(monitor_death, set_max_procs_from_a_thread_while_the_runtime_starts_is_applied) {
  EXPECT_EXIT(
      {
        std::thread t([] { goro::set_max_procs(3); });
        goro::go([] {});
        t.join();
        std::exit(goro::max_procs() == 3 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(monitor_death, the_starvation_line_names_a_goroutine_holding_its_thread_in_a_system_call) {
  EXPECT_EXIT(
      {
        setenv("GORO_STARVE_MS", "50", 1);
        goro::set_max_procs(1);
        goro::wait_group wg;
        wg.go([] { raw_sleep(300ms); });
        wg.go([] { goro::sleep(1ms); });
        wg.wait();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "goroutine [0-9]+ has held its thread for [0-9]+ ms in system call (nanosleep|"
      "clock_nanosleep) while 1 goroutine\\(s\\) waited to run; its processor was handed to "
      "another thread \\(created at .*monitor_test.cpp:[0-9]+\\)");
}

TEST(monitor_death, a_deadlock_after_a_starvation_line_is_still_reported) {
  // The line is written by a thread of goro's own, which the deadlock check must count
  // as the runtime's: counted as the program's, it could wake the goroutines, and the
  // program hung instead.
  EXPECT_EXIT(
      {
        alarm(30);  // a hang fails the test instead of stalling the suite
        setenv("GORO_STARVE_MS", "50", 1);
        goro::set_max_procs(1);
        goro::run([] {
          goro::wait_group wg;
          wg.go([] {
            goro::go([] {});
            raw_sleep(300ms);  // named while the goroutine it started waits
          });
          wg.wait();
          auto ch = goro::make_chan<int>();
          ch.recv();  // nobody will ever send
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(2),
      "has held its thread for(.|\n)*all goroutines are asleep - deadlock!");
}

TEST(monitor_death, a_stderr_nobody_reads_does_not_stop_the_monitor) {
  // stderr is a full pipe nobody reads, as a daemon's may be. The first starvation line
  // cannot be written; the monitor must still hand off the processor of the next
  // goroutine that holds its thread in a system call, so that the goroutine waiting
  // for it runs in well under the 600 ms of that call.
  EXPECT_EXIT(
      {
        setenv("GORO_STARVE_MS", "50", 1);
        goro::set_max_procs(1);
        int fds[2];
        if (pipe(fds) != 0 || dup2(fds[1], STDERR_FILENO) < 0) std::_Exit(3);
        fcntl(STDERR_FILENO, F_SETFL, O_NONBLOCK);
        char block[4096] = {};
        while (write(STDERR_FILENO, block, sizeof block) > 0) {
        }
        while (write(STDERR_FILENO, block, 1) > 0) {
        }
        fcntl(STDERR_FILENO, F_SETFL, 0);  // full, and blocking again
        {
          goro::wait_group wg;
          wg.go([] { raw_sleep(300ms); });  // reported: the line cannot get out
          wg.go([] { goro::sleep(1ms); });
          wg.wait();
        }
        goro::sleep(100ms);
        std::atomic<bool> in_call{false};
        std::atomic<std::int64_t> waited_ms{-1};
        goro::wait_group wg;
        wg.go([&] {
          in_call = true;
          raw_sleep(600ms);
        });
        while (!in_call) std::this_thread::sleep_for(1ms);
        auto started = steady::now();
        wg.go([&] {
          waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() -
                                                                            started)
                          .count();
        });
        wg.wait();
        std::printf("waited %lld ms\n", static_cast<long long>(waited_ms.load()));
        std::fflush(stdout);
        std::_Exit(waited_ms.load() >= 0 && waited_ms.load() < 400 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// The stack sampler's unwinding runs in a signal handler over another goroutine's
// frames; a wild read there (a CFA off the stack, between two instructions of a
// switch) must end the walk, not the program: the fault handler jumps to the escape.
__attribute__((noinline, no_sanitize("address", "thread"))) int read_wild(std::uintptr_t address) {
  return *reinterpret_cast<volatile int*>(address);
}

TEST(monitor_credits, a_run_that_computed_more_than_a_moment_earns_no_credits) {
  using goro::detail::blocker_verdict;
  using goro::detail::judge_blocker_run;
  auto us = [](std::int64_t n) { return n * 1'000; };
  // Never slept in the kernel: it blocks no more, however long the run.
  EXPECT_EQ(judge_blocker_run(0, 0, us(5), us(5)), blocker_verdict::blocks_no_more);
  EXPECT_EQ(judge_blocker_run(0, 3, us(10'000), us(30'000)), blocker_verdict::blocks_no_more);
  // A blocking call and a channel send: still a blocker (a run of W13's producers).
  EXPECT_EQ(judge_blocker_run(1, 0, us(20), us(250)), blocker_verdict::still_blocks);
  EXPECT_EQ(judge_blocker_run(2, 0, us(45), us(1'000)), blocker_verdict::still_blocks);
  // 200 us in the kernel, then 10 ms of computing: with credits refilled on any sleep,
  // such goroutines computed outside max_procs for good.
  EXPECT_EQ(judge_blocker_run(1, 0, us(10'000), us(10'200)), blocker_verdict::unclear);
  // 300 us in the kernel, then 90 us of computing: refilled at up to 200 us and a
  // quarter of the run, 16 such goroutines kept about two computing with 1 processor.
  EXPECT_EQ(judge_blocker_run(1, 0, us(90), us(390)), blocker_verdict::unclear);
  // A short computation that is more than an eighth of the run.
  EXPECT_EQ(judge_blocker_run(1, 0, us(30), us(200)), blocker_verdict::unclear);
  // Preempted: on a loaded machine a computing run waits for a CPU, and its CPU time is
  // a small part of its time too.
  EXPECT_EQ(judge_blocker_run(1, 1, us(20), us(2'000)), blocker_verdict::unclear);
}

TEST(monitor_sampling, a_fault_inside_a_guarded_walk_escapes) {
  // A page no one may read (an unmapped address may be sanitizer shadow memory).
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  auto wild = reinterpret_cast<std::uintptr_t>(page) + 64;
  std::atomic<int> outcome{0};
  goro::wait_group wg;
  wg.go([&] {
    for (int i = 0; i < 3; ++i) {
      sigjmp_buf escape;
      if (sigsetjmp(escape, 1) == 0) {
        goro::detail::set_fault_escape(&escape);
        outcome = read_wild(wild);
        goro::detail::set_fault_escape(nullptr);
      } else {
        outcome += 1;  // escaped; the handler cleared the escape
      }
    }
  });
  wg.wait();
  munmap(page, 4096);
  EXPECT_EQ(outcome.load(), 3);
}

}  // namespace
