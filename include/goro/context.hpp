// goro/context.hpp — goro::context, Go's context.Context: cancellation, deadlines and
// request-scoped values that flow down a tree of goroutines.
//
// A context is an immutable, cheaply copyable value. Derived contexts form a tree:
// cancelling a context cancels every context derived from it. done() is a channel
// that is closed on cancellation, usable in select; err() then says why
// (goro::canceled or goro::deadline_exceeded); cause() gives the cause passed to a
// cancel_cause_func.
//
// Blocking: nothing here blocks (receiving from done() does, like any channel).
// Thread-safety: contexts and cancel functions may be used from any goroutine or
//   thread; cancel functions are idempotent.
// Panics: none. A deadline in the past yields a context that is already done.
//
// Example:
//   auto [ctx, cancel] = goro::with_timeout(goro::background(), 100ms);
//   switch (goro::select(goro::case_recv(results, r), goro::case_recv(ctx.done()))) {
//     case 0: use(*r); break;
//     case 1: return ctx.err();   // goro::deadline_exceeded
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <variant>

#include "goro/chan.hpp"
#include "goro/error.hpp"
#include "goro/time.hpp"

namespace goro {

namespace detail {
struct context_node;
struct context_access;
struct context_key_base {
  const char* name;
};
}  // namespace detail

// A typed key for with_value: identity is the key object, so keys never collide.
//   inline const goro::context_key<std::string> request_id{"request_id"};
template <class T>
class context_key : public detail::context_key_base {
 public:
  explicit constexpr context_key(const char* name) : detail::context_key_base{name} {}
};

class context {
 public:
  // The background context: never cancelled, no deadline, no values.
  context();

  // Closed when the context is cancelled or its deadline passes; the nil channel
  // (never ready) for contexts that cannot be cancelled.
  recv_chan<std::monostate> done() const;
  // nil while not done; then goro::canceled or goro::deadline_exceeded.
  error err() const;
  // The deadline, if any (the earliest along the chain).
  std::optional<time_point> deadline() const;
  // The value for `key` along the chain, or nullptr.
  template <class T>
  const T* value(const context_key<T>& key) const {
    return static_cast<const T*>(find_value(&key));
  }
  // A std::stop_token requested when this context is done.
  std::stop_token stop_token() const;

 private:
  friend struct detail::context_access;
  explicit context(std::shared_ptr<detail::context_node> n) : node_(std::move(n)) {}
  const void* find_value(const detail::context_key_base* key) const;
  std::shared_ptr<detail::context_node> node_;
};

// Cancels its context (with goro::canceled); idempotent; callable from anywhere.
class cancel_func {
 public:
  void operator()() const;

 private:
  friend struct detail::context_access;
  std::shared_ptr<detail::context_node> node_;
};

// Cancels its context with a cause (Go's CancelCauseFunc); a nil cause means canceled.
class cancel_cause_func {
 public:
  void operator()(const error& cause) const;

 private:
  friend struct detail::context_access;
  std::shared_ptr<detail::context_node> node_;
};

// Go's context.Background().
context background();

// A child that is cancelled when `cancel` is called or the parent is.
std::pair<context, cancel_func> with_cancel(const context& parent);
// As with_cancel, and cancel(cause) records a cause for goro::cause().
std::pair<context, cancel_cause_func> with_cancel_cause(const context& parent);
// A child cancelled at `deadline` (err: deadline_exceeded), by cancel, or by the parent.
// Its timer is released as soon as the context is cancelled.
std::pair<context, cancel_func> with_deadline(const context& parent, time_point deadline);
template <class Rep, class Period>
std::pair<context, cancel_func> with_timeout(const context& parent,
                                             std::chrono::duration<Rep, Period> timeout) {
  // to_ns maps a zero or negative timeout to 0: the context is done at once.
  return with_deadline(parent, std::chrono::steady_clock::now() +
                                   std::chrono::nanoseconds(detail::to_ns(timeout)));
}
// A child carrying key -> value (looked up with ctx.value(key)).
template <class T, class V>
context with_value(const context& parent, const context_key<T>& key, V&& value);
// A child with the parent's values but never cancelled and with no deadline.
context without_cancel(const context& parent);
// A child cancelled when `token` is stop-requested (or the parent is cancelled).
context with_stop_token(const context& parent, std::stop_token token);

// The cause of ctx's cancellation: the error given to its cancel_cause_func (or an
// ancestor's), else ctx.err(); nil while not done.
error cause(const context& ctx);

// Runs f in its own goroutine once ctx is done. The returned function stops that:
// it returns true if it prevented f from running, false if f was already started
// (or stopped before).
std::function<bool()> after_func(const context& ctx, std::function<void()> f);

namespace detail {
struct context_access {
  static const std::shared_ptr<context_node>& node(const context& c) { return c.node_; }
  static context make(std::shared_ptr<context_node> n) { return context(std::move(n)); }
  template <class F>
  static F make_cancel(std::shared_ptr<context_node> n) {
    F f;
    f.node_ = std::move(n);
    return f;
  }
};
// A value node holding `value` (type-erased, owned).
context context_with_value(const context& parent, const context_key_base* key,
                           std::shared_ptr<const void> value);

// Runs `callback` (on the cancelling goroutine or thread; it must not block) when ctx
// is cancelled, or at once if it already is. Returns a registration id; 0 when ctx
// can never be cancelled (the callback is dropped).
std::uint64_t context_on_cancel(const context& ctx, std::function<void()> callback);
// Removes a registration; true if the callback had not run and now never will.
bool context_remove_on_cancel(const context& ctx, std::uint64_t id);
// The number of children registered with ctx's nearest cancelable node (tests).
std::size_t context_child_count(const context& ctx);
}  // namespace detail

template <class T, class V>
context with_value(const context& parent, const context_key<T>& key, V&& value) {
  return detail::context_with_value(parent, &key,
                                    std::make_shared<const T>(std::forward<V>(value)));
}

}  // namespace goro
