// error.cpp — goro::error.
//
// An error is a tree of immutable links shared by every copy: a link has its own text,
// at most one of `cause` (a wrap) and `joined` (a join), and optionally the code or the
// exception it was made from. Searches (is, code, exception, as) go depth first, the
// link before what it wraps, as Go's errors.Is walks Unwrap() error and Unwrap() []error.
// Links are never changed after they are shared, so no search takes a lock.
#include "goro/error.hpp"

#include <memory>
#include <string>
#include <vector>

#include "context/sentinel.hpp"

namespace goro {

namespace detail {

struct error_impl {
  error_impl() = default;
  error_impl(const error_impl&) = delete;
  error_impl& operator=(const error_impl&) = delete;
  // Iterative: a chain of a million wraps, or a join built by `err = join(err, e)` in a
  // loop, must not recurse once per link (a goroutine's stack is 64 KiB). Links this
  // one owns alone are taken apart in a loop; a link someone else still holds is left
  // to its last owner, whose destructor does the same.
  ~error_impl() {
    std::vector<std::shared_ptr<const error_impl>> pending;
    auto take_children = [&pending](error_impl& p) {
      if (p.cause) pending.push_back(std::move(p.cause));
      for (auto& j : p.joined) pending.push_back(std::move(j));
      p.joined.clear();
    };
    take_children(*this);
    while (!pending.empty()) {
      std::shared_ptr<const error_impl> p = std::move(pending.back());
      pending.pop_back();
      // Sole owner: nobody else can reach it, and it was made non-const.
      if (p.use_count() == 1) take_children(const_cast<error_impl&>(*p));
    }
  }

  std::string text;                         // this link's own message
  std::error_code code;                     // set for errors from a std::error_code
  bool match_code = false;                  // as a target of is(): any error with `code`
  bool opaque = false;                      // message() ends at this link's text
  std::exception_ptr exception;             // set for errors from an exception
  std::shared_ptr<const error_impl> cause;  // wrapped error, or null
  std::vector<std::shared_ptr<const error_impl>> joined;  // a join's errors, or empty
};

struct error_access {
  static error make(std::shared_ptr<const error_impl> impl) { return error(std::move(impl)); }
  static const std::shared_ptr<const error_impl>& impl(const error& e) { return e.impl_; }
};

namespace {

// True if `visit` holds for a link of the tree under root, depth first: a link, then
// what it wraps or joins, in order. A link has a cause or joined errors, not both. An
// explicit stack: trees may be deep (see ~error_impl).
template <class Visit>
bool any_link(const error_impl* root, Visit& visit) noexcept {
  if (root == nullptr) return false;
  std::vector<const error_impl*> todo{root};
  while (!todo.empty()) {
    const error_impl* p = todo.back();
    todo.pop_back();
    if (visit(p)) return true;
    if (p->cause) todo.push_back(p->cause.get());
    for (auto j = p->joined.rbegin(); j != p->joined.rend(); ++j) todo.push_back(j->get());
  }
  return false;
}

// The message of the tree under root: each link's text, ": " before what it wraps,
// and a join's messages separated by "\n" (Go's errors.Join). An opaque link ends its
// branch. Iterative, with one frame per join being assembled.
std::string tree_message(const error_impl* root) {
  struct frame {
    const error_impl* p;     // the next link of this branch's chain; null when done
    std::string out;         // this branch's message so far
    std::string all;         // the joined messages collected so far
    std::size_t next = 0;    // the next joined error to assemble
    bool joining = false;
  };
  std::vector<frame> stack;
  stack.push_back(frame{root, {}, {}});
  std::string finished;
  for (;;) {
    frame& f = stack.back();
    if (!f.joining) {
      while (f.p != nullptr) {
        if (!f.out.empty() && !f.p->text.empty()) f.out += ": ";
        f.out += f.p->text;
        if (f.p->opaque) {
          f.p = nullptr;
        } else if (!f.p->joined.empty()) {
          f.joining = true;
          break;
        } else {
          f.p = f.p->cause.get();
        }
      }
      if (f.joining) {
        stack.push_back(frame{f.p->joined[0].get(), {}, {}});
        continue;
      }
    } else {
      if (!f.out.empty() && !f.all.empty()) f.out += ": ";
      f.out += f.all;
    }
    // This branch is complete: hand it to the join waiting for it, if any.
    finished = std::move(f.out);
    stack.pop_back();
    if (stack.empty()) return finished;
    frame& parent = stack.back();
    if (parent.next > 0) parent.all += '\n';
    parent.all += finished;
    if (++parent.next < parent.p->joined.size()) {
      stack.push_back(frame{parent.p->joined[parent.next].get(), {}, {}});
    }
  }
}

}  // namespace

sentinel_storage::sentinel_storage(const char* message) : value(make_error(message)) {}

sentinel_storage::sentinel_storage(const char* message, std::errc condition) {
  auto impl = std::make_shared<error_impl>();
  impl->text = message;
  impl->code = std::make_error_code(condition);
  std::construct_at(&value, error_access::make(std::move(impl)));
}

sentinel_storage::sentinel_storage(const char* message, const error& under) {
  auto impl = std::make_shared<error_impl>();
  impl->text = message;
  impl->opaque = true;
  impl->cause = error_access::impl(under);
  std::construct_at(&value, error_access::make(std::move(impl)));
}

}  // namespace detail

using detail::error_access;
using detail::error_impl;

error error::from(std::error_code code) {
  if (!code) return {};
  auto impl = std::make_shared<error_impl>();
  impl->text = code.message();
  impl->code = code;
  impl->match_code = true;
  return error(std::move(impl));
}

error error::from(std::exception_ptr e) {
  if (!e) return {};
  std::string text;
  std::error_code code;
  try {
    std::rethrow_exception(e);
  } catch (const error& thrown) {
    if (thrown) return thrown;  // the same error: identity kept
    text = "goro::error: nil error thrown";
  } catch (const bad_result_access& bad) {
    if (bad.error()) return bad.error();
    text = bad.what();
  } catch (const std::system_error& se) {
    text = se.what();
    code = se.code();
  } catch (const std::exception& ex) {
    text = ex.what();
  } catch (...) {
    text = "unknown exception";
  }
  auto impl = std::make_shared<error_impl>();
  impl->text = std::move(text);
  impl->code = code;
  impl->match_code = static_cast<bool>(code);
  impl->exception = std::move(e);
  return error(std::move(impl));
}

std::string error::message() const { return impl_ ? detail::tree_message(impl_.get()) : std::string(); }

bool error::is(const error& target) const noexcept {
  if (!target.impl_) return !impl_;
  const error_impl* t = target.impl_.get();
  auto same = [t](const error_impl* p) { return p == t || (t->match_code && p->code == t->code); };
  return detail::any_link(impl_.get(), same);
}

bool error::is(std::error_code code) const noexcept {
  auto carries = [&code](const error_impl* p) { return p->code && p->code == code; };
  return detail::any_link(impl_.get(), carries);
}

bool error::is(std::errc condition) const noexcept {
  const std::error_condition want = std::make_error_condition(condition);
  auto carries = [&want](const error_impl* p) { return p->code && p->code == want; };
  return detail::any_link(impl_.get(), carries);
}

std::error_code error::code() const noexcept {
  std::error_code found;
  auto first = [&found](const error_impl* p) {
    found = p->code;
    return static_cast<bool>(found);
  };
  detail::any_link(impl_.get(), first);
  return found;
}

error error::unwrap() const { return impl_ ? error(impl_->cause) : error(); }

std::vector<error> error::unwrap_all() const {
  std::vector<error> out;
  if (!impl_) return out;
  if (impl_->cause) out.push_back(error(impl_->cause));
  for (const auto& j : impl_->joined) out.push_back(error(j));
  return out;
}

std::exception_ptr error::exception() const noexcept {
  std::exception_ptr found;
  auto first = [&found](const error_impl* p) {
    found = p->exception;
    return static_cast<bool>(found);
  };
  detail::any_link(impl_.get(), first);
  return found;
}

void error::find_exception(exception_matcher match, void* out) const noexcept {
  auto matches = [&](const error_impl* p) { return p->exception && match(p->exception, out); };
  detail::any_link(impl_.get(), matches);
}

error make_error(std::string message) {
  auto impl = std::make_shared<error_impl>();
  impl->text = std::move(message);
  return error(std::move(impl));
}

error wrap(const error& cause, std::string message) {
  if (!cause) return {};
  auto impl = std::make_shared<error_impl>();
  impl->text = std::move(message);
  impl->cause = cause.impl_;
  return error(std::move(impl));
}

error join(std::span<const error> errors) {
  auto impl = std::make_shared<error_impl>();
  for (const error& e : errors) {
    if (e) impl->joined.push_back(e.impl_);
  }
  if (impl->joined.empty()) return {};
  return error(std::move(impl));
}

GORO_DEFINE_SENTINEL(canceled, "context canceled", std::errc::operation_canceled);
GORO_DEFINE_SENTINEL(deadline_exceeded, "context deadline exceeded", std::errc::timed_out);
GORO_DEFINE_SENTINEL(eof, "EOF");
GORO_DEFINE_SENTINEL(unexpected_eof, "unexpected EOF");

namespace detail {
// After deadline_exceeded: sentinels of one file are built in the order they are
// defined, so the one it wraps exists.
GORO_DEFINE_SENTINEL(io_timeout, "i/o timeout", deadline_exceeded);
}  // namespace detail

}  // namespace goro
