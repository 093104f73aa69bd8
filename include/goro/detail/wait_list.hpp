// goro/detail/wait_list.hpp — storage for a primitive's queue of parked waiters.
// Not public API: the waiter nodes and the operations live in the runtime (src/).
#pragma once

#include <atomic>

namespace goro::detail {

struct bubble;  // a synctest bubble (src/runtime/bubble.hpp)
// The caller's synctest bubble, or null: a primitive made there belongs to it.
bubble* current_bubble() noexcept;

// A lock and an intrusive FIFO of waiter nodes that live on the waiters' own stacks.
struct wait_list {
  std::atomic<bool> locked{false};
  void* head = nullptr;  // under locked
  void* tail = nullptr;  // under locked
};

}  // namespace goro::detail
