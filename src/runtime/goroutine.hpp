// goroutine.hpp — the goroutine descriptor, its state machine, and the registry of all
// descriptors (Go's allgs).
//
// Invariants:
//   - Descriptors are allocated in chunks that are never freed; a dead descriptor goes
//     to a free list and is reused. So a pointer to a descriptor is always safe to read,
//     and the registry can be walked while goroutines come and go.
//   - `state` changes only through set_state(), which checks the transition.
//   - A goroutine that has not run yet has no stack (stack.lo == nullptr); the worker
//     binds a pooled stack the first time it runs it, and releases it when it exits.
//   - The fields under `meta_lock` describe where the goroutine came from; they are
//     written once at spawn and read by diagnostics from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <source_location>

#include "runtime/parking.hpp"
#include "runtime/stack.hpp"
#include "runtime/sys.hpp"
#include "runtime/wait_reason.hpp"

namespace goro::detail {

class task;
struct processor;
struct bubble;
struct throw_record;

// Who owns the goroutine's stack in each state:
//   free     — nobody; the descriptor is on a free list, no stack is bound.
//   runnable — the run queue (or runnext slot) holding it; the stack, if bound, is
//              suspended at a saved context.
//   running  — the worker thread executing it.
//   waiting  — nobody runs it; whoever unparks it (parking.hpp) makes it runnable.
//   dead     — its task finished; the worker that ran it releases the stack.
enum class g_state : std::uint8_t { free, runnable, running, waiting, dead };

const char* to_string(g_state s) noexcept;

// Cache-line aligned: two goroutines on different threads never share a line (with
// descriptors packed back to back, a layout where a hot field of one shared a line
// with another's tripled the cost of a contended goro::mutex at two processors).
struct alignas(64) goroutine {
  // --- scheduling (owned by whoever owns the goroutine in its current state) ---
  void* saved_sp = nullptr;         // the suspended context when not running
  goroutine* sched_next = nullptr;  // link in the free lists (goroutine.cpp)
  task* body = nullptr;             // what it runs; deleted on the goroutine's stack
  stack_slot stack{};               // bound on first run
  std::uint32_t stack_size = 0;     // requested usable size, bytes
  std::atomic<g_state> state{g_state::free};
  // lock_os_thread: the nesting count and the processor whose thread it is wired to.
  // Written by the goroutine itself; read by its wakers after it parked (the parker's
  // handshake orders them).
  std::uint32_t lock_count = 0;
  processor* locked_to = nullptr;
  // Set by the system monitor when this goroutine held its thread in the kernel and
  // its processor was handed off; each later run spends one, handing the processor's
  // slot on before it starts (monitor.cpp, "Goroutines that block again"). Reset
  // when the descriptor is reused.
  std::atomic<std::uint8_t> blocker_credit{0};

  parker park{};  // the goroutine's half of the parking protocol

  // --- diagnostics ---
  std::atomic<std::uint64_t> id{0};
  std::atomic<wait_reason> reason{wait_reason::none};
  std::atomic<std::int64_t> wait_since{0};  // CLOCK_MONOTONIC_COARSE when it parked
  spinlock meta_lock;                       // guards the fields below
  std::uint64_t parent_id = 0;              // under meta_lock
  // The main goroutine of the goro::run this one descends from (0: started from a
  // plain thread). Written before the goroutine first runs, then never: its children
  // read it without the lock. Lets run's exit check leave another run's goroutines alone.
  std::uint64_t root_id = 0;
  std::int64_t created_at = 0;              // under meta_lock; nanotime()
  std::source_location where{};             // under meta_lock
  char* name = nullptr;                     // under meta_lock; heap copy, or null
  // Where it last threw (throw_site.hpp); touched only by the goroutine itself.
  throw_record* last_throw = nullptr;

  // --- synctest (bubble.hpp); hot paths test the park.bubbled / durable / acting
  // flags first. Together with the above, the descriptor stays at three lines. ---
  // The bubble it belongs to: written at spawn and cleared as it exits, both under
  // meta_lock (dumps read its id there); the goroutine itself reads it freely. While
  // park.durable is set, its parks count as durable blocks in this bubble.
  std::atomic<bubble*> in_bubble{nullptr};
  // A bubble this goroutine acts for (a bubble's driver running as a goroutine:
  // acting_for; park.acting says it is set); touched only by the goroutine itself.
  bubble* acting = nullptr;
#if defined(GORO_TSAN)
  void* tsan_fiber = nullptr;
#endif
#if defined(GORO_ASAN)
  void* asan_fake_stack = nullptr;
#endif
};

[[noreturn]] void bad_state_change(goroutine* g, g_state from, g_state to) noexcept;

// Moves g from `from` to `to`; a transition the state machine does not allow, or g not
// being in `from`, is a runtime bug and aborts with the states named.
inline void set_state(goroutine* g, g_state from, g_state to) noexcept {
  // The allowed transitions, as a bit per (from, to) pair.
  constexpr auto bit = [](g_state a, g_state b) {
    return 1u << (static_cast<unsigned>(a) * 5 + static_cast<unsigned>(b));
  };
  constexpr unsigned allowed =
      bit(g_state::free, g_state::runnable) | bit(g_state::runnable, g_state::running) |
      bit(g_state::running, g_state::runnable) | bit(g_state::running, g_state::waiting) |
      bit(g_state::running, g_state::dead) | bit(g_state::waiting, g_state::runnable) |
      bit(g_state::waiting, g_state::running) | bit(g_state::dead, g_state::free);
  // Load and store, not an RMW: transitions of one goroutine are serialised by
  // whoever owns it (see g_state), so a mismatch is a runtime bug, not a race.
  if (g->state.load(std::memory_order_relaxed) != from || !(allowed & bit(from, to))) {
    bad_state_change(g, from, to);
  }
  g->state.store(to, std::memory_order_release);
}

// Descriptor allocation: a free descriptor from the calling processor's cache (p may
// be null on a plain thread), the global free list, or a new chunk.
goroutine* allocate_goroutine(processor* p);
void free_goroutine(processor* p, goroutine* g) noexcept;
// Gives p's cached free descriptors to the global free list (p's thread ends).
void flush_goroutine_cache(processor* p) noexcept;

// Calls fn(g) for every descriptor ever allocated (live or free). Safe at any time.
template <class F>
void for_each_goroutine(F&& fn);

struct goroutine_chunk {
  static constexpr int size = 128;
  goroutine items[size];
  goroutine_chunk* next = nullptr;
};
// The registry: chunks in allocation order (only ever prepended, with release order).
extern std::atomic<goroutine_chunk*> all_goroutine_chunks;

template <class F>
void for_each_goroutine(F&& fn) {
  for (auto* c = all_goroutine_chunks.load(std::memory_order_acquire); c; c = c->next) {
    for (auto& g : c->items) fn(&g);
  }
}

}  // namespace goro::detail
