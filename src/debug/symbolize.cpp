// symbolize.cpp — see symbolize.hpp.
//
// Invariants: the cache and the libdw session are guarded by `lock`; the session is
// made on first use and rebuilt when an address falls outside every known module
// (a library loaded later).
#include "debug/symbolize.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_map>

#if defined(GORO_HAVE_LIBDW)
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#endif

namespace goro::detail {
namespace {

std::string demangle(const char* name) {
  if (name == nullptr) return "?";
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

struct symbol_table {
  std::mutex lock;
  std::unordered_map<std::uintptr_t, symbol> cache;  // under lock
#if defined(GORO_HAVE_LIBDW)
  Dwfl* dwfl = nullptr;  // under lock
  Dwfl_Callbacks callbacks{};
  char* debuginfo_path = nullptr;
#endif
};

symbol_table& table() {
  static symbol_table* const t = new symbol_table;  // never destroyed: workers outlive main
  return *t;
}

#if defined(GORO_HAVE_LIBDW)
Dwfl* session(symbol_table& t, bool refresh) {
  if (t.dwfl != nullptr && !refresh) return t.dwfl;
  if (t.dwfl != nullptr) dwfl_end(t.dwfl);
  t.callbacks.find_elf = dwfl_linux_proc_find_elf;
  t.callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
  t.callbacks.debuginfo_path = &t.debuginfo_path;
  t.dwfl = dwfl_begin(&t.callbacks);
  if (t.dwfl == nullptr) return nullptr;
  if (dwfl_linux_proc_report(t.dwfl, getpid()) != 0 ||
      dwfl_report_end(t.dwfl, nullptr, nullptr) != 0) {
    dwfl_end(t.dwfl);
    t.dwfl = nullptr;
  }
  return t.dwfl;
}

bool lookup_dwarf(symbol_table& t, std::uintptr_t addr, symbol& out) {
  Dwfl* d = session(t, false);
  if (d == nullptr) return false;
  Dwfl_Module* mod = dwfl_addrmodule(d, addr);
  if (mod == nullptr) {
    d = session(t, true);  // maybe a library loaded since
    if (d == nullptr || (mod = dwfl_addrmodule(d, addr)) == nullptr) return false;
  }
  const char* name = dwfl_module_addrname(mod, addr);
  if (name == nullptr) return false;
  out.function = demangle(name);
  if (Dwfl_Line* line = dwfl_module_getsrc(mod, addr)) {
    int lineno = 0;
    if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr)) {
      out.file = file;
      out.line = lineno;
    }
  }
  return true;
}
#endif

symbol lookup_dladdr(std::uintptr_t addr) {
  symbol out;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(addr), &info) != 0) {
    if (info.dli_sname != nullptr) {
      out.function = demangle(info.dli_sname);
    } else {
      char buf[64];
      std::snprintf(
          buf, sizeof buf, "+0x%lx",
          static_cast<unsigned long>(addr - reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
      out.function = std::string(info.dli_fname ? info.dli_fname : "?") + buf;
    }
  } else {
    out.function = "?";
  }
  return out;
}

}  // namespace

symbol symbolize(std::uintptr_t pc) {
  std::uintptr_t addr = pc - 1;  // the call instruction, not the one after it
  symbol_table& t = table();
  std::lock_guard lk(t.lock);
  if (auto it = t.cache.find(addr); it != t.cache.end()) return it->second;
  symbol out;
#if defined(GORO_HAVE_LIBDW)
  if (!lookup_dwarf(t, addr, out)) out = lookup_dladdr(addr);
#else
  out = lookup_dladdr(addr);
#endif
  t.cache.emplace(addr, out);
  return out;
}

}  // namespace goro::detail
