// errgroup.cpp — goro::errgroup on wait_group, a channel-based limiter (as x/sync's
// token channel) and with_cancel_cause.
//
// Invariants: a limiter channel holds one token per running task started while it
// was the group's limiter; `first` is written once, under `mu`.
#include "goro/errgroup.hpp"

#include <mutex>
#include <string>

#include "goro/chan.hpp"
#include "goro/mutex.hpp"
#include "goro/wait_group.hpp"

namespace goro {

struct errgroup::state {
  wait_group wg;
  // nil: no limit. Changed only by set_limit, which must not run concurrently with
  // go/try_go; running tasks hold their own handle.
  chan<std::monostate> limiter;
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

// x/sync's SetLimit: only a limit whose tokens are held cannot change. Removing the
// limit, or setting one while none is set, is allowed while tasks run: each task gives
// its token back to the limiter it took it from (start), never to a later one.
void errgroup::set_limit(int n) {
  if (n < 0) {
    state_->limiter = chan<std::monostate>{};
    return;
  }
  if (std::size_t active = state_->limiter.len(); active != 0) {
    throw panic_error("errgroup: modify limit while " + std::to_string(active) +
                      " goroutines in the group are still active");
  }
  state_->limiter = make_chan<std::monostate>(static_cast<std::size_t>(n));
}

void errgroup::acquire_slot() {
  if (state_->limiter) state_->limiter.send(std::monostate{});  // blocks at the limit
}

bool errgroup::try_acquire_slot() {
  return !state_->limiter || state_->limiter.try_send(std::monostate{});
}

void errgroup::release_slot() noexcept {
  if (state_->limiter) (void)state_->limiter.try_recv();
}

void errgroup::start(std::unique_ptr<detail::group_task> task, const std::source_location& where) {
  state_->wg.add(1);
  spawn_options opts;
  opts.where = where;
  // The limiter this task's token went to (null: none): set_limit may replace the
  // group's while the task runs. Held as the channel's one shared pointer, not a chan
  // handle (two): each copy is an atomic on a line the task's processor shares with
  // the spawner's, and the task then fits a pooled block.
  using limiter_ptr = std::shared_ptr<detail::channel<std::monostate>>;
  limiter_ptr limiter = detail::chan_access::state(state_->limiter);
  auto body = [s = state_, limiter = std::move(limiter), task = std::move(task)]() mutable {
    error err;
    try {
      err = task->run();
    } catch (...) {
      err = error::from(std::current_exception());
    }
    // f and its arguments go before wait() can return (as wait_group::go).
    task.reset();
    if (err) {
      std::lock_guard lk(s->mu);
      if (!s->first) {
        s->first = err;
        if (s->has_cancel) s->cancel(err);
      }
    }
    if (limiter) {  // give the token back
      (void)detail::chan_access::make<recv_chan<std::monostate>>(std::move(limiter)).try_recv();
    }
    s->wg.done();
  };
  try {
    goro::go(opts, std::move(body));
  } catch (...) {
    state_->wg.done();
    throw;
  }
}

error errgroup::wait() {
  state_->wg.wait();
  std::lock_guard lk(state_->mu);
  if (state_->has_cancel) state_->cancel(state_->first);
  return state_->first;
}

}  // namespace goro
