// sentinel.hpp — storage for goro's error constants (goro::canceled, goro::eof, ...).
//
// A sentinel is used from places that run outside main's lifetime: a user global's
// constructor may cancel a context, a global's destructor or an abandoned goroutine
// may do so while the process exits. So a sentinel is built before any ordinary
// global (init_priority 101 runs ahead of the default priority in every object linked
// into the program) and never destroyed (a union member has no implicit destructor).
// The public name is a reference to it, bound at static initialization. A sentinel
// built on another one is defined after it in the same file (definition order is
// initialization order within a file; across files it is unspecified).
#pragma once

#include <system_error>

#include "goro/error.hpp"

namespace goro::detail {

union sentinel_storage {
  error value;
  // An error with `message` (as make_error).
  explicit sentinel_storage(const char* message);
  // An error with `message` that carries the code of `condition` for is(std::errc) and
  // code(), but, as a target of is(), matches only itself.
  sentinel_storage(const char* message, std::errc condition);
  // An error with `message` alone that also is() `under` (and carries its code): Go's
  // error types whose Error() and Unwrap() differ.
  sentinel_storage(const char* message, const error& under);
  ~sentinel_storage() {}  // deliberately leaves `value` alive
};

// "i/o timeout" (Go's os.ErrDeadlineExceeded), which is(deadline_exceeded): what a read,
// write or accept returns when its deadline passes.
extern const error& io_timeout;

}  // namespace goro::detail

// Defines `const error& name` in the enclosing namespace, with `message` (and an
// optional std::errc or underlying error, as sentinel_storage's constructors), alive
// from before user code until exit.
#define GORO_DEFINE_SENTINEL(name, ...)                                               \
  [[gnu::init_priority(101)]] static ::goro::detail::sentinel_storage name##_storage{ \
      __VA_ARGS__};                                                                  \
  constinit const ::goro::error& name = name##_storage.value
