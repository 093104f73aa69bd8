// A net call's (value, error) result dropped: the error goes unseen. result<T> is
// [[nodiscard]]; the warning is made an error here so that the check sees it.
// expect-error: ignoring return(ed)? value
#pragma GCC diagnostic error "-Wunused-result"
#include <goro/net.hpp>

void send_greeting(const goro::net::conn& c) {
  c.write("hello");  // error-here
}
