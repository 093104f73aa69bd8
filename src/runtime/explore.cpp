// explore.cpp — seeded schedule exploration (goro/explore.hpp): one goroutine of an
// explored bubble runs at a time, and the bubble's driver hands out the turns.
//
// Each goroutine of the run has a record with its state:
//   ready   — in `ready`, waiting for the driver to give it the turn;
//   running — it holds the turn (`holder`); only it runs among the bubble's goroutines;
//   blocked — parked on a primitive; a wake-up from inside the bubble makes it ready;
//   exited.
// The holder gives the turn back at each scheduling point (ready again), when it parks
// (blocked) or exits; the driver then picks the next one from `ready` with the run's
// generator. Everything that changes `ready` happens in the holder's or the driver's
// program order, under `lock`, so the run is a function of its seed. The physical
// wake-ups underneath stay the runtime's: a woken goroutine resumes on some worker and
// first waits on its own turn parker until the driver grants it the turn.
//
// A wake-up from outside the bubble (a plain thread, I/O) finds its goroutine still
// blocked: it makes itself ready when it resumes, at a time real timing decides.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "goro/detail/spawn.hpp"
#include "goro/explore.hpp"
#include "goro/panic.hpp"
#include "runtime/bubble.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

std::atomic<int> explorations{0};

namespace {

std::uint64_t splitmix(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct turn_record {
  enum class state { ready, running, blocked, exited };
  goroutine* g = nullptr;
  const void* waiting_mutex = nullptr;  // the goro::mutex it is about to wait for
  int id = 0;  // 1-based, in the order the run started its goroutines
  state st = state::ready;
  std::int64_t priority = 0;  // PCT: the highest ready one runs
  bool granted = false;       // under the explorer's lock: the turn is its
  parker turn;                // where it waits for the turn (turn.g == g)
};


}  // namespace

// A run's seed carries, in its top 6 bits, the base-2 logarithm of the number of
// steps PCT spreads its change points over (the longest run seen before it), so that
// the seed alone decides the run.
constexpr int scale_shift = 58;
constexpr std::uint64_t scale_mask = (std::uint64_t{1} << scale_shift) - 1;

struct explorer {
  explorer(std::uint64_t seed, testing::schedule s, int d, std::int64_t steps_limit,
           std::chrono::steady_clock::time_point until)
      : rng(seed), strategy(s), depth(d), max_steps(steps_limit), deadline(until) {
    if (strategy == testing::schedule::pct) {
      int log2k = std::clamp(static_cast<int>(seed >> scale_shift), 3, 24);
      std::int64_t k = std::int64_t{1} << log2k;
      for (int i = 1; i < depth; ++i) {
        change_points.push_back(1 + static_cast<std::int64_t>(splitmix(rng) % k));
      }
    }
  }

  spinlock lock;
  std::uint64_t rng;  // under lock
  const testing::schedule strategy;
  const int depth;
  const std::int64_t max_steps;  // a run taking more turns is a livelock
  const std::chrono::steady_clock::time_point deadline;  // the time budget's end
  std::int64_t lowest = 0;                      // under lock: PCT's floor for yielders
  std::unordered_map<const void*, int> held;    // under lock: mutexes the run holds
  std::vector<std::int64_t> change_points;  // PCT: steps at which the last holder drops
  bubble* b = nullptr;
  std::unordered_map<goroutine*, std::unique_ptr<turn_record>> records;  // under lock
  std::vector<turn_record*> ready;                                       // under lock
  turn_record* holder = nullptr;                                         // under lock
  turn_record* last = nullptr;                                           // under lock
  int next_id = 1;                                                       // under lock
  std::int64_t steps = 0;                                                // under lock
  std::vector<int> trace;                                                // under lock
  bool failed = false;                                                   // under lock
  std::string failure;                                                   // under lock

  turn_record* record_of(goroutine* g) {  // under lock
    auto it = records.find(g);
    return it == records.end() ? nullptr : it->second.get();
  }

  // Picks the next holder from `ready` (non-empty). Under lock.
  turn_record* choose() {
    std::size_t pick = 0;
    if (strategy == testing::schedule::random) {
      pick = static_cast<std::size_t>(splitmix(rng) % ready.size());
    } else {
      for (std::size_t i = 0; i < change_points.size(); ++i) {
        if (change_points[i] == steps && last != nullptr) {
          last->priority = static_cast<std::int64_t>(i) + 1;  // below every initial one
        }
      }
      for (std::size_t i = 1; i < ready.size(); ++i) {
        if (ready[i]->priority > ready[pick]->priority) pick = i;
      }
    }
    turn_record* r = ready[pick];
    ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(pick));
    return r;
  }
};

void explorer_delete(explorer* ex) noexcept { delete ex; }

namespace {

// Waits until the driver gives r the turn. Not durable: a goroutine waiting here is
// ready (or about to be), not blocked.
void wait_turn(explorer* ex, turn_record* r, wait_reason reason) {
  for (;;) {
    bool notify = false;
    {
      std::lock_guard lk(ex->lock);
      if (r->granted) {
        r->granted = false;
        return;
      }
      if (r->st == turn_record::state::blocked) {
        // Woken from outside the bubble: ready now, in real time's order.
        r->st = turn_record::state::ready;
        ex->ready.push_back(r);
        notify = true;
      }
    }
    if (notify) unpark(ex->b->driver);
    park_raw(&r->turn, reason);
  }
}

// The record of the calling goroutine if it belongs to ex's bubble.
turn_record* own_record(explorer* ex) {
  goroutine* g = current_goroutine();
  if (g == nullptr || g->in_bubble.load(std::memory_order_relaxed) != ex->b) return nullptr;
  std::lock_guard lk(ex->lock);
  return ex->record_of(g);
}

}  // namespace

void explore_spawned(explorer* ex, goroutine* child) noexcept {
  std::lock_guard lk(ex->lock);
  auto r = std::make_unique<turn_record>();
  r->g = child;
  r->id = ex->next_id++;
  r->turn.g = child;
  r->priority = ex->depth + static_cast<std::int64_t>(splitmix(ex->rng) % (1u << 30));
  ex->ready.push_back(r.get());
  ex->records[child] = std::move(r);
}

void explore_start(explorer* ex, goroutine* self) noexcept {
  turn_record* r;
  {
    std::lock_guard lk(ex->lock);
    r = ex->record_of(self);
  }
  wait_turn(ex, r, wait_reason::explore_turn);
}

void explore_point(explorer* ex, bool yielded) noexcept {
  turn_record* r = own_record(ex);
  if (r == nullptr) return;  // the driver firing timers, or a goroutine from outside
  {
    std::lock_guard lk(ex->lock);
    // PCT: a goroutine that yields waits for the others (it spins on something they
    // must do), so it drops below every priority, as shuttle's PCT does.
    if (yielded) r->priority = --ex->lowest;
    r->st = turn_record::state::ready;
    ex->ready.push_back(r);
    if (ex->holder == r) ex->holder = nullptr;
  }
  unpark(ex->b->driver);
  wait_turn(ex, r, wait_reason::explore_turn);
}

void explore_park(explorer* ex, parker* self, wait_reason reason) noexcept {
  goroutine* g = self->g;
  turn_record* r;
  {
    std::lock_guard lk(ex->lock);
    r = ex->record_of(g);
    if (r != nullptr) {
      r->st = turn_record::state::blocked;
      if (ex->holder == r) ex->holder = nullptr;
    }
  }
  if (r == nullptr) {
    park_raw(self, reason);
    return;
  }
  // Waiting for a goro::mutex one of the run's goroutines holds is durable (only the
  // run can release it); for one held from outside it is not.
  bool durable = self->durable.load(std::memory_order_relaxed);
  bool mutex_wait = false;
  if (reason == wait_reason::mutex_lock) {
    std::lock_guard lk(ex->lock);
    mutex_wait = r->waiting_mutex != nullptr && ex->held.count(r->waiting_mutex) != 0;
  }
  if (!durable && mutex_wait) self->durable.store(true, std::memory_order_relaxed);
  unpark(ex->b->driver);
  park_raw(self, reason);
  self->durable.store(false, std::memory_order_relaxed);  // the turn wait is not durable
  wait_turn(ex, r, reason);
  self->durable.store(durable, std::memory_order_relaxed);
}

void explore_woken(explorer* ex, goroutine* g) noexcept {
  std::lock_guard lk(ex->lock);
  turn_record* r = ex->record_of(g);
  if (r == nullptr || r->st != turn_record::state::blocked) return;
  r->st = turn_record::state::ready;
  ex->ready.push_back(r);
}

void explore_exit(explorer* ex, goroutine* self, std::exception_ptr thrown) noexcept {
  {
    std::lock_guard lk(ex->lock);
    turn_record* r = ex->record_of(self);
    if (r == nullptr) return;
    r->st = turn_record::state::exited;
    if (ex->holder == r) ex->holder = nullptr;
    if (ex->last == r) ex->last = nullptr;
    if (thrown && !ex->failed) {
      ex->failed = true;
      ex->failure = "goroutine " + std::to_string(r->id) + " of the run threw: " + describe_exception(thrown);
    }
  }
  unpark(ex->b->driver);
}

void explore_mutex_waiting(explorer* ex, const void* m) noexcept {
  turn_record* r = own_record(ex);
  if (r == nullptr) return;
  std::lock_guard lk(ex->lock);
  r->waiting_mutex = m;
}

void explore_mutex_held(explorer* ex, const void* m) noexcept {
  turn_record* r = own_record(ex);
  if (r == nullptr) return;
  std::lock_guard lk(ex->lock);
  r->waiting_mutex = nullptr;
  ++ex->held[m];
}

void explore_mutex_released(explorer* ex, const void* m) noexcept {
  std::lock_guard lk(ex->lock);
  auto it = ex->held.find(m);
  if (it != ex->held.end() && --it->second == 0) ex->held.erase(it);
}

std::uint32_t explore_random(explorer* ex, std::uint32_t n) noexcept {
  std::lock_guard lk(ex->lock);
  return static_cast<std::uint32_t>(splitmix(ex->rng) % n);
}

explorer* current_explorer() noexcept {
  goroutine* g = current_goroutine();
  if (g == nullptr || !g->park.bubbled.load(std::memory_order_relaxed)) return nullptr;
  bubble* b = g->in_bubble.load(std::memory_order_relaxed);
  return b ? b->explore : nullptr;
}

void explore_attach(explorer* ex, bubble* b) noexcept { ex->b = b; }

explore_action explore_next(explorer* ex, bubble* b) {
  for (;;) {
    turn_record* granted = nullptr;
    {
      std::lock_guard lk(ex->lock);
      if (ex->failed) return explore_action::failed;
      if (ex->holder == nullptr) {
        if (!ex->ready.empty() && ex->steps >= ex->max_steps) {
          ex->failed = true;
          ex->failure = "livelock: the run took " + std::to_string(ex->steps) +
                        " turns without ending (explore_options::max_steps)";
          return explore_action::failed;
        }
        if (!ex->ready.empty() && (ex->steps & 1023) == 1023 &&
            std::chrono::steady_clock::now() >= ex->deadline) {
          ex->failed = true;
          ex->failure = "the time budget ran out inside one run, after " +
                        std::to_string(ex->steps) + " turns (a livelock?)";
          return explore_action::failed;
        }
        if (!ex->ready.empty()) {
          granted = ex->choose();
          granted->st = turn_record::state::running;
          granted->granted = true;
          ex->holder = granted;
          ex->last = granted;
          ++ex->steps;
          ex->trace.push_back(granted->id);
        } else {
          // running first: an exit takes live down before running, so running seen
          // at zero with live above it means every goroutine left is durably blocked.
          std::int64_t running = b->running.load(std::memory_order_acquire);
          if (b->live.load(std::memory_order_acquire) == 0) return explore_action::done;
          if (running == 0) return explore_action::idle;
        }
      }
    }
    if (granted != nullptr) {
      unpark(&granted->turn);
      return explore_action::granted;
    }
    park(b->driver, wait_reason::synctest_run);
  }
}

void explore_finish(explorer* ex, bubble* b, bubble_outcome& out) {
  std::lock_guard lk(ex->lock);
  out.steps = static_cast<std::uint64_t>(ex->steps);
  std::ostringstream os;
  for (std::size_t i = 0; i < ex->trace.size(); ++i) {
    if (i == 400) {
      os << " ... (" << ex->trace.size() - i << " more)";
      break;
    }
    os << (i ? " " : "") << ex->trace[i];
  }
  out.schedule = os.str();
  // Which goroutine of the dumps is which run-local number.
  std::vector<std::pair<int, std::uint64_t>> ids;
  for (auto& [g, r] : ex->records) {
    if (r->st != turn_record::state::exited) {
      ids.emplace_back(r->id, g->id.load(std::memory_order_relaxed));
    }
  }
  std::sort(ids.begin(), ids.end());
  std::ostringstream names;
  for (auto& [id, gid] : ids)
    names << (names.tellp() > 0 ? ", " : "") << id << " is goroutine " << gid;
  out.names = names.str();
  turn_record* root = nullptr;
  for (auto& [g, r] : ex->records) {
    if (r->id == 1) root = r.get();
  }
  bool root_done = root != nullptr && root->st == turn_record::state::exited;
  if (ex->failed) {
    out.failure = ex->failure;
  } else if (out.root_thrown) {
    // The body's own failed check comes first, also when it left goroutines blocked.
    out.failure = "the body threw: " + describe_exception(out.root_thrown);
    if (!out.deadlock.empty()) {
      std::size_t dump = out.deadlock.find("\n\n");
      if (dump != std::string::npos) {
        out.failure += "\nand left goroutines blocked for good:" + out.deadlock.substr(dump);
      }
    }
  } else if (!out.deadlock.empty()) {
    out.failure = out.deadlock;
    if (root_done) {
      // After the body returned, what is left blocked has leaked: say so instead of
      // synctest's headline.
      std::size_t dump = out.failure.find("\n\n");
      out.failure = "leak: the body returned, and goroutines it started are blocked for good" +
                    (dump == std::string::npos ? std::string() : out.failure.substr(dump));
    }
  }
  if (ex->failed) {
    // The goroutines left, as they stand.
    out.failure += "\n\n" + deadlock_report(b, "the run stopped at the failure; its goroutines:");
  }
}

}  // namespace goro::detail

namespace goro::testing::detail {

explore_result explore(const std::function<void()>& body, const explore_options& options,
                       const std::source_location& where) {
  if (goro::detail::current_bubble() != nullptr) {
    throw panic_error("goro::testing::explore: called from inside a bubble");
  }
  if (options.iterations < 1) throw panic_error("goro::testing::explore: iterations < 1");
  if (options.depth < 1) throw panic_error("goro::testing::explore: depth < 1");
  if (options.max_steps < 1) throw panic_error("goro::testing::explore: max_steps < 1");
  std::uint64_t seed = options.seed;
  int iterations = options.iterations;
  if (const char* env = std::getenv("GORO_EXPLORE_SEED"); env != nullptr && *env != '\0') {
    // Decimal digits only, as the reports print seeds, and within 64 bits.
    bool digits = std::all_of(env, env + std::strlen(env), [](char c) { return c >= '0' && c <= '9'; });
    errno = 0;
    seed = digits ? std::strtoull(env, nullptr, 10) : 0;
    if (!digits || errno == ERANGE || seed == 0) {
      throw panic_error(std::string("GORO_EXPLORE_SEED: not a seed: ") + env);
    }
    iterations = 1;
  }
  if (seed == 0) {
    std::random_device rd;
    seed = (std::uint64_t{rd()} << 32 | rd()) | 1;
  }
  struct body_task final : goro::detail::task {
    const std::function<void()>* f;
    explicit body_task(const std::function<void()>* b) : f(b) {}
    void run() override { (*f)(); }
  };
  const char* strategy = options.schedule == schedule::pct ? "pct" : "random";
  auto started = std::chrono::steady_clock::now();
  auto deadline = options.time_budget.count() > 0 ? started + options.time_budget
                                                  : std::chrono::steady_clock::time_point::max();
  // While any exploration runs, goro::mutex asks whether its caller is explored.
  goro::detail::explorations.fetch_add(1, std::memory_order_relaxed);
  struct running {
    ~running() { goro::detail::explorations.fetch_sub(1, std::memory_order_relaxed); }
  } counted;
  std::uint64_t longest = 8;  // turns of the longest run so far: PCT's scale
  explore_result result;
  std::uint64_t s = seed;
  for (int i = 0; i < iterations; ++i) {
    auto* ex = new goro::detail::explorer(s, options.schedule, options.depth, options.max_steps,
                                          deadline);
    auto out = goro::detail::run_bubble(new body_task(&body), where, ex);
    longest = std::max<std::uint64_t>(longest, out.steps);
    result.seed = s;
    result.iteration = i + 1;
    result.schedule = out.schedule;
    if (!out.failure.empty()) {
      std::ostringstream os;
      os << "goro::testing::explore: run " << i + 1 << " failed (seed " << s << ", schedule "
         << strategy << ", depth " << options.depth << ")\n"
         << out.failure << "\n"
         << "replay it alone: explore(body, {.iterations = 1, .seed = " << s
         << "}) with the same schedule and depth, or GORO_EXPLORE_SEED=" << s << "\n"
         << "schedule (" << out.steps
         << " turns; goroutines numbered in the order the run started them, 1 is the body):\n  "
         << out.schedule << "\n";
      if (!out.names.empty()) os << "goroutines left: " << out.names << "\n";
      result.failed = true;
      result.iteration = i;
      result.report = os.str();
      result.schedule = out.schedule;
      return result;
    }
    if (options.time_budget.count() > 0 &&
        std::chrono::steady_clock::now() - started >= options.time_budget) {
      break;
    }
    // The next run's seed: a step of the generator, carrying PCT's scale (the longest
    // run so far, rounded up to a power of two) in its top bits; never 0.
    std::uint64_t state = s;
    std::uint64_t log2k = static_cast<std::uint64_t>(std::bit_width(longest - 1));
    s = (goro::detail::splitmix(state) & goro::detail::scale_mask) |
        (std::min<std::uint64_t>(log2k, 63) << goro::detail::scale_shift) | 1;
  }
  return result;
}

}  // namespace goro::testing::detail
