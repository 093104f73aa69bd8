// stack_test — stacks: deep use within the limit works; overflow is reported.
#include <cstdlib>

#include "support/fixture.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define GORO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_TEST_ASAN 1
#endif
#endif
#ifndef GORO_TEST_ASAN
#define GORO_TEST_ASAN 0
#endif
#if GORO_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace {

using namespace goro_test;

// About 600 bytes of stack per level; every frame is written, as real code writes
// its locals.
__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[512];
  for (auto& c : frame) c = static_cast<char>(depth | 1);
  if (depth == 0) return frame[0];
  return recurse(depth - 1) + frame[511];
}

class stacks : public procs_test {};
GORO_PROCS_SUITE(stacks);

TEST_P(stacks, default_stack_holds_48_kib_of_frames) {
  goro::wait_group wg;
  std::atomic<int> r{-1};
  for (int i = 0; i < 64; ++i) {
    wg.go([&] {
      r = recurse(80);  // ~48 KiB with frame overhead
      goro::yield();
    });
  }
  wg.wait();
  EXPECT_GE(r.load(), 0);
}

TEST_P(stacks, stacks_are_reused_without_leaking_state) {
  // Many short goroutines in waves: pooled stacks are handed out again and again.
  for (int wave = 0; wave < 20; ++wave) {
    goro::wait_group wg;
    std::atomic<int> sum{0};
    for (int i = 0; i < 500; ++i) {
      wg.go([&, i] {
        recurse(8);
        goro::yield();
        sum.fetch_add(i);
      });
    }
    wg.wait();
    ASSERT_EQ(sum.load(), 499 * 500 / 2);
  }
}

const char* overflow_message =
    "goroutine [0-9]+ stack overflow \\(stack size 65536, created at .*stack_test.cpp:[0-9]+\\)";

TEST(stack_overflow, guard_page_overflow_is_reported) {
  EXPECT_DEATH(
      {
        goro::go([] { recurse(1'000'000); });
        std::this_thread::sleep_for(10s);
      },
      overflow_message);
}

// One frame of 96 KiB on a 64 KiB stack that writes only its lowest byte: the stack
// pointer jumps past the bottom and the guard page. Built with stack-clash protection
// (goro's build and package add it) the frame touches each page on the way down and
// faults in the guard page; without it, the write lands in another stack silently.
__attribute__((noinline)) int one_big_frame() {
  volatile char frame[96 * 1024];
  frame[0] = 1;
  return frame[0];
}

TEST(stack_overflow, a_frame_larger_than_the_stack_is_reported) {
#if GORO_TEST_ASAN
  if (__asan_get_current_fake_stack() != nullptr) {
    GTEST_SKIP() << "ASAN's detect_stack_use_after_return puts the array on its fake stack";
  }
#endif
  EXPECT_DEATH(
      {
        goro::go([] { one_big_frame(); });
        std::this_thread::sleep_for(10s);
      },
      overflow_message);
}

TEST(stack_overflow, unguarded_overflow_is_caught) {
  // With no guard pages allowed (as beyond the mapping budget), the reserve zone
  // check or the fault handler still names the goroutine.
  EXPECT_DEATH(
      {
        setenv("GORO_STACK_GUARDS", "0", 1);
        goro::go([] {
          recurse(140);  // ~84 KiB: past the bottom of a 64 KiB stack, then back
          goro::yield();
        });
        std::this_thread::sleep_for(10s);
      },
      overflow_message);
}

}  // namespace
