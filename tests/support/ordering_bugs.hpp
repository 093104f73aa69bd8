// ordering_bugs.hpp — four ordering bugs of the kind the Go field guide is about,
// each with its fix (fixed = true): the targets of goro::testing::explore in
// tests/explore_test.cpp and of goro-workloads explore_bugs.
#pragma once

#include <goro/goro.hpp>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

namespace ordering_bugs {

// --- 1. Check-then-act with a channel operation in between -------------------------

inline void withdraw_twice(bool fixed) {
  std::atomic<int> balance{100};
  goro::mutex mu;
  auto audit = goro::make_chan<int>(4);
  goro::wait_group wg;
  for (int i = 0; i < 2; ++i) {
    wg.go([&] {
      if (fixed) mu.lock();
      if (balance.load() >= 80) {
        audit.send(80);  // between the check and the act
        balance.store(balance.load() - 80);
      }
      if (fixed) mu.unlock();
    });
  }
  wg.wait();
  if (balance.load() < 0) {
    throw std::logic_error("balance went negative: " + std::to_string(balance.load()));
  }
}

// --- 2. A worker returns on its error path without done(): the waiter leaks --------

inline void worker_error_path(bool fixed) {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto jobs = goro::make_chan<int>(1);
  goro::wait_group wg;
  goro::go([cancel = cancel] { cancel(); });  // a shutdown racing the work
  wg.add(1);
  goro::go([&, ctx = ctx] {
    auto job = jobs.recv();
    if (ctx.err()) {  // the error path
      if (fixed) wg.done();
      return;
    }
    (void)job;
    wg.done();
  });
  jobs.send(1);
  wg.wait();  // leaks (deadlock) when the worker took the error path
}

// --- 3. A receiver waits on a stale channel and never sees its close ---------------

inline void stale_channel(bool fixed) {
  goro::mutex mu;
  auto updates = goro::make_chan<int>();
  goro::wait_group replaced, done;
  done.go([&] {  // waits for the current updates channel to be closed
    mu.lock();
    auto c = updates;
    mu.unlock();
    (void)c.recv();
  });
  replaced.go([&] {  // swaps in a new channel
    mu.lock();
    auto old = updates;
    updates = goro::make_chan<int>();
    mu.unlock();
    if (fixed) old.close();  // the fix: whoever replaces a channel closes the old one
  });
  replaced.wait();
  mu.lock();
  auto current = updates;
  mu.unlock();
  current.close();
  done.wait();  // leaks when the receiver took the channel before it was replaced
}

// --- 4. A cancel races a send into an unbuffered result channel: the sender leaks --

inline void cancel_races_result(bool fixed) {
  auto results = goro::make_chan<int>(fixed ? 1 : 0);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::go([cancel = cancel] { cancel(); });
  goro::go([results] { results.send(42); });  // blocks for good if nobody receives
  std::optional<int> v;
  std::optional<std::monostate> d;
  (void)goro::select(goro::case_recv(results, v), goro::case_recv(ctx.done(), d));
  cancel();
}

struct bug_case {
  const char* name;
  void (*program)(bool fixed);
  const char* expected;  // in the failure report
};

inline const bug_case bugs[] = {
    {"check_then_act", withdraw_twice, "balance went negative"},
    {"worker_error_path", worker_error_path, "sync.WaitGroup.Wait (durable)"},
    {"stale_channel", stale_channel, "chan receive (durable)"},
    {"cancel_races_result", cancel_races_result, "leak: the body returned"},
};

}  // namespace ordering_bugs
