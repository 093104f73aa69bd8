// channel.cpp — send, receive and close for every channel (Go's runtime/chan.go).
// The invariants are in goro/detail/chan_core.hpp.
//
// Memory ordering: every hand-over happens under the channel's lock; the waiter's
// `done` (or its select's `done`) is stored with release after the value has moved and
// read with acquire by the woken party, so the value is visible when it returns.
#include <mutex>
#include <string>

#include "goro/detail/chan_core.hpp"
#include "goro/panic.hpp"
#include "runtime/bubble.hpp"
#include "runtime/parking.hpp"
#include "runtime/sys.hpp"

namespace goro::detail {

void chan_lock::lock_contended() noexcept { spin_acquire_contended(locked_); }

void waiter_queue::push_back(chan_waiter* w) noexcept {
  w->next = nullptr;
  w->prev = tail;
  if (tail) {
    tail->next = w;
  } else {
    head = w;
  }
  tail = w;
}

void waiter_queue::remove(chan_waiter* w) noexcept {
  if (w->prev) {
    w->prev->next = w->next;
  } else if (head == w) {
    head = w->next;
  } else {
    return;  // not linked here
  }
  if (w->next) {
    w->next->prev = w->prev;
  } else {
    tail = w->prev;
  }
  w->next = w->prev = nullptr;
}

chan_waiter* waiter_queue::pop_claimed() noexcept {
  while (chan_waiter* w = head) {
    remove(w);
    if (w->claim()) return w;
    // A select that another case already won: its owner no longer waits here.
  }
  return nullptr;
}

void wake_waiter(chan_waiter* w) noexcept {
  if (select_state* sel = w->sel) {
    parker* who = sel->who;
    sel->done.store(true, std::memory_order_release);  // the select may return now
    unpark(who);
  } else {
    parker* who = w->who;
    w->done.store(true, std::memory_order_release);  // the node may vanish now
    unpark(who);
  }
}

void channel_core::recv_from_sender(chan_waiter* w, void* dst) noexcept {
  if (capacity == 0) {
    hand_off(w->elem, dst);
  } else {
    // The buffer is full: take its head, and the sender's value goes to the tail,
    // so FIFO order holds across buffer and waiting senders.
    take(dst);
    put(w->elem);
  }
  w->success = true;
}

void channel_core::send_to_receiver(chan_waiter* w, void* src) noexcept {
  check_waiter_exists(w->sel ? w->sel->who : w->who, "a channel send to a waiting receiver");
  hand_off(src, w->elem);
  w->success = true;
}

bool channel_core::send(void* src, bool block) {
  if (owner != nullptr) [[unlikely]] {
    check_bubble(owner, "send on a synctest channel");
    if (owner->explore != nullptr) explore_point(owner->explore);  // a scheduling point
  }
  lock.lock();
  if (closed) {
    lock.unlock();
    panic_send_on_closed();
  }
  if (chan_waiter* w = recvq.pop_claimed()) {
    send_to_receiver(w, src);
    lock.unlock();
    wake_waiter(w);
    return true;
  }
  if (count < capacity) {
    put(src);
    ++count;
    lock.unlock();
    return true;
  }
  if (!block) {
    lock.unlock();
    return false;
  }
  chan_waiter self;
  self.who = current_parker();
  self.elem = src;
  sendq.push_back(&self);
  lock.unlock();
  while (!self.done.load(std::memory_order_acquire)) {
    park_durable(self.who, wait_reason::chan_send, owner);
  }
  if (!self.success) panic_send_on_closed();  // closed while we waited
  return true;
}

channel_core::recv_status channel_core::recv(void* dst, bool block, bool internal) {
  if (owner != nullptr && !internal) [[unlikely]] {
    check_bubble(owner, "receive on a synctest channel");
    if (owner->explore != nullptr) explore_point(owner->explore);  // a scheduling point
  }
  lock.lock();
  if (chan_waiter* w = sendq.pop_claimed()) {
    recv_from_sender(w, dst);
    lock.unlock();
    wake_waiter(w);
    return recv_status::value;
  }
  if (count > 0) {
    take(dst);
    --count;
    lock.unlock();
    return recv_status::value;
  }
  if (closed) {
    lock.unlock();
    return recv_status::closed;
  }
  if (!block) {
    lock.unlock();
    return recv_status::would_block;
  }
  chan_waiter self;
  self.who = current_parker();
  self.elem = dst;
  recvq.push_back(&self);
  lock.unlock();
  while (!self.done.load(std::memory_order_acquire)) {
    park_durable(self.who, wait_reason::chan_receive, owner);
  }
  return self.success ? recv_status::value : recv_status::closed;
}

void channel_core::close(bool internal) {
  if (owner != nullptr && !internal) [[unlikely]] {
    check_bubble(owner, "close of a synctest channel");
    if (owner->explore != nullptr) explore_point(owner->explore);  // a scheduling point
  }
  waiter_queue woken;
  {
    std::lock_guard lk(lock);
    if (closed) throw panic_error("close of closed channel");
    closed = true;
    // Every waiting receiver gets nothing (nullopt), every waiting sender panics.
    for (waiter_queue* q : {&recvq, &sendq}) {
      while (chan_waiter* w = q->pop_claimed()) {
        w->success = false;
        if (q == &recvq) clear(w->elem);
        woken.push_back(w);
      }
    }
  }
  while (chan_waiter* w = woken.head) {
    woken.remove(w);
    wake_waiter(w);
  }
}

std::size_t channel_core::len() noexcept {
  std::lock_guard lk(lock);
  return count;
}

void block_forever(wait_reason reason) {
  parker* self = current_parker();
  // Durable in a synctest bubble: nothing can ever release it.
  bubble* b = current_bubble();
  for (;;) park_durable(self, reason, b);  // nothing ever unparks it for this reason
}

void panic_send_on_closed() { throw panic_error("send on closed channel"); }
void panic_close_of_nil() { throw panic_error("close of nil channel"); }
void panic_bad_capacity(std::size_t cap) {
  throw panic_error("makechan: size out of range (" + std::to_string(cap) + ")");
}

}  // namespace goro::detail
