// sleep.cpp — goro::sleep: a timer entry on the sleeper's stack plus a park.
#include <chrono>
#include <thread>

#include "goro/time.hpp"
#include "runtime/bubble.hpp"
#include "runtime/parking.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

namespace {
struct sleeper {
  timer_entry timer;
  parker* who = nullptr;
  std::atomic<bool> fired{false};
};

void wake_sleeper(timer_entry* t) {
  auto* s = static_cast<sleeper*>(t->arg);
  parker* who = s->who;
  s->fired.store(true, std::memory_order_release);  // s may vanish after this
  unpark(who);
}
}  // namespace

void sleep_ns(std::int64_t ns) {
  if (ns <= 0) return;
  goroutine* g = current_goroutine();
  if (g == nullptr) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
    return;
  }
  sleeper s;
  s.who = &g->park;
  s.timer.arg = &s;
  s.timer.fire = &wake_sleeper;
  bubble* b = g->in_bubble.load(std::memory_order_relaxed);  // in a synctest bubble: its fake clock, a durable wait
  std::int64_t now = clock_now(b);
  s.timer.when = ns > timer_heap::no_deadline - now ? timer_heap::no_deadline - 1 : now + ns;
  clock_timers(b).add(&s.timer);
  while (!s.fired.load(std::memory_order_acquire)) park_durable(s.who, wait_reason::sleep, b);
}

}  // namespace goro::detail
