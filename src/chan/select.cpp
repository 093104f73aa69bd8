// select.cpp — Go's select (runtime/select.go), over type-erased cases.
//
// 1. Poll the cases in a random order with every involved channel locked (in address
//    order, each once), and run the first that is ready.
// 2. Otherwise, with a default case, return it.
// 3. Otherwise enqueue one waiter per case, all sharing one select_state, unlock, and
//    park. Whoever completes one of them claims the select (a CAS on `winner`), so
//    exactly one case runs; the others' waiters are stale and are unlinked by us once
//    we wake (step 4) or skipped by wakers that meet them first.
// 4. Lock everything again and unlink the waiters that are still queued.
//
// The context-aware channel operations (recv(ctx), send(ctx, v)) are a two-case select
// against ctx.done(); select_or_done at the end.
#include <algorithm>
#include <functional>
#include <memory>
#include <new>
#include <random>
#include <type_traits>

#include "goro/context.hpp"
#include "goro/select.hpp"
#include "runtime/bubble.hpp"
#include "runtime/parking.hpp"

namespace goro::detail {
namespace {

[[gnu::noinline]] std::uint32_t random_seed() {
  std::random_device rd;
  std::uint32_t s = rd();
  return s ? s : 0x9E3779B9u;
}

std::uint32_t random_below(std::uint32_t n) {
  // xorshift per thread: select's choice needs to be uniform, not cryptographic. Zero
  // (never a state of xorshift) means not yet seeded: a constant-initialized
  // thread_local needs no guard on every call.
  thread_local std::uint32_t state = 0;
  std::uint32_t x = state;
  if (x == 0) [[unlikely]] x = random_seed();
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  state = x;
  return static_cast<std::uint32_t>((std::uint64_t{x} * n) >> 32);
}

// The distinct channels of the cases, sorted by address: the lock order.
int lock_order(select_case* cases, int n, channel_core** out) {
  if (n > 16) {
    int m = 0;
    for (int i = 0; i < n; ++i) {
      if (cases[i].ch) out[m++] = cases[i].ch;
    }
    std::sort(out, out + m);
    return static_cast<int>(std::unique(out, out + m) - out);
  }
  // The usual few cases: an insertion sort that drops duplicates as it goes (std::sort
  // and std::unique cost a four-case select about ninety instructions).
  int m = 0;
  for (int i = 0; i < n; ++i) {
    channel_core* ch = cases[i].ch;
    if (ch == nullptr) continue;
    int j = m;
    while (j > 0 && std::less<channel_core*>{}(ch, out[j - 1])) --j;
    if (j > 0 && out[j - 1] == ch) continue;  // the same channel twice
    for (int k = m; k > j; --k) out[k] = out[k - 1];
    out[j] = ch;
    ++m;
  }
  return m;
}

void lock_all(channel_core** chans, int m) {
  for (int i = 0; i < m; ++i) chans[i]->lock.lock();
}
void unlock_all(channel_core** chans, int m) {
  for (int i = m - 1; i >= 0; --i) chans[i]->lock.unlock();
}

// Tries case c with its channel locked. On success returns true and sets *wake to
// a waiter to wake after unlocking (or null). A send on a closed channel sets *panic.
bool try_case(select_case& c, chan_waiter** wake, bool* panic) {
  channel_core* ch = c.ch;
  if (c.is_send) {
    if (ch->closed) {
      *panic = true;
      return true;
    }
    if (chan_waiter* w = ch->recvq.pop_claimed()) {
      ch->send_to_receiver(w, c.elem);
      *wake = w;
      return true;
    }
    if (ch->count < ch->capacity) {
      ch->put(c.elem);
      ++ch->count;
      return true;
    }
    return false;
  }
  if (chan_waiter* w = ch->sendq.pop_claimed()) {
    ch->recv_from_sender(w, c.elem);
    *wake = w;
    return true;
  }
  if (ch->count > 0) {
    ch->take(c.elem);
    --ch->count;
    return true;
  }
  if (ch->closed) {
    ch->clear(c.elem);  // a receive on a closed channel runs at once, with no value
    return true;
  }
  return false;
}

}  // namespace

int select_impl(select_case* cases, int n) {
  constexpr int small = 16;
  int order_small[small];
  channel_core* chans_small[small];
  std::unique_ptr<int[]> order_big;
  std::unique_ptr<channel_core*[]> chans_big;
  int* order = order_small;
  channel_core** chans = chans_small;
  if (n > small) {
    order_big.reset(new int[static_cast<std::size_t>(n)]);
    chans_big.reset(new channel_core*[static_cast<std::size_t>(n)]);
    order = order_big.get();
    chans = chans_big.get();
  }

  // Poll order: a uniformly random permutation of the non-nil cases (Fisher-Yates).
  int dflt = -1;
  int live = 0;
  bool bubbled = false;  // a case's channel belongs to a synctest bubble
  for (int i = 0; i < n; ++i) {
    if (cases[i].is_default) {
      dflt = i;
    } else if (cases[i].ch) {
      bubbled |= cases[i].ch->owner != nullptr;
      // (the first case has nowhere else to go: no draw for it)
      int j = live == 0 ? 0 : static_cast<int>(random_below(static_cast<std::uint32_t>(live + 1)));
      order[live] = order[j];
      order[j] = i;
      ++live;
    }
  }
  if (live == 0) {
    if (dflt >= 0) return dflt;
    block_forever(n == 0 ? wait_reason::select_no_cases : wait_reason::select);
  }
  // In a synctest bubble, waiting is durable when every channel is the bubble's.
  bubble* durable = nullptr;
  if (bubbled) [[unlikely]] {
    bubble* mine = current_bubble();
    bool all_mine = mine != nullptr;
    for (int k = 0; k < live; ++k) {
      const select_case& c = cases[order[k]];
      if (c.ch->owner != nullptr) {
        check_bubble(c.ch->owner, c.is_send ? "send on a synctest channel"
                                            : "receive on a synctest channel");
      }
      all_mine = all_mine && c.ch->owner == mine;
    }
    if (all_mine) durable = mine;
    if (mine != nullptr && mine->explore != nullptr) {
      // Under schedule exploration the case order comes from the run's seed, and the
      // select is a scheduling point.
      int m2 = 0;
      for (int i = 0; i < n; ++i) {
        if (!cases[i].is_default && cases[i].ch) order[m2++] = i;
      }
      for (int k = 1; k < live; ++k) {
        int j = static_cast<int>(explore_random(mine->explore, static_cast<std::uint32_t>(k + 1)));
        std::swap(order[k], order[j]);
      }
      explore_point(mine->explore);
    }
  }

  int m = lock_order(cases, n, chans);
  lock_all(chans, m);

  // 1. Poll.
  for (int k = 0; k < live; ++k) {
    int i = order[k];
    chan_waiter* wake = nullptr;
    bool panic = false;
    if (try_case(cases[i], &wake, &panic)) {
      unlock_all(chans, m);
      if (panic) panic_send_on_closed();
      if (wake) wake_waiter(wake);
      return i;
    }
  }
  // 2. Default.
  if (dflt >= 0) {
    unlock_all(chans, m);
    return dflt;
  }

  // 3. Enqueue on every channel and park.
  select_state state;
  state.who = current_parker();
  // Indexed by case; only the live cases' waiters are constructed (zeroing all sixteen
  // cost a blocking select of four cases about a hundred instructions).
  static_assert(std::is_trivially_destructible_v<chan_waiter>);
  alignas(chan_waiter) unsigned char waiters_small[small * sizeof(chan_waiter)];
  std::unique_ptr<chan_waiter[]> waiters_big;
  auto* waiters = reinterpret_cast<chan_waiter*>(waiters_small);
  if (n > small) {
    waiters_big.reset(new chan_waiter[static_cast<std::size_t>(n)]);
    waiters = waiters_big.get();
  }
  for (int k = 0; k < live; ++k) {
    int i = order[k];
    chan_waiter& w = *new (&waiters[i]) chan_waiter;
    w.who = state.who;
    w.elem = cases[i].elem;
    w.sel = &state;
    w.case_index = i;
    (cases[i].is_send ? cases[i].ch->sendq : cases[i].ch->recvq).push_back(&w);
  }
  unlock_all(chans, m);
  while (!state.done.load(std::memory_order_acquire)) {
    park_durable(state.who, wait_reason::select, durable);
  }

  // 4. Unlink the losers.
  int won = state.winner.load(std::memory_order_acquire);
  lock_all(chans, m);
  for (int k = 0; k < live; ++k) {
    int i = order[k];
    if (i == won) continue;  // its waker unlinked it
    (cases[i].is_send ? cases[i].ch->sendq : cases[i].ch->recvq).remove(&waiters[i]);
  }
  unlock_all(chans, m);
  if (cases[won].is_send && !waiters[won].success) panic_send_on_closed();
  return won;
}

bool select_or_done(select_case c, const context& ctx) {
  recv_chan<std::monostate> done = ctx.done();  // nil for a context that cannot be cancelled
  select_case cases[2] = {c, select_case{chan_access::core(done), nullptr, false, false}};
  return select_impl(cases, 2) == 0;
}

error context_err(const context& ctx) { return ctx.err(); }

}  // namespace goro::detail
