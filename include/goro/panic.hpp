// goro/panic.hpp — goro::panic_error, the exception for misuse Go would panic on.
//
// Go panics on programming errors such as a negative WaitGroup counter or a send
// on a closed channel. goro throws goro::panic_error at the call site instead, with
// Go's message ("sync: negative WaitGroup counter"), so the error can be tested
// for and reported. If it escapes a goroutine, the runtime prints `panic: <what>`,
// the goroutine and a dump, then calls std::abort (SPEC §4), as an unrecovered panic
// ends a Go program. Misuse Go treats as a fatal error rather than a panic (unlock of
// an unlocked mutex) aborts at once instead of throwing.
//
// Blocking: none. Thread-safety: an ordinary exception type.
//
// Example:
//   try { wg.add(-1); } catch (const goro::panic_error& e) { std::cerr << e.what(); }
#pragma once

#include <stdexcept>
#include <string>

namespace goro {

// Thrown where Go would panic: misuse of a primitive or an invalid argument. what()
// is the message, in Go's words where Go has one.
class panic_error : public std::logic_error {
 public:
  explicit panic_error(const std::string& what) : std::logic_error(what) {}
  explicit panic_error(const char* what) : std::logic_error(what) {}
};

}  // namespace goro
