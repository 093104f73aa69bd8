// monitor.hpp — what the system monitor knows about a worker thread, for dumps and
// reports. The monitor itself is described at the top of monitor.cpp.
#pragma once

#include <cstdint>

#include "runtime/goroutine.hpp"

namespace goro::detail {

// What a worker thread is doing, read from /proc/self/task/<tid>/{stat,syscall}.
struct thread_activity {
  char state = '?';      // the kernel's letter: R running, S sleeping, D disk wait, ...
  long syscall = -1;     // the system call it sits in, or -1 (running, or unknown)
  bool in_kernel() const noexcept { return state == 'S' || state == 'D'; }
};

// Reads the activity of thread `tid` of this process. False if it cannot be read.
bool read_thread_activity(int tid, thread_activity& out) noexcept;

// The name of system call `nr` on this platform ("read", "futex"), or null if unknown.
const char* syscall_name(long nr) noexcept;

// How a running goroutine holds its thread, for the dump header.
struct holding_info {
  bool found = false;        // g runs on a worker now
  std::int64_t held_ns = 0;  // since its processor last scheduled
  thread_activity activity;
  int processor_id = -1;
  bool handed_off = false;   // its processor's slot went to another processor
};

// Looks up the processor running g and how long it has held it. Racy by nature (the
// goroutine may move on meanwhile); used only for diagnostics.
holding_info holding_of(goroutine* g) noexcept;

// Samples the current stack of goroutine g, running on another worker, by signalling
// that worker: return addresses into `out` (at most n). 0 when it cannot (g moved,
// the platform has no frame-pointer walk, or the worker did not answer in time).
int sample_running_stack(goroutine* g, std::uintptr_t* out, int n) noexcept;

}  // namespace goro::detail
