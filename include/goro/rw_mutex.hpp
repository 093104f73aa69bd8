// goro/rw_mutex.hpp — goro::rw_mutex, Go's sync.RWMutex: one writer or many readers.
//
// SharedLockable (std::shared_lock for readers, std::unique_lock/lock_guard for the
// writer). Writer-preferring like Go: once a writer waits, new readers wait too, so a
// stream of readers cannot starve it. Not tied to a goroutine or thread. Not
// reentrant; as in Go, a reader must not lock_shared again while holding a read lock
// (a writer waiting in between deadlocks it).
//
// Blocking: lock()/lock_shared() park the calling goroutine ("sync.RWMutex.Lock",
//   "sync.RWMutex.RLock", or "sync.Mutex.Lock" while another writer holds it) or block
//   the plain thread until granted; try_ versions and unlocks never block.
// Thread-safety: all members may be called concurrently from goroutines and threads.
// Panics: none. Unlocking what is not locked is a fatal error, not a panic_error: the
//   program aborts with Go's message ("fatal error: sync: Unlock of unlocked RWMutex",
//   "fatal error: sync: RUnlock of unlocked RWMutex").
//
// Example:
//   goro::rw_mutex rw;
//   { std::shared_lock rl(rw); read(table); }
//   { std::lock_guard wl(rw); write(table); }
#pragma once

#include <atomic>
#include <cstdint>
#include <source_location>

#include "goro/detail/sema.hpp"
#include "goro/mutex.hpp"

namespace goro {

class rw_mutex {
 public:
  // `where` (the declaration's line) is named if it is destroyed while in use.
  constexpr rw_mutex(std::source_location where = std::source_location::current()) noexcept
      : writer_(where), where_(where) {}
  // Destroying an rw_mutex that goroutines or threads still wait to lock (readers or
  // writers) is a fatal error naming where it was made, except while the process exits
  // (goro/detail/lifetime.hpp). One locked with nobody waiting may be destroyed.
  ~rw_mutex() {
    if (writer_sem_.has_waiters() || reader_sem_.has_waiters()) destroyed_in_use();
  }
  rw_mutex(const rw_mutex&) = delete;
  rw_mutex& operator=(const rw_mutex&) = delete;

  // Exclusive (writer) lock (Go's Lock): waits for another writer, then blocks new
  // readers and waits for the active ones to leave.
  void lock();
  // Takes the writer lock if no other writer holds or waits for it and no reader is
  // active (Go's TryLock); never blocks.
  bool try_lock();
  // Releases the writer lock (Go's Unlock) and lets in the readers that queued
  // meanwhile. Fatal (abort) if not write-locked.
  void unlock();

  // Shared (reader) lock (Go's RLock); waits while a writer holds or waits for the lock.
  void lock_shared();
  // Takes a read lock unless a writer holds or waits for it (Go's TryRLock); never
  // blocks.
  bool try_lock_shared() noexcept;
  // Releases a read lock (Go's RUnlock); the last reader out lets a waiting writer in.
  // Fatal (abort) if not read-locked.
  void unlock_shared();

 private:
  static constexpr std::int32_t max_readers = 1 << 30;

  void destroyed_in_use() const noexcept;

  mutex writer_;                            // held by the writer (or the one waiting)
  detail::sema writer_sem_;                 // the writer waits for readers to leave
  detail::sema reader_sem_;                 // readers wait for the writer to finish
  std::atomic<std::int32_t> readers_{0};    // active readers; - max_readers while a writer is in
  std::atomic<std::int32_t> departing_{0};  // readers the waiting writer still waits for
  std::source_location where_;
};

}  // namespace goro
