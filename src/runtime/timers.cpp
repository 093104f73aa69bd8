// timers.cpp — see timers.hpp for the invariants.
#include "runtime/timers.hpp"

#include <mutex>

#include "runtime/scheduler.hpp"

namespace goro::detail {

timer_heap& external_timers() noexcept {
  static timer_heap* const heap = new timer_heap;  // never destroyed: workers outlive main
  return *heap;
}

timer_heap& local_timers() noexcept {
  processor* p = current_processor();
  return p ? p->timers : external_timers();
}

void timer_heap::add(timer_entry* t) {
  bool earliest;
  {
    std::lock_guard lk(lock_);
    t->heap = this;
    heap_.push_back(slot{t->when, t});
    sift_up(heap_.size() - 1, slot{t->when, t});
    earliest = heap_[0].entry == t;
    if (earliest) publish_earliest();
  }
  if (earliest && notify_) timer_added(t->when);
}

std::int64_t timer_heap::next_waking_deadline() noexcept {
  std::lock_guard lk(lock_);
  std::int64_t best = no_deadline;
  for (const auto& s : heap_) {
    if (s.when < best && (s.entry->may_wake == nullptr || s.entry->may_wake(s.entry))) best = s.when;
  }
  return best;
}

void timer_heap::discard_all() noexcept {
  std::vector<slot> taken;
  {
    std::lock_guard lk(lock_);
    taken.swap(heap_);
    for (auto& s : taken) s.entry->heap_index = -1;
    publish_earliest();
  }
  for (auto& s : taken) {
    if (s.entry->discard) s.entry->discard(s.entry);
  }
}

bool timer_heap::remove(timer_entry* t) noexcept {
  timer_heap* h = t->heap;
  if (h == nullptr) return false;
  std::lock_guard lk(h->lock_);
  if (t->heap_index < 0) return false;
  h->remove_at(static_cast<std::size_t>(t->heap_index));
  h->publish_earliest();
  return true;
}

int timer_heap::run_due(std::int64_t now) noexcept {
  constexpr int batch = 64;
  int fired = 0;
  for (;;) {
    timer_entry* due[batch];
    int n = 0;
    {
      std::lock_guard lk(lock_);
      while (n < batch && !heap_.empty() && heap_[0].when <= now) {
        due[n++] = heap_[0].entry;
        remove_at(0);
      }
      publish_earliest();
    }
    for (int i = 0; i < n; ++i) due[i]->fire(due[i]);
    fired += n;
    if (n < batch) return fired;
  }
}

void timer_heap::publish_earliest() noexcept {
  earliest_.store(heap_.empty() ? no_deadline : heap_[0].when, std::memory_order_release);
}

void timer_heap::remove_at(std::size_t i) noexcept {
  heap_[i].entry->heap_index = -1;
  slot last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;
  if (i > 0 && last.when < heap_[(i - 1) / 4].when) {
    sift_up(i, last);
  } else {
    sift_down(i, last);
  }
}

// Moves the hole at i up until `s` fits, then places s.
void timer_heap::sift_up(std::size_t i, slot s) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 4;
    if (heap_[parent].when <= s.when) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, s);
}

// Moves the hole at i down until `s` fits, then places s.
void timer_heap::sift_down(std::size_t i, slot s) noexcept {
  std::size_t n = heap_.size();
  for (;;) {
    std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    std::size_t end = first + 4 < n ? first + 4 : n;
    for (std::size_t c = first + 1; c < end; ++c) {
      if (heap_[c].when < heap_[best].when) best = c;
    }
    if (s.when <= heap_[best].when) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, s);
}

}  // namespace goro::detail
