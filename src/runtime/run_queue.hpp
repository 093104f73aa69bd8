// run_queue.hpp — where runnable goroutines wait: per-processor queues and the global one.
//
// Local queue (Go's runq): a fixed ring of 256 slots plus a `runnext` slot.
//   Invariants:
//   - Only the owning worker stores `tail` and writes slots at or after it; any worker
//     may take from the head by CAS on `head` (the owner pops, thieves steal half).
//   - tail - head is in [0, capacity]; slots in [head, tail) hold goroutines.
//   - `runnext` holds at most one goroutine that runs before the ring: a goroutine the
//     current one just woke (a hand-off) or spawned. Thieves take it only when the
//     owner has not scheduled for a while (see steal_from).
//   - Each slot carries the owner's schedtick when its goroutine was queued. Ages
//     only grow from head to tail, so the goroutines a thief may take (steal_rule)
//     are always a prefix of the ring.
//
// Global queue: a FIFO under a spin lock, for overflow, wake-ups from plain threads,
// preemptions and processors that retire. `size` mirrors the length for lock-free
// peeks. It holds pointers in segments, not links through the descriptors: taking a
// batch then copies pointers instead of walking descriptors that were queued long ago
// and are out of the cache, one dependent miss each (a spawning loop's overflow, 100k
// goroutines deep: its pop_batch walk was ~20% of W1's time with 1 processor). As a
// goroutine exits, the one after the next in its processor's ring is prefetched
// instead (goroutine_entry, switch.cpp).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/sys.hpp"

namespace goro::detail {

struct goroutine;
class global_run_queue;

// Which of a victim's goroutines a thief may take. A goroutine queued while its
// processor was running the goroutines of the last `settle_runs` runs is still warm in
// that processor's cache, and may be a partner of what runs there (a hand-off pushed out
// of runnext by the next one): a thief whose last steals were such partners
// (find_work.cpp, judge_last_steal) leaves them, and takes only goroutines queued
// longer ago, or those that waited anyway: the ones it saw queued before it slept
// (`seen_tail`), or every one when the victim has been stuck in one goroutine
// meanwhile (`any`, which is also the plain rule: half the ring, as Go's runqsteal).
struct steal_rule {
  static constexpr std::uint32_t settle_runs = 32;
  bool runnext = false;  // runnext too, if the ring has nothing to give
  bool any = false;      // every goroutine in the ring, whatever its age
  bool seen = false;     // also every goroutine queued at an index before seen_tail
  std::uint32_t seen_tail = 0;
};

class local_run_queue {
 public:
  static constexpr std::uint32_t capacity = 256;

  // The owner's schedtick, read to stamp the goroutines queued here. Set once, before
  // the processor's worker starts.
  void bind_tick(const std::atomic<std::uint64_t>* tick) noexcept { tick_ = tick; }

  // Owner only. `next`: put g in runnext (the displaced one goes to the ring).
  // A full ring moves half of itself plus g to `overflow`. Inline: on every switch.
  void push(goroutine* g, bool next, global_run_queue& overflow) noexcept {
    if (next) {
      g = runnext_.exchange(g, std::memory_order_acq_rel);
      if (g == nullptr) return;  // the displaced runnext, if any, goes to the ring
    }
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      // Relaxed: only this thread stores tail_.
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (t - h < capacity) {
        // Relaxed: published by the release store of tail_ below.
        slots_[t % capacity].store(g, std::memory_order_relaxed);
        stamps_[t % capacity].store(owner_tick(), std::memory_order_relaxed);
        tail_.store(t + 1, std::memory_order_release);
        return;
      }
      if (push_slow(g, h, overflow)) return;
    }
  }
  // Owner only: runnext first, then the head of the ring. Null when empty.
  goroutine* pop() noexcept {
    goroutine* g = runnext_.load(std::memory_order_acquire);
    if (g != nullptr && runnext_.compare_exchange_strong(g, nullptr, std::memory_order_acq_rel)) {
      return g;
    }
    return pop_ring();
  }
  // Owner only: the head of the ring, leaving runnext alone. Null when the ring is empty.
  goroutine* pop_ring() noexcept {
    goroutine* g;
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_relaxed);  // relaxed: our own
      if (t == h) return nullptr;
      g = slots_[h % capacity].load(std::memory_order_relaxed);
      if (head_.compare_exchange_strong(h, h + 1, std::memory_order_acq_rel)) return g;
    }
  }
  // Owner only: the goroutine at the head of the ring, or null; a hint (a thief may
  // take it meanwhile).
  goroutine* peek_ring() const noexcept {
    std::uint32_t h = head_.load(std::memory_order_relaxed);
    if (tail_.load(std::memory_order_relaxed) == h) return nullptr;
    return slots_[h % capacity].load(std::memory_order_relaxed);
  }
  // Owner only, with its ring empty: moves about half of the victim's goroutines that
  // `rule` lets it take into this ring and returns one of them to run now (null if
  // there was nothing).
  goroutine* steal_from(local_run_queue& victim, steal_rule rule) noexcept;
  // Owner only: moves everything to `to` (used when the processor retires).
  void drain_to(global_run_queue& to) noexcept;

  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire) &&
           runnext_.load(std::memory_order_acquire) == nullptr;
  }
  std::uint32_t size() const noexcept {
    return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
  }
  std::uint32_t tail() const noexcept { return tail_.load(std::memory_order_acquire); }
  // The ring's head index: it moves whenever a goroutine leaves the ring (popped or
  // stolen). The monitor watches it to see a ring starving behind runnext.
  std::uint32_t ring_head() const noexcept { return head_.load(std::memory_order_acquire); }
  // Goroutines waiting here, runnext included (a snapshot, for diagnostics).
  std::uint32_t waiting() const noexcept {
    return size() + (runnext_.load(std::memory_order_acquire) != nullptr ? 1 : 0);
  }

 private:
  bool push_slow(goroutine* g, std::uint32_t head, global_run_queue& overflow) noexcept;
  std::uint32_t grab(goroutine** batch, steal_rule rule) noexcept;
  std::uint32_t owner_tick() const noexcept {
    return static_cast<std::uint32_t>(tick_->load(std::memory_order_relaxed));
  }
  static const std::atomic<std::uint64_t> no_tick;

  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::atomic<goroutine*> runnext_{nullptr};
  // Slots are atomics only so that a thief's speculative read of a slot the owner is
  // rewriting is defined behaviour; the CAS on head_ decides who owns the value read.
  std::atomic<goroutine*> slots_[capacity];
  // The owner's schedtick when each slot's goroutine was queued (truncated; only
  // differences are used). Atomics for the same reason as slots_.
  std::atomic<std::uint32_t> stamps_[capacity];
  const std::atomic<std::uint64_t>* tick_ = &no_tick;
};

class global_run_queue {
 public:
  // The most pop_batch hands out at once (one to run, the rest to a ring).
  static constexpr std::uint32_t max_batch = local_run_queue::capacity / 2 + 1;

  global_run_queue() = default;
  global_run_queue(const global_run_queue&) = delete;
  global_run_queue& operator=(const global_run_queue&) = delete;
  ~global_run_queue();

  void push(goroutine* g) noexcept { push_batch(&g, 1); }
  // Pushes gs[0..n), n <= max_batch, in that order.
  void push_batch(goroutine* const* gs, std::uint32_t n) noexcept;
  // Pops one goroutine to run and moves up to `max_extra` (< max_batch) more into `into`.
  goroutine* pop_batch(local_run_queue* into, global_run_queue& overflow,
                       std::uint32_t max_extra) noexcept;
  std::uint32_t size() const noexcept { return size_.load(std::memory_order_seq_cst); }
  // Goroutines taken so far: the monitor sees from it whether the queue is served.
  std::uint64_t popped() const noexcept { return popped_.load(std::memory_order_relaxed); }

 private:
  // 2 KiB: a spawning loop's overflow of 129 goroutines at a time fills one in two.
  struct segment {
    static constexpr std::uint32_t capacity = 254;
    segment* next = nullptr;
    std::uint32_t head = 0;  // items[head, tail) are queued
    std::uint32_t tail = 0;
    goroutine* items[capacity];
  };
  static constexpr int max_spares = 4;

  spinlock lock_;
  segment* head_ = nullptr;    // under lock_; null when nothing was ever queued
  segment* tail_ = nullptr;    // under lock_
  segment* spares_ = nullptr;  // under lock_: emptied segments kept for reuse
  int spare_count_ = 0;        // under lock_
  std::atomic<std::uint32_t> size_{0};  // written under lock_, read anywhere
  std::atomic<std::uint64_t> popped_{0};  // written under lock_; relaxed: a progress hint
};

}  // namespace goro::detail
