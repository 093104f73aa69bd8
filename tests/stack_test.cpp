// stack_test — stacks: deep use within the limit works; overflow is reported; the
// memory of released stacks goes back to the OS.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "runtime/goroutine.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/stack.hpp"
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

// Where the frames of the two deepest levels of the last recursion below were (atomic:
// other tests recurse in many goroutines at once; only the overflow tests read it).
std::atomic<std::uintptr_t> frame_at[2];
void note_frame(int depth, const volatile char* frame) {
  auto at = reinterpret_cast<std::uintptr_t>(frame);
  if (depth < 2) frame_at[depth].store(at, std::memory_order_relaxed);
}

// About 600 bytes of stack per level; every frame is written, as real code writes
// its locals.
__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[512];
  for (auto& c : frame) c = static_cast<char>(depth | 1);
  note_frame(depth, &frame[0]);
  if (depth == 0) return frame[0];
  return recurse(depth - 1) + frame[511];
}

// For an unguarded overflow that stays inside the stack's own guard slot (writing no
// memory of anything else, which a fixed depth could, as compilers and sanitizers lay
// frames out differently): the levels of `f` that reach from the calling goroutine's
// frame to about `below` bytes under the bottom of its stack, and the size of one level.
// `calibrate` runs `f` a few levels deep, so that frame_at holds its frame size.
struct overflow_depth {
  int levels;
  std::size_t frame_bytes;
};
overflow_depth levels_to_overflow(std::size_t below, void (*calibrate)()) {
  calibrate();
  auto frame_bytes = static_cast<std::size_t>(frame_at[1].load(std::memory_order_relaxed) -
                                              frame_at[0].load(std::memory_order_relaxed));
  auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  auto lo = reinterpret_cast<std::uintptr_t>(goro::detail::current_goroutine()->stack.lo);
  return {static_cast<int>((here - lo + below) / frame_bytes) + 1, frame_bytes};
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
  keep_whole(frame);
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

// The process's resident memory in bytes (/proc/self/statm), or -1.
std::int64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = -1;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident < 0 ? -1 : std::int64_t{resident} * sysconf(_SC_PAGESIZE);
}

// Parks the calling goroutine for good. A receive that no send will ever match always
// switches away; a short sleep need not: its timer can fire before the goroutine parks
// (a thread preempted for a millisecond, or qemu translating the park path the first
// time), and then the goroutine never switches while deep.
__attribute__((noinline)) void park_for_good() {
  auto never = goro::make_chan<int>();
  (void)never.recv();
}

// Recurses about 600 bytes per level and, when `park`, parks for good at the deepest one.
__attribute__((noinline)) int recurse_then_park(int depth, bool park) {
  volatile char frame[512];
  for (auto& c : frame) c = static_cast<char>(depth | 1);
  note_frame(depth, &frame[0]);
  if (depth == 0) {
    if (park) park_for_good();
    return frame[0];
  }
  return recurse_then_park(depth - 1, park) + frame[511];
}

TEST(stack_overflow, unguarded_overflow_switching_while_deep_is_caught) {
  // With no guard pages allowed (as beyond the mapping budget), a goroutine that
  // switches while past the bottom of its stack is named, on every kernel.
  EXPECT_DEATH(
      {
        setenv("GORO_STACK_GUARDS", "0", 1);
        goro::go([] {
          recurse_then_park(levels_to_overflow(1536, [] { recurse_then_park(3, false); }).levels,
                            true);
        });
        std::this_thread::sleep_for(10s);
      },
      overflow_message);
}

// Recurses `depth` levels of about 600 bytes and, on the way back, parks for good in the
// frame `park_level` levels above the deepest one.
__attribute__((noinline)) int overflow_then_park(int depth, int park_level) {
  volatile char frame[512];
  for (auto& c : frame) c = static_cast<char>(depth | 1);
  note_frame(depth, &frame[0]);
  if (depth == 0) return frame[0];
  int r = overflow_then_park(depth - 1, park_level) + frame[511];
  if (depth == park_level) park_for_good();
  return r;
}

TEST(stack_overflow, unguarded_overflow_then_a_switch_in_the_lowest_quarter_is_caught) {
  // With no guard pages allowed: an overflow (~1.5 KiB past the bottom of the stack)
  // that returns to a frame ~6 KiB above the bottom and parks there is caught by the
  // reserve zone, read at a switch in the lowest quarter on every kernel.
  EXPECT_DEATH(
      {
        setenv("GORO_STACK_GUARDS", "0", 1);
        goro::go([] {
          auto d = levels_to_overflow(1536, [] { overflow_then_park(3, -1); });
          overflow_then_park(d.levels, static_cast<int>((6144 + 1536) / d.frame_bytes));
        });
        std::this_thread::sleep_for(10s);
      },
      overflow_message);
}

TEST(stack_overflow, unguarded_overflow_is_caught) {
  // With no guard pages allowed (as beyond the mapping budget), the reserve zone
  // check or the fault handler still names the goroutine.
  goro::run([] {});  // the runtime probes the kernel once, when it starts
  if (goro::detail::zone_reads_commit.load()) {
    GTEST_SKIP() << "this kernel commits a page when untouched memory is read, so the "
                    "reserve zone of an unguarded stack is read only at a switch in the "
                    "lowest quarter of the stack (runtime/stack.hpp): an overflow that "
                    "returns before one is not caught here";
  }
  EXPECT_DEATH(
      {
        setenv("GORO_STACK_GUARDS", "0", 1);
        goro::go([] {
          // ~1.5 KiB past the bottom of the stack, then back.
          recurse(levels_to_overflow(1536, [] { recurse(3); }).levels);
          goro::yield();
        });
        std::this_thread::sleep_for(10s);
      },
      overflow_message);
}

// Parks 5,000 goroutines with no guard pages allowed and exits 0 when each costs
// less than a page and 3,000 bytes of resident memory (the page its frames touched,
// its descriptor, its task; two pages if its stack's bottom page were read in too).
[[noreturn]] void park_crowd_without_guards() {
  setenv("GORO_STACK_GUARDS", "0", 1);
  constexpr int n = 5000;
  auto ch = goro::make_chan<int>();
  goro::wait_group parked;
  parked.add(n);
  std::int64_t before = -1, after = -1;
  goro::run([&] {
    goro::sleep(10ms);  // the runtime and its threads first
    before = resident_bytes();
    for (int i = 0; i < n; ++i) {
      goro::go([&] {
        parked.done();
        ch.recv();
      });
    }
    parked.wait();
    goro::sleep(50ms);
    after = resident_bytes();
    ch.close();
  });
  double per = static_cast<double>(after - before) / n;
  std::fprintf(stderr, "%.0f bytes per parked goroutine\n", per);
  std::exit(before > 0 && per < static_cast<double>(sysconf(_SC_PAGESIZE) + 3000) ? 0 : 1);
}

TEST(stack_memory, a_parked_goroutine_on_an_unguarded_stack_costs_about_one_page) {
#if GORO_TEST_ASAN || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers' shadow memory and fake stacks change what a stack costs";
#endif
  // Beyond the guard budget (none here) a stack's reserve zone is checked without
  // committing its bottom page, on kernels with a shared zero page and without one:
  // a parked goroutine costs the page its frames touched and its descriptor.
  EXPECT_EXIT(park_crowd_without_guards(), testing::ExitedWithCode(0),
              "bytes per parked goroutine");
}

// ---- memory of released stacks --------------------------------------------------


// Writes one byte in every page of 16 KiB frames down to `bytes` below the caller.
__attribute__((noinline)) int touch_stack(std::size_t bytes) {
  volatile char frame[16 * 1024];
  keep_whole(frame);
  for (std::size_t i = 0; i < sizeof frame; i += 1024) frame[i] = 1;
  if (bytes <= sizeof frame) return frame[0];
  return touch_stack(bytes - sizeof frame) + frame[1024];
}

TEST(stack_memory, a_released_big_stack_goes_back_to_the_os_while_every_worker_is_busy) {
#if GORO_TEST_ASAN
  if (__asan_get_current_fake_stack() != nullptr) {
    GTEST_SKIP() << "ASAN's detect_stack_use_after_return puts the frames on its fake "
                    "stack: the goroutine stack is not touched";
  }
#endif
  // Under the sanitizers the shadow of the touched stack stays resident (TSAN's is
  // several times its size), but the stack's own pages still go: the drop is measured.
  constexpr std::int64_t mib = 1 << 20;
  goro::set_max_procs(2);
  // Goroutines that keep both processors busy, so that no worker ever goes idle.
  std::atomic<bool> stop{false};
  goro::wait_group busy;
  for (int i = 0; i < 4; ++i) {
    busy.go([&] {
      while (!stop.load(std::memory_order_relaxed)) goro::yield();
    });
  }
  std::int64_t before = resident_bytes();
  std::atomic<std::int64_t> peak{-1};
  goro::wait_group big;
  big.add(1);
  goro::go(goro::spawn_options{.stack_size = 256 << 20}, [&] {
    touch_stack(200 * mib);
    peak = resident_bytes();
    big.done();
  });
  big.wait();
  ASSERT_GE(peak.load(), before + 180 * mib) << "the goroutine did not touch its stack";
  auto released = steady::now();
  std::int64_t after = resident_bytes();
  bool returned = eventually(
      [&] {
        after = resident_bytes();
        return after <= peak.load() - 150 * mib;
      },
      2000ms);
  double took_ms = ms_since(released);
  if (returned) {
    // For the record only: where it settles once the madvise has finished.
    eventually([&] { return (after = resident_bytes()) <= before + 16 * mib; }, 500ms);
  }
  stop = true;
  busy.wait();
  std::printf("[ rss      ] before %lld MiB, stack touched %lld MiB, %s after %.0f ms: %lld MiB\n",
              static_cast<long long>(before / mib), static_cast<long long>(peak.load() / mib),
              returned ? "returned" : "still resident", took_ms,
              static_cast<long long>(after / mib));
  EXPECT_TRUE(returned) << "resident memory stayed at " << after / mib << " MiB ("
                        << peak.load() / mib << " MiB while the stack was in use)";
}

}  // namespace
