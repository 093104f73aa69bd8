// stack.cpp — slabs, the warm pool and the guard budget. See stack.hpp for the design.
//
// Invariants:
//   - Every stack ever carved stays mapped for the life of the process: a stack_slot
//     is either bound to a goroutine, in a processor's cache, or in its size's pool
//     (warm: pages may be committed; dirty: to be returned; cold: pages returned to
//     the OS; fresh: never used and not yet guarded).
//   - Every stack has a one-page guard slot below it. It is ordinary, untouched memory
//     until the stack is hardened (mprotect PROT_NONE, s.guarded = true). The first
//     eager_harden_limit stacks (every one within the budget where zone_reads_commit:
//     see stack.hpp) are hardened when carved; later ones are not, because
//     an mprotect per stack during a burst of spawns is the most expensive part of
//     starting a goroutine. Idle workers harden fresh stacks, then the unguarded
//     ones in the warm lists (harden_stacks); returned stacks are hardened when their
//     pages go back. All within the budget; a guard page, once made, stays.
//   - A pool's lists are guarded by that pool's lock; the pool table by its lock. The
//     dirty list is threaded through the stacks themselves (dirty_link).
//   - dirty_bytes is the sum of the sizes of the stacks in every dirty list, except
//     for a batch the scavenger has taken out but not yet subtracted (never below it).
//   - guarded_stacks only grows; no more than guard_budget stacks get a guard page.
#include "runtime/stack.hpp"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <system_error>
#include <thread>
#include <utility>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "goro/panic.hpp"
#include "runtime/sys.hpp"

#if defined(GORO_ASAN)
#include <sanitizer/lsan_interface.h>
#endif

namespace goro::detail {
void note_runtime_thread(int delta) noexcept;  // scheduler.cpp
namespace {

constexpr std::size_t slab_target_bytes = 4 << 20;       // ~4 MiB of stacks per mmap
constexpr std::size_t warm_pool_limit_bytes = 32 << 20;  // beyond this, pages go back

// Dirty stacks are returned by idle workers, and in the background by the scavenger
// thread once their bytes pass dirty_limit_bytes, busy or not (Go's background
// scavenger). Never by the releasing worker: a madvise of thousands of stacks in the
// middle of a burst of exits stalls it. Bytes, not stacks: one released 256 MiB stack
// may hold more committed memory than thousands of default ones. A stack is counted at
// its full size (how much of it was touched is not known without a system call), so
// once a burst of releases is over, dirty stacks keep at most that much resident.
constexpr std::size_t dirty_limit_bytes = 64 << 20;
constexpr auto scavenger_delay = std::chrono::milliseconds(50);

std::atomic<std::uint32_t> scavenger_signal{0};  // futex word: 1 = work requested
// Bytes of the stacks in dirty lists, all pools. Relaxed: the scavenger's trigger and
// timing only; each list itself is under its pool's lock.
std::atomic<std::size_t> dirty_bytes{0};
std::once_flag scavenger_started;

void scavenger_main() {
  for (;;) {
    while (scavenger_signal.exchange(0, std::memory_order_acq_rel) == 0) {
      futex_wait(&scavenger_signal, 0);
    }
    // Let the burst that produced the dirty stacks finish (and reuse some) first:
    // wait until the dirty bytes stop growing, for at most a second.
    std::size_t before = dirty_bytes.load(std::memory_order_relaxed);
    for (int waited = 0; waited < 20; ++waited) {
      std::this_thread::sleep_for(scavenger_delay);
      std::size_t now = dirty_bytes.load(std::memory_order_relaxed);
      if (now <= before) break;
      before = now;
    }
    scavenge_stacks();
  }
}

void request_scavenge() {
  std::call_once(scavenger_started, [] {
    note_runtime_thread(+1);
    try {
      std::thread(scavenger_main).detach();
    } catch (const std::system_error&) {
      note_runtime_thread(-1);  // no thread: idle workers still scavenge
    }
  });
  // A plain load first: during a burst of releases past the limit, most find the
  // request already made and do not write the shared line.
  if (scavenger_signal.load(std::memory_order_relaxed) == 0 &&
      scavenger_signal.exchange(1, std::memory_order_acq_rel) == 0) {
    futex_wake(&scavenger_signal, 1);
  }
}

// A stack in a dirty list. The link lives in the top bytes of the stack itself, whose
// page the goroutine that ran there has committed: releasing a stack beyond the warm
// limit allocates nothing and faults in no page. (A vector grown by doubling to hold
// the 100,000 stacks of a burst faulted in about 5 MB on the release path.) Read and
// written only under the pool's lock, or by the scavenger that took the list out;
// not instrumented: the stack's last frames may have left sanitizer state there.
struct dirty_link {
  stack_slot slot;
  dirty_link* next;
};

__attribute__((no_sanitize("address", "thread"))) dirty_link* link_dirty(const stack_slot& s,
                                                                         dirty_link* next) {
  auto* l = reinterpret_cast<dirty_link*>(s.hi - sizeof(dirty_link));
  l->slot = s;
  l->next = next;
  return l;
}

__attribute__((no_sanitize("address", "thread"))) stack_slot unlink_dirty(const dirty_link* l,
                                                                          dirty_link** next) {
  *next = l->next;
  return l->slot;
}

struct size_pool {
  std::size_t size = 0;
  spinlock lock;
  std::vector<stack_slot> warm;            // under lock: pages may be committed, reused first
  dirty_link* dirty = nullptr;             // under lock: beyond the warm limit, to be returned
  std::size_t dirty_count = 0;             // under lock: the length of `dirty`
  std::vector<stack_slot> cold;            // under lock: pages returned to the OS
  std::vector<stack_slot> fresh;           // under lock: never used, not yet hardened
  std::atomic<std::size_t> unhardened{0};  // fresh.size(), readable without the lock
  // Stacks in `warm` without a guard page (taken fresh, or carved beyond the eager
  // limit, before an idle worker hardened them); under lock, readable without it.
  std::atomic<std::size_t> unguarded_warm{0};
};

// The table of pools by size. Never destroyed: worker threads outlive main().
struct pool_table {
  std::mutex lock;
  std::vector<size_pool*> pools;  // under lock; never shrinks, entries never freed
  // Every slab mapped (never unmapped): start and length, for metrics. Under lock.
  std::vector<std::pair<char*, std::size_t>> slabs;
};
pool_table& table() {
  static pool_table* const t = new pool_table;
  return *t;
}
std::atomic<long> guarded_stacks{0};
constexpr long eager_harden_limit = 1024;  // stacks guarded when carved; later ones lazily
std::atomic<long> eager_hardened{0};

long compute_guard_budget() {
  long max_maps = 65530;
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    if (std::fscanf(f, "%ld", &max_maps) != 1) max_maps = 65530;
    std::fclose(f);
  }
  // Leave 32k map entries to the program (malloc arenas, libraries, unguarded slabs).
  long budget = (max_maps - 32768) / 2;
  // GORO_STACK_GUARDS lowers the budget (0: no guard pages; tests use it).
  if (const char* v = std::getenv("GORO_STACK_GUARDS")) {
    char* end = nullptr;
    long want = std::strtol(v, &end, 10);
    if (*v != '\0' && *end == '\0' && want >= 0 && want < budget) budget = want;
  }
  return budget > 0 ? budget : 0;
}

long guard_budget() {
  static const long budget = compute_guard_budget();
  return budget;
}

size_pool* pool_for(std::size_t size) {
  pool_table& t = table();
  std::lock_guard lk(t.lock);
  for (auto* p : t.pools) {
    if (p->size == size) return p;
  }
  auto* p = new size_pool;
  p->size = size;
  t.pools.push_back(p);
  return p;
}

size_pool* default_pool() {
  static size_pool* const p = pool_for(default_stack_size);
  return p;
}

[[noreturn]] void out_of_stack_memory(std::size_t size) {
  std::fprintf(stderr, "fatal error: goro: out of memory for a goroutine stack (%zu bytes): %s\n",
               size, std::strerror(errno));
  std::abort();
}

// Turns the guard slot of `s` into a guard page if the budget allows.
void harden(stack_slot& s) noexcept {
  if (s.guarded) return;
  // Relaxed: the budget is a soft limit on map entries, not a synchronisation point.
  if (guarded_stacks.fetch_add(1, std::memory_order_relaxed) + 1 > guard_budget()) {
    guarded_stacks.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  if (mprotect(s.lo - page_bytes(), page_bytes(), PROT_NONE) == 0) {
    s.guarded = true;
  } else {
    guarded_stacks.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Maps a new slab for `pool`, puts all but one of its stacks in the fresh list and
// returns that one. Called without pool->lock: the system call takes microseconds.
stack_slot carve_slab(size_pool* pool) {
  std::size_t size = pool->size;
  std::size_t count = slab_target_bytes / size;
  if (count < 1) count = 1;
  std::size_t stride = size + page_bytes();  // a guard slot below every stack
  void* base = mmap(nullptr, stride * count, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) out_of_stack_memory(size);
  {
    pool_table& t = table();
    std::lock_guard tl(t.lock);
    t.slabs.emplace_back(static_cast<char*>(base), stride * count);
  }
  auto* at = static_cast<char*>(base);
  std::vector<stack_slot> rest;
  rest.reserve(count - 1);
  for (std::size_t i = 0; i < count; ++i, at += stride) {
    stack_slot s{};
    s.lo = at + page_bytes();
    s.hi = s.lo + size;
    rest.push_back(s);
  }
  // The first stacks a program makes get their guard page at once: most programs
  // never have more goroutines than that, and it costs them a few milliseconds.
  // Where reading the reserve zone would commit a page (zone_reads_commit), every
  // stack the budget allows does: an mprotect (~3 us there) costs less than that
  // read's fault (~14 us) and 4 KiB, and it keeps the full overflow check.
  bool eager = eager_hardened.fetch_add(static_cast<long>(count), std::memory_order_relaxed) <
                   eager_harden_limit ||
               (zone_reads_commit.load(std::memory_order_relaxed) &&
                guarded_stacks.load(std::memory_order_relaxed) < guard_budget());
  if (eager) {
    for (auto& s : rest) harden(s);
  }
  stack_slot first = rest.back();
  rest.pop_back();
  std::lock_guard lk(pool->lock);
  auto& list = eager ? pool->cold : pool->fresh;
  list.insert(list.end(), rest.begin(), rest.end());
  pool->unhardened.store(pool->fresh.size(), std::memory_order_relaxed);
  return first;
}

stack_slot take_from_pool(size_pool* pool) {
  {
    std::lock_guard lk(pool->lock);
    if (pool->warm.empty() && pool->dirty != nullptr) {
      stack_slot s = unlink_dirty(pool->dirty, &pool->dirty);
      --pool->dirty_count;
      dirty_bytes.fetch_sub(pool->size, std::memory_order_relaxed);
      return s;
    }
    for (auto* list : {&pool->warm, &pool->cold, &pool->fresh}) {
      if (!list->empty()) {
        stack_slot s = list->back();
        list->pop_back();
        if (list == &pool->warm && !s.guarded) {
          pool->unguarded_warm.fetch_sub(1, std::memory_order_relaxed);
        }
        pool->unhardened.store(pool->fresh.size(), std::memory_order_relaxed);
        return s;
      }
    }
  }
  return carve_slab(pool);
}

// Returns the pages of `batch` to the OS and moves the stacks to the cold list.
// Sorting lets neighbouring stacks of a slab (and the guard pages between them, which
// madvise accepts) go back in one call, so a batch costs a few system calls and TLB
// shootdowns instead of one per stack.
void scavenge(size_pool* pool, std::vector<stack_slot>& batch) noexcept {
  std::sort(batch.begin(), batch.end(),
            [](const stack_slot& a, const stack_slot& b) { return a.lo < b.lo; });
  std::size_t i = 0;
  while (i < batch.size()) {
    char* lo = batch[i].lo;
    char* hi = batch[i].hi;
    std::size_t j = i + 1;
    while (j < batch.size() && batch[j].lo == hi + page_bytes()) {
      hi = batch[j].hi;
      ++j;
    }
    madvise(lo, static_cast<std::size_t>(hi - lo), MADV_DONTNEED);
    i = j;
  }
  for (auto& s : batch) harden(s);
  std::lock_guard lk(pool->lock);
  pool->cold.insert(pool->cold.end(), batch.begin(), batch.end());
}

void give_to_pool(size_pool* pool, stack_slot s) noexcept {
  std::size_t warm_limit = warm_pool_limit_bytes / pool->size;
  std::size_t dirty;
  {
    std::lock_guard lk(pool->lock);
    if (pool->warm.size() < warm_limit) {
      pool->warm.push_back(s);
      if (!s.guarded) pool->unguarded_warm.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pool->dirty = link_dirty(s, pool->dirty);
    ++pool->dirty_count;
    // Under the lock, so that a taker's subtraction never comes first.
    dirty = dirty_bytes.fetch_add(pool->size, std::memory_order_relaxed) + pool->size;
  }
  if (dirty >= dirty_limit_bytes) request_scavenge();
}

// LeakSanitizer scans threads' stacks, globals and the heap for pointers, but not
// goroutine stacks: they are our own mmapped memory. A stack is registered as a root
// region while a goroutine owns it, so what a parked goroutine holds is reachable,
// and unregistered when it is released, so stale pointers left in pooled stacks do
// not hide real leaks. (Slabs are never unmapped; no other runtime memory that holds
// pointers is mmapped.)
void note_stack_owned(const stack_slot& s) noexcept {
#if defined(GORO_ASAN)
  __lsan_register_root_region(s.lo, static_cast<std::size_t>(s.hi - s.lo));
#else
  (void)s;
#endif
}

void note_stack_released(const stack_slot& s) noexcept {
#if defined(GORO_ASAN)
  __lsan_unregister_root_region(s.lo, static_cast<std::size_t>(s.hi - s.lo));
#else
  (void)s;
#endif
}

}  // namespace

std::size_t page_bytes() noexcept {
  static std::atomic<std::size_t> cached{0};
  std::size_t p = cached.load(std::memory_order_relaxed);
  if (p == 0) {
    p = static_cast<std::size_t>(getauxval(AT_PAGESZ));
    if (p == 0 || (p & (p - 1)) != 0) p = 4096;
    cached.store(p, std::memory_order_relaxed);
  }
  return p;
}

std::size_t normalize_stack_size(std::size_t requested) {
  if (requested == 0) return default_stack_size;
  if (requested < min_stack_size || requested > max_stack_size) {
    throw panic_error("goro: stack_size " + std::to_string(requested) +
                      " out of range [16 KiB, 1 GiB]");
  }
  return (requested + page_bytes() - 1) & ~(page_bytes() - 1);
}

stack_slot acquire_stack(stack_cache* cache, std::size_t size) {
  stack_slot s;
  if (size != default_stack_size) {
    s = take_from_pool(pool_for(size));
  } else if (cache && cache->count > 0) {
    s = cache->slots[--cache->count];
  } else {
    s = take_from_pool(default_pool());
  }
  note_stack_owned(s);
  return s;
}

void release_stack(stack_cache* cache, stack_slot s, std::size_t size) noexcept {
  note_stack_released(s);
  if (size == default_stack_size) {
    if (cache && cache->count < stack_cache::capacity) {
      cache->slots[cache->count++] = s;
      return;
    }
    give_to_pool(default_pool(), s);
    return;
  }
  give_to_pool(pool_for(size), s);
}

void flush_stack_cache(stack_cache* cache) noexcept {
  for (int i = 0; i < cache->count; ++i) give_to_pool(default_pool(), cache->slots[i]);
  cache->count = 0;
}

void scavenge_stacks() noexcept {
  std::vector<size_pool*> all;
  {
    std::lock_guard lk(table().lock);
    all = table().pools;
  }
  for (size_pool* pool : all) {
    dirty_link* list;
    std::size_t count;
    {
      std::lock_guard lk(pool->lock);
      list = std::exchange(pool->dirty, nullptr);
      count = std::exchange(pool->dirty_count, 0);
    }
    if (list == nullptr) continue;
    std::vector<stack_slot> batch;
    batch.reserve(count);
    while (list != nullptr) batch.push_back(unlink_dirty(list, &list));  // before the madvise
    dirty_bytes.fetch_sub(batch.size() * pool->size, std::memory_order_relaxed);
    scavenge(pool, batch);
  }
}

// Relaxed: written once by start_runtime before any worker exists (and by tests).
std::atomic<bool> zone_reads_commit{false};

void probe_zone_reads() noexcept {
  // Read one untouched page and ask /proc/self/pagemap whether it is now a page of
  // this process's own (present, bit 63, and exclusively mapped, bit 56) rather than
  // the shared zero page. Without pagemap, assume the stock kernel's behaviour.
  std::size_t page = page_bytes();
  void* m = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return;
  (void)*static_cast<volatile const char*>(m);
  int pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap >= 0) {
    std::uint64_t e = 0;
    auto offset = static_cast<off_t>(reinterpret_cast<std::uintptr_t>(m) / page * 8);
    if (::pread(pagemap, &e, sizeof e, offset) == static_cast<ssize_t>(sizeof e)) {
      zone_reads_commit.store((e >> 63 & 1) && (e >> 56 & 1), std::memory_order_relaxed);
    }
    ::close(pagemap);
  }
  munmap(m, page);
}

// Not instrumented: the reserve zone is outside every frame, and sanitizers may still
// hold shadow state for it from an earlier goroutine on the same stack.
__attribute__((no_sanitize("address", "thread"))) bool reserve_zone_clean(
    const stack_slot& s) noexcept {
  // The reserve zone must never have been written: an overflow that ran through it
  // left at least a return address there unless its frames were sparse and large.
  auto* words = reinterpret_cast<const std::uint64_t*>(s.lo);
  std::uint64_t any = 0;
  for (std::size_t i = 0; i < reserve_bytes / 8; ++i) any |= words[i];
  return any == 0;
}

namespace {

// Hardens up to `max` stacks taken from `list` (fresh, or the unguarded ones of warm)
// and puts them in `back`; `count` is updated as stacks leave `list`. The mprotects are
// done without the pool's lock.
int harden_from(size_pool* pool, std::vector<stack_slot>& list, std::vector<stack_slot>& back,
                std::atomic<std::size_t>& count, int max) noexcept {
  std::vector<stack_slot> batch;
  {
    std::lock_guard lk(pool->lock);
    for (std::size_t i = list.size(); i > 0 && static_cast<int>(batch.size()) < max; --i) {
      if (list[i - 1].guarded) continue;
      batch.push_back(list[i - 1]);
      list[i - 1] = list.back();
      list.pop_back();
      count.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  for (auto& s : batch) harden(s);
  std::lock_guard lk(pool->lock);
  for (auto& s : batch) {
    back.push_back(s);
    if (&back == &pool->warm && !s.guarded) {
      pool->unguarded_warm.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return static_cast<int>(batch.size());
}

}  // namespace

// Fresh stacks first (they are next in line after the warm ones), then warm stacks
// that were handed out before they could be hardened: as many stacks as the budget
// allows end up with a guard page, not only those that were never used.
void harden_stacks(int max) noexcept {
  std::vector<size_pool*> all;
  {
    std::lock_guard lk(table().lock);
    all = table().pools;
  }
  for (size_pool* pool : all) {
    if (max <= 0 || guarded_stacks.load(std::memory_order_relaxed) >= guard_budget()) return;
    if (pool->unhardened.load(std::memory_order_relaxed) != 0) {
      max -= harden_from(pool, pool->fresh, pool->cold, pool->unhardened, max);
    }
    if (max > 0 && pool->unguarded_warm.load(std::memory_order_relaxed) != 0) {
      max -= harden_from(pool, pool->warm, pool->warm, pool->unguarded_warm, max);
    }
  }
}

bool in_overflow_zone(const stack_slot& s, const void* addr) noexcept {
  auto* a = static_cast<const char*>(addr);
  // The guard slot, and for an unhardened stack whatever an overflow ran into below.
  const char* low = s.guarded ? s.lo - page_bytes() : s.lo - 64 * 1024;
  return a >= low && a < s.lo + reserve_bytes;
}

stack_memory stack_memory_stats() {
  stack_memory m;
  pool_table& t = table();
  std::vector<std::pair<char*, std::size_t>> slabs;
  std::vector<size_pool*> pools;
  {
    std::lock_guard lk(t.lock);
    slabs = t.slabs;
    pools = t.pools;
  }
  // Resident pages from /proc/self/pagemap: present (bit 63) and mapped by this
  // process alone (bit 56). Where the kernel maps the shared zero page for a page
  // that was only read (an unguarded stack's reserve zone is read at switches away),
  // that page costs no memory and is not exclusive, though mincore reports it
  // resident; where it does not (zone_reads_commit), the read page is counted, as it
  // is memory. Without pagemap, mincore's count.
  std::size_t page = page_bytes();
  int pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  std::vector<std::uint64_t> entries;
  std::vector<unsigned char> resident;
  for (auto [base, len] : slabs) {
    m.reserved += len;
    std::size_t pages = (len + page - 1) / page;
    if (pagemap >= 0) {
      entries.resize(pages);
      auto offset = static_cast<off_t>(reinterpret_cast<std::uintptr_t>(base) / page * 8);
      ssize_t got = ::pread(pagemap, entries.data(), pages * 8, offset);
      if (got == static_cast<ssize_t>(pages * 8)) {
        for (std::uint64_t e : entries) {
          if ((e >> 63 & 1) && (e >> 56 & 1)) m.committed += page;
        }
        continue;
      }
    }
    resident.resize(pages);
    if (mincore(base, len, resident.data()) != 0) continue;
    for (unsigned char r : resident) {
      if (r & 1) m.committed += page;
    }
  }
  if (pagemap >= 0) ::close(pagemap);
  for (size_pool* pool : pools) {
    std::lock_guard lk(pool->lock);
    std::size_t n = pool->warm.size() + pool->dirty_count + pool->cold.size() + pool->fresh.size();
    m.pooled += n * pool->size;
  }
  return m;
}

}  // namespace goro::detail
