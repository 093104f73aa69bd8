// monitor.hpp — what the system monitor knows about a worker thread, for dumps and
// reports. The monitor itself is described at the top of monitor.cpp.
#pragma once

#include <cstdint>

#include "runtime/goroutine.hpp"

namespace goro::detail {

// What a worker thread is doing, read from /proc/self/task/<tid>/{stat,syscall}.
struct thread_activity {
  char state = '?';    // the kernel's letter: R running, S sleeping, D disk wait, ...
  long syscall = -1;   // the system call it sits in, or -1 (running, or unknown)
  bool fault = false;  // in the kernel outside any system call (a page fault, say)
  bool in_kernel() const noexcept { return state == 'S' || state == 'D'; }
};

// Reads the activity of thread `tid` of this process. False if it cannot be read.
bool read_thread_activity(int tid, thread_activity& out) noexcept;

// The CPU time thread `tid` has used, in ns (/proc's schedstat), or -1.
std::int64_t read_thread_cpu_ns(int tid) noexcept;

// The name of system call `nr` on this platform ("read", "futex"), or null if unknown.
const char* syscall_name(long nr) noexcept;

// How a running goroutine holds its thread, for the dump header.
struct holding_info {
  bool found = false;        // g runs on a worker now
  std::int64_t held_ns = 0;  // since its processor last scheduled
  thread_activity activity;
  int processor_id = -1;
  bool handed_off = false;  // its processor's slot went to another processor
};

// Looks up the processor running g and how long it has held it. Racy by nature (the
// goroutine may move on meanwhile); used only for diagnostics.
holding_info holding_of(goroutine* g) noexcept;

// Samples the current stack of goroutine g, computing on another worker, by signalling
// that worker (SIGURG): return addresses into `out` (at most n). 0 when it cannot (g
// moved, or the worker did not answer by `deadline`, a nanotime). Use it only for a
// thread that is not in a system call: the signal would interrupt one that is not
// restarted (nanosleep, poll).
int sample_running_stack(goroutine* g, std::uintptr_t* out, int n, std::int64_t deadline) noexcept;

// The stack of goroutine g whose worker is blocked in a system call, without a signal:
// the pc and stack pointer the kernel reports (/proc/self/task/<tid>/syscall), then the
// frame-pointer chain from the first frame record above that stack pointer. The frame
// of the function that called the system call wrapper is not found when that function
// keeps its locals between the wrapper and its frame record (it shows as its caller).
int sample_blocked_stack(goroutine* g, std::uintptr_t* out, int n) noexcept;

}  // namespace goro::detail
