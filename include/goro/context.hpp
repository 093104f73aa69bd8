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
//   Cancelling closes done(), runs the registered cancellation hooks and starts
//   after_func goroutines on the cancelling goroutine or thread, without parking;
//   std::stop_callbacks on stop_token() run there too. When a deadline passes, done()
//   is closed at once by the runtime and the std::stop_callbacks run on a goroutine of
//   their own (as Go runs a timer's AfterFunc), so they may park. Trees of any depth
//   are cancelled and destroyed without recursion. As in Go, a cancellation holds the
//   lock of the context it cancels while it walks the subtree (about 3 ms for 100,000
//   children here): meanwhile, deriving a context from it or cancelling it again
//   waits without parking (spinning, then yielding the thread).
// Thread-safety: contexts and cancel functions may be used from any goroutine or
//   thread; cancel functions are idempotent.
// Panics: none. A deadline in the past yields a context that is already done; one
//   in the far future, up to time_point::max(), simply never passes.
//
// Example:
//   auto [ctx, cancel] = goro::with_timeout(goro::background(), 100ms);
//   switch (goro::select(goro::case_recv(results, r), goro::case_recv(ctx.done()))) {
//     case 0: use(*r); break;
//     case 1: return ctx.err();   // goro::deadline_exceeded
//   }
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <type_traits>
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

  // Closed when the context is cancelled or its deadline passes (Go's Done); the nil
  // channel (never ready) for contexts that cannot be cancelled (background(),
  // without_cancel() and value contexts on them).
  recv_chan<std::monostate> done() const;
  // nil while not done; then goro::canceled or goro::deadline_exceeded (Go's Err),
  // the reason of whichever cancellation reached this context first.
  [[nodiscard]] error err() const;
  // The deadline, if any (Go's Deadline): the earliest along the chain up to the
  // nearest without_cancel().
  std::optional<time_point> deadline() const;
  // The value for `key` from the nearest with_value() along the chain (Go's Value), or
  // nullptr. The pointer stays valid while this context or one derived from it exists.
  template <class T>
  const T* value(const context_key<T>& key) const {
    return static_cast<const T*>(find_value(&key));
  }
  // A std::stop_token whose stop is requested when this context is done (at once if it
  // already is; after a deadline, by a goroutine started as done() closes); a token
  // with stop_possible() == false for contexts that cannot be cancelled.
  std::stop_token stop_token() const;

 private:
  friend struct detail::context_access;
  explicit context(std::shared_ptr<detail::context_node> n) : node_(std::move(n)) {}
  const void* find_value(const detail::context_key_base* key) const;
  std::shared_ptr<detail::context_node> node_;
};

// Cancels its context and its descendants (with goro::canceled) and releases its
// timer and its registration with the parent (Go's CancelFunc). Idempotent: only the
// first cancellation of a context counts. Callable from anywhere; never blocks. A
// default-constructed cancel_func does nothing.
class cancel_func {
 public:
  void operator()() const;

 private:
  friend struct detail::context_access;
  std::shared_ptr<detail::context_node> node_;
};

// Cancels its context with a cause (Go's CancelCauseFunc); a nil cause means canceled.
// err() is goro::canceled either way. As cancel_func otherwise: the first cancellation's
// cause is kept, later calls do nothing.
class cancel_cause_func {
 public:
  void operator()(const error& cause) const;

 private:
  friend struct detail::context_access;
  std::shared_ptr<detail::context_node> node_;
};

// Go's context.Background().
context background();

// The with_* functions are [[nodiscard]]: a derived context that is not used, or whose
// cancel function is dropped, is a bug (Go's vet reports the lost cancel). Keep the
// cancel function and call it when done with the context, as in Go: it releases the
// child's registration with its parent and its timer at once.

// A child that is cancelled when `cancel` is called or the parent is (Go's WithCancel).
// If the parent is already done, the child is done at once with the parent's err and
// cause.
[[nodiscard]] std::pair<context, cancel_func> with_cancel(const context& parent);
// As with_cancel, and cancel(cause) records a cause for goro::cause().
[[nodiscard]] std::pair<context, cancel_cause_func> with_cancel_cause(const context& parent);
// A child cancelled at `deadline` (err: deadline_exceeded), by cancel, or by the parent
// (Go's WithDeadline). A deadline already past gives a context that is done at once;
// time_point::max() one that is never done by its deadline. If
// the parent's deadline is not later, the child relies on it and arms no timer of its
// own. Its timer is released as soon as the context is cancelled. Starts the runtime,
// whose processors fire the timer.
[[nodiscard]] std::pair<context, cancel_func> with_deadline(const context& parent,
                                                            time_point deadline);
// As with_deadline, and when the deadline passes, goro::cause(ctx) is `cause` (Go's
// WithDeadlineCause); err() is goro::deadline_exceeded either way. A nil cause is
// deadline_exceeded. If the parent's deadline comes first, the child relies on it and
// `cause` is never used (as in Go). Cancelling gives goro::canceled, as with_deadline.
[[nodiscard]] std::pair<context, cancel_func> with_deadline_cause(const context& parent,
                                                                  time_point deadline, error cause);
// with_deadline(parent, now + timeout) (Go's WithTimeout); a zero or negative timeout
// gives a context that is done at once.
template <class Rep, class Period>
[[nodiscard]] std::pair<context, cancel_func> with_timeout(
    const context& parent, std::chrono::duration<Rep, Period> timeout) {
  // to_ns maps a zero or negative timeout to 0: the context is done at once.
  return with_deadline(parent, goro::now() + std::chrono::nanoseconds(detail::to_ns(timeout)));
}
// with_deadline_cause(parent, now + timeout, cause) (Go's WithTimeoutCause).
template <class Rep, class Period>
[[nodiscard]] std::pair<context, cancel_func> with_timeout_cause(
    const context& parent, std::chrono::duration<Rep, Period> timeout, error cause) {
  return with_deadline_cause(parent, goro::now() + std::chrono::nanoseconds(detail::to_ns(timeout)),
                             std::move(cause));
}
// A child carrying key -> value (Go's WithValue): value is converted to T and stored
// immutable, looked up with ctx.value(key). Cancellation and deadline are the parent's.
template <class T, class V>
[[nodiscard]] context with_value(const context& parent, const context_key<T>& key, V&& value);
// A child with the parent's values but never cancelled and with no deadline (Go's
// WithoutCancel): done() is the nil channel, err() stays nil.
[[nodiscard]] context without_cancel(const context& parent);
// A child cancelled (goro::canceled) when `token` is stop-requested, at once if it
// already is, or when the parent is cancelled. It has no cancel function of its own.
[[nodiscard]] context with_stop_token(const context& parent, std::stop_token token);

// The cause of ctx's cancellation (Go's context.Cause): the error given to its
// cancel_cause_func (or an ancestor's), or to with_deadline_cause for its deadline,
// else ctx.err(); nil while not done.
[[nodiscard]] error cause(const context& ctx);

namespace detail {
// after_func's body, on a type-erased f that is called at most once.
std::function<bool()> context_after_func(const context& ctx, std::function<void()> f);
}  // namespace detail

// Runs f in its own goroutine once ctx is done (Go's context.AfterFunc), at once if it
// already is; if ctx can never be cancelled, f never runs. The returned function stops
// that: it returns true if it prevented f from running, false if f was already started
// (or stopped before). Neither call blocks; both may be used from anywhere. f is
// decay-copied (moved from an rvalue; a move-only callable is fine) and destroyed once
// it has run, or once it can no longer run (stopped, or ctx gone).
template <class F>
  requires std::invocable<std::decay_t<F>&>
std::function<bool()> after_func(const context& ctx, F&& f) {
  // Held by a shared_ptr: the hook that starts f is copied, f itself never is.
  auto held = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
  return detail::context_after_func(ctx, [held] { (*held)(); });
}

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
