// run_queue.cpp — see run_queue.hpp for the invariants.
//
// Memory ordering: the owner publishes a slot with a release store of tail_; a thief
// reads tail_ with acquire before reading slots, and claims them with an acq_rel CAS
// on head_, which the owner reads with acquire before reusing those slots.
#include "runtime/run_queue.hpp"

#include <algorithm>
#include <utility>

#include "runtime/goroutine.hpp"

namespace goro::detail {

const std::atomic<std::uint64_t> local_run_queue::no_tick{0};

bool local_run_queue::push_slow(goroutine* g, std::uint32_t h,
                                global_run_queue& overflow) noexcept {
  constexpr std::uint32_t n = capacity / 2;
  goroutine* batch[n + 1];
  for (std::uint32_t i = 0; i < n; ++i) {
    batch[i] = slots_[(h + i) % capacity].load(std::memory_order_relaxed);
  }
  if (!head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) {
    return false;  // thieves took some; the ring has room again
  }
  batch[n] = g;
  overflow.push_batch(batch, n + 1);
  return true;
}

std::uint32_t local_run_queue::grab(goroutine** batch, steal_rule rule) noexcept {
  for (;;) {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_acquire);
    std::uint32_t n = t - h;
    if (!rule.any && n <= capacity) {
      // The prefix the rule allows: ages fall from head to tail, and so does "queued
      // before seen_tail". A stale stamp read here only matters if the slot was
      // reused, and then the CAS on head_ below fails.
      std::uint32_t now = owner_tick();
      std::uint32_t ok = 0;
      while (ok < n &&
             ((rule.seen && static_cast<std::int32_t>(rule.seen_tail - (h + ok)) > 0) ||
              now - stamps_[(h + ok) % capacity].load(std::memory_order_relaxed) >=
                  steal_rule::settle_runs)) {
        ++ok;
      }
      n = ok;
    }
    n -= n / 2;
    if (n == 0) {
      if (!rule.runnext || t != h) return 0;
      goroutine* g = runnext_.load(std::memory_order_acquire);
      if (g == nullptr) return 0;
      if (!runnext_.compare_exchange_strong(g, nullptr, std::memory_order_acq_rel)) return 0;
      batch[0] = g;
      return 1;
    }
    if (n > capacity / 2) continue;  // h and t read at different moments; retry
    for (std::uint32_t i = 0; i < n; ++i) {
      batch[i] = slots_[(h + i) % capacity].load(std::memory_order_relaxed);
    }
    if (head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return n;
  }
}

goroutine* local_run_queue::steal_from(local_run_queue& victim, steal_rule rule) noexcept {
  goroutine* batch[capacity / 2];
  std::uint32_t n = victim.grab(batch, rule);
  if (n == 0) return nullptr;
  goroutine* g = batch[--n];
  if (n == 0) return g;
  std::uint32_t t = tail_.load(std::memory_order_relaxed);  // relaxed: our own
  std::uint32_t stamp = owner_tick();
  for (std::uint32_t i = 0; i < n; ++i) {
    slots_[(t + i) % capacity].store(batch[i], std::memory_order_relaxed);
    stamps_[(t + i) % capacity].store(stamp, std::memory_order_relaxed);
  }
  tail_.store(t + n, std::memory_order_release);
  return g;
}

void local_run_queue::drain_to(global_run_queue& to) noexcept {
  while (goroutine* g = pop()) to.push(g);
}

global_run_queue::~global_run_queue() {
  for (segment* list : {head_, spares_}) {
    while (list != nullptr) delete std::exchange(list, list->next);
  }
}

void global_run_queue::push_batch(goroutine* const* gs, std::uint32_t n) noexcept {
  segment* fresh = nullptr;  // allocated outside the lock when no segment has room
  for (;;) {
    {
      std::lock_guard lk(lock_);
      std::uint32_t room = tail_ ? segment::capacity - tail_->tail : 0;
      if (n <= room || spares_ != nullptr || fresh != nullptr) {
        std::uint32_t first = std::min(n, room);
        if (first > 0) {
          std::copy_n(gs, first, tail_->items + tail_->tail);
          tail_->tail += first;
        }
        if (first < n) {
          segment* s = fresh;
          if (s != nullptr) {
            fresh = nullptr;
          } else {
            s = spares_;
            spares_ = s->next;
            --spare_count_;
          }
          s->next = nullptr;
          s->head = 0;
          s->tail = n - first;
          std::copy_n(gs + first, n - first, s->items);
          if (tail_ != nullptr) {
            tail_->next = s;
          } else {
            head_ = s;
          }
          tail_ = s;
        }
        size_.store(size_.load(std::memory_order_relaxed) + n, std::memory_order_seq_cst);
        break;
      }
    }
    fresh = new segment;  // std::bad_alloc here ends the process, as for a descriptor
  }
  delete fresh;  // another push made room meanwhile
}

goroutine* global_run_queue::pop_batch(local_run_queue* into, global_run_queue& overflow,
                                       std::uint32_t max_extra) noexcept {
  if (size_.load(std::memory_order_acquire) == 0) return nullptr;
  goroutine* got[max_batch];
  std::uint32_t take = 0;
  segment* unused = nullptr;  // beyond max_spares: freed outside the lock
  {
    std::lock_guard lk(lock_);
    std::uint32_t n = size_.load(std::memory_order_relaxed);
    if (n == 0) return nullptr;
    take = std::min({n, max_extra + 1, max_batch});
    std::uint32_t done = 0;
    while (done < take) {
      segment* s = head_;
      std::uint32_t k = std::min(take - done, s->tail - s->head);
      std::copy_n(s->items + s->head, k, got + done);
      s->head += k;
      done += k;
      if (s->head == s->tail) {
        if (s == tail_) {
          s->head = s->tail = 0;  // the last one stays, empty
        } else {
          head_ = s->next;
          if (spare_count_ < max_spares) {
            s->next = spares_;
            spares_ = s;
            ++spare_count_;
          } else {
            s->next = unused;
            unused = s;
          }
        }
      }
    }
    size_.store(n - take, std::memory_order_seq_cst);
    popped_.store(popped_.load(std::memory_order_relaxed) + take, std::memory_order_relaxed);
  }
  while (unused != nullptr) delete std::exchange(unused, unused->next);
  // Outside the lock: a full local ring overflows back into this queue.
  for (std::uint32_t i = 1; i < take; ++i) into->push(got[i], false, overflow);
  return got[0];
}

}  // namespace goro::detail
