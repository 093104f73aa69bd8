// blocking.cpp — the helper-thread pool behind goro::blocking.
//
// A FIFO queue under one mutex; a helper thread is started whenever a job arrives and
// no started one is idle, up to the thread limit (GORO_MAX_THREADS, 10,000 by default,
// as Go gives every blocking system call a thread of its own up to that), so calls
// that wait for each other (a read of a pipe and the write that feeds it) never wait
// for a thread. A helper idle for helper_idle_ns ends. At the limit jobs queue, and
// that is reported once on stderr and in every dump while it lasts: a queued call that
// another queued call waits for would never return. The caller parks on its own
// parker; the helper marks the job done (release) and unparks it. While any job is
// queued or running, the deadlock detector stays quiet: the job may be what the
// sleeping goroutines wait for.
//
// Invariants (all under blocking_pool::lock unless atomic):
//   - head/tail is the FIFO of jobs not yet taken; queued is its length.
//   - threads <= limit; idle counts helpers blocked on `work`.
//   - pending counts jobs from submission until their waiter is unparked; a job is
//     touched by its helper only until done is stored (its owner may then return).
#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "goro/blocking.hpp"
#include "runtime/parking.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

namespace {

struct blocking_pool {
  std::mutex lock;
  std::condition_variable work;
  blocking_job* head = nullptr;  // under lock
  blocking_job* tail = nullptr;  // under lock
  int threads = 0;               // under lock
  int idle = 0;                  // under lock: helpers waiting for work
  int queued = 0;                // under lock: jobs not yet taken
  int limit = 0;
  bool limit_from_env = false;   // GORO_BLOCKING_THREADS set it
  bool saturated = false;        // under lock: reported on stderr, not yet drained
  bool refused_reported = false; // under lock: a refused thread was reported
  std::atomic<int> pending{0};  // jobs queued or running
  std::atomic<int> waiting{0};  // jobs queued while every helper is busy at the limit
};

// An idle helper ends after this long: bursts reuse threads, a quiet process keeps none.
constexpr auto helper_idle = std::chrono::seconds(2);

blocking_pool& pool() {
  static blocking_pool* const p = [] {
    auto* bp = new blocking_pool;  // never destroyed: helpers outlive main
    bp->limit = max_threads();
    if (const char* env = std::getenv("GORO_BLOCKING_THREADS")) {
      int n = std::atoi(env);
      if (n > 0 && n < bp->limit) {
        bp->limit = n;
        bp->limit_from_env = true;
      }
    }
    return bp;
  }();
  return *p;
}

void helper_main(blocking_pool* bp) {
  pthread_setname_np(pthread_self(), "goro-blocking");
  std::unique_lock lk(bp->lock);
  for (;;) {
    while (bp->head == nullptr) {
      ++bp->idle;
      bool timed_out = bp->work.wait_for(lk, helper_idle) == std::cv_status::timeout;
      --bp->idle;
      if (timed_out && bp->head == nullptr) {
        --bp->threads;
        note_runtime_thread(-1);
        return;
      }
    }
    blocking_job* job = bp->head;
    bp->head = job->next;
    if (bp->head == nullptr) bp->tail = nullptr;
    --bp->queued;
    if (bp->queued == 0 && bp->saturated) {
      bp->saturated = false;
      bp->waiting.store(0, std::memory_order_relaxed);
    } else if (bp->saturated) {
      bp->waiting.store(bp->queued, std::memory_order_relaxed);
    }
    lk.unlock();
    job->run(job);
    job->saved_errno = errno;  // the caller gets it on whichever thread it resumes
    auto* waiter = static_cast<parker*>(job->waiter);
    job->done.store(true, std::memory_order_release);  // job may vanish after this
    unpark(waiter);
    // Only now: until the waiter is runnable, the deadlock detector must not count it
    // as asleep for good.
    bp->pending.fetch_sub(1, std::memory_order_acq_rel);
    lk.lock();
  }
}

// Unlinks `job` from the queue; false if a helper has taken it. Called with bp.lock held.
bool take_back_locked(blocking_pool& bp, blocking_job* job) {
  blocking_job* prev = nullptr;
  for (blocking_job* at = bp.head; at; prev = at, at = at->next) {
    if (at != job) continue;
    (prev ? prev->next : bp.head) = job->next;
    if (bp.tail == job) bp.tail = prev;
    --bp.queued;
    return true;
  }
  return false;
}

}  // namespace

bool blocking_calls_pending() noexcept {
  return pool().pending.load(std::memory_order_acquire) > 0;
}

std::string blocking_pool_report() {
  blocking_pool& bp = pool();
  int waiting = bp.waiting.load(std::memory_order_relaxed);
  if (waiting <= 0) return {};
  return "goro: " + std::to_string(waiting) + " goro::blocking call(s) wait for a helper thread: all " +
         std::to_string(bp.limit) + " are busy (" +
         (bp.limit_from_env ? "GORO_BLOCKING_THREADS" : "GORO_MAX_THREADS") + ")\n";
}

int blocking_helper_threads() noexcept {
  blocking_pool& bp = pool();
  std::lock_guard lk(bp.lock);
  return bp.threads;
}

void run_blocking(blocking_job* job) {
  goroutine* g = current_goroutine();
  if (g == nullptr) {
    job->run(job);  // a plain thread may block itself
    job->saved_errno = errno;
    return;
  }
  // In a child of fork() the pool's lock may be held by a parent thread that does not
  // exist here: fail as every scheduling call does there, before taking it.
  check_not_forked("goro::blocking");
  blocking_pool& bp = pool();
  parker* self = current_parker();
  job->waiter = self;
  job->next = nullptr;
  bp.pending.fetch_add(1, std::memory_order_acq_rel);
  bool run_inline = false;
  bool start_helper = false;
  {
    std::lock_guard lk(bp.lock);
    if (bp.tail) {
      bp.tail->next = job;
    } else {
      bp.head = job;
    }
    bp.tail = job;
    ++bp.queued;
    if (bp.queued > bp.idle && bp.threads < bp.limit) {
      ++bp.threads;  // counted now, started below without the lock held
      start_helper = true;
    } else {
      bp.work.notify_one();
      if (bp.queued > bp.idle && bp.threads >= bp.limit) {
        bp.waiting.store(bp.queued - bp.idle, std::memory_order_relaxed);
        if (!bp.saturated) {
          bp.saturated = true;
          std::fprintf(stderr,
                       "goro: all %d blocking helper threads are busy (%s); goro::blocking "
                       "calls wait in a queue, and one that a queued call must finish first "
                       "never returns\n",
                       bp.limit, bp.limit_from_env ? "GORO_BLOCKING_THREADS" : "GORO_MAX_THREADS");
        }
      }
    }
  }
  if (start_helper) {
    // Thread creation takes tens of microseconds and the kernel's mm lock: not under
    // the pool's lock, where every other caller would wait for it.
    note_runtime_thread(1);  // before it exists: the deadlock detector counts threads
    try {
      std::thread(helper_main, &bp).detach();
    } catch (const std::system_error& e) {
      note_runtime_thread(-1);
      // The system refused a thread. The running helpers will get to the job; with
      // none at all, take it back and run it here (this processor blocks, but the
      // call completes).
      std::lock_guard lk(bp.lock);
      --bp.threads;
      if (!bp.refused_reported) {
        bp.refused_reported = true;
        std::fprintf(stderr,
                     "goro: the system refused a goro::blocking helper thread (%s) with %d "
                     "running; calls wait for those\n",
                     e.code().message().c_str(), bp.threads);
      }
      if (bp.threads == 0 && take_back_locked(bp, job)) {
        run_inline = true;
      } else {
        bp.work.notify_one();
      }
    }
  }
  if (run_inline) {
    bp.pending.fetch_sub(1, std::memory_order_acq_rel);
    job->run(job);
    job->saved_errno = errno;
    return;
  }
  while (!job->done.load(std::memory_order_acquire)) park(self, wait_reason::syscall);
}

// Not inline: the errno location is computed here, on the thread the caller resumed on,
// never one the caller's compiler kept from before it parked.
[[gnu::noinline]] void set_errno(int value) noexcept {
  asm volatile("" ::: "memory");
  errno = value;
}

}  // namespace goro::detail
