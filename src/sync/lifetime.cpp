// lifetime.cpp — fatal errors for primitives destroyed while in use
// (goro/detail/lifetime.hpp).
#include "goro/detail/lifetime.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "debug/dump.hpp"

namespace goro::detail {

namespace {
std::atomic<bool> exiting{false};
std::atomic<bool> abandoned{false};
void on_exit() { exiting.store(true, std::memory_order_relaxed); }
// Registered during static initialisation; start_runtime registers it again, so it also
// runs before the destructors of objects made before the runtime started.
const bool registered = (std::atexit(on_exit), true);
}  // namespace

void note_exit_handler() noexcept { std::atexit(on_exit); }

void note_abandoned(bool any) noexcept { abandoned.store(any, std::memory_order_relaxed); }

bool process_exiting() noexcept {
  (void)registered;
  return exiting.load(std::memory_order_relaxed) || abandoned.load(std::memory_order_relaxed);
}

void fatal_destroyed_in_use(const char* what, const std::source_location& where) noexcept {
  std::ostringstream os;
  os << "fatal error: goro: " << what << " (created at " << where.file_name() << ":"
     << where.line() << " in " << where.function_name()
     << ")\n\tIt must outlive every goroutine and thread that uses it: wait for them (a "
        "wait_group, an errgroup) before it goes out of scope, or keep it in a "
        "std::shared_ptr they share.\n\n";
  {
    std::string text = os.str();  // whole: the object's text may hold NUL bytes
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  std::ostringstream dump;
  write_goroutine_dump(dump, 2, 0);
  std::fputs(dump.str().c_str(), stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace goro::detail
