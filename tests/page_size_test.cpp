// page_size_test — goroutine stacks on a kernel whose pages are larger than 4 KiB
// (aarch64 kernels with 16 KiB or 64 KiB pages). The test simulates one: it defines
// mmap, mprotect, madvise and getauxval, which goro's calls bind to, so that mappings
// are 16 KiB-aligned, mprotect and madvise refuse an unaligned address and act on whole
// 16 KiB pages, and the page size reported is 16 KiB. With 4 KiB guard slots assumed,
// mprotect either failed (no guard) or took the bottom 12 KiB of a neighbouring stack
// with it (a goroutine using most of its stack then faulted).
#include <dlfcn.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "support/fixture.hpp"

namespace {
constexpr std::uintptr_t sim_page = 16 * 1024;
constexpr std::uintptr_t round_up(std::uintptr_t n) { return (n + sim_page - 1) & ~(sim_page - 1); }
}  // namespace

extern "C" {
unsigned long getauxval(unsigned long type) {
  using fn = unsigned long (*)(unsigned long);
  static fn real = reinterpret_cast<fn>(dlsym(RTLD_NEXT, "getauxval"));
  if (type == AT_PAGESZ) return sim_page;
  return real(type);
}
void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  std::uintptr_t n = round_up(len);
  if (addr != nullptr || (flags & MAP_FIXED) || fd != -1) {
    return reinterpret_cast<void*>(syscall(SYS_mmap, addr, n, prot, flags, fd, off));
  }
  long r = syscall(SYS_mmap, nullptr, n + sim_page, prot, flags, -1, 0);
  if (r == -1) return MAP_FAILED;
  auto b = static_cast<std::uintptr_t>(r);
  std::uintptr_t a = round_up(b);
  if (a > b) syscall(SYS_munmap, b, a - b);
  if (b + n + sim_page > a + n) syscall(SYS_munmap, a + n, b + n + sim_page - (a + n));
  return reinterpret_cast<void*>(a);
}
int mprotect(void* addr, size_t len, int prot) {
  if (reinterpret_cast<std::uintptr_t>(addr) % sim_page) {
    errno = EINVAL;
    return -1;
  }
  return static_cast<int>(syscall(SYS_mprotect, addr, round_up(len), prot));
}
int madvise(void* addr, size_t len, int advice) {
  if (reinterpret_cast<std::uintptr_t>(addr) % sim_page) {
    errno = EINVAL;
    return -1;
  }
  return static_cast<int>(syscall(SYS_madvise, addr, round_up(len), advice));
}
}

namespace {

[[gnu::noinline]] int use_stack(int kib) {
  volatile char buf[1024];
  std::memset(const_cast<char*>(buf), kib, sizeof buf);
  int r = buf[kib % 1024];
  if (kib > 1) r += use_stack(kib - 1);
  return r;
}

TEST(page_size, every_stack_keeps_its_whole_size_with_16k_pages) {
  ASSERT_EQ(getauxval(AT_PAGESZ), sim_page) << "the simulation is not in effect";
  goro::set_max_procs(2);
  // Many goroutines alive at once, each using 52 KiB of its 64 KiB stack.
  constexpr int n = 256, kib = 52;
  for (int round = 0; round < 3; ++round) {
    goro::wait_group wg;
    auto gate = goro::make_chan<int>();
    std::atomic<long> sum{0};
    for (int i = 0; i < n; ++i) {
      wg.go([&] {
        gate.recv();
        sum += use_stack(kib);
      });
    }
    gate.close();
    wg.wait();
    EXPECT_EQ(sum.load(), long{n} * (kib * (kib + 1) / 2));
  }
}

TEST(page_size, an_overflow_still_hits_the_guard_page_with_16k_pages) {
  EXPECT_DEATH(
      {
        goro::go([] { use_stack(1000); });
        std::this_thread::sleep_for(std::chrono::seconds(10));
      },
      "goroutine [0-9]+ stack overflow \\(stack size 65536");
}

}  // namespace
