// goro/runtime.hpp — goroutines: go, run, yield, and the scheduler's knobs.
//
// A goroutine is a function running on its own small stack, scheduled M:N onto
// max_procs() OS threads by a work-stealing scheduler. Any function called from a
// goroutine may block (wait_group, sleep, channels, locks): the goroutine parks and
// its thread runs other goroutines. The runtime starts lazily on first use;
// goro::run is the Go-style entry point.
//
// Blocking: go() never blocks (but a goroutine that has computed for a 10 ms time
//   slice while others wait yields there, as Go preempts it; like any scheduling point,
//   it may resume on another thread); yield() gives up the processor; run() blocks the
//   calling thread until its main function returns. Nothing else here blocks.
// Thread-safety: every function here may be called from any goroutine or thread.
// Panics (goro::panic_error): a spawn_options::stack_size out of range, run() called
//   from a goroutine, set_max_procs() out of range. An exception escaping a goroutine
//   prints `panic: <what>`, the goroutine's id and creation site and a goroutine
//   listing, then aborts (SPEC §4).
//
// Example:
//   int main() {
//     return goro::run([] {
//       goro::wait_group wg;
//       for (int i = 0; i < 3; ++i)
//         wg.go([i] { std::printf("hello from %d\n", i); });
//       wg.wait();
//     });
//   }
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <source_location>
#include <string_view>
#include <type_traits>

#include "goro/detail/spawn.hpp"
#include "goro/panic.hpp"

namespace goro {

// Options for one goroutine.
struct spawn_options {
  std::string_view name{};  // shown in diagnostics; copied by go()
  // Bytes; 0 = default (64 KiB); otherwise 16 KiB .. 1 GiB (else panic_error), rounded
  // up to whole pages.
  std::size_t stack_size = 0;
  // The creation site shown in panics and dumps; when left empty (line 0), go()
  // records the place it was called from. Wrappers around go() set it to their caller.
  std::source_location where{};
};

// go(f, args...) starts a goroutine running f(args...) (Go's `go` statement). The
// callable and the arguments are decay-copied first (like std::thread), so the
// loop-variable pitfall cannot happen: `for (int i...) goro::go(work, i);` gives each
// goroutine its own i. The copies are invoked as rvalues on the new goroutine and
// destroyed when it ends. Any number of arguments; the creation site (the caller's
// line) is recorded for diagnostics. A mistake stops the build at the caller's line
// with one sentence: f not callable with copies of the arguments, a reference
// parameter (wrap the argument in std::ref), a move-only argument or callable passed
// without std::move. Never blocks (a preemption point: see the top); starts the
// runtime on first use. An exception
// escaping f is a goroutine panic (see above).
template <class... Args>
void go(detail::go_call<detail::plain_go, std::type_identity_t<Args>...> f, Args&&... args) {
  spawn_options options;
  f.start(&options, std::forward<Args>(args)...);
}

// go(options, f, args...): as go(f, args...), with a name, a stack size and
// optionally an explicit creation site (options.where; else the caller's line).
// go({"name"}, f) works with every compiler; with designated initializers, name the
// type, go(goro::spawn_options{.name = "w"}, f): Clang 16 rejects go({.name = "w"}, f).
// Throws panic_error for a stack_size out of range; f and the arguments are then
// destroyed, nothing runs.
template <class... Args>
void go(const spawn_options& options,
        detail::go_call<detail::plain_go, std::type_identity_t<Args>...> f, Args&&... args) {
  f.start(&options, std::forward<Args>(args)...);
}

namespace detail {
inline const std::source_location& site(const spawn_options& o, const std::source_location& call) {
  return o.where.line() != 0 ? o.where : call;
}

template <class F, class... Args>
void plain_go::launch(const spawn_options* options, const std::source_location& where, F&& f,
                      Args&&... args) {
  spawn_callable(*options, site(*options, where), std::forward<F>(f), std::forward<Args>(args)...);
}
}  // namespace detail

namespace detail {
int run_main(task* main_task, const std::source_location& where);
}

// Runs main_fn (in place, not copied) as the main goroutine, named "main", and blocks
// the calling thread until it returns; returns its exit code (an int result, or 0 for
// void). Goroutines still alive then are abandoned: run prints one line to stderr
// naming how many and where the oldest was started (GORO_EXIT_CHECK=off|warn|dump,
// default warn), and returns without stopping them or the scheduler; they keep
// running until the process exits. While main_fn runs, a program whose goroutines are
// all blocked with nothing left to wake them (no timer, I/O, blocking call or other
// thread) prints "fatal error: all goroutines are asleep - deadlock!" and a dump, and
// exits with status 2. An exception escaping main_fn is a goroutine panic. Call it
// from a plain thread, not from a goroutine (panic_error); it may be called again
// after it returns.
template <class F>
int run(F&& main_fn, std::source_location where = std::source_location::current()) {
  int code = 0;
  auto body = [&] {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      std::invoke(main_fn);
    } else {
      code = static_cast<int>(std::invoke(main_fn));
    }
  };
  detail::run_main(new detail::task_impl<decltype(body)>(body), where);
  return code;
}

// Gives up the processor so other goroutines can run (Go's runtime.Gosched): the caller
// goes to the back of its processor's queue and continues later, or returns at once
// when nothing else could run there. On a plain thread: std::this_thread::yield().
void yield();

// Wires the calling goroutine to the OS thread it runs on (Go's runtime.LockOSThread):
// until as many unlock_os_thread calls, it always resumes on this thread after a
// park, and no other goroutine runs on the thread meanwhile; so errno, thread_local
// variables and thread-bound state (an OpenGL context, thread-keyed C libraries) stay
// its own across scheduling points. Other goroutines keep running on max_procs()
// other threads: the processor's slot goes to another thread at once (a new one if no
// spare exists; GORO_MAX_THREADS bounds them, a fatal error past it). The locked
// goroutine runs beside those slots, like one in foreign code. Calls nest (a count).
// A goroutine that exits while locked takes its thread with it: the thread ends, as in
// Go, since it may hold state the goroutine changed. On a plain thread: nothing.
void lock_os_thread();
// Undoes one lock_os_thread; at the last one the goroutine may run on any thread again
// (it moves at this call). Without a matching lock_os_thread: nothing (as Go).
void unlock_os_thread();

// The number of goroutines that exist now (running, runnable or waiting, including
// ones not started yet and the main goroutine of run). 0 before the runtime starts. A
// snapshot, but never below the number that existed throughout the call: goroutines
// starting or exiting meanwhile may or may not be counted.
std::size_t num_goroutine();

// The number of processors that run goroutines at once: the last set_max_procs value
// if any, else GORO_MAXPROCS if set to 1..1024 (other values are ignored with a line on
// stderr), else the CPUs in the process's affinity mask limited by its cgroup's CPU
// bandwidth limit (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, of its
// cgroup and the ones above it: quota / period rounded up, at least 1), as Go 1.25's
// default. That default follows the cgroup limit when it changes (reread about once a
// second) until set_max_procs is called. Never starts the runtime.
int max_procs();

// Changes the number of processors (Go's runtime.GOMAXPROCS(n)); n outside 1..1024
// throws panic_error. Before the runtime starts, n is used when it starts. Added
// processors start at once; removed ones stop after their next scheduling point,
// handing their queued goroutines over. Never blocks.
void set_max_procs(int n);

namespace this_goroutine {
// The calling goroutine's id (1, 2, ...), or 0 on a plain thread.
std::uint64_t id();
}  // namespace this_goroutine

}  // namespace goro
