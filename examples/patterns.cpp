// patterns — Go's everyday concurrency patterns, each as a Go programmer would write it
// with goro: a signal channel, fan-in, a pipeline stopped by its context, a select loop
// with a ticker, request-scoped values, an errgroup collecting results, and who must
// outlive whom. README's "Go patterns" section quotes these functions. Exits non-zero
// if a pattern gives the wrong answer or leaves a goroutine behind.
#include <goro/goro.hpp>

#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <variant>
#include <vector>

using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

// Go's `done := make(chan struct{})` ... `close(done)`: a channel of std::monostate that
// is only ever closed. Every receiver wakes at the close, however many there are.
void signal_channel() {
  auto done = goro::make_chan<std::monostate>();
  goro::wait_group wg;
  std::atomic<int> woken{0};
  for (int i = 0; i < 3; ++i) {
    wg.go([done, &woken] {
      (void)done.recv();  // nullopt at the close
      ++woken;
    });
  }
  done.close();
  wg.wait();
  check(woken == 3, "a closed chan<std::monostate> wakes every receiver");
}

// Go's merge(cs ...<-chan int) <-chan int. The goroutines outlive merge's frame, so the
// wait_group they share is a shared_ptr (Go's closure keeps it alive; a C++ local would
// die at return: a fatal error naming the wait_group's line).
goro::recv_chan<int> merge(const std::vector<goro::recv_chan<int>>& inputs) {
  auto out = goro::make_chan<int>();
  auto wg = std::make_shared<goro::wait_group>();
  for (const auto& in : inputs) {
    wg->go([in, out] {
      for (int v : in) out.send(v);
    });
  }
  goro::go([wg, out] {
    wg->wait();
    out.close();
  });
  return out;
}

// Fan-in without a goroutine per input: one select over a run-time list (Go's
// reflect.Select), dropping each input as it closes.
int sum_all(std::vector<goro::recv_chan<int>> inputs) {
  int sum = 0;
  while (!inputs.empty()) {
    std::optional<int> v;
    int i = goro::select_recv(inputs, v);
    if (v) {
      sum += *v;
    } else {
      inputs.erase(inputs.begin() + i);  // closed and drained
    }
  }
  return sum;
}

goro::recv_chan<int> numbers(int from, int to) {
  auto out = goro::make_chan<int>();
  goro::go([out, from, to] {
    auto closer = goro::defer([&] { out.close(); });  // Go's defer close(out)
    for (int i = from; i <= to; ++i) out.send(i);
  });
  return out;
}

void fan_in() {
  int merged = 0;
  for (int v : merge({numbers(1, 10), numbers(11, 20), numbers(21, 30)})) merged += v;
  check(merged == 465, "merge: three producers into one channel");
  check(sum_all({numbers(1, 10), numbers(11, 20), numbers(21, 30)}) == 465,
        "select_recv: fan-in over a run-time list");
}

// A pipeline stage (Go's `for n := range in { select { case out <- n*n: case
// <-ctx.Done(): return } }`): recv(ctx) and send(ctx, v) give up when ctx ends.
void square(goro::context ctx, goro::recv_chan<int> in, goro::send_chan<int> out) {
  auto closer = goro::defer([&] { out.close(); });
  while (auto n = in.recv(ctx)) {
    if (out.send(ctx, *n * *n)) return;  // ctx ended: stop
  }
}

goro::recv_chan<int> count_forever(goro::context ctx) {
  auto out = goro::make_chan<int>();
  goro::go([ctx, out] {
    auto closer = goro::defer([&] { out.close(); });
    for (int i = 1; !out.send(ctx, i); ++i) {
    }
  });
  return out;
}

void pipeline() {
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  auto squares = goro::make_chan<int>();
  goro::go(square, ctx, count_forever(ctx), squares);
  int sum = 0;
  for (int i = 0; i < 4; ++i) sum += squares.recv().value_or(0);  // 1 + 4 + 9 + 16
  cancel();  // the producer and the stage both return; squares is closed
  while (squares.recv()) {
  }
  check(sum == 30, "pipeline: the consumer stops early, cancel stops every stage");
}

// Go's `for { select { case <-ticker.C: ...; case <-ctx.Done(): return } }`. A `break`
// inside the switch leaves the switch, not the loop (Go's `break loop` has no C++
// twin): return from a function, as here, or test a flag in the loop's condition.
int poll_until_done(const goro::context& ctx) {
  goro::ticker ticker(1ms);
  int ticks = 0;
  for (;;) {
    switch (goro::select(goro::case_recv(ticker.c()), goro::case_recv(ctx.done()))) {
      case 0: ++ticks; break;   // leaves the switch only
      case 1: return ticks;     // leaves the loop
    }
  }
}

void select_loop() {
  auto [ctx, cancel] = goro::with_timeout(goro::background(), 30ms);
  int ticks = poll_until_done(ctx);
  check(ticks > 0 && ctx.err().is(goro::deadline_exceeded), "select loop with a ticker");
}

// Go's context.WithValue with a typed key: a value travels down the call tree.
inline const goro::context_key<std::string> request_id{"request_id"};

std::string handle(const goro::context& ctx) {
  const std::string* id = ctx.value(request_id);  // nullptr when absent
  return id ? "handled " + *id : "no id";
}

void values() {
  auto ctx = goro::with_value(goro::background(), request_id, std::string("r-42"));
  check(handle(ctx) == "handled r-42" && handle(goro::background()) == "no id",
        "with_value: a typed key");
}

// errgroup collecting results: each task writes its own slot, so no lock is needed;
// the first error cancels the others through gctx.
goro::error fetch_all(const goro::context& ctx, const std::vector<std::string>& urls,
                      std::vector<std::size_t>& sizes) {
  auto [g, gctx] = goro::errgroup::with_context(ctx);
  g.set_limit(2);
  sizes.assign(urls.size(), 0);
  for (std::size_t i = 0; i < urls.size(); ++i) {
    g.go([&sizes, &urls, gctx = gctx](std::size_t slot) -> goro::error {
      if (goro::error err = goro::sleep(gctx, 1ms)) return err;  // the "request"
      if (urls[slot].empty()) return goro::make_error("empty url");
      sizes[slot] = urls[slot].size();
      return {};
    }, i);
  }
  return g.wait();
}

void errgroup_results() {
  std::vector<std::size_t> sizes;
  goro::error err = fetch_all(goro::background(), {"a", "bb", "ccc"}, sizes);
  check(!err && sizes == std::vector<std::size_t>{1, 2, 3}, "errgroup: results by index");
  err = fetch_all(goro::background(), {"a", "", "ccc"}, sizes);
  check(err && err.message() == "empty url", "errgroup: the first error");
}

}  // namespace

int main() {
  return goro::run([] {
    std::size_t baseline = goro::num_goroutine();
    signal_channel();
    fan_in();
    pipeline();
    select_loop();
    values();
    errgroup_results();
    goro::sleep(10ms);  // the last goroutines finish their final steps
    check(goro::num_goroutine() == baseline, "nothing left behind");
    return failures == 0 ? 0 : 1;
  });
}
