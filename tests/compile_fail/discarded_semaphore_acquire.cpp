// sem.acquire(ctx) dropped: when ctx ends first nothing is held, and the release that
// follows would give back units never taken. The error result is [[nodiscard]]; the
// warning is made an error here so that the check sees it.
// expect-error: ignoring return(ed)? value
#pragma GCC diagnostic error "-Wunused-result"
#include <goro/semaphore.hpp>

void call_api(goro::semaphore& sem, const goro::context& ctx) {
  sem.acquire(ctx, 1);  // error-here
  sem.release(1);
}
