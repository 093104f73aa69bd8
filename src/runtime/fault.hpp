// fault.hpp — the handler for fatal signals (fault.cpp).
#pragma once

#include <setjmp.h>

namespace goro::detail {

// Installs goro's handler for SIGSEGV, SIGBUS, SIGFPE and SIGILL, remembering the
// handlers installed before it, and starts the thread that symbolizes a fault report.
// Called once, when the runtime starts, before any worker runs.
void install_fault_handlers();

// A way out of a walk of another goroutine's stack that may read a wild address (the
// stack sampler's unwinding, in a signal handler): while set on this thread, a
// SIGSEGV or SIGBUS raised here jumps to it (siglongjmp(*escape, 1)) instead of being
// reported. Set it around the walk only, and clear it after.
void set_fault_escape(sigjmp_buf* escape) noexcept;

}  // namespace goro::detail
