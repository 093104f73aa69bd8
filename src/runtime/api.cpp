// api.cpp — the public runtime functions (goro/runtime.hpp), panics and the exit check.
#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "goro/error.hpp"
#include "goro/runtime.hpp"
#include "debug/dump.hpp"
#include "goro/detail/lifetime.hpp"
#include "runtime/bubble.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/parking.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/throw_site.hpp"
#include "runtime/timers.hpp"

namespace goro {

namespace detail {

// What an exception says and its type, for panic reports and explore's failures. A
// thrown goro::error (not a std::exception) says its message, as Go's panic(err)
// prints err.Error().
std::string describe_exception(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const goro::error& err) {
    return (err ? err.message() : std::string("<nil>")) + " [goro::error]";
  } catch (const std::exception& ex) {
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> type(
        abi::__cxa_demangle(typeid(ex).name(), nullptr, nullptr, &status), &std::free);
    return std::string(ex.what()) + " [" + (status == 0 ? type.get() : typeid(ex).name()) + "]";
  } catch (...) {
    std::type_info* t = abi::__cxa_current_exception_type();
    if (t == nullptr) return "unknown exception";
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> type(
        abi::__cxa_demangle(t->name(), nullptr, nullptr, &status), &std::free);
    return std::string("exception of type ") + (status == 0 ? type.get() : t->name());
  }
}

namespace {

// All of `text`, NUL bytes included (an error message may hold them).
void write_stderr(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stderr); }

// The level-2 dump of every goroutine except `skip`, to stderr.
void dump_to_stderr(std::uint64_t skip) {
  std::ostringstream os;
  write_goroutine_dump(os, 2, skip);
  write_stderr(os.str());
}


// The main goroutines of the goro::run calls in progress (several may run at once, on
// different threads).
std::mutex active_runs_lock;
std::vector<std::uint64_t> active_runs;

void add_active_run(std::uint64_t main_id) {
  std::lock_guard lk(active_runs_lock);
  active_runs.push_back(main_id);
}

void remove_active_run(std::uint64_t main_id) {
  std::lock_guard lk(active_runs_lock);
  std::erase(active_runs, main_id);
}

struct main_task final : task {
  task* inner;
  parker* waiter;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> id{0};
  main_task(task* t, parker* w) : inner(t), waiter(w) {}
  ~main_task() override { delete inner; }
  void run() override {
    std::uint64_t self = this_goroutine::id();
    id.store(self, std::memory_order_relaxed);
    {
      goroutine* g = current_goroutine();
      std::lock_guard lk(g->meta_lock);
      g->root_id = self;  // before it starts any goroutine: they inherit it
    }
    add_active_run(self);
    inner->run();
    delete inner;
    inner = nullptr;
    // `this` is owned by run_main's frame; after unpark it may be gone.
    parker* w = waiter;
    done.store(true, std::memory_order_release);
    unpark(w);
  }
};

enum class exit_check { off, warn, dump };

exit_check exit_check_mode() {
  const char* v = std::getenv("GORO_EXIT_CHECK");
  if (v == nullptr || std::strcmp(v, "warn") == 0 || *v == '\0') return exit_check::warn;
  if (std::strcmp(v, "off") == 0) return exit_check::off;
  if (std::strcmp(v, "dump") == 0) return exit_check::dump;
  std::fprintf(stderr, "goro: unknown GORO_EXIT_CHECK=%s (want off, warn or dump); using warn\n",
               v);
  return exit_check::warn;
}

// Counts the goroutines still alive when main returned, except those of another
// goro::run in progress (its main and what descends from it), and finds the oldest.
std::size_t count_abandoned(std::uint64_t main_id, goroutine_view& oldest) {
  std::vector<std::uint64_t> others;
  {
    std::lock_guard lk(active_runs_lock);
    others = active_runs;
  }
  std::erase(others, main_id);
  std::size_t count = 0;
  for (auto& info : collect_goroutines(false)) {
    // A synctest bubble's goroutines are its run's to report (a deadlock panic).
    if (info.bubble_id != 0) continue;
    if (info.id == main_id) continue;
    if (std::find(others.begin(), others.end(), info.root_id) != others.end()) continue;
    if (count++ == 0 || info.created_at < oldest.created_at ||
        (info.created_at == oldest.created_at && info.id < oldest.id)) {
      oldest = std::move(info);
    }
  }
  return count;
}

void check_abandoned(std::uint64_t main_id) {
  exit_check mode = exit_check_mode();
  goroutine_view oldest;
  std::size_t count = count_abandoned(main_id, oldest);
  note_abandoned(count > 0);
  if (mode == exit_check::off) return;
  // A goroutine whose work main waited for may still be finishing its last
  // instructions (after wait_group::done, a channel send): give those a moment, as
  // check_no_leaks does, before calling anything abandoned.
  for (int i = 0; count > 0 && i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    oldest = goroutine_view{};
    count = count_abandoned(main_id, oldest);
  }
  note_abandoned(count > 0);
  if (count == 0) return;
  std::fprintf(stderr,
               "goro: main returned with %zu goroutine%s still running (abandoned); the oldest, "
               "goroutine %llu [%s], was started at %s:%u in %s\n",
               count, count == 1 ? "" : "s", static_cast<unsigned long long>(oldest.id),
               header_status(oldest).c_str(), oldest.where.file_name(), oldest.where.line(),
               oldest.where.function_name());
  if (mode == exit_check::dump) {
    std::fputc('\n', stderr);
    dump_to_stderr(main_id);
  }
}

}  // namespace

// The goroutine's part is composed first and written in one call: symbolizing the
// throw site takes a while, and other threads (the monitor) may write meanwhile.
void report_panic(goroutine* g, std::exception_ptr e) noexcept {
  std::string what = describe_exception(e);
  if (forked_child.load(std::memory_order_relaxed)) [[unlikely]] {
    // No dump in a child of fork(): symbolizing takes locks the parent's threads may
    // have held at the fork, and the other goroutines are the parent's copies.
    std::string line = "panic: " + what + "\n";
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
    fatal_in_forked_child("an exception escaped a goroutine");
  }
  goroutine_view info;
  view_of(g, false, info);
  std::ostringstream os;
  os << "panic: " << what << "\n\ngoroutine " << info.id << " [running]:\n";
  if (!info.name.empty()) os << "  name: " << info.name << "\n";
  // Its stack when it threw (the unwinding that brought the exception here is over).
  std::uintptr_t site[throw_record::max_frames];
  if (int n = throw_site_of(g, e, site, throw_record::max_frames); n > 0) {
    os << "  thrown at:\n";
    write_frames(os, std::vector<std::uintptr_t>(site, site + n), /*trim_top=*/true);
  }
  os << "created by " << info.where.function_name();
  if (info.parent_id != 0) os << " in goroutine " << info.parent_id;
  os << "\n\t" << info.where.file_name() << ":" << info.where.line() << "\n\n";
  write_stderr(os.str());
  dump_to_stderr(info.id);
  std::fflush(stderr);
  std::abort();
}

// May run in a signal handler: formats into a local buffer and writes it in one call.
[[noreturn]] void report_stack_overflow(goroutine* g, const char* how) noexcept {
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf,
                        "goroutine %llu stack overflow (stack size %u, created at %s:%u): %s\n",
                        static_cast<unsigned long long>(g->id.load(std::memory_order_relaxed)),
                        g->stack_size, g->where.file_name(), g->where.line(), how);
  if (n > 0) {
    ssize_t ignored =
        ::write(2, buf, static_cast<std::size_t>(n) < sizeof buf ? n : sizeof buf - 1);
    (void)ignored;
  }
  std::abort();
}

void spawn(const spawn_options& options, task* t, const std::source_location& where) {
  std::size_t size;
  try {
    size = normalize_stack_size(options.stack_size);
  } catch (...) {
    delete t;
    throw;
  }
  goroutine* g = new_goroutine(t, size, options.name, where);
  make_runnable(g, /*next=*/true);
  if (explorer* ex = current_explorer()) [[unlikely]] {
    explore_point(ex);  // a scheduling point
    return;
  }
  preempt_point();  // a spawning loop lets the goroutines it made run after a time slice
}

int run_main(task* main_fn, const std::source_location& where) {
  if (current_goroutine() != nullptr) {
    delete main_fn;
    throw panic_error("goro::run: called from a goroutine; call it once from a plain thread");
  }
  sched();
  note_abandoned(false);
  main_task wrapper(main_fn, current_parker());
  // The wrapper lives in this frame; a forwarding task lets the goroutine own a task.
  struct forward final : task {
    main_task* target;
    explicit forward(main_task* m) : target(m) {}
    void run() override { target->run(); }
  };
  spawn_options opts;
  opts.name = "main";
  set_run_thread(true);
  spawn(opts, new forward(&wrapper), where);
  while (!wrapper.done.load(std::memory_order_acquire)) {
    park(wrapper.waiter, wait_reason::run_main);
  }
  set_run_thread(false);
  std::uint64_t main_id = wrapper.id.load(std::memory_order_relaxed);
  remove_active_run(main_id);
  check_abandoned(main_id);
  return 0;
}

}  // namespace detail

void yield() { detail::yield_current(); }

void lock_os_thread() {
  detail::processor* p = detail::current_processor();
  detail::goroutine* g = p ? p->current : nullptr;
  if (g == nullptr) return;  // a plain thread is always its own
  detail::lock_thread(p, g);
}

void unlock_os_thread() {
  detail::processor* p = detail::current_processor();
  detail::goroutine* g = p ? p->current : nullptr;
  if (g == nullptr) return;
  detail::unlock_thread(p, g);
}

std::size_t num_goroutine() {
  detail::scheduler* s = detail::sched_if_started();
  if (s == nullptr) return 0;
  // Every exit first, then every spawn: an exit counted had its spawn happen before it
  // (the exit counter is released after the goroutine ran), so the spawn is counted
  // too. The result is at least the number alive at either end of the reading, never
  // less; read the other way round, a goroutine started on one processor and ended on
  // another while the counters were read would be subtracted without being added.
  int n = s->created.load(std::memory_order_acquire);
  std::int64_t exited = 0;
  for (int i = 0; i < n; ++i) {
    if (detail::processor* p = s->procs[i].load(std::memory_order_acquire)) {
      exited += static_cast<std::int64_t>(p->exited.load(std::memory_order_acquire));
    }
  }
  std::int64_t total = s->external_spawned.load(std::memory_order_acquire) - exited;
  n = s->created.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    if (detail::processor* p = s->procs[i].load(std::memory_order_acquire)) {
      total += static_cast<std::int64_t>(p->spawned.load(std::memory_order_acquire));
    }
  }
  return total > 0 ? static_cast<std::size_t>(total) : 0;
}

int max_procs() {
  if (detail::scheduler* s = detail::sched_if_started()) {
    return s->nprocs.load(std::memory_order_acquire);
  }
  return detail::configured_max_procs();
}

void set_max_procs(int n) {
  if (n < 1 || n > detail::scheduler::max_processors) {
    throw panic_error("goro::set_max_procs: " + std::to_string(n) + " out of range [1, " +
                      std::to_string(detail::scheduler::max_processors) + "]");
  }
  detail::resize_processors(n);
}

std::uint64_t this_goroutine::id() {
  detail::goroutine* g = detail::current_goroutine();
  return g ? g->id.load(std::memory_order_relaxed) : 0;
}

}  // namespace goro
