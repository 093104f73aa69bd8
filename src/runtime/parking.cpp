// parking.cpp — park/unpark for goroutines and plain threads. Protocol in parking.hpp.
//
// Memory ordering: unpark() publishes with release (CAS to notified, or parked ->
// idle); park() consumes with acquire. So whatever the waker wrote before unpark()
// (a value handed over, a `done` flag) is visible to the parked side when it returns.
#include "runtime/parking.hpp"

#include "runtime/goroutine.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/sys.hpp"

namespace goro::detail {

namespace {
thread_local parker thread_parker;
}

parker* current_parker() noexcept {
  goroutine* g = current_goroutine();
  return g ? &g->park : &thread_parker;
}

void park(parker* self, wait_reason reason) noexcept {
  if (self->state.load(std::memory_order_acquire) == parker::notified) {
    self->state.store(parker::idle, std::memory_order_relaxed);  // only we leave notified
    return;
  }
  if (self->g != nullptr) {
    park_goroutine(self->g, reason);  // returns with the permit consumed
    return;
  }
  note_plain_thread_activity();  // a plain thread waits on goroutines: see deadlock rule
  std::uint32_t expected = parker::idle;
  if (self->state.compare_exchange_strong(expected, parker::parked, std::memory_order_acq_rel)) {
    while (self->state.load(std::memory_order_acquire) == parker::parked) {
      futex_wait(&self->state, parker::parked);
    }
  }
  self->state.store(parker::idle, std::memory_order_relaxed);  // consume the permit
}

void unpark(parker* p) noexcept {
  std::uint32_t s = p->state.load(std::memory_order_relaxed);
  for (;;) {
    if (s == parker::notified) return;  // a permit is already pending
    if (s == parker::idle) {
      if (p->state.compare_exchange_weak(s, parker::notified, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    // parked
    if (p->g != nullptr) {
      if (p->state.compare_exchange_weak(s, parker::idle, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
        set_state(p->g, g_state::waiting, g_state::runnable);
        make_runnable(p->g, /*next=*/true);
        return;
      }
      continue;
    }
    if (p->state.compare_exchange_weak(s, parker::notified, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      futex_wake(&p->state, 1);
      return;
    }
  }
}

}  // namespace goro::detail
