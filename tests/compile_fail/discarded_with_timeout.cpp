// A derived context dropped with its cancel function: the child does nothing and its
// timer is never released early (Go's vet: "the cancel function is not used"). The
// with_* functions are [[nodiscard]]; the warning is made an error here.
// expect-error: ignoring return(ed)? value
#pragma GCC diagnostic error "-Wunused-result"
#include <chrono>
#include <goro/context.hpp>

void handle(const goro::context& ctx) {
  goro::with_timeout(ctx, std::chrono::seconds(1));  // error-here
}
