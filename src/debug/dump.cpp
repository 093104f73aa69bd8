// dump.cpp — goroutine dumps (Go's debug=1 and debug=2 layouts) and leak checks.
//
// A dump walks the registry of descriptors (goroutine.hpp) without stopping anything.
// For each live goroutine it copies the header fields, and for one that is parked or
// runnable it walks the frame-pointer chain of its suspended stack, every read
// bounds-checked against that stack (stacks are never unmapped, so a stale read can
// give a wrong frame but never a fault). The state and park time are read again
// afterwards; if they changed, the goroutine moved during the walk and its frames are
// dropped rather than shown half-right.
#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "debug/dump.hpp"
#include "debug/symbolize.hpp"
#include "goro/debug.hpp"
#include "goro/time.hpp"
#include "runtime/frames.hpp"
#include "runtime/bubble.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/monitor.hpp"
#include "runtime/scheduler.hpp"

namespace goro::detail {

namespace {

constexpr int max_frames = 64;

// Reads a field its owner may be writing at the same moment. Deliberately racy and
// not instrumented: the value is only used after bounds checks against memory that is
// never unmapped, and a stale value at worst drops or garbles one goroutine's frames.
template <class T>
__attribute__((no_sanitize("thread"))) T racy_load(const T& field) {
  return *static_cast<const volatile T*>(&field);
}

// Walks a frame-pointer chain within [lo, hi) (runtime/frames.hpp).
int walk(std::uintptr_t fp, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t* out, int n) {
  return walk_frame_pointers(fp, lo, hi, out, n, max_frames);
}

// The frames of a suspended stack, from its saved context. The first is the caller of
// the function that switched (park_goroutine, yield, ...: Go's gopark frame); the
// switching function's own resume point is left out. It says only which way the
// switch went, to the next goroutine directly or to the scheduler loop, and may differ
// between two goroutines parked at the same place: Clang at -O3 gives switch_out one
// call of goro_context_switch per way. Level 1 groups goroutines by these frames.
__attribute__((no_sanitize("address", "thread"))) int walk_suspended(std::uintptr_t sp,
                                                                     std::uintptr_t lo,
                                                                     std::uintptr_t hi,
                                                                     std::uintptr_t* out) {
  if (sp < lo || sp + 12 * sizeof(std::uintptr_t) > hi) return 0;
  auto* saved = reinterpret_cast<const std::uintptr_t*>(sp);
#if defined(__x86_64__)
  std::uintptr_t fp = saved[6];  // the switching function's frame: see context_x86_64_sysv.S
#elif defined(__aarch64__)
  std::uintptr_t fp = saved[10];  // x29: see context_aarch64.S
#else
  return 0;
#endif
  return walk(fp, lo, hi, out, 0);
}

}  // namespace

// A goroutine that has held its thread this long gets a state line of its own, and
// with sample_running its stack is sampled.
constexpr std::int64_t holding_shown_ns = 1'000'000;
// What a dump may spend waiting for signalled stack samples, in all.
constexpr std::int64_t sample_budget_ns = 100'000'000;

bool view_of(goroutine* g, bool with_stack, goroutine_view& v, bool sample_running,
             std::int64_t sample_deadline) {
  g_state st = g->state.load(std::memory_order_acquire);
  if (st == g_state::free || st == g_state::dead) return false;
  v.id = g->id.load(std::memory_order_relaxed);
  v.state = st;
  v.reason = g->reason.load(std::memory_order_relaxed);
  v.wait_since = g->wait_since.load(std::memory_order_relaxed);
  {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    v.seen_at = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
  v.durable = st == g_state::waiting && g->park.durable.load(std::memory_order_relaxed);
  {
    std::lock_guard lk(g->meta_lock);
    v.parent_id = g->parent_id;
    v.root_id = g->root_id;
    // The bubble lives while its goroutine is in it (it holds a reference), and the
    // goroutine leaves it under this lock.
    bubble* b = g->in_bubble.load(std::memory_order_relaxed);
    v.bubble_id = b ? b->id : 0;
    v.created_at = g->created_at;
    v.where = g->where;
    v.name = g->name ? g->name : "";
  }
  v.is_caller = g == current_goroutine();
  if (st == g_state::running && !v.is_caller) {
    holding_info h = holding_of(g);
    if (h.found && h.held_ns >= holding_shown_ns) {
      v.holding = true;
      v.held_ns = h.held_ns;
      v.thread_state = h.activity.state;
      v.syscall = h.activity.syscall;
      v.handed_off = h.handed_off;
    }
  }
  if (!with_stack) return true;
  std::uintptr_t pcs[max_frames];
  int n = 0;
  auto lo = reinterpret_cast<std::uintptr_t>(racy_load(g->stack.lo));
  auto hi = reinterpret_cast<std::uintptr_t>(racy_load(g->stack.hi));
  if (v.is_caller) {
    n = walk(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), lo, hi, pcs, 0);
  } else if (lo != 0 && (st == g_state::waiting || st == g_state::runnable)) {
    n = walk_suspended(reinterpret_cast<std::uintptr_t>(racy_load(g->saved_sp)), lo, hi, pcs);
    // Moved while we walked: the frames may mix two moments; drop them.
    if (g->state.load(std::memory_order_acquire) != st ||
        g->wait_since.load(std::memory_order_relaxed) != v.wait_since) {
      n = 0;
    }
  } else if (sample_running && v.holding) {
    if (v.thread_state == 'S' || v.thread_state == 'D') {
      n = sample_blocked_stack(g, pcs, max_frames);  // no signal: never interrupts the call
    } else {
      n = sample_running_stack(g, pcs, max_frames, sample_deadline);
    }
    v.sampled = n > 0;
  }
  v.pcs.assign(pcs, pcs + n);
  return true;
}

std::vector<goroutine_view> collect_goroutines(bool with_stacks, bool sample_running) {
  std::vector<goroutine_view> all;
  // Signalled samples of computing goroutines share one budget per dump.
  std::int64_t deadline = nanotime() + sample_budget_ns;
  for_each_goroutine([&](goroutine* g) {
    goroutine_view v;
    if (view_of(g, with_stacks, v, sample_running, deadline)) all.push_back(std::move(v));
  });
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return all;
}

namespace {

struct frame_text {
  std::uintptr_t pc;
  symbol sym;
  bool alone;  // the only frame its pc stands for (nothing was inlined there)
};

bool runtime_frame(const frame_text& f) {
  const std::string& fn = f.sym.function;
  // task_impl<F>::run calls the user's function F. When F was inlined into it, F has
  // a frame of its own and run is noise; otherwise run is where F's code is: keep it.
  if (fn.find("goro::detail::task_impl<") != std::string::npos) return !f.alone;
  if (f.sym.file.rfind(GORO_SOURCE_DIR "/src/", 0) == 0 ||
      f.sym.file.find("/goro/detail/") != std::string::npos) {
    return true;
  }
  return fn.rfind("goro_", 0) == 0 || fn.find("goro::detail::") != std::string::npos ||
         fn.find("std::__invoke") != std::string::npos ||
         fn.find("std::apply") != std::string::npos || fn.find("std::__apply") != std::string::npos;
}

// The frames worth showing: runtime internals at the top (the park machinery) and
// the bottom (the goroutine's entry) are cut, as Go's traceback hides its runtime.
// Without trim_top the top is kept (a fault report: the faulting frame is the point).
std::vector<frame_text> user_frames(const std::vector<std::uintptr_t>& pcs, bool trim_top = true) {
  std::vector<frame_text> frames;
  for (auto pc : pcs) {
    auto syms = symbolize(pc);
    bool alone = syms.size() == 1;
    for (auto& sym : syms) frames.push_back({pc, std::move(sym), alone});
  }
  // At the bottom, goro's public wrappers (run's and wait_group::go's lambdas) and
  // std::invoke only lead to the user's function: cut them too.
  auto entry_frame = [](const frame_text& f) {
    return runtime_frame(f) || f.sym.file.find("/include/goro/") != std::string::npos ||
           f.sym.function.rfind("std::invoke", 0) == 0;
  };
  std::size_t first = 0, last = frames.size();
  while (trim_top && first < last && runtime_frame(frames[first])) ++first;
  while (last > first && entry_frame(frames[last - 1])) --last;
  if (first == last) return frames;  // all runtime: show them rather than nothing
  return {frames.begin() + static_cast<std::ptrdiff_t>(first),
          frames.begin() + static_cast<std::ptrdiff_t>(last)};
}

std::int64_t coarse_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

namespace {

std::string duration_words(std::int64_t ns) {
  std::int64_t s = ns / 1'000'000'000;
  if (s >= 60) return std::to_string(s / 60) + (s / 60 == 1 ? " minute" : " minutes");
  if (s >= 1) return std::to_string(s) + (s == 1 ? " second" : " seconds");
  return std::to_string(ns / 1'000'000) + " ms";
}

}  // namespace

std::string header_status(const goroutine_view& v) {
  if (v.holding) {
    // "syscall read, 2 seconds, holding its thread" / "running, 340 ms without a
    // scheduling point"
    if (v.thread_state == 'S' || v.thread_state == 'D') {
      const char* name = syscall_name(v.syscall);
      return std::string("syscall") + (name ? std::string(" ") + name : std::string()) + ", " +
             duration_words(v.held_ns) + ", holding its thread";
    }
    return "running, " + duration_words(v.held_ns) + " without a scheduling point";
  }
  if (v.state != g_state::waiting) return to_string(v.state);
  std::string s = to_string(v.reason);
  if (v.durable) s += " (durable)";  // Go 1.25's mark for a synctest bubble's goroutine
  std::int64_t seen = v.seen_at != 0 ? v.seen_at : coarse_now();
  std::int64_t waited = (seen - v.wait_since) / 1'000'000'000;
  if (waited >= 60) {
    s += ", " + std::to_string(waited / 60) + (waited / 60 == 1 ? " minute" : " minutes");
  } else if (waited >= 1) {
    s += ", " + std::to_string(waited) + (waited == 1 ? " second" : " seconds");
  }
  return s;
}

namespace {

// Go's two lines per frame: the function, then its file:line (or its pc).
void write_frame_lines(std::ostream& os, const std::vector<frame_text>& frames) {
  for (const auto& f : frames) {
    os << f.sym.function << "\n\t";
    if (!f.sym.file.empty()) {
      os << f.sym.file << ":" << f.sym.line;
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "pc=0x%lx", static_cast<unsigned long>(f.pc));
      os << buf;
    }
    os << "\n";
  }
}

void write_one(std::ostream& os, const goroutine_view& v) {
  os << "goroutine " << v.id << " [" << header_status(v) << "]:\n";
  if (!v.name.empty()) os << "  name: " << v.name << "\n";
  if (v.state == g_state::running && !v.is_caller && !v.sampled) {
    os << "\t(running on another thread)\n";
  }
  if (v.handed_off)
    os << "\t(its processor was handed to another thread)\n";
  else if (v.pcs.empty() && v.state == g_state::runnable) {
    os << "\t(not started)\n";
  }
  write_frame_lines(os, user_frames(v.pcs));
  os << "created by " << v.where.function_name();
  if (v.parent_id != 0) os << " in goroutine " << v.parent_id;
  os << "\n\t" << v.where.file_name() << ":" << v.where.line() << "\n\n";
}

// Go's debug=1 layout: goroutines with the same stack and the same wait reason in one
// entry, largest first. Go hides its runtime frames there, so the reason a group is
// blocked (chanrecv, semacquire ...) does not show; goro adds it as a comment line
// ("# wait: chan receive"), which profile parsers skip like Go's "# labels:".
void write_grouped(std::ostream& os, const std::vector<goroutine_view>& all) {
  using key = std::pair<std::string, std::vector<std::uintptr_t>>;
  std::map<key, int> groups;
  for (const auto& v : all) ++groups[key(group_status(v), v.pcs)];
  std::vector<std::pair<int, const key*>> order;
  for (const auto& [k, count] : groups) order.emplace_back(count, &k);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  os << "goroutine profile: total " << all.size() << "\n";
  for (const auto& [count, k] : order) {
    os << count << " @";
    char buf[32];
    for (auto pc : k->second) {
      std::snprintf(buf, sizeof buf, " 0x%lx", static_cast<unsigned long>(pc));
      os << buf;
    }
    os << "\n# " << k->first << "\n";
    for (const auto& f : user_frames(k->second)) {
      std::snprintf(buf, sizeof buf, "#\t0x%lx\t", static_cast<unsigned long>(f.pc));
      os << buf << f.sym.function << "\t" << f.sym.file << ":" << f.sym.line << "\n";
    }
    os << "\n";
  }
}

// Symbolizing reads DWARF with deep recursion, far beyond a goroutine's stack: when
// called from a goroutine, do it on a plain thread (the goroutine's thread waits).
template <class F>
void on_a_big_stack(F&& f) {
  if (current_goroutine() == nullptr) {
    f();
    return;
  }
  std::thread helper(std::forward<F>(f));
  helper.join();
}

}  // namespace

std::string group_status(const goroutine_view& v, bool with_prefix) {
  if (v.holding) {
    // Without the duration, so that goroutines blocked the same way group together.
    const char* name = syscall_name(v.syscall);
    return v.thread_state == 'S' || v.thread_state == 'D'
               ? std::string("syscall") + (name ? std::string(" ") + name : "") +
                     ", holding its thread"
               : "running without a scheduling point";
  }
  if (v.state == g_state::waiting) return (with_prefix ? "wait: " : "") + std::string(to_string(v.reason));
  return to_string(v.state);
}

std::vector<shown_frame> shown_frames(const std::vector<std::uintptr_t>& pcs) {
  std::vector<shown_frame> out;
  for (auto& f : user_frames(pcs)) {
    out.push_back({f.pc, std::move(f.sym.function), std::move(f.sym.file), f.sym.line});
  }
  return out;
}

void on_big_stack(const std::function<void()>& f) { on_a_big_stack(f); }

std::string valid_utf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    auto c = static_cast<unsigned char>(in[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n != 0 && i + n <= in.size();
    std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; ok && k < n; ++k) {
      auto cc = static_cast<unsigned char>(in[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either.
    if (ok && ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
               (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)) {
      ok = false;
    }
    if (ok) {
      out.append(in, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}


void write_frames(std::ostream& os, const std::vector<std::uintptr_t>& pcs, bool trim_top) {
  on_a_big_stack([&] { write_frame_lines(os, user_frames(pcs, trim_top)); });
}

// Used by write_goroutines and the runtime's panic, deadlock and exit reports.
void write_goroutine_dump(std::ostream& os, int level, std::uint64_t skip_id) {
  // On the caller: its own frames are walked here.
  auto all = collect_goroutines(true, /*sample_running=*/true);
  if (skip_id != 0) {
    all.erase(
        std::remove_if(all.begin(), all.end(), [&](const auto& v) { return v.id == skip_id; }),
        all.end());
  }
  on_a_big_stack([&] {
    if (level == 1) {
      write_grouped(os, all);
    } else {
      for (const auto& v : all) write_one(os, v);
    }
  });
  os << blocking_pool_report();
}

void write_bubble_dump(std::ostream& os, std::uint64_t bubble_id) {
  auto all = collect_goroutines(true);
  std::erase_if(all, [&](const auto& v) { return v.bubble_id != bubble_id; });
  on_a_big_stack([&] {
    for (const auto& v : all) write_one(os, v);
  });
}

}  // namespace goro::detail

namespace goro::debug {

// In a child of fork(), every function here is fork's fatal error: the goroutines are
// the parent's copies, and the locks the dump takes may have been held at the fork.
void write_goroutines(std::ostream& os, int level) {
  detail::check_not_forked("goro::debug::goroutines");
  detail::write_goroutine_dump(os, level, 0);
}

std::string goroutines(int level) {
  std::ostringstream os;
  write_goroutines(os, level);
  return os.str();
}

std::vector<std::uint64_t> goroutine_ids() {
  detail::check_not_forked("goro::debug::goroutine_ids");
  std::vector<std::uint64_t> ids;
  for (const auto& v : detail::collect_goroutines(false)) ids.push_back(v.id);
  return ids;
}

error check_no_leaks(const leak_options& options) {
  detail::check_not_forked("goro::debug::check_no_leaks");
  auto deadline = std::chrono::steady_clock::now() + options.grace;
  for (;;) {
    auto all = detail::collect_goroutines(true);
    std::vector<detail::goroutine_view> leaked;
    for (auto& v : all) {
      if (v.is_caller) continue;
      if (std::find(options.baseline.begin(), options.baseline.end(), v.id) !=
          options.baseline.end())
        continue;
      if (std::find(options.ignore_names.begin(), options.ignore_names.end(), v.name) !=
          options.ignore_names.end()) {
        continue;
      }
      bool ignored = false;
      std::string site = std::string(v.where.file_name()) + ":" + std::to_string(v.where.line());
      for (const auto& pattern : options.ignore_created_at) {
        if (site.find(pattern) != std::string::npos) ignored = true;
      }
      if (!ignored && !options.ignore_functions.empty()) {
        detail::on_a_big_stack([&] {
          for (const auto& f : detail::user_frames(v.pcs)) {
            for (const auto& pattern : options.ignore_functions) {
              if (f.sym.function.find(pattern) != std::string::npos) ignored = true;
            }
          }
        });
      }
      if (!ignored) leaked.push_back(std::move(v));
    }
    if (leaked.empty()) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      std::ostringstream os;
      os << "found " << leaked.size() << " leaked goroutine" << (leaked.size() == 1 ? "" : "s")
         << ":\n\n";
      detail::on_a_big_stack([&] {
        for (const auto& v : leaked) detail::write_one(os, v);
      });
      return make_error(os.str());
    }
    goro::sleep(std::chrono::milliseconds(10));
  }
}

}  // namespace goro::debug
