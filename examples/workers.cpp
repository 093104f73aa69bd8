// workers — a pool of workers reading jobs from a channel and writing results, each
// blocking step watching a context (recv(ctx) and send(ctx, v): a select on
// ctx.done()); cancelling the context stops them all, and nothing is left behind.
#include <goro/goro.hpp>

#include <cstdio>

using namespace std::chrono_literals;

struct job {
  int id;
  int payload;
};
struct result {
  int id;
  int value;
};

// Receives jobs until ctx is done or jobs is closed; sends each result (or gives up
// on ctx). Every blocking step also watches ctx, so cancel stops it.
void worker(goro::context ctx, int me, goro::recv_chan<job> jobs, goro::send_chan<result> results) {
  while (auto j = jobs.recv(ctx)) {
    goro::sleep(1ms);  // the "work"
    if (results.send(ctx, result{j->id, j->payload * j->payload})) {
      std::printf("worker %d: cancelled while delivering job %d\n", me, j->id);
      return;
    }
  }
  // nullopt: jobs closed (no more work), or ctx done.
  if (ctx.err()) std::printf("worker %d: cancelled (%s)\n", me, ctx.err().message().c_str());
}

int main() {
  return goro::run([] {
    std::size_t baseline = goro::num_goroutine();
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    auto jobs = goro::make_chan<job>(8);
    auto results = goro::make_chan<result>(8);
    goro::wait_group wg;
    for (int w = 0; w < 4; ++w) wg.go([=] { worker(ctx, w, jobs, results); });

    // A producer that would go on forever; it stops on cancel too.
    goro::go([=] {
      for (int id = 0;; ++id) {
        if (jobs.send(ctx, job{id, id})) return;  // ctx is done
      }
    });

    int received = 0;
    for (auto r : results) {
      if (++received <= 3) std::printf("result %d -> %d\n", r.id, r.value);
      if (received == 20) break;
    }
    std::printf("got %d results; cancelling\n", received);
    cancel();
    wg.wait();
    goro::sleep(10ms);  // let the producer see the cancel too
    std::printf("goroutines: %zu (baseline %zu)\n", goro::num_goroutine(), baseline);
    return goro::num_goroutine() == baseline ? 0 : 1;
  });
}
