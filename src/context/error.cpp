// error.cpp — goro::error.
//
// An error is a tree of immutable links shared by every copy: a link has its own text,
// at most one of `cause` (a wrap) and `joined` (a join), and optionally the code or the
// exception it was made from. Searches (is, code, exception, as) go depth first, the
// link before what it wraps, as Go's errors.Is walks Unwrap() error and Unwrap() []error.
// Links are never changed after they are shared, so no search takes a lock.
#include "goro/error.hpp"

#include "context/sentinel.hpp"

namespace goro {

namespace detail {

struct error_impl {
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

// True if `visit` holds for a link of the tree under p, depth first. Recursion only
// goes into joins; a chain of wraps is walked in a loop.
template <class Visit>
bool any_link(const error_impl* p, Visit& visit) noexcept {
  for (; p != nullptr; p = p->cause.get()) {
    if (visit(p)) return true;
    for (const auto& j : p->joined) {
      if (any_link(j.get(), visit)) return true;
    }
  }
  return false;
}

void append_message(std::string& out, const error_impl* p) {
  for (; p != nullptr; p = p->cause.get()) {
    if (!out.empty() && !p->text.empty()) out += ": ";
    out += p->text;
    if (p->opaque) return;
    if (!p->joined.empty()) {
      std::string all;
      for (std::size_t i = 0; i < p->joined.size(); ++i) {
        std::string one;
        append_message(one, p->joined[i].get());
        if (i > 0) all += '\n';
        all += one;
      }
      if (!out.empty() && !all.empty()) out += ": ";
      out += all;
      return;
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

std::string error::message() const {
  std::string out;
  detail::append_message(out, impl_.get());
  return out;
}

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
