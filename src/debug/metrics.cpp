// metrics.cpp — goro::debug::metrics() and its two renderings: Prometheus' text
// exposition format (/metrics) and expvar-shaped JSON (/debug/vars).
//
// Everything is read when asked: gauges from the scheduler, the goroutine registry and
// the stack slabs; counters as sums of per-processor single-writer counters (parks,
// steals, context switches = schedtick, spawns) plus a few relaxed globals bumped only
// on slow paths (a worker's futex sleep or wake-up). Nothing here is written by a hot
// path on a shared cache line.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "debug/dump.hpp"
#include "goro/debug.hpp"
#include "goro/runtime.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/netpoll.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/stack.hpp"
#include "runtime/timers.hpp"

namespace goro::debug {

runtime_metrics metrics() {
  // The parent's runtime state, copied with whatever locks its threads held: reading it
  // here could wait for good, and would describe threads the child does not have.
  detail::check_not_forked("goro::debug::metrics");
  runtime_metrics m;
  m.max_procs = goro::max_procs();
  std::map<std::string, std::uint64_t> waiting;
  detail::for_each_goroutine([&](detail::goroutine* g) {
    switch (g->state.load(std::memory_order_acquire)) {
      case detail::g_state::running: ++m.goroutines_running; break;
      case detail::g_state::runnable: ++m.goroutines_runnable; break;
      case detail::g_state::waiting:
        ++m.goroutines_waiting;
        ++waiting[detail::to_string(g->reason.load(std::memory_order_relaxed))];
        break;
      default: return;  // free or dead
    }
    ++m.goroutines;
  });
  m.waiting_by_reason.assign(waiting.begin(), waiting.end());
  std::stable_sort(m.waiting_by_reason.begin(), m.waiting_by_reason.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });

  m.timers_pending = detail::external_timers().size();
  if (detail::scheduler* s = detail::sched_if_started()) {
    m.processors_idle = std::max(0, s->npidle.load(std::memory_order_relaxed));
    m.processors_spinning = std::max(0, s->nmspinning.load(std::memory_order_relaxed));
    std::uint64_t created = static_cast<std::uint64_t>(
        std::max<std::int64_t>(0, s->external_spawned.load(std::memory_order_relaxed)));
    int n = s->created.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i) {
      detail::processor* p = s->procs[i].load(std::memory_order_acquire);
      if (p == nullptr) continue;
      if (!p->thread_gone.load(std::memory_order_acquire)) ++m.worker_threads;
      created += static_cast<std::uint64_t>(p->spawned.load(std::memory_order_relaxed));
      m.context_switches_total += p->schedtick.load(std::memory_order_relaxed);
      m.parks_total += p->parks.load(std::memory_order_relaxed);
      m.steals_total += p->steals.load(std::memory_order_relaxed);
      m.timers_pending += p->timers.size();
    }
    m.goroutines_created_total = created;
  }
  m.worker_sleeps_total = detail::worker_sleeps();
  m.worker_wakeups_total = detail::worker_wakeups();
  m.network_waiters = static_cast<std::uint64_t>(std::max(0, detail::netpoll_waiter_count()));
  m.blocking_threads = detail::blocking_helper_threads();
  m.runtime_threads = detail::runtime_thread_count();
  m.threads = detail::process_thread_count();
  detail::stack_memory st = detail::stack_memory_stats();
  m.stack_bytes_reserved = st.reserved;
  m.stack_bytes_committed = st.committed;
  m.stack_bytes_pooled = st.pooled;
  return m;
}

namespace {

// A label value in the exposition format: backslash, double quote and line feed are
// escaped.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

int other_threads(const runtime_metrics& m) {
  return std::max(0, m.threads - m.worker_threads - m.blocking_threads - m.runtime_threads);
}

// A JSON string: quotes, backslashes and control characters escaped.
std::string json_string(const std::string& raw) {
  std::string v = detail::valid_utf8(raw);
  std::string out = "\"";
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::vector<std::string> command_line() {
  std::vector<std::string> args;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  return args;
}

}  // namespace

namespace {

// Every metric once, in the order both renderings list them: its name (Prometheus
// adds "goro_"; /debug/vars uses it as is), type and help, and either one value or
// labelled values (a label name and its values).
struct metric {
  const char* name;
  const char* type;
  const char* help;
  std::uint64_t value = 0;
  const char* label = nullptr;
  std::vector<std::pair<std::string, std::uint64_t>> labelled = {};
};

std::vector<metric> table(const runtime_metrics& m) {
  auto n = [](int v) { return static_cast<std::uint64_t>(std::max(0, v)); };
  return {
      {"goroutines", "gauge", "Goroutines that currently exist.", m.goroutines},
      {"goroutines_running", "gauge", "Goroutines running on a worker thread.",
       m.goroutines_running},
      {"goroutines_runnable", "gauge", "Goroutines queued to run.", m.goroutines_runnable},
      {"goroutines_waiting", "gauge", "Goroutines parked, by wait reason.", 0, "reason",
       m.waiting_by_reason},
      {"goroutines_created_total", "counter", "Goroutines started since start-up.",
       m.goroutines_created_total},
      {"max_procs", "gauge", "Processors: goroutines that may run in parallel.", n(m.max_procs)},
      {"processors_idle", "gauge", "Processors whose worker sleeps for lack of work.",
       n(m.processors_idle)},
      {"processors_spinning", "gauge", "Processors looking for work without sleeping.",
       n(m.processors_spinning)},
      {"threads", "gauge",
       "OS threads of the process, by role: goro's workers, goro::blocking helpers, goro's "
       "own runtime threads, and the program's others.",
       0, "role",
       {{"worker", n(m.worker_threads)},
        {"blocking", n(m.blocking_threads)},
        {"runtime", n(m.runtime_threads)},
        {"other", n(other_threads(m))}}},
      {"context_switches_total", "counter", "Goroutines installed on a worker thread to run.",
       m.context_switches_total},
      {"steals_total", "counter", "Goroutines stolen from another processor's queue.",
       m.steals_total},
      {"parks_total", "counter", "Goroutines parked (blocked) since start-up.", m.parks_total},
      {"worker_sleeps_total", "counter",
       "Times a worker thread went to sleep in the kernel for lack of work.",
       m.worker_sleeps_total},
      {"worker_wakeups_total", "counter",
       "Times a worker thread was signalled to wake (set its wake word and futex-woken), "
       "whether or not it had gone to sleep yet.",
       m.worker_wakeups_total},
      {"timers_pending", "gauge", "Timers, sleeps and deadlines pending.", m.timers_pending},
      {"network_waiters", "gauge", "Goroutines and threads waiting in the network poller.",
       m.network_waiters},
      {"stack_reserved_bytes", "gauge",
       "Address space mapped for goroutine stacks, guard pages included.",
       m.stack_bytes_reserved},
      {"stack_committed_bytes", "gauge",
       "Goroutine stack memory resident in RAM (pages written, not the shared zero page).",
       m.stack_bytes_committed},
      {"stack_pooled_bytes", "gauge",
       "Goroutine stacks not in use: released ones pooled for reuse, and slots of mapped "
       "slabs never used yet.",
       m.stack_bytes_pooled},
  };
}

}  // namespace

void write_metrics(std::ostream& os) {
  for (const metric& x : table(metrics())) {
    os << "# HELP goro_" << x.name << ' ' << x.help << "\n# TYPE goro_" << x.name << ' '
       << x.type << '\n';
    if (x.label == nullptr) {
      os << "goro_" << x.name << ' ' << x.value << '\n';
      continue;
    }
    for (const auto& [v, n] : x.labelled) {
      os << "goro_" << x.name << '{' << x.label << "=\"" << label_value(v) << "\"} " << n << '\n';
    }
  }
}

void write_vars(std::ostream& os) {
  // Before any work: the command line is read and formatted ahead of the metrics.
  detail::check_not_forked("goro::debug::write_vars");
  os << "{\n\"cmdline\": [";
  auto args = command_line();
  for (std::size_t i = 0; i < args.size(); ++i) os << (i ? ", " : "") << json_string(args[i]);
  os << "]";
  for (const metric& x : table(metrics())) {
    os << ",\n\"" << x.name << "\": ";
    if (x.label == nullptr) {
      os << x.value;
      continue;
    }
    os << '{';
    for (std::size_t i = 0; i < x.labelled.size(); ++i) {
      os << (i ? ", " : "") << json_string(x.labelled[i].first) << ": " << x.labelled[i].second;
    }
    os << '}';
  }
  os << "\n}\n";
}

}  // namespace goro::debug
