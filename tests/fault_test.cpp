// fault_test — crashes say where they happened: a fatal signal in a goroutine names the
// signal, the address and the goroutine (id, name, creation site, frames) and the
// process still dies by that signal; an exception escaping a goroutine is reported with
// the frames that threw it. Each case runs in a fresh process (death tests).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

// Under AddressSanitizer and ThreadSanitizer the sanitizer's handler for fatal signals
// was installed first: goro reports and then hands over to it, and it ends the process
// its own way (exit status 1 or 66), not by the signal.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitizer_ends_the_process = true;
#else
constexpr bool sanitizer_ends_the_process = false;
#endif

// The child died by `sig` (or, where the sanitizer ends it, died at all).
auto dies_by(int sig) {
  return [sig](int status) {
    if (sanitizer_ends_the_process) return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == sig;
  };
}

// Matches a death test's output with an ECMAScript regex (std::regex): unlike the
// POSIX one gtest uses, it has back-references, to say "the same goroutine id".
class ecma_regex : public ::testing::MatcherInterface<const std::string&> {
 public:
  explicit ecma_regex(std::string pattern) : pattern_(std::move(pattern)), regex_(pattern_) {}
  bool MatchAndExplain(const std::string& text, ::testing::MatchResultListener*) const override {
    return std::regex_search(text, regex_);
  }
  void DescribeTo(std::ostream* os) const override {
    *os << "contains ECMAScript regular expression \"" << pattern_ << "\"";
  }

 private:
  std::string pattern_;
  std::regex regex_;
};

::testing::Matcher<const std::string&> contains_ecma_regex(std::string pattern) {
  return ::testing::MakeMatcher(new ecma_regex(std::move(pattern)));
}

// Volatile, so the compiler cannot see the null pointer or the zero and replace the
// faulting instruction with a trap.
int* volatile null_target = nullptr;
volatile int dividend = 1;
volatile int zero_divisor = 0;
volatile int config_version = 1;

[[gnu::noinline]] void write_through_null() { *null_target = 7; }

[[gnu::noinline]] int divide_by_zero() { return dividend / zero_divisor; }

void print_own_id(const char* who) {
  std::fprintf(stderr, "%s is goroutine %llu\n", who,
               static_cast<unsigned long long>(goro::this_goroutine::id()));
}

// ---- fatal signals ----------------------------------------------------------------------

TEST(fault, a_null_write_in_a_named_goroutine_names_the_signal_address_and_goroutine) {
  EXPECT_EXIT(
      {
        goro::spawn_options opts;
        opts.name = "worker-7";
        goro::go(opts, [] {
          print_own_id("worker-7");
          write_through_null();
        });
        std::this_thread::sleep_for(10s);
      },
      dies_by(SIGSEGV),
      contains_ecma_regex(
      "worker-7 is goroutine ([0-9]+)\n[\\s\\S]*"
      "fatal error: unexpected signal in goroutine \\1\n"
      "\\[signal SIGSEGV: segmentation violation code=SEGV_MAPERR addr=0x0 pc=0x[0-9a-f]+\\]\n\n"
      "goroutine \\1 \\[running\\]:\n"
      "  name: worker-7\n"
      "\tpc=0x[0-9a-f]+ [^\n]*fault_test\\+0x[0-9a-f]+\n"
      "(\tpc=[^\n]*\n)*"
      "created by [^\n]*\n\t[^\n]*fault_test.cpp:[0-9]+\n"
      "\nsymbolized \\(best effort\\):\n"
      "[^\n]*write_through_null\\(\\)\n\t([^\n]*fault_test.cpp:[0-9]+|pc=0x[0-9a-f]+)\n"));
}

TEST(fault, a_division_by_zero_in_a_goroutine_is_reported_as_SIGFPE) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "only x86-64 traps on integer division by zero (aarch64's gives 0)";
#endif
  EXPECT_EXIT(
      {
        goro::go([] {
          volatile int sink = divide_by_zero();
          (void)sink;
        });
        std::this_thread::sleep_for(10s);
      },
      dies_by(SIGFPE),
      "fatal error: unexpected signal in goroutine [0-9]+\n"
      "\\[signal SIGFPE: floating-point exception code=FPE_INTDIV addr=0x[0-9a-f]+ "
      "pc=0x[0-9a-f]+\\]\n\ngoroutine [0-9]+ \\[running\\]:\n(.|\n)*divide_by_zero\\(\\)");
}

TEST(fault, a_fault_on_a_plain_thread_still_dies_by_the_signal) {
  EXPECT_EXIT(
      {
        goro::wait_group wg;
        wg.go([] {});
        wg.wait();  // the runtime, and so its handler, is running
        std::thread([] { write_through_null(); }).join();
      },
      dies_by(SIGSEGV),
      "fatal error: unexpected signal on a thread that runs no goroutine\n"
      "\\[signal SIGSEGV: segmentation violation code=SEGV_MAPERR addr=0x0 pc=0x[0-9a-f]+\\]\n\n"
      "thread [0-9]+:\n\tpc=0x[0-9a-f]+ [^\n]*fault_test\\+0x[0-9a-f]+\n");
}

void programs_own_handler(int) {
  static const char message[] = "the program's own handler ran\n";
  ssize_t ignored = write(2, message, sizeof message - 1);
  (void)ignored;
  _exit(42);
}

TEST(fault, a_handler_installed_before_the_runtime_started_still_gets_the_fault) {
  EXPECT_EXIT(
      {
        struct sigaction sa {};
        sa.sa_handler = programs_own_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, nullptr);
        goro::go([] { write_through_null(); });
        std::this_thread::sleep_for(10s);
      },
      ::testing::ExitedWithCode(42), "the program's own handler ran\n");
}

// ---- where an escaping exception was thrown ---------------------------------------------

constexpr int throw_line = __LINE__ + 3;  // the throw below
[[gnu::noinline]] void parse_config(int version) {
  if (version != 2) {
    throw std::runtime_error("unsupported config version " + std::to_string(version));
  }
}

std::string thrown_at_parse_config() {
  // file:line where the build has debug information, the bare pc where it has not.
  return "  thrown at:\n[^\n]*parse_config\\(int\\)[^\n]*\n\t([^\n]*fault_test.cpp:" +
         std::to_string(throw_line) + "|pc=0x[0-9a-f]+)\n";
}

TEST(panic_site, an_exception_escaping_a_goroutine_names_the_function_that_threw_it) {
  EXPECT_DEATH(
      {
        goro::spawn_options opts;
        opts.name = "loader";
        goro::go(opts, [] { parse_config(config_version); });
        std::this_thread::sleep_for(10s);
      },
      "panic: unsupported config version 1 \\[std::runtime_error\\]\n\n"
      "goroutine [0-9]+ \\[running\\]:\n  name: loader\n" +
          thrown_at_parse_config() + "(.|\n)*created by [^\n]*\n\t[^\n]*fault_test.cpp:[0-9]+");
}

[[gnu::noinline]] void load_with_cleanup() {
  try {
    parse_config(config_version);
  } catch (...) {
    std::fprintf(stderr, "cleaning up\n");
    throw;
  }
}

TEST(panic_site, a_rethrown_exception_keeps_the_site_of_its_first_throw) {
  EXPECT_DEATH(
      {
        goro::go([] { load_with_cleanup(); });
        std::this_thread::sleep_for(10s);
      },
      "cleaning up\npanic: [^\n]*\n\ngoroutine [0-9]+ \\[running\\]:\n" + thrown_at_parse_config() +
          "[^\n]*load_with_cleanup\\(\\)\n");
}

[[gnu::noinline]] void load_with_a_failed_fallback() {
  try {
    parse_config(config_version);
  } catch (...) {
    try {
      throw 42;  // a fallback that fails too, handled here
    } catch (int) {
    }
    throw;  // the first exception goes on
  }
}

struct throws_and_catches_when_destroyed {
  ~throws_and_catches_when_destroyed() {
    try {
      throw std::logic_error("during unwinding");
    } catch (const std::exception&) {
    }
  }
};

[[gnu::noinline]] void load_with_a_throwing_cleanup() {
  throws_and_catches_when_destroyed guard;
  parse_config(config_version);
}

TEST(panic_site, other_exceptions_thrown_and_caught_meanwhile_do_not_hide_the_site) {
  EXPECT_DEATH(
      {
        goro::go([] { load_with_a_failed_fallback(); });
        std::this_thread::sleep_for(10s);
      },
      "panic: unsupported config version 1 [^\n]*\n\ngoroutine [0-9]+ \\[running\\]:\n" +
          thrown_at_parse_config());
  EXPECT_DEATH(
      {
        goro::go([] { load_with_a_throwing_cleanup(); });
        std::this_thread::sleep_for(10s);
      },
      "panic: unsupported config version 1 [^\n]*\n\ngoroutine [0-9]+ \\[running\\]:\n" +
          thrown_at_parse_config());
}

struct parks_when_destroyed {
  ~parks_when_destroyed() { goro::sleep(5ms); }
};

[[gnu::noinline]] void load_with_a_parking_guard() {
  parks_when_destroyed guard;
  parse_config(config_version);
}

TEST(panic_site, the_site_survives_a_park_during_unwinding_while_others_throw) {
  // While the loader is parked in a destructor, another goroutine on the same thread
  // throws and catches: the loader's record is its own, not the thread's.
  EXPECT_DEATH(
      {
        goro::set_max_procs(1);
        goro::go([] {
          for (;;) {
            try {
              throw std::logic_error("noise");
            } catch (const std::logic_error&) {
            }
            goro::yield();
          }
        });
        goro::go([] { load_with_a_parking_guard(); });
        std::this_thread::sleep_for(10s);
      },
      "panic: unsupported config version 1[^\n]*\n\ngoroutine [0-9]+ \\[running\\]:\n" +
          thrown_at_parse_config() + "[^\n]*load_with_a_parking_guard\\(\\)\n");
}

[[gnu::noinline]] void send_on_closed(goro::chan<int> ch) { ch.send(1); }

TEST(panic_site, a_panic_thrown_by_goro_shows_the_callers_frames_not_goros) {
  EXPECT_DEATH(
      {
        auto ch = goro::make_chan<int>(1);
        ch.close();
        goro::go([ch] { send_on_closed(ch); });
        std::this_thread::sleep_for(10s);
      },
      "panic: send on closed channel[^\n]*\n\ngoroutine [0-9]+ \\[running\\]:\n  thrown at:\n"
      "([^\n]*\n\t[^\n]*include/goro/[^\n]*\n)*"  // the public header's inline frames
      "[^\n]*send_on_closed\\(goro::chan<int>\\)\n\t([^\n]*fault_test.cpp:[0-9]+|pc=0x[0-9a-f]+)\n");
}

}  // namespace
