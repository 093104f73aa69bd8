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
#include <vector>

#if defined(GORO_HAVE_LIBDW)
#include <dwarf.h>
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
  std::unordered_map<std::uintptr_t, std::vector<symbol>> cache;  // under lock
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

// The qualified name of the function an inlined call runs: its demangled linkage name
// when it has one; else its name prefixed with the namespaces and classes that
// enclose its declaration ("ns::type::fn", "{lambda}::operator()").
std::string inlined_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    if (const char* n = dwarf_formstring(dwarf_attr_integrate(die, at, &attr))) return demangle(n);
  }
  const char* n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
  std::string name = n ? n : "?";
  // Find the declaration: abstract origin, then its specification.
  Dwarf_Die decl = *die;
  for (int at : {DW_AT_abstract_origin, DW_AT_specification}) {
    Dwarf_Die next;
    if (dwarf_formref_die(dwarf_attr(&decl, at, &attr), &next) != nullptr) decl = next;
  }
  Dwarf_Die* chain = nullptr;
  int m = dwarf_getscopes_die(&decl, &chain);
  for (int i = 1; i < m; ++i) {  // chain[0] is decl itself; then its parents
    int tag = dwarf_tag(&chain[i]);
    const char* scope = dwarf_diename(&chain[i]);
    if (tag == DW_TAG_namespace) {
      name = std::string(scope ? scope : "{anonymous}") + "::" + name;
    } else if (tag == DW_TAG_class_type || tag == DW_TAG_structure_type ||
               tag == DW_TAG_union_type) {
      name = std::string(scope ? scope : "{lambda}") + "::" + name;
    } else if (tag == DW_TAG_subprogram || tag == DW_TAG_compile_unit) {
      break;  // a local class: its function's name would need another walk
    }
  }
  std::free(chain);
  return name;
}

bool lookup_dwarf(symbol_table& t, std::uintptr_t addr, std::vector<symbol>& out) {
  Dwfl* d = session(t, false);
  if (d == nullptr) return false;
  Dwfl_Module* mod = dwfl_addrmodule(d, addr);
  if (mod == nullptr) {
    d = session(t, true);  // maybe a library loaded since
    if (d == nullptr || (mod = dwfl_addrmodule(d, addr)) == nullptr) return false;
  }
  const char* name = dwfl_module_addrname(mod, addr);
  if (name == nullptr) return false;
  std::string file;
  int line = 0;
  if (Dwfl_Line* l = dwfl_module_getsrc(mod, addr)) {
    if (const char* f = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr)) file = f;
  }
  // Walk the scopes around addr from the innermost out: each inlined call is a frame
  // at the current location, and moves the location to its call site. (dwarf_getscopes
  // continues an inlined call with its abstract instance's scopes, so the concrete
  // nesting comes from dwarf_getscopes_die on the innermost scope.)
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dwfl_module_addrdie(mod, addr, &bias);
  Dwarf_Die* scopes = nullptr;
  Dwarf_Die* chain = nullptr;
  int n = cu ? dwarf_getscopes(cu, addr - bias, &scopes) : 0;
  int m = n > 0 ? dwarf_getscopes_die(&scopes[0], &chain) : 0;
  Dwarf_Files* files = nullptr;
  std::size_t nfiles = 0;
  if (m > 0 && dwarf_getsrcfiles(cu, &files, &nfiles) != 0) files = nullptr;
  for (int i = 0; i < m; ++i) {
    Dwarf_Die* die = &chain[i];
    int tag = dwarf_tag(die);
    if (tag == DW_TAG_subprogram) break;
    if (tag != DW_TAG_inlined_subroutine) continue;  // lexical blocks
    out.push_back(symbol{inlined_name(die), file, line});
    Dwarf_Attribute attr;
    Dwarf_Word value = 0;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &value) == 0) {
      line = static_cast<int>(value);
    }
    if (files != nullptr && dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &value) == 0) {
      if (const char* f = dwarf_filesrc(files, value, nullptr, nullptr)) file = f;
    }
  }
  std::free(chain);
  std::free(scopes);
  out.push_back(symbol{demangle(name), file, line});
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

std::vector<symbol> symbolize(std::uintptr_t pc) {
  std::uintptr_t addr = pc - 1;  // the call instruction, not the one after it
  symbol_table& t = table();
  std::lock_guard lk(t.lock);
  if (auto it = t.cache.find(addr); it != t.cache.end()) return it->second;
  std::vector<symbol> out;
#if defined(GORO_HAVE_LIBDW)
  if (!lookup_dwarf(t, addr, out)) out = {lookup_dladdr(addr)};
#else
  out = {lookup_dladdr(addr)};
#endif
  t.cache.emplace(addr, out);
  return out;
}

}  // namespace goro::detail
