// goro/time.hpp — sleeping (Go's time.Sleep).
//
// Blocking: sleep() parks the calling goroutine on the runtime's timer heap (its
//   thread runs other goroutines), or sleeps the calling plain thread.
// Thread-safety: callable from any goroutine or thread.
// Panics: none. A zero or negative duration returns at once, as in Go.
//
// Example:
//   using namespace std::chrono_literals;
//   goro::go([] { goro::sleep(10ms); std::puts("later"); });
#pragma once

#include <chrono>
#include <cstdint>

namespace goro {

namespace detail {
void sleep_ns(std::int64_t ns);
}

// Blocks for at least d. Durations <= 0 return immediately.
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  using ns = std::chrono::nanoseconds;
  if (d <= d.zero()) return;
  // Saturate at ~100 years instead of overflowing the nanosecond count.
  constexpr double max_seconds = 100.0 * 365 * 24 * 3600;
  if (std::chrono::duration<double>(d).count() >= max_seconds) {
    detail::sleep_ns(static_cast<std::int64_t>(max_seconds) * 1'000'000'000);
    return;
  }
  detail::sleep_ns(std::chrono::ceil<ns>(d).count());
}

}  // namespace goro
