// lifetime.cpp — fatal errors for primitives destroyed while in use
// (goro/detail/lifetime.hpp).
#include "goro/detail/lifetime.hpp"

#include <link.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

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

namespace {
struct static_search {
  std::uintptr_t address;
  bool found = false;
};

// dl_iterate_phdr's callback: whether the address lies in a writable loaded segment of
// this module (its .data and .bss, where objects of static storage duration live).
int find_in_module(dl_phdr_info* info, std::size_t, void* arg) {
  auto* search = static_cast<static_search*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (search->address >= start && search->address < start + ph.p_memsz) {
      search->found = true;
      return 1;
    }
  }
  return 0;
}
}  // namespace

bool destruction_excused(const void* object) noexcept {
  (void)registered;
  if (exiting.load(std::memory_order_relaxed) || abandoned.load(std::memory_order_relaxed)) {
    return true;
  }
  static_search search{reinterpret_cast<std::uintptr_t>(object)};
  dl_iterate_phdr(find_in_module, &search);
  return search.found;
}

void fatal_destroyed_in_use(const char* what, const std::source_location& where) noexcept {
  std::ostringstream os;
  // Made through std::make_unique, make_shared, optional::emplace...: the site is the
  // standard library's line; the dump below shows the goroutines involved.
  std::string_view file = where.file_name();
  bool in_library = file.find("/c++/") != std::string_view::npos ||
                    file.find("/bits/") != std::string_view::npos;
  os << "fatal error: goro: " << what << " (created at " << where.file_name() << ":"
     << where.line() << " in " << where.function_name()
     << (in_library ? "; made through the standard library: look for its caller" : "")
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
