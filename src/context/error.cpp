// error.cpp — goro::error.
#include "goro/error.hpp"

#include "context/sentinel.hpp"

namespace goro {

error error::from(std::error_code code) {
  if (!code) return {};
  auto impl = std::make_shared<detail::error_impl>();
  impl->text = code.message();
  impl->code = code;
  return error(std::move(impl));
}

error error::from(std::exception_ptr e) {
  if (!e) return {};
  auto impl = std::make_shared<detail::error_impl>();
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& se) {
    impl->text = se.what();
    impl->code = se.code();
  } catch (const std::exception& ex) {
    impl->text = ex.what();
  } catch (...) {
    impl->text = "unknown exception";
  }
  impl->exception = e;
  return error(std::move(impl));
}

std::string error::message() const {
  std::string out;
  for (const detail::error_impl* p = impl_.get(); p; p = p->cause.get()) {
    if (!out.empty() && !p->text.empty()) out += ": ";
    out += p->text;
  }
  return out;
}

bool error::is(const error& target) const noexcept {
  if (!target.impl_) return !impl_;
  for (const detail::error_impl* p = impl_.get(); p; p = p->cause.get()) {
    if (p == target.impl_.get()) return true;
    if (target.impl_->code && p->code == target.impl_->code) return true;
  }
  return false;
}

bool error::is(std::error_code code) const noexcept {
  for (const detail::error_impl* p = impl_.get(); p; p = p->cause.get()) {
    if (p->code && p->code == code) return true;
  }
  return false;
}

bool error::is(std::errc condition) const noexcept {
  const std::error_condition want = std::make_error_condition(condition);
  for (const detail::error_impl* p = impl_.get(); p; p = p->cause.get()) {
    if (p->code && p->code == want) return true;
  }
  return false;
}

std::error_code error::code() const noexcept {
  for (const detail::error_impl* p = impl_.get(); p; p = p->cause.get()) {
    if (p->code) return p->code;
  }
  return {};
}

error error::unwrap() const { return impl_ ? error(impl_->cause) : error(); }

std::exception_ptr error::exception() const noexcept {
  for (const detail::error_impl* p = impl_.get(); p; p = p->cause.get()) {
    if (p->exception) return p->exception;
  }
  return nullptr;
}

error make_error(std::string message) {
  auto impl = std::make_shared<detail::error_impl>();
  impl->text = std::move(message);
  return error(std::move(impl));
}

error wrap(const error& cause, std::string message) {
  if (!cause) return {};
  auto impl = std::make_shared<detail::error_impl>();
  impl->text = std::move(message);
  impl->cause = cause.impl_;
  return error(std::move(impl));
}

GORO_DEFINE_SENTINEL(canceled, "context canceled");
GORO_DEFINE_SENTINEL(deadline_exceeded, "context deadline exceeded");
GORO_DEFINE_SENTINEL(eof, "EOF");
GORO_DEFINE_SENTINEL(unexpected_eof, "unexpected EOF");

}  // namespace goro
