// goro/chan.hpp — channels: goro::chan<T>, send_chan<T>, recv_chan<T>, make_chan<T>.
//
// A chan<T> is a copyable handle to one shared channel, like Go's `chan T`; a
// default-constructed handle is the nil channel. Capacity 0 is unbuffered: a send
// completes only when a receiver takes the value. Senders and receivers are served in
// FIFO order. Values are moved, never copied twice; move-only T works.
//
// Blocking: send, recv and range-for park the calling goroutine, or block the calling
//   plain thread, until they can complete; try_send/try_recv, close, len and cap never
//   block. On a nil channel, send and recv block forever (as Go).
// Thread-safety: every operation may be used concurrently from goroutines and threads.
// Panics (goro::panic_error, Go's messages): send on a closed channel ("send on closed
//   channel", also for a sender blocked when the channel is closed), close of a closed
//   channel ("close of closed channel"), close of nil ("close of nil channel"),
//   make_chan with a capacity out of range ("makechan: size out of range"). Also for
//   try_send: a closed channel panics rather than returning false.
//
// Example:
//   auto jobs = goro::make_chan<int>(16);
//   goro::go([jobs] { for (int i = 0; i < 3; ++i) jobs.send(i); jobs.close(); });
//   for (int j : jobs) std::printf("%d\n", j);   // 0 1 2, then the loop ends
#pragma once

#include <concepts>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include "goro/detail/channel.hpp"
#include "goro/panic.hpp"

namespace goro {

template <class T>
class send_chan;
template <class T>
class recv_chan;
template <class T>
class chan;
template <class T>
chan<T> make_chan(std::size_t cap = 0);

namespace detail {
// Access to a handle's channel for select and the directional views.
struct chan_access {
  template <class H>
  static auto* core(const H& h) noexcept {
    return h.state_.get();
  }
  template <class H>
  static const auto& state(const H& h) noexcept {
    return h.state_;
  }
  // A handle of type H on `state` (which may share ownership with another object).
  template <class H, class S>
  static H make(S state) noexcept {
    H h;
    h.state_ = std::move(state);
    return h;
  }
};

template <class T>
class chan_ops {
 public:
  using state_ptr = std::shared_ptr<channel<T>>;

  static void send(const state_ptr& s, T&& v) {
    if (!s) block_forever(wait_reason::chan_send_nil);
    s->send(&v, true);
  }
  static bool try_send(const state_ptr& s, T&& v) { return s && s->send(&v, false); }
  static std::optional<T> recv(const state_ptr& s) {
    if (!s) block_forever(wait_reason::chan_receive_nil);
    std::optional<T> out;
    s->recv(&out, true);
    return out;
  }
  static std::optional<T> try_recv(const state_ptr& s) {
    std::optional<T> out;
    if (s) s->recv(&out, false);
    return out;
  }
  static void close(const state_ptr& s) {
    if (!s) panic_close_of_nil();
    s->close();
  }
  static std::size_t len(const state_ptr& s) noexcept { return s ? s->len() : 0; }
  static std::size_t cap(const state_ptr& s) noexcept { return s ? s->capacity : 0; }
};

// Go's `for v := range ch`: receives until the channel is closed and drained.
template <class T>
class chan_iterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  chan_iterator() = default;
  explicit chan_iterator(std::shared_ptr<channel<T>> s) : s_(std::move(s)) { advance(); }
  T& operator*() { return *current_; }
  chan_iterator& operator++() {
    advance();
    return *this;
  }
  void operator++(int) { advance(); }
  friend bool operator==(const chan_iterator& it, std::default_sentinel_t) {
    return !it.current_.has_value();
  }

 private:
  void advance() {
    current_.reset();
    current_ = chan_ops<T>::recv(s_);
  }
  std::shared_ptr<channel<T>> s_;
  std::optional<T> current_;
};
}  // namespace detail

// A bidirectional channel handle (Go's `chan T`).
template <class T>
class chan {
 public:
  using value_type = T;

  // The nil channel.
  chan() = default;

  // Sends v (Go's `ch <- v`); blocks until a receiver takes it (unbuffered) or there is
  // buffer space. The const& overload copies v first. Panics if the channel is closed,
  // also when it is closed while the sender is blocked. Nil: blocks forever.
  void send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    detail::chan_ops<T>::send(state_, std::move(copy));
  }
  void send(T&& v) const { detail::chan_ops<T>::send(state_, std::move(v)); }

  // Receives a value (Go's `v, ok := <-ch`); nullopt once the channel is closed and
  // drained (ok == false). Blocks while empty and open. Nil: blocks forever.
  std::optional<T> recv() const { return detail::chan_ops<T>::recv(state_); }

  // Sends without blocking (Go's select with a default); true if sent (v is moved from
  // only then): a receiver was waiting or the buffer had room. Nil: false. Panics if
  // the channel is closed.
  bool try_send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    return detail::chan_ops<T>::try_send(state_, std::move(copy));
  }
  bool try_send(T&& v) const { return detail::chan_ops<T>::try_send(state_, std::move(v)); }

  // Receives without blocking; nullopt if nothing is ready, or the channel is closed
  // and drained (the two are not told apart). Nil: nullopt.
  std::optional<T> try_recv() const { return detail::chan_ops<T>::try_recv(state_); }

  // Closes the channel (Go's close): blocked receivers get nullopt, later receivers
  // drain the buffer and then get nullopt; blocked senders panic. Never blocks. Panics
  // if already closed or nil.
  void close() const { detail::chan_ops<T>::close(state_); }

  // Buffered values now / buffer capacity (0 for nil). Never block; len is a snapshot.
  std::size_t len() const noexcept { return detail::chan_ops<T>::len(state_); }
  std::size_t cap() const noexcept { return detail::chan_ops<T>::cap(state_); }

  // Range-for receives until closed and drained: `for (T v : ch) ...` (Go's range).
  // begin() and each increment block like recv(); nil: blocks forever.
  detail::chan_iterator<T> begin() const { return detail::chan_iterator<T>(state_); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // True unless nil. Handles compare equal when they refer to the same channel (two
  // nil handles are equal).
  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const chan& a, const chan& b) noexcept { return a.state_ == b.state_; }

 private:
  friend struct detail::chan_access;
  friend class send_chan<T>;
  friend class recv_chan<T>;
  friend chan make_chan<T>(std::size_t);
  explicit chan(std::shared_ptr<detail::channel<T>> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::channel<T>> state_;
};

// The send half of a channel (Go's `chan<- T`); converts implicitly from chan<T>.
// Its members behave exactly as chan<T>'s of the same name: same blocking, same
// panics, same thread-safety.
template <class T>
class send_chan {
 public:
  using value_type = T;
  // The nil channel.
  send_chan() = default;
  // A send-only handle to c's channel (nil if c is nil).
  send_chan(const chan<T>& c) : state_(c.state_) {}  // NOLINT: implicit, as in Go

  void send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    detail::chan_ops<T>::send(state_, std::move(copy));
  }
  void send(T&& v) const { detail::chan_ops<T>::send(state_, std::move(v)); }
  bool try_send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    return detail::chan_ops<T>::try_send(state_, std::move(copy));
  }
  bool try_send(T&& v) const { return detail::chan_ops<T>::try_send(state_, std::move(v)); }
  void close() const { detail::chan_ops<T>::close(state_); }
  std::size_t len() const noexcept { return detail::chan_ops<T>::len(state_); }
  std::size_t cap() const noexcept { return detail::chan_ops<T>::cap(state_); }
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend struct detail::chan_access;
  std::shared_ptr<detail::channel<T>> state_;
};

// The receive half of a channel (Go's `<-chan T`); converts implicitly from chan<T>.
// Its members behave exactly as chan<T>'s of the same name: same blocking, same
// thread-safety; nothing here panics (a receiver cannot close).
template <class T>
class recv_chan {
 public:
  using value_type = T;
  // The nil channel.
  recv_chan() = default;
  // A receive-only handle to c's channel (nil if c is nil).
  recv_chan(const chan<T>& c) : state_(c.state_) {}  // NOLINT: implicit, as in Go

  std::optional<T> recv() const { return detail::chan_ops<T>::recv(state_); }
  std::optional<T> try_recv() const { return detail::chan_ops<T>::try_recv(state_); }
  std::size_t len() const noexcept { return detail::chan_ops<T>::len(state_); }
  std::size_t cap() const noexcept { return detail::chan_ops<T>::cap(state_); }
  detail::chan_iterator<T> begin() const { return detail::chan_iterator<T>(state_); }
  std::default_sentinel_t end() const noexcept { return {}; }
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend struct detail::chan_access;
  std::shared_ptr<detail::channel<T>> state_;
};

// Makes a channel with room for `cap` buffered values (0: unbuffered), Go's make(chan
// T, cap). The buffer is allocated up front. A buffer over 2^40 bytes (cap * sizeof(T),
// for example from a negative int converted) panics; a smaller one that cannot be
// allocated throws std::bad_alloc. Never blocks.
template <class T>
chan<T> make_chan(std::size_t cap) {
  if (cap > detail::max_chan_capacity<T>()) detail::panic_bad_capacity(cap);
  return chan<T>(std::make_shared<detail::channel<T>>(cap));
}

}  // namespace goro
