// symbolize.hpp — program counters to function, file and line.
//
// With elfutils' libdw (GORO_HAVE_LIBDW) names and file:line come from the DWARF
// debug info of every loaded module; without it, from dladdr (exported symbols only)
// as "module+0xoffset". Results are cached per address.
//
// A return address inside inlined code stands for several frames, as in Go's
// tracebacks: the inlined calls, innermost first, each with its own file:line, then
// the function the code was inlined into, at the line of the outermost inlined call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace goro::detail {

struct symbol {
  std::string function;  // demangled; "module+0xoff" or "?" when unknown
  std::string file;      // empty when unknown
  int line = 0;
};

// `pc` is a return address; the call site (pc - 1) is looked up. Returns the frames it
// stands for, innermost first (one unless inlined calls are involved; never empty).
std::vector<symbol> symbolize(std::uintptr_t pc);

}  // namespace goro::detail
