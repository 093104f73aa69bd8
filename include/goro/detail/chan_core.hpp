// goro/detail/chan_core.hpp — the type-independent half of a channel, shared by
// chan<T> and select. Not public API; the algorithms live in src/chan/.
//
// Design (Go's runtime/chan.go): one lock per channel, a ring buffer of `capacity`
// elements, and two FIFO queues of parked waiters. A waiter is a node on the parked
// party's own stack. A sender that finds a waiting receiver hands its value straight
// to it (into the receiver's std::optional) without touching the buffer, and the
// reverse for a receiver that finds a waiting sender.
//
// Invariants (under `lock`):
//   - At least one of recvq and sendq is empty, except transiently for a select that
//     waits on both sides of one channel (Go has the same exception).
//   - recvq is non-empty only when the buffer is empty; sendq only when it is full.
//   - count <= capacity; `closed` never goes back to false.
//   - A waiter in a queue is parked (or about to park); whoever unlinks it and, for a
//     select, wins its claim, completes it: moves the value, sets `success`, then
//     marks it done (release) and unparks it after releasing the lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "goro/detail/wait_reason.hpp"

namespace goro::detail {

struct parker;  // the runtime's parking record (a goroutine's or a thread's)
struct bubble;  // a synctest bubble (src/runtime/bubble.hpp)
parker* current_parker() noexcept;
bubble* current_bubble() noexcept;
void park(parker* self, wait_reason reason) noexcept;
void unpark(parker* p) noexcept;

// A lock for channel state: critical sections are a few dozen instructions.
class chan_lock {
 public:
  // The uncontended exchange inline; spinning and yielding out of line.
  void lock() noexcept {
    if (locked_.exchange(true, std::memory_order_acquire)) [[unlikely]] lock_contended();
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }

 private:
  void lock_contended() noexcept;

  std::atomic<bool> locked_{false};
};

// Shared by the waiters of one select: the first channel to claim it wins.
struct select_state {
  std::atomic<int> winner{-1};    // the case index that won, claimed by CAS
  std::atomic<bool> done{false};  // set (release) after the winner's value moved
  parker* who = nullptr;
};

struct chan_waiter {
  chan_waiter* next = nullptr;
  chan_waiter* prev = nullptr;
  parker* who = nullptr;
  void* elem = nullptr;         // send: T* to move from; recv: std::optional<T>* or null
  select_state* sel = nullptr;  // set for a case of a blocked select
  int case_index = 0;
  bool success = false;           // recv: got a value; send: delivered (false: closed)
  std::atomic<bool> done{false};  // for a plain (non-select) waiter

  // Claims the waiter for completion; false if it belongs to a select already won by
  // another case (then it is left for its owner to unlink).
  bool claim() noexcept {
    if (sel == nullptr) return true;
    int expected = -1;
    return sel->winner.compare_exchange_strong(expected, case_index, std::memory_order_acq_rel);
  }
};

// A FIFO of waiters, linked through the nodes.
struct waiter_queue {
  chan_waiter* head = nullptr;
  chan_waiter* tail = nullptr;

  void push_back(chan_waiter* w) noexcept;
  void remove(chan_waiter* w) noexcept;
  // Unlinks and returns the first waiter that can be claimed, dropping (unlinking)
  // stale select waiters on the way; null if none.
  chan_waiter* pop_claimed() noexcept;
  bool empty() const noexcept { return head == nullptr; }
};

class channel_core {
 public:
  enum class recv_status { value, closed, would_block };

  explicit channel_core(std::size_t cap) : capacity(cap), owner(current_bubble()) {}
  virtual ~channel_core() = default;
  channel_core(const channel_core&) = delete;
  channel_core& operator=(const channel_core&) = delete;

  // Sends *src (moved from only on success). Blocking: parks until delivered.
  // Non-blocking: false if it would block. Panics (panic_error) if closed.
  bool send(void* src, bool block);
  // Receives into *dst (a std::optional<T>*, may be null to discard). `internal`: the
  // runtime's own operation on the channel (a timer draining it): no synctest bubble
  // check and no scheduling point (goro/synctest.hpp, goro/explore.hpp).
  recv_status recv(void* dst, bool block, bool internal = false);
  // Closes; wakes every waiter. Panics if already closed. `internal` as for recv (a
  // context closing its done channel, possibly cancelled from outside its bubble).
  void close(bool internal = false);
  std::size_t len() noexcept;

  // --- under lock; implemented by channel<T> ---
  virtual void put(void* src) = 0;                  // move *src into the buffer at sendx
  virtual void take(void* dst) = 0;                 // move the buffer at recvx into *dst (or drop)
  virtual void hand_off(void* src, void* dst) = 0;  // move *src into *dst (or drop)
  virtual void clear(void* dst) = 0;                // *dst = nullopt (dst may be null)

  chan_lock lock;
  const std::size_t capacity;
  // The synctest bubble it was made in, or null: only that bubble's goroutines may send
  // or receive, and waiting on it is a durable block there (goro/synctest.hpp).
  bubble* const owner;
  std::size_t count = 0;  // under lock
  std::size_t sendx = 0;  // under lock: where put() writes
  std::size_t recvx = 0;  // under lock: where take() reads
  bool closed = false;    // under lock
  waiter_queue recvq;     // under lock
  waiter_queue sendq;     // under lock

  // Lock-held steps shared with select (src/chan/channel.cpp).
  // Completes a receive from waiting sender `w` into dst; call with lock held.
  void recv_from_sender(chan_waiter* w, void* dst) noexcept;
  // Completes waiting receiver `w` with *src; call with lock held.
  void send_to_receiver(chan_waiter* w, void* src) noexcept;
};

// One case of a select, type-erased (goro/select.hpp makes them; so do the
// context-aware operations of goro/chan.hpp).
struct select_case {
  channel_core* ch = nullptr;  // null: a nil channel (never ready) or the default case
  void* elem = nullptr;        // send: T*, moved from only if this case runs;
                               // recv: std::optional<T>* or null, written only if it runs
  bool is_send = false;
  bool is_default = false;
};

// Runs Go's select over `n` cases; returns the index of the case that ran
// (src/chan/select.cpp).
int select_impl(select_case* cases, int n);

// Marks `w` complete and wakes it. Call after releasing the channel's lock.
void wake_waiter(chan_waiter* w) noexcept;

// Blocks the caller forever (send/receive on a nil channel, an empty select).
[[noreturn]] void block_forever(wait_reason reason);

// Go's panics, thrown as goro::panic_error.
[[noreturn]] void panic_send_on_closed();
[[noreturn]] void panic_close_of_nil();
[[noreturn]] void panic_bad_capacity(std::size_t cap);

}  // namespace goro::detail
