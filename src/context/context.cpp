// context.cpp — goro::context, following Go's context/context.go.
//
// Invariants:
//   - Nodes form a tree through `parent` (shared, so a child keeps its ancestors'
//     values and deadlines alive). Only `cancel` nodes can be cancelled; value nodes
//     delegate cancellation to their nearest cancelable ancestor, and
//     without_cancel/background nodes stop the search.
//   - A cancel node is registered in its nearest cancelable ancestor's list of
//     children (intrusive, no allocation) until it is cancelled or destroyed, then
//     unlinked at once, so a long-lived parent does not accumulate children. The list
//     holds no references: a registered node that is being destroyed unlinks itself
//     under its ancestor's lock first, so whoever holds that lock may use every node
//     in the list (one marked `dying` only to unlink it).
//   - Fields marked "under lock" change only with the node's lock held; `cancelled`
//     goes false -> true once. Lock order: ancestor before descendant (as Go's
//     propagateCancel and cancel): cancellation holds the lock of every node on the path
//     from the cancelled node down to the one it is at; a node's lock may be held while
//     a timer heap's lock is taken, never the reverse.
//   - Nothing recurses with the depth of the tree: cancellation walks the subtree with
//     a work list, and destruction releases `parent` iteratively (release_node), so a
//     chain of any depth is cancelled and destroyed on a 64 KiB goroutine stack.
//   - A deadline timer is a heap-allocated arm with a weak reference to its node and
//     two owners: the node (until it is cancelled or destroyed) and the timer heap
//     (until the arm's fire() has run, or timer_heap::remove took it out, after which
//     it can never fire). Each owner gives up its share with one atomic decrement,
//     and the one that takes the count to zero frees the arm; so the node side may
//     still call timer_heap::remove on it while a worker is firing it.
//   - No user code runs on a worker's scheduler stack: a deadline marks the subtree
//     cancelled, closes every done() and runs the runtime's own hooks
//     (context_on_cancel, which never block) right there, then hands the user-visible
//     rest (std::stop_callbacks, and dropping the references it took, which may
//     destroy user values) to a goroutine of its own, as Go runs a timer's AfterFunc.
#include "goro/context.hpp"

#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

#include "goro/runtime.hpp"
#include "runtime/bubble.hpp"
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
  error deadline_cause;                     // nil means deadline_exceeded; set before arming
  // The ancestor whose list of children holds this node, or null: changes only with
  // both that ancestor's lock and this node's held (read under either).
  context_node* registered_with = nullptr;
  context_node* sibling_prev = nullptr;  // in registered_with's list, under its lock
  context_node* sibling_next = nullptr;
  context_node* first_child = nullptr;   // under lock
  std::size_t child_count = 0;           // under lock
  bool dying = false;                    // under lock: the destructor has begun
  std::vector<std::pair<std::uint64_t, std::function<void()>>> callbacks;   // under lock
  std::optional<std::stop_source> stop;  // under lock; made on first stop_token()
  deadline_arm* arm = nullptr;           // under lock
  std::unique_ptr<std::stop_callback<std::function<void()>>> stop_link;  // with_stop_token
};

struct deadline_arm {
  timer_entry entry;
  std::weak_ptr<context_node> node;
  std::atomic<int> owners{2};  // the node and the heap; see the file comment
  // The synctest bubble whose clock and heap it is on (a reference), or null.
  bubble* const clock = current_bubble();

  deadline_arm() noexcept {
    if (clock != nullptr) bubble_retain(clock);
  }
  ~deadline_arm() {
    if (clock != nullptr) bubble_release(clock);
  }
  deadline_arm(const deadline_arm&) = delete;
  deadline_arm& operator=(const deadline_arm&) = delete;
};

namespace {

std::atomic<std::uint64_t> next_callback_id{1};

// Frees the arm when its last owner lets go. acq_rel: the other owner's last uses of
// the arm happen before the delete.
void release_arm(deadline_arm* arm) {
  if (arm->owners.fetch_sub(1, std::memory_order_acq_rel) == 1) delete arm;
}

// Gives up the node's share of `arm`, and the heap's too if it was still pending.
void disarm(deadline_arm* arm) {
  if (timer_heap::remove(&arm->entry)) release_arm(arm);  // it will never fire
  release_arm(arm);
}

// The list the outermost release_node on this thread is working through, while it
// drops one parent reference (no user code runs then, so no goroutine switch). Not
// inlined and not pure: each call reads the slot of the thread it runs on.
[[gnu::noinline]] std::vector<context_node*>*& releasing() {
  thread_local std::vector<context_node*>* list = nullptr;
  asm volatile("" ::: "memory");
  return list;
}

// The deleter of every node. Destroying a node drops its parent, which may destroy
// the parent, and so on up a chain; instead of recursing, a release nested in another
// one queues the node for the outer loop.
void release_node(context_node* n) {
  if (std::vector<context_node*>* outer = releasing()) {
    outer->push_back(n);
    return;
  }
  std::vector<context_node*> queue{n};
  while (!queue.empty()) {
    context_node* x = queue.back();
    queue.pop_back();
    std::shared_ptr<context_node> up = std::move(x->parent);
    delete x;  // user values are destroyed here, outside the window below
    releasing() = &queue;
    up.reset();  // at most queues x's parent, if this was its last reference
    releasing() = nullptr;
  }
}

std::shared_ptr<context_node> make_node(context_node::kind k) {
  return std::shared_ptr<context_node>(new context_node(k), &release_node);
}

const std::shared_ptr<context_node>& background_node() {
  static const auto* const node =
      new std::shared_ptr<context_node>(make_node(context_node::kind::background));
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

// What a cancellation leaves to do after the subtree is marked and its done()
// channels are closed.
struct cancel_work {
  std::vector<std::pair<std::uint64_t, std::function<void()>>> hooks;  // context_on_cancel
  std::vector<std::stop_source> stops;               // request_stop runs user std::stop_callbacks
  std::vector<std::shared_ptr<context_node>> nodes;  // the cancelled node's reference
  std::vector<deadline_arm*> arms;                   // the nodes' shares, to give up

  // The part that may run user code: stop callbacks, then the last references (an
  // after_func hook that did not start its function still holds it).
  void finish() {
    for (auto& s : stops) s.request_stop();
    stops.clear();
    hooks.clear();
    nodes.clear();
  }
};

// Takes `child` out of `p`'s list of children. Both locks held.
void unlink_child(context_node* p, context_node* child) {
  if (child->sibling_prev != nullptr) {
    child->sibling_prev->sibling_next = child->sibling_next;
  } else {
    p->first_child = child->sibling_next;
  }
  if (child->sibling_next != nullptr) child->sibling_next->sibling_prev = child->sibling_prev;
  child->sibling_prev = child->sibling_next = nullptr;
  child->registered_with = nullptr;
  --p->child_count;
}

// Takes n out of its ancestor's list of children, if it is still in one. n's lock not
// held; n is alive (referenced, or in its destructor's body), and so is the ancestor
// (n's parent chain holds it).
void unregister(context_node* n) {
  context_node* p;
  {
    std::lock_guard lk(n->lock);
    p = n->registered_with;
  }
  if (p == nullptr) return;
  std::lock_guard parent_lock(p->lock);
  std::lock_guard lk(n->lock);
  if (n->registered_with == p) unlink_child(p, n);  // else a cancellation took it out
}

// With n's lock held: marks n cancelled, closes its done() and hands its hooks and
// stop source to `work`. False if n was already cancelled.
bool mark_cancelled(context_node* n, const error& err, const error& cause, cancel_work& work) {
  if (n->cancelled.load(std::memory_order_relaxed)) return false;
  n->err = err;
  n->cause_ = cause ? cause : err;
  n->cancelled.store(true, std::memory_order_release);
  for (auto& hook : n->callbacks) work.hooks.push_back(std::move(hook));
  n->callbacks.clear();
  if (n->stop) work.stops.push_back(*n->stop);
  // A context made in a synctest bubble may be cancelled from outside it (its parent
  // was, or its cancel function escaped): the close is the context's own.
  chan_access::core(n->done)->close(/*internal=*/true);
  if (n->arm != nullptr) work.arms.push_back(std::exchange(n->arm, nullptr));
  return true;
}

// Cancels n and its subtree; `detach` takes n out of its ancestor's list of children
// (the children of n need not: n's list is dropped whole). `on_timer`: called from a
// deadline firing on a worker's scheduler stack, so the user-visible rest is handed to
// a goroutine.
//
// Depth first with an explicit path (no recursion: trees may be far deeper than a
// goroutine's stack), holding the lock of every node on it (ancestor before
// descendant, as the lock order says): a node in a list cannot finish being destroyed
// while its ancestor's lock is held, so the walk takes no references and allocates
// nothing per child, and each child is cancelled as soon as it is reached, while it
// is in cache. A wide tree (100,000 children of one root) is walked once.
void cancel_node(std::shared_ptr<context_node> n, const error& err, const error& cause, bool detach,
                 bool on_timer) {
  struct level {
    context_node* node;  // locked
    context_node* next;  // the next of its former children to cancel
  };
  std::vector<level> path;
  cancel_work work;
  n->lock.lock();
  if (!mark_cancelled(n.get(), err, cause, work)) {
    n->lock.unlock();
    // A deadline that fired as the context was cancelled by hand: the reference the
    // timer took may be the last, and the node's values are user code.
    if (on_timer) goro::go([n = std::move(n)] {});
    return;
  }
  // Take the whole list: every child is unlinked below, before n's lock is released.
  path.push_back({n.get(), std::exchange(n->first_child, nullptr)});
  n->child_count = 0;
  while (!path.empty()) {
    level& at = path.back();
    context_node* child = at.next;
    if (child == nullptr) {
      at.node->lock.unlock();
      path.pop_back();
      continue;
    }
    at.next = child->sibling_next;
    child->lock.lock();
    child->sibling_prev = child->sibling_next = nullptr;
    child->registered_with = nullptr;
    // Children inherit the cause of the node they were reached from (Go's
    // parentCancelCtx passes it down).
    if (!child->dying && mark_cancelled(child, err, at.node->cause_, work) &&
        child->first_child != nullptr) {
      context_node* first = std::exchange(child->first_child, nullptr);
      child->child_count = 0;
      path.push_back({child, first});  // stays locked until its children are done
      continue;
    }
    child->lock.unlock();
  }
  for (deadline_arm* arm : work.arms) disarm(arm);  // release their heap places at once
  work.arms.clear();
  if (detach) unregister(n.get());
  for (auto& [id, f] : work.hooks) f();
  work.nodes.push_back(std::move(n));
  if (on_timer) {
    goro::go([w = std::move(work)]() mutable { w.finish(); });
  } else {
    work.finish();
  }
}

void fire_deadline(timer_entry* e) {
  auto* arm = static_cast<deadline_arm*>(e->arg);
  if (auto n = arm->node.lock()) {
    error cause = n->deadline_cause;
    cancel_node(std::move(n), deadline_exceeded, cause, true, /*on_timer=*/true);
  }
  release_arm(arm);  // the heap's share
}

// A synctest bubble's heap went away with the deadline pending: the heap's share.
void discard_deadline(timer_entry* e) { release_arm(static_cast<deadline_arm*>(e->arg)); }

// Arms n's deadline timer to fire after `left` (> 0), saturating far-future deadlines
// (time_point::max() included) at the heap's latest deadline instead of overflowing.
void arm_deadline(const std::shared_ptr<context_node>& n, std::chrono::nanoseconds left) {
  sched();  // workers fire the timer
  auto* arm = new deadline_arm;
  arm->node = n;
  arm->entry.fire = &fire_deadline;
  arm->entry.discard = &discard_deadline;
  arm->entry.arg = arm;
  std::int64_t now = clock_now(arm->clock);
  std::int64_t latest = timer_heap::no_deadline - 1;
  arm->entry.when = left.count() > latest - now ? latest : now + left.count();
  std::lock_guard lk(n->lock);
  if (n->cancelled.load(std::memory_order_relaxed)) {
    delete arm;  // never shared
    return;
  }
  n->arm = arm;
  clock_timers(arm->clock).add(&arm->entry);
}

// A new cancel node under `parent`, registered with its cancelable ancestor.
std::shared_ptr<context_node> new_cancel_node(const context& parent) {
  auto n = make_node(context_node::kind::cancel);
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
        // n is not shared yet: its own fields need no lock.
        n->sibling_next = p->first_child;
        if (p->first_child != nullptr) p->first_child->sibling_prev = n.get();
        p->first_child = n.get();
        ++p->child_count;
        n->registered_with = p;
      }
    }
    if (err) cancel_node(n, err, cause, false, false);
  }
  return n;
}

}  // namespace

context_node::~context_node() {
  if (what == kind::cancel) {
    // A cancellation that holds our ancestor's lock may be using this node: marked
    // dying, it is only unlinked from then on, and unregister waits for that lock.
    {
      std::lock_guard lk(lock);
      dying = true;
    }
    unregister(this);
  }
  if (arm != nullptr) disarm(arm);
}

context context_with_value(const context& parent, const context_key_base* key,
                           std::shared_ptr<const void> value) {
  auto n = detail::make_node(context_node::kind::value);
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
  return n->child_count;
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
  if (node_) detail::cancel_node(node_, canceled, canceled, true, false);
}

void cancel_cause_func::operator()(const error& cause) const {
  if (node_) detail::cancel_node(node_, canceled, cause ? cause : canceled, true, false);
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
  return with_deadline_cause(parent, deadline, {});
}

std::pair<context, cancel_func> with_deadline_cause(const context& parent, time_point deadline,
                                                    error cause) {
  auto inherited = parent.deadline();
  if (inherited && *inherited <= deadline) return with_cancel(parent);  // parent's comes first
  auto n = detail::new_cancel_node(parent);
  n->deadline = deadline;
  n->deadline_cause = std::move(cause);
  auto now = goro::now();  // a synctest bubble's fake time inside one
  if (deadline <= now) {
    detail::cancel_node(n, deadline_exceeded, n->deadline_cause, true, false);
  } else if (!n->cancelled.load(std::memory_order_acquire)) {
    detail::arm_deadline(n, deadline - now);
  }
  return {context_access::make(n), context_access::make_cancel<cancel_func>(n)};
}

context without_cancel(const context& parent) {
  auto n = detail::make_node(context_node::kind::without_cancel);
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
        if (auto node = weak.lock()) detail::cancel_node(node, canceled, canceled, true, false);
      }));
  return ctx;
}

error cause(const context& ctx) {
  context_node* n = detail::cancelable(context_access::node(ctx).get());
  if (n == nullptr || !n->cancelled.load(std::memory_order_acquire)) return {};
  std::lock_guard lk(n->lock);
  return n->cause_;
}

std::function<bool()> detail::context_after_func(const context& ctx, std::function<void()> f) {
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
