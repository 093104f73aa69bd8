// goro/detail/wait_reason.hpp — why a goroutine is parked, in Go's words (shown in
// dumps). Not public API; here because the channel templates name them.
#pragma once

#include <cstdint>

namespace goro::detail {

enum class wait_reason : std::uint8_t {
  none,
  chan_receive,      // "chan receive"
  chan_send,         // "chan send"
  select,            // "select"
  select_no_cases,   // "select (no cases)"
  chan_receive_nil,  // "chan receive (nil chan)"
  chan_send_nil,     // "chan send (nil chan)"
  semacquire,        // "semacquire"
  mutex_lock,        // "sync.Mutex.Lock"
  rw_mutex_rlock,    // "sync.RWMutex.RLock"
  rw_mutex_lock,     // "sync.RWMutex.Lock"
  wait_group_wait,   // "sync.WaitGroup.Wait"
  cond_wait,         // "sync.Cond.Wait"
  sleep,             // "sleep"
  io_wait,           // "IO wait"
  syscall,           // "syscall" (goro::blocking: a helper thread runs the call)
  run_main,          // "run main" (a thread inside goro::run)
  synctest_run,      // "synctest.Run" (the caller of synctest::run)
  synctest_wait,     // "synctest.Wait"
  explore_turn,      // "waiting for its turn" (goro::testing::explore)
};

const char* to_string(wait_reason r) noexcept;

}  // namespace goro::detail
