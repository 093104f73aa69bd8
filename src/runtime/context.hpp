// context.hpp — the one selection point for the per-ABI context switch.
//
// The assembly lives in context_<abi>.S (one file per backend, chosen by CMake).
// A context is represented by its saved stack pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" {
void goro_context_switch(void** save_sp, void* load_sp);
void goro_context_trampoline();
}

namespace goro::detail {

using context_entry = void (*)(void* arg);

// Lays out a fresh context at the top of [stack_lo, stack_hi) so that the first
// goro_context_switch into it calls entry(arg) on that stack. Returns its stack pointer.
inline void* make_context(void* stack_hi, context_entry entry, void* arg) {
  auto top = reinterpret_cast<std::uintptr_t>(stack_hi) & ~std::uintptr_t{15};
#if defined(__x86_64__)
  // [fp control][r15][r14][r13][r12][rbx][rbp][ret] — see context_x86_64_sysv.S.
  auto* sp = reinterpret_cast<std::uint64_t*>(top - 80);
  sp[0] = 0;                     // control-word slot padding
  std::uint32_t mxcsr = 0x1F80;  // the ABI's initial values: all exceptions masked,
  std::uint16_t fpucw = 0x037F;  // round to nearest, extended precision
  std::memcpy(reinterpret_cast<char*>(sp), &mxcsr, 4);
  std::memcpy(reinterpret_cast<char*>(sp) + 4, &fpucw, 2);
  sp[1] = 0;                                       // r15
  sp[2] = 0;                                       // r14
  sp[3] = reinterpret_cast<std::uint64_t>(arg);    // r13
  sp[4] = reinterpret_cast<std::uint64_t>(entry);  // r12
  sp[5] = 0;                                       // rbx
  sp[6] = 0;                                       // rbp
  sp[7] = reinterpret_cast<std::uint64_t>(&goro_context_trampoline);
  sp[8] = 0;  // padding, keeps the ABI alignment
  sp[9] = 0;
  return sp;
#elif defined(__aarch64__)
  auto* sp = reinterpret_cast<std::uint64_t*>(top - 176);
  std::memset(sp, 0, 176);
  sp[0] = reinterpret_cast<std::uint64_t>(entry);                      // x19
  sp[1] = reinterpret_cast<std::uint64_t>(arg);                        // x20
  sp[11] = reinterpret_cast<std::uint64_t>(&goro_context_trampoline);  // x30
  return sp;
#else
#error "goro: no context switch for this processor"
#endif
}

}  // namespace goro::detail
