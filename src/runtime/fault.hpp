// fault.hpp — the handler for fatal signals (fault.cpp).
#pragma once

namespace goro::detail {

// Installs goro's handler for SIGSEGV, SIGBUS, SIGFPE and SIGILL, remembering the
// handlers installed before it, and starts the thread that symbolizes a fault report.
// Called once, when the runtime starts, before any worker runs.
void install_fault_handlers();

}  // namespace goro::detail
