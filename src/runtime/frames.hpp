// frames.hpp — walking a frame-pointer chain inside known stack bounds.
//
// goro and the code that uses it keep frame pointers (-fno-omit-frame-pointer), so a
// stack is a chain of two-word records: the caller's frame pointer, then the return
// address. The walk reads only inside [lo, hi) and only upwards, so a frame that does
// not keep the chain (code built without frame pointers) ends the walk or skips a frame;
// it never faults. Used by dumps (debug/dump.cpp), the fault report (fault.cpp) and
// the throw-site record (throw_site.cpp); the last two run in a signal handler and on
// the throw path, so this allocates nothing and takes no lock.
#pragma once

#include <cstdint>

namespace goro::detail {

// Appends the return addresses of the chain starting at frame pointer `fp` to
// out[n..max), innermost first; returns the new count.
__attribute__((no_sanitize("address", "thread"))) inline int walk_frame_pointers(
    std::uintptr_t fp, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t* out, int n,
    int max) noexcept {
  while (n < max && fp >= lo && fp + 2 * sizeof(std::uintptr_t) <= hi &&
         (fp & (sizeof(std::uintptr_t) - 1)) == 0) {
    auto* frame = reinterpret_cast<const volatile std::uintptr_t*>(fp);
    std::uintptr_t next = frame[0];
    std::uintptr_t ret = frame[1];
    if (ret == 0) break;
    out[n++] = ret;
    if (next <= fp) break;  // frames only go up the stack
    fp = next;
  }
  return n;
}

}  // namespace goro::detail
