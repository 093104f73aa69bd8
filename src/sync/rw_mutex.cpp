// rw_mutex.cpp — goro::rw_mutex, following Go's sync/rwmutex.go.
//
// readers_ counts active readers; a writer subtracts max_readers, which makes it
// negative so that new readers park on reader_sem_, and waits on writer_sem_ for the
// readers that were active (counted in departing_) to leave. Unlock adds max_readers
// back and releases the readers that arrived meanwhile.
#include "goro/rw_mutex.hpp"

#include <cstdio>
#include <cstdlib>

#include "goro/detail/lifetime.hpp"

namespace goro {
namespace {
[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "fatal error: %s\n", what);
  std::fflush(stderr);
  std::abort();
}
}  // namespace

void rw_mutex::destroyed_in_use() const noexcept {
  if (detail::destruction_excused(this)) return;
  detail::fatal_destroyed_in_use(
      writer_sem_.has_waiters() ? "rw_mutex destroyed while a writer waits for its readers to leave"
                                : "rw_mutex destroyed while readers wait to lock it",
      where_);
}

void rw_mutex::lock_shared() {
  if (readers_.fetch_add(1, std::memory_order_acquire) + 1 < 0) {
    reader_sem_.acquire(detail::wait_reason::rw_mutex_rlock);  // a writer is pending
  }
}

bool rw_mutex::try_lock_shared() noexcept {
  std::int32_t c = readers_.load(std::memory_order_relaxed);
  while (c >= 0) {
    if (readers_.compare_exchange_weak(c, c + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void rw_mutex::unlock_shared() {
  std::int32_t r = readers_.fetch_sub(1, std::memory_order_release) - 1;
  if (r >= 0) return;
  if (r + 1 == 0 || r + 1 == -max_readers) fatal("sync: RUnlock of unlocked RWMutex");
  // A writer is waiting: the last departing reader lets it in.
  if (departing_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) writer_sem_.release();
}

void rw_mutex::lock() {
  writer_.lock();  // one writer at a time
  std::int32_t r = readers_.fetch_add(-max_readers, std::memory_order_acq_rel);
  // Wait for the readers that were active.
  if (r != 0 && departing_.fetch_add(r, std::memory_order_acq_rel) + r != 0) {
    writer_sem_.acquire(detail::wait_reason::rw_mutex_lock);
  }
}

bool rw_mutex::try_lock() {
  if (!writer_.try_lock()) return false;
  std::int32_t expected = 0;
  if (!readers_.compare_exchange_strong(expected, -max_readers, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
    writer_.unlock();
    return false;
  }
  return true;
}

void rw_mutex::unlock() {
  std::int32_t r = readers_.fetch_add(max_readers, std::memory_order_release) + max_readers;
  if (r >= max_readers) fatal("sync: Unlock of unlocked RWMutex");
  for (std::int32_t i = 0; i < r; ++i) reader_sem_.release();  // readers that queued
  writer_.unlock();
}

}  // namespace goro
