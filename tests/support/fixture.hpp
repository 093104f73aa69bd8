// fixture.hpp — the shared fixture: every case runs at 1, 2 and 4 processors and fails
// with a goroutine dump if it leaves goroutines behind (goro::debug::check_no_leaks);
// plus small helpers for time-bounded checks.
#pragma once

#include <gtest/gtest.h>
#include <goro/goro.hpp>
#include <goro/testing.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <thread>
#include <vector>

namespace goro_test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// Polls `cond` until it holds or `limit` passes; true if it held.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto until = steady::now() + limit;
  while (steady::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

inline double ms_since(steady::time_point t) {
  return std::chrono::duration<double, std::milli>(steady::now() - t).count();
}

// A seed for randomised tests: GORO_TEST_SEED if set, else random; always printed.
inline std::uint64_t test_seed() {
  std::uint64_t seed;
  if (const char* v = std::getenv("GORO_TEST_SEED")) {
    seed = std::strtoull(v, nullptr, 10);
  } else {
    seed = std::random_device{}();
  }
  std::printf("[ seed     ] GORO_TEST_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

// Keeps a local array in its function's frame at full size, for tests that use a
// given amount of stack. Clang splits a local array whose elements are only reached at
// constant indices into separate scalars, volatile or not, and the frame shrinks to
// them (a `volatile char[96 * 1024]` with one byte written took 16 bytes); an array
// whose address escapes stays one object. The empty asm statement emits no code.
template <class T>
inline void keep_whole(T& array) {
  asm volatile("" : : "r"(&array) : "memory");
}

class procs_test : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    goro::set_max_procs(GetParam());
    baseline_ = goro::debug::goroutine_ids();
  }
  void TearDown() override {
    // Fails with the dump of every goroutine the test left behind.
    goro::testing::expect_no_leaks(baseline_, {.grace = 3000ms});
  }
  std::vector<std::uint64_t> baseline_;
};

}  // namespace goro_test

#define GORO_PROCS_SUITE(suite)                 \
  INSTANTIATE_TEST_SUITE_P(                     \
      procs, suite, ::testing::Values(1, 2, 4), \
      [](const ::testing::TestParamInfo<int>& i) { return "p" + std::to_string(i.param); })
