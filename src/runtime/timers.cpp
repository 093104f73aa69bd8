// timers.cpp — see timers.hpp for the invariants.
#include "runtime/timers.hpp"

#include <mutex>

#include "runtime/scheduler.hpp"

namespace goro::detail {

timer_heap& timers() noexcept {
  static timer_heap* const heap = new timer_heap;  // never destroyed: workers outlive main
  return *heap;
}

void timer_heap::add(timer_entry* t) {
  bool earliest;
  {
    std::lock_guard lk(lock_);
    t->heap_index = static_cast<std::int32_t>(heap_.size());
    heap_.push_back(t);
    sift_up(heap_.size() - 1);
    earliest = heap_[0] == t;
    if (earliest) publish_earliest();
  }
  if (earliest) timer_added(t->when);
}

bool timer_heap::remove(timer_entry* t) noexcept {
  std::lock_guard lk(lock_);
  if (t->heap_index < 0) return false;
  remove_at(static_cast<std::size_t>(t->heap_index));
  publish_earliest();
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
      while (n < batch && !heap_.empty() && heap_[0]->when <= now) {
        due[n++] = heap_[0];
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
  earliest_.store(heap_.empty() ? no_deadline : heap_[0]->when, std::memory_order_release);
}

void timer_heap::remove_at(std::size_t i) noexcept {
  heap_[i]->heap_index = -1;
  std::size_t last = heap_.size() - 1;
  if (i != last) {
    heap_[i] = heap_[last];
    heap_[i]->heap_index = static_cast<std::int32_t>(i);
    heap_.pop_back();
    sift_down(i);
    sift_up(i);
  } else {
    heap_.pop_back();
  }
}

void timer_heap::sift_up(std::size_t i) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->when <= heap_[i]->when) break;
    std::swap(heap_[parent], heap_[i]);
    heap_[parent]->heap_index = static_cast<std::int32_t>(parent);
    heap_[i]->heap_index = static_cast<std::int32_t>(i);
    i = parent;
  }
}

void timer_heap::sift_down(std::size_t i) noexcept {
  std::size_t n = heap_.size();
  for (;;) {
    std::size_t smallest = i;
    std::size_t l = 2 * i + 1, r = l + 1;
    if (l < n && heap_[l]->when < heap_[smallest]->when) smallest = l;
    if (r < n && heap_[r]->when < heap_[smallest]->when) smallest = r;
    if (smallest == i) return;
    std::swap(heap_[smallest], heap_[i]);
    heap_[smallest]->heap_index = static_cast<std::int32_t>(smallest);
    heap_[i]->heap_index = static_cast<std::int32_t>(i);
    i = smallest;
  }
}

}  // namespace goro::detail
