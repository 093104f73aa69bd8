// sentinel.hpp — storage for goro's error constants (goro::canceled, goro::eof, ...).
//
// A sentinel is used from places that run outside main's lifetime: a user global's
// constructor may cancel a context, a global's destructor or an abandoned goroutine
// may do so while the process exits. So a sentinel is built before any ordinary
// global (init_priority 101 runs ahead of the default priority in every object linked
// into the program) and never destroyed (a union member has no implicit destructor).
// The public name is a reference to it, bound at static initialization.
#pragma once

#include "goro/error.hpp"

namespace goro::detail {

union sentinel_storage {
  error value;
  explicit sentinel_storage(const char* message) : value(make_error(message)) {}
  ~sentinel_storage() {}  // deliberately leaves `value` alive
};

}  // namespace goro::detail

// Defines `const error& name` in the enclosing namespace, with `message`, alive from
// before user code until exit.
#define GORO_DEFINE_SENTINEL(name, message)                                           \
  [[gnu::init_priority(101)]] static ::goro::detail::sentinel_storage name##_storage{ \
      message};                                                                      \
  constinit const ::goro::error& name = name##_storage.value
