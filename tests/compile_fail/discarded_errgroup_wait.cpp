// errgroup::wait's error dropped: the first task error is lost. wait() is
// [[nodiscard]]; the warning is made an error here so that the check sees it.
// expect-error: ignoring return(ed)? value
#pragma GCC diagnostic error "-Wunused-result"
#include <goro/errgroup.hpp>

void run_all(goro::errgroup& g) {
  g.wait();  // error-here
}
