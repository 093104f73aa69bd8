// goro/detail/lifetime.hpp — the destructor checks of wait_group, semaphore, mutex and
// rw_mutex. Not public API.
//
// Go's closures keep a WaitGroup or a Weighted alive as long as a goroutine uses it; a
// C++ object dies at the end of its scope. A primitive destroyed while goroutines
// still use it (a counter not back at zero, units held, parked waiters) would have
// them write to freed memory later, so, as std::thread's destructor terminates while
// the thread is joinable, the destructor stops the program with a sentence naming the
// object and where it was made, and a goroutine dump. Not while the process exits:
// goroutines abandoned then (Go lets main return while they run or wait) may leave
// global primitives in use, and static objects are exempt altogether.
#pragma once

#include <source_location>

namespace goro::detail {

// Whether destroying `object` while in use is excused: it has static storage
// duration (a global or a function-local static: destroyed only at exit, where
// goroutines abandoned on it are allowed, as Go lets main return while they wait), or
// exit() has begun (a return from main included; seen by objects made before the
// runtime started), or the last goro::run has returned leaving goroutines abandoned.
bool destruction_excused(const void* object) noexcept;
// Called by the runtime: at start-up (registers the exit handler again, so it runs
// before the destructors of every object made until then), and when goro::run
// returns (whether it left goroutines abandoned).
void note_exit_handler() noexcept;
void note_abandoned(bool any) noexcept;

// Prints "fatal error: goro: <what> (created at <where>)", a line on who must outlive
// whom, and a goroutine dump; then aborts.
[[noreturn]] void fatal_destroyed_in_use(const char* what, const std::source_location& where) noexcept;

}  // namespace goro::detail
