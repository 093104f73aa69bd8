// throw_site.hpp — where the exception escaping a goroutine was thrown.
//
// By the time a goroutine's entry catches an exception, the stack that threw it has
// been unwound. So goro wraps the C++ runtime's __cxa_throw (throw_site.cpp): on a
// goroutine, every throw records the thrown object's address and the thrower's return
// addresses in the goroutine's throw_record before the exception is raised. The panic
// report (api.cpp) shows them when the escaping exception is that object.
#pragma once

#include <cstdint>
#include <exception>

namespace goro::detail {

struct goroutine;

// The last few throws on one goroutine, most recent at `next - 1`: an exception
// caught and thrown again with `throw;` (no __cxa_throw) may have had others thrown
// and caught meanwhile, in its catch block or in destructors during unwinding.
// Allocated on the goroutine's first throw and kept with its descriptor (descriptors
// are reused, never freed); written and read only by the goroutine itself, so it
// follows the goroutine across threads.
struct throw_record {
  static constexpr int max_frames = 16;
  static constexpr int kept = 8;
  struct entry {
    const void* object = nullptr;    // what __cxa_throw was given
    std::uint64_t goroutine_id = 0;  // which life of the descriptor recorded it
    int depth = 0;
    std::uintptr_t pcs[max_frames] = {};  // return addresses, innermost first
  };
  entry entries[kept];
  unsigned next = 0;  // where the next throw is recorded (mod kept)
};

// Copies the frames recorded when `e` was thrown on g (at most `max`) to `out` and
// returns their number; 0 if g did not throw it through __cxa_throw (an exception_ptr
// rethrown from elsewhere, code that bypasses __cxa_throw, a static link where the
// C++ runtime's own definition wins).
int throw_site_of(goroutine* g, const std::exception_ptr& e, std::uintptr_t* out, int max) noexcept;

}  // namespace goro::detail
