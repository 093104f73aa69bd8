// throw_site.cpp — records where each exception thrown on a goroutine was thrown
// (throw_site.hpp).
//
// How the hook is installed: this file defines __cxa_throw, the C++ runtime's entry
// for every throw expression (and for the standard library's own throws, which call it
// through the PLT). A definition in the program (goro linked statically) or in
// libgoro.so comes before libstdc++'s in symbol lookup, so throws reach it; it records
// the site and calls the next definition, found once with dlsym(RTLD_NEXT) — the C++
// runtime's, or a sanitizer's interceptor that then calls the runtime's (AddressSanitizer
// wraps __cxa_throw too). The definition is weak: a program that defines its own
// __cxa_throw, or a fully static link that pulls in libsupc++'s, keeps that one, and
// panics are then reported without the throw site.
//
// Cost on the throw path: one thread-local read, and on a goroutine a walk of at most
// throw_record::max_frames frame pointers within the goroutine's stack (tens of
// nanoseconds; a throw itself costs microseconds). The record is allocated on a
// goroutine descriptor's first throw, not per throw.
//
// Invariants:
//   - A goroutine's throw_record is touched only by that goroutine (written here,
//     read by its entry's panic report), so it needs no lock and follows the goroutine
//     when it moves between threads — also when a destructor parks during unwinding.
//   - goroutine_id tells a record of this life of the descriptor from one left by an
//     earlier goroutine that used it.
#include "runtime/throw_site.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <typeinfo>

#include "runtime/frames.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

namespace {

using cxa_throw_fn = void (*)(void*, std::type_info*, void (*)(void*));

cxa_throw_fn next_cxa_throw() noexcept;

// The address of the object an exception_ptr holds. libstdc++ and libc++ both
// represent std::exception_ptr as exactly that pointer (the object thrown, after the
// C++ runtime's header), which is also what __cxa_throw receives.
const void* thrown_object(const std::exception_ptr& e) noexcept {
  static_assert(sizeof(std::exception_ptr) == sizeof(void*));
  const void* object;
  std::memcpy(&object, static_cast<const void*>(&e), sizeof object);
  return object;
}

// Called by __cxa_throw with its own frame pointer: the chain from there starts at
// the thrower's return address.
void record_throw(const void* object, std::uintptr_t fp) noexcept {
  goroutine* g = current_goroutine();
  if (g == nullptr) return;  // a plain thread: no goroutine to report
  throw_record* r = g->last_throw;
  if (r == nullptr) {
    void* mem = std::malloc(sizeof(throw_record));
    if (mem == nullptr) return;  // maybe the very bad_alloc being thrown
    r = new (mem) throw_record;
    g->last_throw = r;
  }
  throw_record::entry& e = r->entries[r->next++ % throw_record::kept];
  e.object = object;
  e.goroutine_id = g->id.load(std::memory_order_relaxed);
  e.depth = walk_frame_pointers(fp, reinterpret_cast<std::uintptr_t>(g->stack.lo),
                                reinterpret_cast<std::uintptr_t>(g->stack.hi), e.pcs, 0,
                                throw_record::max_frames);
}

}  // namespace

int throw_site_of(goroutine* g, const std::exception_ptr& e, std::uintptr_t* out,
                  int max) noexcept {
  const throw_record* r = g->last_throw;
  if (r == nullptr || e == nullptr) return 0;
  const void* object = thrown_object(e);
  std::uint64_t id = g->id.load(std::memory_order_relaxed);
  // Newest first: an object's memory may be reused by a later exception, and the
  // later throw is the one that made this exception.
  for (unsigned k = 1; k <= throw_record::kept; ++k) {
    const throw_record::entry& x = r->entries[(r->next - k) % throw_record::kept];
    if (x.object != object || x.goroutine_id != id) continue;
    int n = x.depth < max ? x.depth : max;
    for (int i = 0; i < n; ++i) out[i] = x.pcs[i];
    return n;
  }
  return 0;
}

namespace {

cxa_throw_fn next_cxa_throw() noexcept {
  static std::atomic<cxa_throw_fn> next{nullptr};
  cxa_throw_fn f = next.load(std::memory_order_acquire);
  if (f != nullptr) return f;
  // Racing first throws all find the same function; storing it twice is harmless.
  f = reinterpret_cast<cxa_throw_fn>(dlsym(RTLD_NEXT, "__cxa_throw"));
  if (f == nullptr) {
    static const char msg[] = "fatal error: goro: no __cxa_throw after goro's (dlsym RTLD_NEXT)\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    std::abort();
  }
  next.store(f, std::memory_order_release);
  return f;
}

}  // namespace

}  // namespace goro::detail

// The C++ ABI's throw entry (see the top of this file). Not declared by any header this
// file includes; its type is the Itanium C++ ABI's. Not declared noreturn, so that the
// call below is a tail call: the C++ runtime's __cxa_throw then replaces this frame,
// and the unwinder, which walks the thrower's stack twice, has no extra frame to step
// through (that would cost a quarter of a throw). Unoptimised builds keep the frame,
// which is only slower.
extern "C" __attribute__((weak)) void __cxa_throw(void* object, std::type_info* type,
                                                  void (*destroy)(void*)) {
  goro::detail::record_throw(object, reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)));
  goro::detail::next_cxa_throw()(object, type, destroy);
}
