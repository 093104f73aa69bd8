// context.cpp — goro::context, following Go's context/context.go.
//
// Invariants:
//   - Nodes form a tree through `parent` (shared, so a child keeps its ancestors'
//     values and deadlines alive). Only `cancel` nodes can be cancelled; value nodes
//     delegate cancellation to their nearest cancelable ancestor, and
//     without_cancel/background nodes stop the search.
//   - A cancel node is registered in its nearest cancelable ancestor's `children`
//     (weak references) until it is cancelled or destroyed, then removed at once, so
//     a long-lived parent does not accumulate children.
//   - Fields marked "under lock" change only with the node's lock held; `cancelled`
//     goes false -> true once. Lock order: a parent's lock is never held while a
//     child's is taken (cancellation collects children under the lock, then cancels
//     them after releasing it).
//   - A deadline timer is a heap-owned arm with a weak reference to its node; cancel
//     removes it from the heap at once (freeing it) unless it is already firing, in
//     which case the firing call frees it.
#include "goro/context.hpp"

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "goro/runtime.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/sys.hpp"
#include "runtime/timers.hpp"

namespace goro::detail {

struct deadline_arm;

struct context_node : std::enable_shared_from_this<context_node> {
  enum class kind { background, cancel, value, without_cancel };
  explicit context_node(kind k) : what(k) {}
  ~context_node();

  const kind what;
  std::shared_ptr<context_node> parent;  // null for background

  // value nodes
  const context_key_base* key = nullptr;
  std::shared_ptr<const void> value;

  // cancel nodes
  spinlock lock;
  std::atomic<bool> cancelled{false};       // written under lock
  error err;                                // under lock
  error cause_;                             // under lock
  chan<std::monostate> done;                // closed on cancel
  std::optional<time_point> deadline;       // set once at creation
  context_node* registered_with = nullptr;  // the ancestor whose children we are in
  std::unordered_map<context_node*, std::weak_ptr<context_node>> children;  // under lock
  std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks;   // under lock
  std::optional<std::stop_source> stop;  // under lock; made on first stop_token()
  deadline_arm* arm = nullptr;           // under lock
  std::unique_ptr<std::stop_callback<std::function<void()>>> stop_link;  // with_stop_token
};

struct deadline_arm {
  timer_entry entry;
  std::weak_ptr<context_node> node;
};

namespace {

std::atomic<std::uint64_t> next_callback_id{1};

const std::shared_ptr<context_node>& background_node() {
  static const auto* const node = new std::shared_ptr<context_node>(
      std::make_shared<context_node>(context_node::kind::background));
  return *node;
}

// The nearest node that can be cancelled, or null (background / without_cancel).
context_node* cancelable(context_node* n) {
  while (n != nullptr) {
    switch (n->what) {
      case context_node::kind::cancel: return n;
      case context_node::kind::value: n = n->parent.get(); break;
      default: return nullptr;
    }
  }
  return nullptr;
}

void cancel_node(context_node* n, const error& err, const error& cause, bool detach);

void fire_deadline(timer_entry* e) {
  auto* arm = static_cast<deadline_arm*>(e->arg);
  if (auto n = arm->node.lock()) {
    {
      std::lock_guard lk(n->lock);
      if (n->arm == arm) n->arm = nullptr;  // this call frees it
    }
    cancel_node(n.get(), deadline_exceeded, deadline_exceeded, true);
  }
  delete arm;
}

void cancel_node(context_node* n, const error& err, const error& cause, bool detach) {
  std::unordered_map<context_node*, std::weak_ptr<context_node>> children;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks;
  deadline_arm* arm;
  std::optional<std::stop_source> stop;
  error my_cause;
  {
    std::lock_guard lk(n->lock);
    if (n->cancelled.load(std::memory_order_relaxed)) return;
    n->err = err;
    n->cause_ = cause ? cause : err;
    my_cause = n->cause_;
    n->cancelled.store(true, std::memory_order_release);
    children.swap(n->children);
    callbacks.swap(n->callbacks);
    arm = n->arm;
    n->arm = nullptr;
    stop = n->stop;
  }
  n->done.close();
  if (arm != nullptr && timer_heap::remove(&arm->entry)) delete arm;  // release at once
  if (stop) stop->request_stop();
  for (auto& [raw, weak] : children) {
    if (auto child = weak.lock()) cancel_node(child.get(), err, my_cause, false);
  }
  for (auto& [id, f] : callbacks) f();
  if (detach && n->registered_with != nullptr) {
    context_node* p = n->registered_with;
    std::lock_guard lk(p->lock);
    p->children.erase(n);
  }
}

// A new cancel node under `parent`, registered with its cancelable ancestor.
std::shared_ptr<context_node> new_cancel_node(const context& parent) {
  auto n = std::make_shared<context_node>(context_node::kind::cancel);
  n->parent = context_access::node(parent);
  n->done = make_chan<std::monostate>(0);
  if (context_node* p = cancelable(n->parent.get())) {
    error err, cause;
    {
      std::lock_guard lk(p->lock);
      if (p->cancelled.load(std::memory_order_relaxed)) {
        err = p->err;
        cause = p->cause_;
      } else {
        p->children.emplace(n.get(), n);
        n->registered_with = p;
      }
    }
    if (err) cancel_node(n.get(), err, cause, false);
  }
  return n;
}

}  // namespace

context_node::~context_node() {
  if (registered_with != nullptr && !cancelled.load(std::memory_order_acquire)) {
    std::lock_guard lk(registered_with->lock);
    registered_with->children.erase(this);
  }
  if (arm != nullptr && timer_heap::remove(&arm->entry)) delete arm;
}

context context_with_value(const context& parent, const context_key_base* key,
                           std::shared_ptr<const void> value) {
  auto n = std::make_shared<context_node>(context_node::kind::value);
  n->parent = context_access::node(parent);
  n->key = key;
  n->value = std::move(value);
  return context_access::make(std::move(n));
}

std::uint64_t context_on_cancel(const context& ctx, std::function<void()> callback) {
  context_node* n = cancelable(context_access::node(ctx).get());
  if (n == nullptr) return 0;
  std::uint64_t id = next_callback_id.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lk(n->lock);
    if (!n->cancelled.load(std::memory_order_relaxed)) {
      n->callbacks.emplace_back(id, std::move(callback));
      return id;
    }
  }
  callback();  // already cancelled: run now
  return id;
}

bool context_remove_on_cancel(const context& ctx, std::uint64_t id) {
  context_node* n = cancelable(context_access::node(ctx).get());
  if (n == nullptr) return false;
  std::lock_guard lk(n->lock);
  for (auto it = n->callbacks.begin(); it != n->callbacks.end(); ++it) {
    if (it->first == id) {
      n->callbacks.erase(it);
      return true;
    }
  }
  return false;
}

std::size_t context_child_count(const context& ctx) {
  context_node* n = cancelable(context_access::node(ctx).get());
  if (n == nullptr) return 0;
  std::lock_guard lk(n->lock);
  return n->children.size();
}

}  // namespace goro::detail

namespace goro {

using detail::context_access;
using detail::context_node;

context::context() : node_(detail::background_node()) {}

recv_chan<std::monostate> context::done() const {
  if (context_node* n = detail::cancelable(node_.get())) return n->done;
  return {};
}

error context::err() const {
  context_node* n = detail::cancelable(node_.get());
  if (n == nullptr || !n->cancelled.load(std::memory_order_acquire)) return {};
  std::lock_guard lk(n->lock);
  return n->err;
}

std::optional<time_point> context::deadline() const {
  for (context_node* n = node_.get(); n; n = n->parent.get()) {
    if (n->what == context_node::kind::without_cancel) return std::nullopt;
    if (n->deadline) return n->deadline;
  }
  return std::nullopt;
}

const void* context::find_value(const detail::context_key_base* key) const {
  for (context_node* n = node_.get(); n; n = n->parent.get()) {
    if (n->what == context_node::kind::value && n->key == key) return n->value.get();
  }
  return nullptr;
}

std::stop_token context::stop_token() const {
  context_node* n = detail::cancelable(node_.get());
  if (n == nullptr) return {};
  std::lock_guard lk(n->lock);
  if (!n->stop) {
    n->stop.emplace();
    if (n->cancelled.load(std::memory_order_relaxed)) n->stop->request_stop();
  }
  return n->stop->get_token();
}

void cancel_func::operator()() const {
  if (node_) detail::cancel_node(node_.get(), canceled, canceled, true);
}

void cancel_cause_func::operator()(const error& cause) const {
  if (node_) detail::cancel_node(node_.get(), canceled, cause ? cause : canceled, true);
}

context background() { return context(); }

std::pair<context, cancel_func> with_cancel(const context& parent) {
  auto n = detail::new_cancel_node(parent);
  return {context_access::make(n), context_access::make_cancel<cancel_func>(n)};
}

std::pair<context, cancel_cause_func> with_cancel_cause(const context& parent) {
  auto n = detail::new_cancel_node(parent);
  return {context_access::make(n), context_access::make_cancel<cancel_cause_func>(n)};
}

std::pair<context, cancel_func> with_deadline(const context& parent, time_point deadline) {
  auto inherited = parent.deadline();
  if (inherited && *inherited <= deadline) return with_cancel(parent);  // parent's comes first
  auto n = detail::new_cancel_node(parent);
  n->deadline = deadline;
  auto now = std::chrono::steady_clock::now();
  if (deadline <= now) {
    detail::cancel_node(n.get(), deadline_exceeded, deadline_exceeded, true);
  } else if (!n->cancelled.load(std::memory_order_acquire)) {
    detail::sched();  // workers fire the timer
    auto* arm = new detail::deadline_arm;
    arm->node = n;
    arm->entry.fire = &detail::fire_deadline;
    arm->entry.arg = arm;
    arm->entry.when = detail::nanotime() +
                      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count();
    std::lock_guard lk(n->lock);
    if (!n->cancelled.load(std::memory_order_relaxed)) {
      n->arm = arm;
      detail::local_timers().add(&arm->entry);
    } else {
      delete arm;
    }
  }
  return {context_access::make(n), context_access::make_cancel<cancel_func>(n)};
}

context without_cancel(const context& parent) {
  auto n = std::make_shared<context_node>(context_node::kind::without_cancel);
  // Values still resolve through the parent; cancellation and deadline stop here.
  n->parent = context_access::node(parent);
  return context_access::make(std::move(n));
}

context with_stop_token(const context& parent, std::stop_token token) {
  auto [ctx, cancel] = with_cancel(parent);
  auto n = context_access::node(ctx);
  std::weak_ptr<context_node> weak = n;
  n->stop_link = std::make_unique<std::stop_callback<std::function<void()>>>(
      std::move(token), std::function<void()>([weak] {
        if (auto node = weak.lock()) detail::cancel_node(node.get(), canceled, canceled, true);
      }));
  return ctx;
}

error cause(const context& ctx) {
  context_node* n = detail::cancelable(context_access::node(ctx).get());
  if (n == nullptr || !n->cancelled.load(std::memory_order_acquire)) return {};
  std::lock_guard lk(n->lock);
  return n->cause_;
}

std::function<bool()> after_func(const context& ctx, std::function<void()> f) {
  // 0: waiting, 1: started, 2: stopped.
  auto state = std::make_shared<std::atomic<int>>(0);
  std::uint64_t id = detail::context_on_cancel(ctx, [state, f = std::move(f)]() mutable {
    int expected = 0;
    if (state->compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      goro::go(std::move(f));
    }
  });
  return [state, ctx, id] {
    int expected = 0;
    if (!state->compare_exchange_strong(expected, 2, std::memory_order_acq_rel)) return false;
    if (id != 0) detail::context_remove_on_cancel(ctx, id);
    return true;
  };
}

}  // namespace goro
