// goroutine.cpp — descriptor allocation, the state machine, and wait-reason names.
//
// Invariants:
//   - A descriptor is in exactly one of: a processor's free list (owned by its worker),
//     the global free list (under global_free_lock), or in use.
//   - Chunks are pushed onto all_goroutine_chunks with release order after their
//     descriptors are constructed, and never removed.
#include "runtime/goroutine.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "runtime/scheduler.hpp"

namespace goro::detail {

std::atomic<goroutine_chunk*> all_goroutine_chunks{nullptr};

namespace {

constexpr int local_free_max = 64;  // beyond this a processor gives half back
spinlock global_free_lock;
// The global free list is a stack of batches, each a list linked through sched_next,
// so that a processor takes or gives a whole batch without walking it: the
// descriptors in it were freed long ago and are out of the cache, and walking them
// was one dependent miss after another (W1 with 1 processor: ~10% of its time). A
// free descriptor's saved_sp and stack_size are unused; a batch's first descriptor
// keeps there the next batch and its own batch's length.
goroutine* global_batches = nullptr;  // under global_free_lock
int global_free_count = 0;            // under global_free_lock

void give_batch_locked(goroutine* first, int n) noexcept {
  first->saved_sp = global_batches;
  first->stack_size = static_cast<std::uint32_t>(n);
  global_batches = first;
  global_free_count += n;
}

void give_batch(goroutine* first, int n) noexcept {
  std::lock_guard lk(global_free_lock);
  give_batch_locked(first, n);
}

// A batch of free descriptors from the global list, or a new chunk's.
goroutine* refill(int* got) {
  {
    std::lock_guard lk(global_free_lock);
    if (goroutine* first = global_batches) {
      global_batches = static_cast<goroutine*>(first->saved_sp);
      first->saved_sp = nullptr;
      *got = static_cast<int>(first->stack_size);
      global_free_count -= *got;
      return first;
    }
  }
  auto* chunk = new goroutine_chunk;
  for (int i = 0; i + 1 < goroutine_chunk::size; ++i) {
    chunk->items[i].sched_next = &chunk->items[i + 1];
  }
  for (auto& g : chunk->items) g.park.g = &g;
  goroutine_chunk* head = all_goroutine_chunks.load(std::memory_order_relaxed);
  do {
    chunk->next = head;
  } while (!all_goroutine_chunks.compare_exchange_weak(head, chunk, std::memory_order_release,
                                                       std::memory_order_relaxed));
  *got = goroutine_chunk::size;
  return &chunk->items[0];
}

}  // namespace

const char* to_string(g_state s) noexcept {
  switch (s) {
    case g_state::free: return "free";
    case g_state::runnable: return "runnable";
    case g_state::running: return "running";
    case g_state::waiting: return "waiting";
    case g_state::dead: return "dead";
  }
  return "?";
}

const char* to_string(wait_reason r) noexcept {
  switch (r) {
    case wait_reason::none: return "";
    case wait_reason::chan_receive: return "chan receive";
    case wait_reason::chan_send: return "chan send";
    case wait_reason::select: return "select";
    case wait_reason::select_no_cases: return "select (no cases)";
    case wait_reason::chan_receive_nil: return "chan receive (nil chan)";
    case wait_reason::chan_send_nil: return "chan send (nil chan)";
    case wait_reason::semacquire: return "semacquire";
    case wait_reason::mutex_lock: return "sync.Mutex.Lock";
    case wait_reason::rw_mutex_rlock: return "sync.RWMutex.RLock";
    case wait_reason::rw_mutex_lock: return "sync.RWMutex.Lock";
    case wait_reason::wait_group_wait: return "sync.WaitGroup.Wait";
    case wait_reason::cond_wait: return "sync.Cond.Wait";
    case wait_reason::sleep: return "sleep";
    case wait_reason::io_wait: return "IO wait";
    case wait_reason::syscall: return "syscall";
    case wait_reason::run_main: return "run main";
    case wait_reason::synctest_run: return "synctest.Run";
    case wait_reason::synctest_wait: return "synctest.Wait";
    case wait_reason::explore_turn: return "waiting for its turn";
  }
  return "?";
}

void bad_state_change(goroutine* g, g_state from, g_state to) noexcept {
  std::fprintf(stderr, "fatal error: goro: goroutine %llu: bad state change %s -> %s (is %s)\n",
               static_cast<unsigned long long>(g->id.load(std::memory_order_relaxed)),
               to_string(from), to_string(to), to_string(g->state.load(std::memory_order_relaxed)));
  std::abort();
}

goroutine* allocate_goroutine(processor* p) {
  if (p == nullptr) {
    int got = 0;
    goroutine* list = refill(&got);
    if (got > 1) give_batch(list->sched_next, got - 1);  // keep one, the rest go back
    list->sched_next = nullptr;
    return list;
  }
  if (p->free_goroutines == nullptr) {
    int got = 0;
    p->free_goroutines = refill(&got);
    p->free_count = got;
  }
  goroutine* g = p->free_goroutines;
  p->free_goroutines = g->sched_next;
  prefetch_descriptor(g->sched_next);
  --p->free_count;
  g->sched_next = nullptr;
  return g;
}

void flush_goroutine_cache(processor* p) noexcept {
  if (p->free_goroutines == nullptr) return;
  give_batch(p->free_goroutines, p->free_count);
  p->free_goroutines = nullptr;
  p->free_count = 0;
}

void free_goroutine(processor* p, goroutine* g) noexcept {
  {
    std::lock_guard lk(g->meta_lock);
    std::free(g->name);
    g->name = nullptr;
  }
  set_state(g, g_state::dead, g_state::free);
  g->sched_next = p->free_goroutines;
  p->free_goroutines = g;
  if (++p->free_count <= local_free_max) return;
  // Give half back so descriptors freed here can be reused where goroutines are made.
  goroutine* first = p->free_goroutines;
  goroutine* last = first;  // the most recently freed half: still in the cache
  for (int i = 1; i < local_free_max / 2; ++i) last = last->sched_next;
  p->free_goroutines = last->sched_next;
  p->free_count -= local_free_max / 2;
  last->sched_next = nullptr;
  give_batch(first, local_free_max / 2);
}

}  // namespace goro::detail
