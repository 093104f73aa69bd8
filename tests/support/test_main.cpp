// The test main: death tests re-execute the binary ("threadsafe" style), because the
// runtime's worker threads make fork-only death tests unsafe.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  return RUN_ALL_TESTS();
}
