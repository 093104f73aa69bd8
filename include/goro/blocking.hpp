// goro/blocking.hpp — goro::blocking: run a blocking call without blocking a processor.
//
// A goroutine that blocks its thread in a system call holds that thread; goro's system
// monitor notices (~20 us) and hands the goroutine's processor to another thread, so
// the others go on, at the price of the detection delay and a thread. blocking(f) is
// for calls known to block: it hands f to a bounded pool of helper threads and parks
// the calling goroutine at once until f returns (wait reason "syscall" in dumps), then
// returns f's result or rethrows its exception. No processor changes hands. Use it for
// file I/O, name resolution, and third-party libraries that block.
//
// Every call gets a thread at once, as Go gives each blocking system call its own:
// the pool starts a helper whenever none is idle, up to GORO_MAX_THREADS (10,000 by
// default; GORO_BLOCKING_THREADS sets a lower limit for the pool alone), and a helper
// idle for 2 s ends. So calls that wait for each other (reads of a pipe and the writes
// that feed them) all run. At the limit, calls queue in FIFO order; goro says so once
// on stderr and in every goroutine dump while any wait. Helper threads are never
// goroutines: f must not itself park in goro's primitives expecting to yield a
// processor (it may use them as any plain thread can).
//
// Blocking: parks the calling goroutine until f has run; called from a plain thread,
//   runs f inline (the thread may block anyway).
// Thread-safety: callable from any goroutine or thread, concurrently.
// Panics: none of its own; an exception thrown by f is rethrown to the caller.
// errno: as f left it, set on the thread the caller resumed on. Read it in a function
//   that has not used errno before the call (see README, "Goroutines move between
//   threads"), or lock the goroutine to its thread (lock_os_thread).
//
// Example:
//   std::string text = goro::blocking([&] { return read_whole_file(path); });
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace goro {

namespace detail {

// One call handed to the helper pool. Lives on the caller's stack.
struct blocking_job {
  void (*run)(blocking_job*) = nullptr;  // called once on a helper thread
  void* waiter = nullptr;                // the caller's parker
  int saved_errno = 0;                   // errno when run returned
  std::atomic<bool> done{false};
  blocking_job* next = nullptr;  // in the pool's queue
};

// Runs job->run on a helper thread and parks the calling goroutine until it returns;
// from a plain thread, runs it inline.
void run_blocking(blocking_job* job);
void set_errno(int value) noexcept;  // on the calling thread, whichever it is now

template <class R>
struct blocking_result {
  std::optional<R> value;
  template <class F>
  void set(F& f) {
    value.emplace(std::invoke(f));
  }
  R take() { return std::move(*value); }
};
template <class R>
struct blocking_result<R&> {
  R* value = nullptr;
  template <class F>
  void set(F& f) {
    value = &std::invoke(f);
  }
  R& take() { return *value; }
};
template <>
struct blocking_result<void> {
  template <class F>
  void set(F& f) {
    std::invoke(f);
  }
  void take() {}
};

}  // namespace detail

// Runs f() on a helper thread while the calling goroutine parks; returns its result
// or rethrows its exception.
template <class F>
std::invoke_result_t<F&> blocking(F&& f) {
  using R = std::invoke_result_t<F&>;
  struct job : detail::blocking_job {
    std::remove_reference_t<F>* fn = nullptr;
    detail::blocking_result<R> result;
    std::exception_ptr error;
  };
  job j;
  j.fn = &f;
  j.run = [](detail::blocking_job* base) {
    auto* self = static_cast<job*>(base);
    try {
      self->result.set(*self->fn);
    } catch (...) {
      self->error = std::current_exception();
    }
  };
  detail::run_blocking(&j);
  detail::set_errno(j.saved_errno);
  if (j.error) std::rethrow_exception(j.error);
  return j.result.take();
}

}  // namespace goro
