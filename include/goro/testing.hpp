// goro/testing.hpp — GoogleTest helpers: fail a test that leaks goroutines.
//
// Header-only, and the only goro header that needs GoogleTest. Derive a fixture from
// goro::testing::no_leaks_test (or call goro::testing::expect_no_leaks yourself): after
// each test, every goroutine started during it must have exited within the grace
// period, or the test fails with their dump (goroutine, wait reason, stack, creation
// site), like uber-go/goleak.
//
// Blocking: TearDown waits up to the grace period for goroutines to finish.
// Thread-safety: as GoogleTest. Panics: none.
//
// Example:
//   class server_test : public goro::testing::no_leaks_test {};
//   TEST_F(server_test, stops_cleanly) { start_server(); stop_server(); }
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "goro/debug.hpp"

namespace goro::testing {

// Adds a non-fatal failure with the dump if goroutines other than `baseline` (and the
// ignored ones in `options`) are still alive after the grace period. Blocks (parks a
// goroutine) for up to the grace period while they finish.
inline void expect_no_leaks(const std::vector<std::uint64_t>& baseline,
                            goro::debug::leak_options options = {}) {
  options.baseline = baseline;
  if (goro::error leaks = goro::debug::check_no_leaks(options)) {
    ADD_FAILURE() << leaks.message();
  }
}

// A fixture that records the live goroutines before each test (SetUp) and, in
// TearDown, fails the test if goroutines started since are still alive after the grace
// period. Override leak_options() to ignore known goroutines or change the grace
// period; its baseline is replaced by the recorded one.
class no_leaks_test : public ::testing::Test {
 protected:
  void SetUp() override { baseline_ = goro::debug::goroutine_ids(); }
  void TearDown() override { expect_no_leaks(baseline_, leak_options()); }
  virtual goro::debug::leak_options leak_options() const { return {}; }

 private:
  std::vector<std::uint64_t> baseline_;
};

}  // namespace goro::testing
