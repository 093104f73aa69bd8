// goro/rw_mutex.hpp — goro::rw_mutex, Go's sync.RWMutex: one writer or many readers.
//
// SharedLockable (std::shared_lock for readers, std::unique_lock/lock_guard for the
// writer). Writer-preferring like Go: once a writer waits, new readers wait too, so a
// stream of readers cannot starve it. Not tied to a goroutine or thread.
//
// Blocking: lock()/lock_shared() park the calling goroutine (or block the plain
//   thread) until granted; try_ versions never block.
// Thread-safety: all members may be called concurrently from goroutines and threads.
// Panics: unlocking what is not locked is a fatal error with Go's message
//   ("sync: Unlock of unlocked RWMutex", "sync: RUnlock of unlocked RWMutex").
//
// Example:
//   goro::rw_mutex rw;
//   { std::shared_lock rl(rw); read(table); }
//   { std::lock_guard wl(rw); write(table); }
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/sema.hpp"
#include "goro/mutex.hpp"

namespace goro {

class rw_mutex {
 public:
  rw_mutex() = default;
  rw_mutex(const rw_mutex&) = delete;
  rw_mutex& operator=(const rw_mutex&) = delete;

  // Exclusive (writer) lock; waits for active readers to leave and blocks new ones.
  void lock();
  bool try_lock();
  void unlock();

  // Shared (reader) lock; waits while a writer holds or waits for the lock.
  void lock_shared();
  bool try_lock_shared() noexcept;
  void unlock_shared();

 private:
  static constexpr std::int32_t max_readers = 1 << 30;

  mutex writer_;                          // held by the writer (or the one waiting)
  detail::sema writer_sem_;               // the writer waits for readers to leave
  detail::sema reader_sem_;               // readers wait for the writer to finish
  std::atomic<std::int32_t> readers_{0};  // active readers; - max_readers while a writer is in
  std::atomic<std::int32_t> departing_{0};  // readers the waiting writer still waits for
};

}  // namespace goro
