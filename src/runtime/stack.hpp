// stack.hpp — goroutine stacks: pooled, lazily committed, overflow reported where it
// can be detected (README, Limitations, says exactly where).
//
// Design (the numbers are for a default Linux: vm.max_map_count = 65530):
//   - Stacks are carved from slabs: one mmap(MAP_NORESERVE) holds many stacks, so
//     a million stacks cost ~16k mappings, not a million. The kernel commits a page
//     only when it is touched, so a parked goroutine costs the pages its frames used
//     (usually one) plus its descriptor.
//   - Guard pages where the mapping budget allows: every stack has a one-page guard
//     slot below it; making it PROT_NONE splits the slab's mapping, costing two map
//     entries per stack, so at most `guard_budget` stacks (about
//     (max_map_count - 32768) / 2, 16k by default) get one. The first 1024 stacks
//     (every one within the budget where zone_reads_commit, below) get it when
//     carved; after that the mprotect is done by idle workers
//     (harden_stacks), not when a goroutine starts, because during a burst of spawns
//     it costs more than the rest of a spawn; they also harden warm stacks handed out
//     unguarded. A fault in a guard page is reported as a stack overflow by the
//     SIGSEGV handler. A frame larger than the guard page reaches it only when built
//     with -fstack-clash-protection (goro's build and CMake package add it).
//   - Stacks without a guard page (not yet hardened, or beyond the budget) are
//     protected by a reserve zone: the lowest `reserve_bytes` must stay zero, and the
//     saved stack pointer must stay above it. The pointer is checked at every switch
//     away. Where the kernel maps the shared zero page for a read of untouched memory
//     (stock Linux), so is the zone: reading it costs a fault once per stack and no
//     memory. Where a read commits a page (some virtual machines' kernels: measured
//     at ~14 us and 4 KiB per stack, which doubled a parked goroutine's memory), the
//     zone is read only at a switch in the lowest quarter of the stack, where the
//     goroutine's own frames are near it (zone_reads_commit, found at start-up). A
//     frame that jumps over the zone and returns before the next switch is not
//     caught; there, neither is a deeper excursion that returns before a switch in
//     the lowest quarter, unless it faults on unmapped memory.
//   - Released stacks go to a bounded per-processor cache and a bounded global warm
//     pool (32 MiB per stack size); beyond that they are dirty: their pages are
//     returned to the OS (madvise DONTNEED) and the address range is kept for reuse.
//     The returns are batched (sorted, neighbours merged) and done by workers that
//     have been idle for a while, or, busy or not, by a scavenger thread once dirty
//     stacks add up to 64 MiB (counted in bytes: one big stack is enough) and stop
//     growing for 50 ms — never by the worker releasing the stack, because each
//     madvise of committed pages costs a TLB shootdown on every processor.
#pragma once

#include <atomic>

#include <cstddef>
#include <cstdint>

namespace goro::detail {

struct stack_slot {
  char* lo = nullptr;    // lowest usable byte (the reserve zone starts here)
  char* hi = nullptr;    // one past the highest byte; the initial frame goes below
  bool guarded = false;  // a PROT_NONE page lies just below lo
};

inline constexpr std::size_t default_stack_size = 64 * 1024;
inline constexpr std::size_t min_stack_size = 16 * 1024;
inline constexpr std::size_t max_stack_size = std::size_t{1} << 30;
inline constexpr std::size_t reserve_bytes = 256;  // bottom zone that must stay zero
// The system's page size (4 KiB on x86-64; 4, 16 or 64 KiB on aarch64 kernels): the
// guard slot below every stack is one page, and stacks are whole pages, so that
// mprotect and madvise act on exactly a guard or a stack. From the auxiliary vector,
// so it is async-signal-safe (the fault handler asks too).
std::size_t page_bytes() noexcept;

// Rounds a requested size to what the pool hands out; throws panic_error when it is
// out of [min_stack_size, max_stack_size]. 0 means the default.
std::size_t normalize_stack_size(std::size_t requested);

// A per-processor cache of default-size stacks (no locking: owned by one worker).
struct stack_cache {
  static constexpr int capacity = 32;
  stack_slot slots[capacity];
  int count = 0;
};

// Takes a stack of `size` bytes (normalized). Aborts with a clear message when the
// OS refuses memory for it (a goroutine cannot start without a stack).
stack_slot acquire_stack(stack_cache* cache, std::size_t size);
void release_stack(stack_cache* cache, stack_slot s, std::size_t size) noexcept;
// Gives every stack in `cache` to the shared pool (a processor whose thread ends).
void flush_stack_cache(stack_cache* cache) noexcept;

// Returns the pages of released stacks beyond the warm pool to the OS. Called by
// workers idle for a while, and by the scavenger thread once dirty stacks pass their
// byte limit.
void scavenge_stacks() noexcept;

// Gives up to `max` unused stacks their guard page (idle workers call this).
void harden_stacks(int max) noexcept;

bool reserve_zone_clean(const stack_slot& s) noexcept;

// Stack memory, for goro::debug::metrics(): address space mapped for stacks (guard
// slots included), the part of it resident in memory (mincore over every slab, so it
// costs a system call per slab), and the bytes of stacks in the shared pools (stacks
// bound to goroutines and those in processors' caches are the rest).
struct stack_memory {
  std::size_t reserved = 0;
  std::size_t committed = 0;
  std::size_t pooled = 0;
};
stack_memory stack_memory_stats();

// Whether reading untouched stack memory commits a page on this kernel (no shared
// zero page for anonymous read faults); set once by probe_zone_reads() when the
// runtime starts, before any goroutine runs.
extern std::atomic<bool> zone_reads_commit;
void probe_zone_reads() noexcept;

// True when `sp` lies above the reserve zone and, for an unguarded stack, the zone
// is still clean (a guarded stack's overflow faults on its guard page instead). See
// the design notes above for when the zone is read.
inline bool stack_intact(const stack_slot& s, const void* sp) noexcept {
  auto* p = static_cast<const char*>(sp);
  if (p < s.lo + reserve_bytes || p > s.hi) return false;
  if (s.guarded) return true;
  if (zone_reads_commit.load(std::memory_order_relaxed) && p - s.lo > (s.hi - s.lo) / 4) {
    return true;
  }
  return reserve_zone_clean(s);
}

// True when `addr` is in the guard page or reserve zone of `s` (a fault there is an
// overflow of that stack).
bool in_overflow_zone(const stack_slot& s, const void* addr) noexcept;

}  // namespace goro::detail
