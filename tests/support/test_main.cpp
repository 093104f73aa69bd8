// The test main: death tests re-execute the binary ("threadsafe" style), because the
// runtime's worker threads make fork-only death tests unsafe.
#include <gtest/gtest.h>

#if defined(__SANITIZE_THREAD__)
// Debian's cpp-httplib is a shared library built without ThreadSanitizer: the
// sanitizer sees its memcmp/memcpy calls but not the atomics that order them, and
// reports races between the debug server's workers inside it that it cannot judge.
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libcpp-httplib.so\n";
}
#endif

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  return RUN_ALL_TESTS();
}
