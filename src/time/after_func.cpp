// after_func.cpp — goro::sleep(ctx, d) and goro::after_func(d, f), built on a timer, a
// select and a deadline context.
//
// after_func(d, f): a context with a deadline d from now, whose cancel callback starts
// f's goroutine. The callback holds the context, so the context (and with it its
// timer) lives until the callback has run or been removed by stop, however the caller
// treats the stop function (Go: dropping the *Timer does not stop AfterFunc).
#include <atomic>
#include <chrono>
#include <memory>

#include "goro/context.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/time.hpp"

namespace goro::detail {

error sleep_ctx(const context& ctx, std::int64_t ns) {
  if (error err = ctx.err()) return err;
  if (ns <= 0) return {};
  timer t{std::chrono::nanoseconds(ns)};
  if (select(case_recv(ctx.done()), case_recv(t.c())) == 0) return ctx.err();
  return {};
}

namespace {
// f's task until it is started or dropped; exactly one of the two happens.
struct pending_task {
  explicit pending_task(task* t) : t(t) {}
  ~pending_task() { delete t.load(std::memory_order_relaxed); }
  std::atomic<task*> t;
};
}  // namespace

std::function<bool()> after_func_ns(std::int64_t ns, task* f, const std::source_location& where) {
  auto pending = std::make_shared<pending_task>(f);
  auto [ctx, cancel] = with_timeout(background(), std::chrono::nanoseconds(ns));
  // The callback keeps ctx (its own node) alive until it runs or stop removes it.
  std::uint64_t id = context_on_cancel(ctx, [ctx = ctx, pending, where] {
    if (task* t = pending->t.exchange(nullptr, std::memory_order_acq_rel)) {
      spawn(spawn_options{}, t, where);
    }
  });
  return [ctx = ctx, cancel = cancel, id, pending] {
    // True only when the callback was removed before it ran: f never starts.
    bool stopped = context_remove_on_cancel(ctx, id);
    cancel();  // releases the timer at once
    return stopped;
  };
}

}  // namespace goro::detail
