// goro/detail/sema.hpp — a counting semaphore with a FIFO (or LIFO) queue of parked
// waiters: the building block of mutex and rw_mutex (Go's runtime_Semacquire). Not
// public API; the operations live in src/sync/sema.cpp.
#pragma once

#include <cstdint>

#include "goro/detail/wait_list.hpp"
#include "goro/detail/wait_reason.hpp"

namespace goro::detail {

class sema {
 public:
  // Takes one unit, parking the caller until one is released. `lifo`: queue at the
  // front (a waiter that already waited, as Go's mutex does).
  void acquire(wait_reason reason, bool lifo = false);
  // Releases one unit: hands it to the first waiter if any, else counts it.
  void release();
  // Whether any waiter is queued (a destructor's check; unsynchronised).
  bool has_waiters() const noexcept { return waiters_.head != nullptr; }

 private:
  std::uint32_t count_ = 0;  // under waiters_.locked
  wait_list waiters_;
};

}  // namespace goro::detail
