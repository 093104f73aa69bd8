// steal_test — how work stealing treats goroutines that hand off to each other. Run
// natively only (label `unit`): the thief judges a steal by how soon the goroutines it
// took were done, in microseconds of native execution, which under an emulator (qemu
// runs the aarch64 build ~10-30x slower) no hand-off is.
#include <array>
#include <optional>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

// W6's shape: one consumer selecting over four unbuffered channels, four producers.
// Each receive readies a producer on the consumer's processor and pushes the one
// readied before out of runnext into the ring. A second processor that took those at
// once split the partners across two cores for good: 40% of the receives were steals,
// every channel operation a cache-line transfer, 3-5x slower than on one processor.
// Now a thief whose steals were futile leaves them until they have settled or waited
// (find_work.cpp, judge_last_steal; run_queue.hpp, steal_rule).
TEST(scheduler, goroutines_that_hand_off_to_each_other_stay_on_one_processor) {
#if !defined(NDEBUG) || defined(GORO_ASAN) || defined(GORO_TSAN)
  GTEST_SKIP() << "judges microseconds of optimized native execution; the sanitizer "
                  "and debug builds make every hand-off several times longer";
#endif
  goro::set_max_procs(2);
  constexpr long n = 200'000;
  std::uint64_t before = goro::debug::metrics().steals_total;
  goro::wait_group wg;
  wg.go([] {
    std::array<goro::chan<long>, 4> chs;
    for (auto& c : chs) c = goro::make_chan<long>();
    goro::wait_group producers;
    for (auto& c : chs) {
      producers.go([c] {
        for (long j = 0; j < n / 4; ++j) c.send(j);
      });
    }
    std::optional<long> v;
    for (long k = 0; k < n; ++k) {
      goro::select(goro::case_recv(chs[0], v), goro::case_recv(chs[1], v),
                   goro::case_recv(chs[2], v), goro::case_recv(chs[3], v));
    }
    producers.wait();
  });
  wg.wait();
  std::uint64_t steals = goro::debug::metrics().steals_total - before;
  EXPECT_LT(steals, static_cast<std::uint64_t>(n / 20))
      << steals << " steals in " << n << " receives: the partners were split across processors";
}

}  // namespace
