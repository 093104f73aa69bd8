// symbolize.cpp — see symbolize.hpp.
//
// Invariants: the cache and the libdw session are guarded by `lock`; the session is
// made on first use and rebuilt when an address falls outside every known module
// (a library loaded later).
#include "debug/symbolize.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

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

// The function symbols of one loaded module, from its ELF file's .symtab (every
// function, static ones and lambdas included, unless the file was stripped), else its
// .dynsym (exported ones only).
struct elf_functions {
  struct entry {
    std::uintptr_t start;  // run-time address (load bias applied)
    std::uintptr_t size;
    std::string name;  // mangled
  };
  std::uintptr_t lo = 0, hi = 0;  // the module's mapped range (its PT_LOAD segments)
  std::string path;
  std::vector<entry> functions;  // by start
  bool loaded = false;
};

struct symbol_table {
  std::mutex lock;
  std::unordered_map<std::uintptr_t, std::vector<symbol>> cache;  // under lock
  std::vector<elf_functions> modules;                             // under lock
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

// The compile unit whose code holds addr (module-relative: addr - *bias). libdw finds
// it through .debug_aranges, and finds nothing for a unit missing there: Clang emits
// no aranges unless asked (-gdwarf-aranges), so code it built has neither file:line
// nor inlined frames that way. Such an address is looked up in every unit's own
// ranges instead (once per address: results are cached).
Dwarf_Die* unit_of(Dwfl_Module* mod, Dwarf_Addr addr, Dwarf_Addr* bias) {
  if (Dwarf_Die* cu = dwfl_module_addrdie(mod, addr, bias)) return cu;
  Dwarf_Die* cu = nullptr;
  while ((cu = dwfl_module_nextcu(mod, cu, bias)) != nullptr) {
    if (dwarf_haspc(cu, addr - *bias) > 0) return cu;
  }
  return nullptr;
}

// The innermost function, inlined call or block under `parent` whose code holds pc,
// looking inside namespaces. dwarf_getscopes skips a DIE that holds no code itself,
// namespaces included; GCC puts every function's definition at the unit's top level,
// but Clang puts a namespace's functions inside its namespace DIE, where
// dwarf_getscopes finds nothing.
bool innermost_scope(Dwarf_Die* parent, Dwarf_Addr pc, Dwarf_Die* out) {
  Dwarf_Die child;
  if (dwarf_child(parent, &child) != 0) return false;
  do {
    switch (dwarf_tag(&child)) {
      case DW_TAG_namespace:
        if (innermost_scope(&child, pc, out)) return true;
        break;
      case DW_TAG_subprogram:
      case DW_TAG_inlined_subroutine:
      case DW_TAG_lexical_block:
        if (dwarf_haspc(&child, pc) > 0) {
          if (!innermost_scope(&child, pc, out)) *out = child;
          return true;
        }
        break;
      default: break;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
  return false;
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
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = unit_of(mod, addr, &bias);
  std::string file;
  int line = 0;
  if (Dwfl_Line* l = dwfl_module_getsrc(mod, addr)) {
    if (const char* f = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr)) file = f;
  } else if (Dwarf_Line* dl = cu ? dwarf_getsrc_die(cu, addr - bias) : nullptr) {
    if (const char* f = dwarf_linesrc(dl, nullptr, nullptr)) file = f;
    if (dwarf_lineno(dl, &line) != 0) line = 0;
  }
  // Walk the scopes around addr from the innermost out: each inlined call is a frame
  // at the current location, and moves the location to its call site. (dwarf_getscopes
  // continues an inlined call with its abstract instance's scopes, so the concrete
  // nesting comes from dwarf_getscopes_die on the innermost scope.)
  Dwarf_Die* scopes = nullptr;
  Dwarf_Die* chain = nullptr;
  int n = cu ? dwarf_getscopes(cu, addr - bias, &scopes) : 0;
  int m = 0;
  Dwarf_Die inner;
  if (n > 0) {
    m = dwarf_getscopes_die(&scopes[0], &chain);
  } else if (cu != nullptr && innermost_scope(cu, addr - bias, &inner)) {
    m = dwarf_getscopes_die(&inner, &chain);
  }
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

// ---- the fallback: ELF symbol tables, read directly --------------------------------

// Reads the FUNC symbols of the ELF file at `m.path` (which is mapped with `bias`).
void load_functions(elf_functions& m, std::uintptr_t bias) {
  m.loaded = true;
  int fd = ::open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(ElfW(Ehdr)))) {
    ::close(fd);
    return;
  }
  auto size = static_cast<std::size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  auto inside = [&](std::size_t off, std::size_t len) { return off <= size && len <= size - off; };
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shentsize == sizeof(ElfW(Shdr)) &&
      inside(eh->e_shoff, std::size_t{eh->e_shnum} * sizeof(ElfW(Shdr)))) {
    const auto* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
    // .symtab if present, else .dynsym.
    const ElfW(Shdr)* symtab = nullptr;
    for (int want : {SHT_SYMTAB, SHT_DYNSYM}) {
      for (unsigned i = 0; i < eh->e_shnum && symtab == nullptr; ++i) {
        if (sh[i].sh_type == static_cast<ElfW(Word)>(want)) symtab = &sh[i];
      }
      if (symtab != nullptr) break;
    }
    if (symtab != nullptr && symtab->sh_link < eh->e_shnum &&
        symtab->sh_entsize == sizeof(ElfW(Sym)) && inside(symtab->sh_offset, symtab->sh_size)) {
      const ElfW(Shdr)& strtab = sh[symtab->sh_link];
      if (inside(strtab.sh_offset, strtab.sh_size)) {
        const auto* syms = reinterpret_cast<const ElfW(Sym)*>(base + symtab->sh_offset);
        const char* strs = reinterpret_cast<const char*>(base + strtab.sh_offset);
        std::size_t n = symtab->sh_size / sizeof(ElfW(Sym));
        for (std::size_t i = 0; i < n; ++i) {
          const ElfW(Sym)& s = syms[i];
          if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF ||
              s.st_value == 0 || s.st_name >= strtab.sh_size) {
            continue;
          }
          const char* name = strs + s.st_name;
          std::size_t len = strnlen(name, strtab.sh_size - s.st_name);
          m.functions.push_back({bias + s.st_value, s.st_size, std::string(name, len)});
        }
      }
    }
  }
  munmap(map, size);
  std::sort(m.functions.begin(), m.functions.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
}

struct module_report {
  std::uintptr_t addr = 0;
  std::uintptr_t bias = 0, lo = 0, hi = 0;
  std::string path;
  bool found = false;
};

int find_module(dl_phdr_info* info, std::size_t, void* arg) {
  auto* r = static_cast<module_report*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (r->addr < lo || r->addr >= lo + ph.p_memsz) continue;
    r->bias = info->dlpi_addr;
    r->found = true;
    // The main program has no name here; its file is /proc/self/exe.
    r->path = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
    r->lo = ~std::uintptr_t{0};
    for (int j = 0; j < info->dlpi_phnum; ++j) {
      const ElfW(Phdr)& q = info->dlpi_phdr[j];
      if (q.p_type != PT_LOAD) continue;
      r->lo = std::min<std::uintptr_t>(r->lo, info->dlpi_addr + q.p_vaddr);
      r->hi = std::max<std::uintptr_t>(r->hi, info->dlpi_addr + q.p_vaddr + q.p_memsz);
    }
    return 1;
  }
  return 0;
}

// The function containing addr, from the symbol tables; empty if none. Called with
// t.lock held.
std::string lookup_elf(symbol_table& t, std::uintptr_t addr, std::string& module_offset) {
  elf_functions* m = nullptr;
  for (auto& known : t.modules) {
    if (addr >= known.lo && addr < known.hi) m = &known;
  }
  if (m == nullptr) {
    module_report r;
    r.addr = addr;
    dl_iterate_phdr(find_module, &r);
    if (!r.found) return {};
    t.modules.push_back(elf_functions{});
    m = &t.modules.back();
    m->lo = r.lo;
    m->hi = r.hi;
    m->path = r.path;
    load_functions(*m, r.bias);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "+0x%lx", static_cast<unsigned long>(addr - m->lo));
  module_offset = m->path;
  module_offset += buf;
  auto it = std::upper_bound(m->functions.begin(), m->functions.end(), addr,
                             [](std::uintptr_t a, const auto& e) { return a < e.start; });
  if (it == m->functions.begin()) return {};
  --it;
  // A sized symbol must contain addr; an unsized one (hand-written assembly) is taken
  // as reaching the next symbol.
  if (it->size != 0 && addr >= it->start + it->size) return {};
  return it->name;
}

#if defined(GORO_HAVE_LIBDW)
// Which symbolizer: libdw, unless GORO_SYMBOLIZER=symtab asks for the symbol-table
// one (what a build without libdw uses).
bool use_symtab_only() {
  static const bool forced = [] {
    const char* v = std::getenv("GORO_SYMBOLIZER");
    return v != nullptr && std::strcmp(v, "symtab") == 0;
  }();
  return forced;
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
  if (!use_symtab_only() && lookup_dwarf(t, addr, out)) {
    t.cache.emplace(addr, out);
    return out;
  }
#endif
  std::string module_offset;
  std::string name = lookup_elf(t, addr, module_offset);
  if (!name.empty()) {
    out = {symbol{demangle(name.c_str()), {}, 0}};
  } else if (!module_offset.empty()) {
    out = {symbol{module_offset, {}, 0}};
  } else {
    out = {lookup_dladdr(addr)};
  }
  t.cache.emplace(addr, out);
  return out;
}

}  // namespace goro::detail
