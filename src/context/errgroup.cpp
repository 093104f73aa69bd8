// errgroup.cpp — goro::errgroup on wait_group, a channel-based limiter (as x/sync's
// token channel) and with_cancel_cause.
//
// Invariants: `active` counts started tasks that have not returned; the limiter
// channel holds one token per running task while a limit is set; `first` is written
// once, under `mu`.
#include "goro/errgroup.hpp"

#include <mutex>
#include <string>

#include "goro/chan.hpp"
#include "goro/mutex.hpp"
#include "goro/wait_group.hpp"

namespace goro {

struct errgroup::state {
  wait_group wg;
  std::atomic<int> active{0};
  chan<std::monostate> limiter;  // nil: no limit
  mutex mu;
  error first;  // under mu
  bool has_cancel = false;
  cancel_cause_func cancel;
};

errgroup::errgroup() : state_(std::make_shared<state>()) {}

std::pair<errgroup, context> errgroup::with_context(const context& ctx) {
  errgroup g;
  auto [derived, cancel] = with_cancel_cause(ctx);
  g.state_->has_cancel = true;
  g.state_->cancel = cancel;
  return {g, derived};
}

void errgroup::set_limit(int n) {
  int active = state_->active.load(std::memory_order_acquire);
  if (active != 0) {
    throw panic_error("errgroup: modify limit while " + std::to_string(active) +
                      " goroutines in the group are still active");
  }
  state_->limiter =
      n < 0 ? chan<std::monostate>{} : make_chan<std::monostate>(static_cast<std::size_t>(n));
}

void errgroup::acquire_slot() {
  if (state_->limiter) state_->limiter.send(std::monostate{});  // blocks at the limit
}

bool errgroup::try_acquire_slot() {
  return !state_->limiter || state_->limiter.try_send(std::monostate{});
}

void errgroup::start(std::function<error()> task, const std::source_location& where) {
  std::shared_ptr<state> s = state_;
  s->active.fetch_add(1, std::memory_order_acq_rel);
  s->wg.add(1);
  spawn_options opts;
  opts.where = where;
  goro::go(opts, [s, task = std::move(task)]() mutable {
    error err;
    try {
      err = task();
    } catch (...) {
      err = error::from(std::current_exception());
    }
    if (err) {
      std::lock_guard lk(s->mu);
      if (!s->first) {
        s->first = err;
        if (s->has_cancel) s->cancel(err);
      }
    }
    if (s->limiter) s->limiter.try_recv();  // give the slot back
    s->active.fetch_sub(1, std::memory_order_acq_rel);
    s->wg.done();
  });
}

error errgroup::wait() {
  state_->wg.wait();
  std::lock_guard lk(state_->mu);
  if (state_->has_cancel) state_->cancel(state_->first);
  return state_->first;
}

}  // namespace goro
