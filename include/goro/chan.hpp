// goro/chan.hpp — channels: goro::chan<T>, send_chan<T>, recv_chan<T>, make_chan<T>.
//
// A chan<T> is a copyable handle to one shared channel, like Go's `chan T`; a
// default-constructed handle is the nil channel. Capacity 0 is unbuffered: a send
// completes only when a receiver takes the value. Senders and receivers are served in
// FIFO order. Values are moved, never copied twice; move-only T works.
//
// send_chan<T> and recv_chan<T> are the directional handles (Go's `chan<- T` and
// `<-chan T`). chan<T> derives from both, so it converts to either wherever Go would
// assign it, also where a template deduces T: a `template <class T> void
// consume(goro::recv_chan<T>)` accepts a chan<int>. A chan<T> holds its channel once per
// view (two shared pointers); do not assign to one of its views through a base
// reference, which would retarget that view alone.
//
// chan<T> and recv_chan<T> are C++20 input ranges that receive lazily: each element is
// received when it is first read or compared with end(), so `ch | std::views::take(3)`
// receives exactly three values. The range ends when the channel is closed and drained.
// Views that look ahead receive what they look at: `ch | views::filter(p) |
// views::take(2)` receives until a third match after the second (filter's increment
// searches for the next match), as a Go loop that keeps reading would; put take
// directly on the channel to bound what is received. Elements are read by reference:
// `for (auto& v : ch)` or `for (auto&& v : ch)` to move a move-only value out; `for (T
// v : ch)` copies each.
//
// Blocking: send, recv and iteration park the calling goroutine, or block the calling
//   plain thread, until they can complete; send(ctx, v) and recv(ctx) also return when
//   ctx is done; try_send/try_recv, close, len and cap never block. On a nil channel,
//   send and recv block forever (as Go), and their ctx forms until ctx is done.
// Thread-safety: every operation may be used concurrently from goroutines and threads;
//   an iterator belongs to the one goroutine or thread that uses it.
// Panics (goro::panic_error, Go's messages): send on a closed channel ("send on closed
//   channel", also for a sender blocked when the channel is closed, and for try_send
//   and send(ctx, v)), close of a closed channel ("close of closed channel"), close of
//   nil ("close of nil channel"), make_chan with a capacity out of range ("makechan:
//   size out of range").
//
// Example:
//   auto jobs = goro::make_chan<int>(16);
//   goro::go([jobs] { for (int i = 0; i < 3; ++i) jobs.send(i); jobs.close(); });
//   for (int j : jobs) std::printf("%d\n", j);   // 0 1 2, then the loop ends
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include "goro/detail/channel.hpp"
#include "goro/error.hpp"
#include "goro/panic.hpp"

namespace goro {

class context;  // goro/context.hpp
template <class T>
class send_chan;
template <class T>
class recv_chan;
template <class T>
class chan;
template <class T>
chan<T> make_chan(std::size_t cap = 0);

// What a non-blocking receive found (try_recv(recv_status&)); Go's `v, ok := <-ch` in a
// select with a default tells the same three apart.
enum class recv_status {
  received,     // a value was received (ok == true)
  would_block,  // nothing ready: open and empty, or a nil channel (the default runs)
  closed,       // closed and drained (ok == false): every later receive ends at once
};

namespace detail {
// Access to a handle's channel for select, the runtime and the directional views.
struct chan_access {
  template <class T>
  static const std::shared_ptr<channel<T>>& state(const recv_chan<T>& h) noexcept {
    return h.state_;
  }
  template <class T>
  static const std::shared_ptr<channel<T>>& state(const send_chan<T>& h) noexcept {
    return h.state_;
  }
  template <class T>
  static const std::shared_ptr<channel<T>>& state(const chan<T>& h) noexcept {
    return state(static_cast<const recv_chan<T>&>(h));
  }
  template <class H>
  static channel_core* core(const H& h) noexcept {
    return state(h).get();
  }
  // A handle of type H on `state` (which may share ownership with another object).
  template <class H, class S>
  static H make(S state) noexcept {
    return H(std::move(state));
  }
};

// Runs Go's select over `c` and ctx.done(); true if `c` ran, false if ctx was done
// first (either may run when both are ready). Defined in src/chan/select.cpp, where
// goro::context is complete.
bool select_or_done(select_case c, const context& ctx);
// ctx.err(), for the templates below that see goro::context incomplete.
error context_err(const context& ctx);

template <class T>
class chan_ops {
 public:
  using state_ptr = std::shared_ptr<channel<T>>;

  static void send(const state_ptr& s, T&& v) {
    if (!s) block_forever(wait_reason::chan_send_nil);
    s->send(&v, true);
  }
  static bool try_send(const state_ptr& s, T&& v) { return s && s->send(&v, false); }
  // v is moved from only if it is sent.
  static error send(const state_ptr& s, const context& ctx, T& v) {
    if (select_or_done(select_case{s.get(), &v, true, false}, ctx)) return error{};
    return context_err(ctx);
  }
  static void recv_into(const state_ptr& s, std::optional<T>& out) {
    if (!s) block_forever(wait_reason::chan_receive_nil);
    s->recv(&out, true);
  }
  static std::optional<T> recv(const state_ptr& s) {
    std::optional<T> out;
    recv_into(s, out);
    return out;
  }
  static std::optional<T> recv(const state_ptr& s, const context& ctx) {
    std::optional<T> out;
    (void)select_or_done(select_case{s.get(), &out, false, false}, ctx);
    return out;
  }
  static std::optional<T> try_recv(const state_ptr& s, recv_status* status) {
    std::optional<T> out;
    recv_status st = recv_status::would_block;
    if (s) {
      switch (s->recv(&out, false)) {
        case channel_core::recv_status::value: st = recv_status::received; break;
        case channel_core::recv_status::closed: st = recv_status::closed; break;
        case channel_core::recv_status::would_block: break;
      }
    }
    if (status) *status = st;
    return out;
  }
  static void close(const state_ptr& s) {
    if (!s) panic_close_of_nil();
    s->close();
  }
  static std::size_t len(const state_ptr& s) noexcept { return s ? s->len() : 0; }
  static std::size_t cap(const state_ptr& s) noexcept { return s ? s->capacity : 0; }
};

// Go's `for v := range ch` as a C++20 input iterator. It receives lazily: the element
// at its position is received when first read (operator*) or compared with end, and
// ++ on an element not yet received receives and drops it. So an adaptor that stops
// after n elements (std::views::take) receives exactly n.
template <class T>
class chan_iterator {
 public:
  using iterator_concept = std::input_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;

  chan_iterator() = default;
  explicit chan_iterator(std::shared_ptr<channel<T>> s) : s_(std::move(s)) {}

  // The received value; blocks like recv() if it has not been received yet. Not valid
  // at end (closed and drained).
  T& operator*() const {
    fetch();
    return *current_;
  }
  chan_iterator& operator++() {
    fetch();
    fetched_ = false;
    current_.reset();
    return *this;
  }
  void operator++(int) { ++*this; }
  // At end once the channel is closed and drained; blocks like recv() to find out.
  friend bool operator==(const chan_iterator& it, std::default_sentinel_t) {
    it.fetch();
    return !it.current_.has_value();
  }

 private:
  void fetch() const {
    if (fetched_) return;
    chan_ops<T>::recv_into(s_, current_);
    fetched_ = true;
  }
  std::shared_ptr<channel<T>> s_;
  // Lazily received state: logically the element at this position, so filled in by
  // const reads.
  mutable std::optional<T> current_;
  mutable bool fetched_ = false;
};
}  // namespace detail

// The receive half of a channel (Go's `<-chan T`). Nothing here panics: a receiver
// cannot close.
template <class T>
class recv_chan {
 public:
  using value_type = T;

  // The nil channel.
  recv_chan() = default;
  recv_chan(const recv_chan&) = default;
  recv_chan(recv_chan&&) noexcept = default;
  recv_chan& operator=(const recv_chan&) = default;
  recv_chan& operator=(recv_chan&&) noexcept = default;
  // From a moved chan: the view shares the channel and the chan is left whole (moving
  // only this base out would leave it half nil: false yet able to send).
  // (Templates so that `view = {}` still means the nil view.)
  template <std::same_as<chan<T>> C>
  recv_chan(C&& c) noexcept : state_(static_cast<recv_chan&>(c).state_) {}  // NOLINT: implicit
  template <std::same_as<chan<T>> C>
  recv_chan& operator=(C&& c) noexcept {
    state_ = static_cast<recv_chan&>(c).state_;
    return *this;
  }

  // Receives a value (Go's `v, ok := <-ch`); nullopt once the channel is closed and
  // drained (ok == false). Blocks while empty and open. Nil: blocks forever.
  std::optional<T> recv() const { return detail::chan_ops<T>::recv(state_); }

  // Receives a value, or gives up when ctx is done: Go's
  //   select { case v, ok := <-ch: ...; case <-ctx.Done(): ... }
  // nullopt when the channel is closed and drained or when ctx is done first; then
  // ctx.err() != nil tells that ctx was done (or done as well: when both are ready,
  // one is picked at random, as Go's select does). Nothing is received when it gives
  // up. Blocks until one of the two; nil channel: until ctx is done (forever for a
  // context that cannot be cancelled).
  [[nodiscard]] std::optional<T> recv(const context& ctx) const {
    return detail::chan_ops<T>::recv(state_, ctx);
  }

  // Receives without blocking; nullopt if nothing is ready, or the channel is closed
  // and drained (the overload below tells the two apart). Nil: nullopt.
  [[nodiscard]] std::optional<T> try_recv() const {
    return detail::chan_ops<T>::try_recv(state_, nullptr);
  }
  // As try_recv(), and sets `status`: received (a value is returned), would_block
  // (open and empty, or nil) or closed (closed and drained).
  [[nodiscard]] std::optional<T> try_recv(recv_status& status) const {
    return detail::chan_ops<T>::try_recv(state_, &status);
  }

  // Buffered values now / buffer capacity (0 for nil). Never block; len is a snapshot.
  std::size_t len() const noexcept { return detail::chan_ops<T>::len(state_); }
  std::size_t cap() const noexcept { return detail::chan_ops<T>::cap(state_); }

  // Range-for receives until closed and drained: `for (T v : ch) ...` (Go's range);
  // reading the first element or comparing with end() blocks like recv(), nil:
  // forever. See detail::chan_iterator for the lazy receive.
  detail::chan_iterator<T> begin() const { return detail::chan_iterator<T>(state_); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // True unless nil. Handles compare equal when they refer to the same channel (two
  // nil handles are equal).
  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const recv_chan& a, const recv_chan& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  friend struct detail::chan_access;
  friend class chan<T>;
  explicit recv_chan(std::shared_ptr<detail::channel<T>> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<detail::channel<T>> state_;
};

// The send half of a channel (Go's `chan<- T`).
template <class T>
class send_chan {
 public:
  using value_type = T;

  // The nil channel.
  send_chan() = default;
  send_chan(const send_chan&) = default;
  send_chan(send_chan&&) noexcept = default;
  send_chan& operator=(const send_chan&) = default;
  send_chan& operator=(send_chan&&) noexcept = default;
  // From a moved chan: as recv_chan's.
  // (Templates so that `view = {}` still means the nil view.)
  template <std::same_as<chan<T>> C>
  send_chan(C&& c) noexcept : state_(static_cast<send_chan&>(c).state_) {}  // NOLINT: implicit
  template <std::same_as<chan<T>> C>
  send_chan& operator=(C&& c) noexcept {
    state_ = static_cast<send_chan&>(c).state_;
    return *this;
  }

  // Sends v (Go's `ch <- v`); blocks until a receiver takes it (unbuffered) or there is
  // buffer space. The const& overload copies v first. Panics if the channel is closed,
  // also when it is closed while the sender is blocked. Nil: blocks forever.
  void send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    detail::chan_ops<T>::send(state_, std::move(copy));
  }
  void send(T&& v) const { detail::chan_ops<T>::send(state_, std::move(v)); }

  // Sends v, or gives up when ctx is done: Go's
  //   select { case ch <- v: return nil; case <-ctx.Done(): return ctx.Err() }
  // Returns nil when sent, ctx.err() when ctx is done first (when both are ready, one
  // is picked at random, as Go's select does); v is moved from only when sent. Panics
  // like send() on a closed channel. Blocks until one of the two; nil channel: until
  // ctx is done (forever for a context that cannot be cancelled).
  [[nodiscard]] error send(const context& ctx, const T& v) const
    requires std::copy_constructible<T>
  {
    T copy(v);
    return detail::chan_ops<T>::send(state_, ctx, copy);
  }
  [[nodiscard]] error send(const context& ctx, T&& v) const {
    return detail::chan_ops<T>::send(state_, ctx, v);
  }

  // Sends without blocking (Go's select with a default); true if sent (v is moved from
  // only then): a receiver was waiting or the buffer had room. Nil: false. Panics if
  // the channel is closed.
  [[nodiscard]] bool try_send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    return detail::chan_ops<T>::try_send(state_, std::move(copy));
  }
  [[nodiscard]] bool try_send(T&& v) const {
    return detail::chan_ops<T>::try_send(state_, std::move(v));
  }

  // Closes the channel (Go's close): blocked receivers get nullopt, later receivers
  // drain the buffer and then get nullopt; blocked senders panic. Never blocks. Panics
  // if already closed or nil.
  void close() const { detail::chan_ops<T>::close(state_); }

  // As recv_chan's.
  std::size_t len() const noexcept { return detail::chan_ops<T>::len(state_); }
  std::size_t cap() const noexcept { return detail::chan_ops<T>::cap(state_); }
  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const send_chan& a, const send_chan& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  friend struct detail::chan_access;
  friend class chan<T>;
  explicit send_chan(std::shared_ptr<detail::channel<T>> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<detail::channel<T>> state_;
};

// A bidirectional channel handle (Go's `chan T`): every member of send_chan<T> and
// recv_chan<T>, documented there.
template <class T>
class chan : public send_chan<T>, public recv_chan<T> {
 public:
  using value_type = T;

  // The nil channel.
  chan() = default;

  using send_chan<T>::send;
  using send_chan<T>::try_send;
  using send_chan<T>::close;
  using recv_chan<T>::recv;
  using recv_chan<T>::try_recv;
  using recv_chan<T>::len;
  using recv_chan<T>::cap;
  using recv_chan<T>::begin;
  using recv_chan<T>::end;
  using recv_chan<T>::operator bool;
  friend bool operator==(const chan& a, const chan& b) noexcept {
    return static_cast<const recv_chan<T>&>(a) == static_cast<const recv_chan<T>&>(b);
  }

 private:
  friend struct detail::chan_access;
  friend chan make_chan<T>(std::size_t);
  explicit chan(std::shared_ptr<detail::channel<T>> s) noexcept
      : send_chan<T>(s), recv_chan<T>(std::move(s)) {}
};

// Makes a channel with room for `cap` buffered values (0: unbuffered), Go's make(chan
// T, cap). The buffer is allocated up front. A buffer over 2^40 bytes (cap * sizeof(T),
// for example from a negative int converted) panics; a smaller one that cannot be
// allocated throws std::bad_alloc. Never blocks.
template <class T>
chan<T> make_chan(std::size_t cap) {
  constexpr bool element_ok =
      std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_array_v<T>;
  if constexpr (!element_ok) {
    static_assert(element_ok,
                  "goro::chan<T>: T is a non-const object type (values are moved in and out): "
                  "not a reference, void, const or an array");
    return {};
  } else {
    if (cap > detail::max_chan_capacity<T>()) detail::panic_bad_capacity(cap);
    return chan<T>(std::make_shared<detail::channel<T>>(cap));
  }
}

}  // namespace goro

// Channel handles as keys of unordered containers (Go's map[chan T]V): equal handles
// (the same channel, or both nil) hash alike; a view hashes as its chan.
template <class T>
struct std::hash<goro::recv_chan<T>> {
  std::size_t operator()(const goro::recv_chan<T>& c) const noexcept {
    return std::hash<const void*>()(goro::detail::chan_access::core(c));
  }
};
template <class T>
struct std::hash<goro::send_chan<T>> {
  std::size_t operator()(const goro::send_chan<T>& c) const noexcept {
    return std::hash<const void*>()(goro::detail::chan_access::core(c));
  }
};
template <class T>
struct std::hash<goro::chan<T>> {
  std::size_t operator()(const goro::chan<T>& c) const noexcept {
    return std::hash<goro::recv_chan<T>>()(c);
  }
};
