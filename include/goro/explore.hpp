// goro/explore.hpp — seeded schedule exploration: run a concurrent test body under
// many interleavings, find the one that fails, and replay it exactly.
//
// explore(body, options) runs body again and again, each time in a fresh synctest
// bubble (goro/synctest.hpp: virtual time, so sleeps and timeouts cost nothing) whose
// goroutines run one at a time: at every scheduling point the goroutine running gives
// up its turn and a seeded strategy picks which ready goroutine runs next. Scheduling
// points: starting a goroutine, goroutine start and exit, every send, receive, close
// and select on a channel made in the body, every goro::mutex lock and unlock, every
// park (a blocking channel operation, rw_mutex, cond, wait_group, semaphore, sleep,
// timer), every wake-up, and goro::yield(). Strategies:
//   schedule::random — each turn goes to a ready goroutine chosen uniformly;
//   schedule::pct    — probabilistic concurrency testing (Burckhardt et al., ASPLOS
//                      2010): goroutines get random priorities, the highest ready one
//                      runs, and at depth-1 random steps the running one drops to the
//                      lowest priority (a goroutine that yields drops too); finds a bug
//                      of depth d with probability at least 1/(n k^(d-1)) per run (n
//                      goroutines, k steps: the longest run so far). Long runs make
//                      that small: for bodies of thousands of steps, random often
//                      finds more.
// Each run is decided by its seed alone: the same seed gives the same interleaving and
// the same schedule, so a failure found after thousands of runs is replayed alone with
// explore(body, {.iterations = 1, .seed = r.seed}) — or by setting GORO_EXPLORE_SEED=<seed>
// in the environment, which makes every explore call run that one seed — and can be
// stepped through in a debugger.
//
// A run fails when:
//   - an exception escapes any goroutine of the body (a failed check: throw, or use
//     goro::panic_error; an escaping exception is not fatal here, unlike elsewhere);
//   - its goroutines deadlock (all durably blocked, no timer left);
//   - goroutines are left blocked after the body returned (a leak): also reported as
//     the deadlock of what is left, with their dump.
// Exploration stops at the first failing run.
//
// What explore controls: the goroutines the body starts (transitively), the channels,
// timers, contexts and primitives they use. What it cannot see: plain threads, work
// done in goro::blocking, real I/O, channels made outside the body, and data races
// without a scheduling point between them (a race on a plain variable is found by
// ThreadSanitizer, not here). A goroutine waiting on one of those waits for real: a
// receive on a channel nobody outside ever sends on waits for good. It becomes ready
// when the wake-up arrives, which real timing decides, so a body that uses them (a
// goro::blocking call included) may not replay exactly.
// Waiting for a goro::mutex held by a goroutine of the run is a durable block (a
// deadlock between the run's mutexes is reported); waiting for one held outside the run
// is not. rw_mutex waits are not durable, as in Go's bubbles. A goroutine that loops
// without a scheduling point (spinning on an atomic flag another goroutine sets) keeps
// the turn and the run never ends, as under loom or shuttle: put goro::yield() in such
// loops; a run that yields forever fails as a livelock after max_steps turns.
//
// Blocking: explore blocks its caller (a plain thread, or a goroutine outside any
//   bubble) for all the runs. Thread-safety: explore calls on different threads are
//   independent. Panics (goro::panic_error): called inside a bubble; iterations < 1;
//   depth < 1.
//
// Go counterpart: none in Go's standard library; the Rust crates shuttle (random and
// PCT schedulers with replay) and loom are the models.
//
// Example:
//   auto r = goro::testing::explore([] {
//     auto results = goro::make_chan<int>();              // unbuffered: the bug
//     auto [ctx, cancel] = goro::with_cancel(goro::background());
//     goro::go([=] { results.send(42); });                // leaks if nobody receives
//     goro::go([cancel = cancel] { cancel(); });
//     std::optional<int> v; std::optional<std::monostate> d;
//     goro::select(goro::case_recv(results, v), goro::case_recv(ctx.done(), d));
//   }, {.iterations = 1000});
//   if (r.failed) std::puts(r.report.c_str());            // the seed, schedule and dump
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <source_location>
#include <string>

namespace goro::testing {

enum class schedule { random, pct };

struct explore_options {
  // Runs to try (each with its own seed, derived from the previous one).
  int iterations = 1000;
  // The first run's seed; 0 picks one at random. A failing run's seed replays it.
  std::uint64_t seed = 0;
  ::goro::testing::schedule schedule = ::goro::testing::schedule::pct;
  // PCT's bug depth d: how many ordering constraints the bug needs (d-1 priority
  // changes per run).
  int depth = 3;
  // Stops early when this much real time has passed (zero: no limit); a single run
  // still going when it runs out fails as a probable livelock.
  std::chrono::milliseconds time_budget{0};
  // A run that takes more turns than this fails as a livelock (a goroutine spinning
  // with goro::yield() on something that never happens).
  std::int64_t max_steps = 10'000'000;
};

struct explore_result {
  bool failed = false;
  std::uint64_t seed = 0;  // the failing run's seed (or the last run's)
  int iteration = 0;       // the failing run's index from 0 (the report counts from 1),
                           // or how many runs there were
  // What failed, the seed, the schedule (which goroutine had each turn, numbered in
  // the order the run started them: 1 is the body) and the dump of its goroutines.
  std::string report;
  // The failing (or last) run's schedule alone: the run-local number of the goroutine
  // given each turn, space-separated (the same seed gives the same schedule).
  std::string schedule;
};

namespace detail {
explore_result explore(const std::function<void()>& body, const explore_options& options,
                       const std::source_location& where);
}

// Runs body under iterations seeded interleavings; see the top of this file.
inline explore_result explore(const std::function<void()>& body,
                              const explore_options& options = {},
                              const std::source_location& where = std::source_location::current()) {
  return detail::explore(body, options, where);
}

}  // namespace goro::testing
