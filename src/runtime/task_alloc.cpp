// task_alloc.cpp — memory for the tasks goro::go starts (task::operator new).
//
// Every go() allocates its callable's copy and frees it when the goroutine ends, often
// on another processor; with glibc's malloc that pair cost ~280 instructions per spawn
// once a burst outgrew its per-thread cache. Small tasks (up to max_pooled_task bytes: a
// lambda with a few captures) come instead from per-processor free lists of fixed-size
// blocks, one list per 16-byte size class (the smallest blocks are 32 bytes), kept like
// the goroutine descriptors:
//
// Invariants:
//   - A pooled block is in exactly one of: a processor's list of its class (owned by
//     the thread holding the processor), the global list of its class (under
//     global_lock), or in use. Blocks are carved from chunks that are never freed
//     (like descriptors: the memory of the peak number of live small tasks is kept).
//   - A block's size class is known from the size its delete is called with (task's
//     operator delete is sized, and a task's destructor is virtual).
//   - Under AddressSanitizer the pool is bypassed, so that a use of a task after it was
//     freed is still reported.
#include <cstddef>
#include <mutex>
#include <new>

#include "goro/detail/spawn.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

namespace {

// A free block; the first of a batch on a global list also keeps the next batch and
// its own batch's length (hence blocks of at least 32 bytes).
struct free_block {
  free_block* next;
  free_block* next_batch;
  int count;
};

constexpr int chunk_blocks = 64;
constexpr int local_max = 64;  // per class; beyond it a processor gives half back

// Each global list is a stack of batches, taken and given whole: walking blocks freed
// long ago, out of the cache, was a dependent miss per block (as for descriptors).
spinlock global_lock;
free_block* global_free[task_classes] = {};  // under global_lock: first blocks of batches
int global_count[task_classes] = {};         // under global_lock

constexpr std::size_t block_bytes(int cls) {
  return static_cast<std::size_t>(cls < 1 ? 2 : cls + 1) * 16;
}
static_assert(sizeof(free_block) <= block_bytes(0));

// A batch of blocks of class `cls` from the global list, or a newly carved chunk.
free_block* refill(int cls, int* got) {
  // A child of fork() may find the lock held by a thread that no longer exists (it only
  // execs or exits: go() there reaches its fatal error after this allocation).
  if (!forked_child.load(std::memory_order_relaxed)) {
    std::lock_guard lk(global_lock);
    if (free_block* first = global_free[cls]) {
      global_free[cls] = first->next_batch;
      *got = first->count;
      global_count[cls] -= first->count;
      return first;
    }
  }
  auto* chunk = static_cast<char*>(::operator new(block_bytes(cls) * chunk_blocks));
  for (int i = 0; i < chunk_blocks; ++i) {
    auto* b = reinterpret_cast<free_block*>(chunk + block_bytes(cls) * i);
    b->next = i + 1 < chunk_blocks
                  ? reinterpret_cast<free_block*>(chunk + block_bytes(cls) * (i + 1))
                  : nullptr;
  }
  *got = chunk_blocks;
  return reinterpret_cast<free_block*>(chunk);
}

// Gives the list `first` (n blocks of class cls, null-terminated) to the global list.
void give_back(int cls, free_block* first, int n) noexcept {
  // A child of fork() may find the lock held by a thread that no longer exists; it
  // only execs or exits, so the blocks are left behind instead.
  if (forked_child.load(std::memory_order_relaxed)) return;
  first->count = n;
  std::lock_guard lk(global_lock);
  first->next_batch = global_free[cls];
  global_free[cls] = first;
  global_count[cls] += n;
}

int class_of(std::size_t bytes) { return static_cast<int>((bytes + 15) / 16) - 1; }

}  // namespace

void* allocate_task(std::size_t bytes) {
#if defined(GORO_ASAN)
  return ::operator new(bytes);
#else
  if (bytes == 0 || bytes > max_pooled_task) return ::operator new(bytes);
  int cls = class_of(bytes);
  processor* p = current_processor();
  if (p == nullptr) {
    int got = 0;
    free_block* list = refill(cls, &got);
    if (got > 1) give_back(cls, list->next, got - 1);  // keep one, the rest go back
    return list;
  }
  task_cache& c = p->tasks;
  if (c.free[cls] == nullptr) {
    int got = 0;
    c.free[cls] = refill(cls, &got);
    c.count[cls] = got;
  }
  auto* b = static_cast<free_block*>(c.free[cls]);
  c.free[cls] = b->next;
  __builtin_prefetch(b->next, 1);
  --c.count[cls];
  return b;
#endif
}

void free_task(void* block, std::size_t bytes) noexcept {
#if defined(GORO_ASAN)
  ::operator delete(block);
#else
  if (bytes == 0 || bytes > max_pooled_task) {
    ::operator delete(block);
    return;
  }
  int cls = class_of(bytes);
  auto* b = static_cast<free_block*>(block);
  processor* p = current_processor();
  if (p == nullptr) {
    b->next = nullptr;
    give_back(cls, b, 1);
    return;
  }
  task_cache& c = p->tasks;
  b->next = static_cast<free_block*>(c.free[cls]);
  c.free[cls] = b;
  if (++c.count[cls] <= local_max) return;
  // Give half back, so that blocks freed here are reused where goroutines are made.
  free_block* first = b;  // the most recently freed half: still in the cache
  free_block* last = first;
  for (int i = 1; i < local_max / 2; ++i) last = last->next;
  c.free[cls] = last->next;
  c.count[cls] -= local_max / 2;
  last->next = nullptr;
  give_back(cls, first, local_max / 2);
#endif
}

void flush_task_cache(processor* p) noexcept {
  task_cache& c = p->tasks;
  for (int cls = 0; cls < task_classes; ++cls) {
    auto* first = static_cast<free_block*>(c.free[cls]);
    if (first == nullptr) continue;
    give_back(cls, first, c.count[cls]);
    c.free[cls] = nullptr;
    c.count[cls] = 0;
  }
}

}  // namespace goro::detail
