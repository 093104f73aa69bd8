// goro/debug.hpp — see every goroutine: dumps, leak checks, the debug HTTP server.
//
// write_goroutines(os, 2) prints Go's /debug/pprof/goroutine?debug=2 layout: one entry
// per goroutine with its state, wait reason and how long it has waited, its stack
// (function, file:line when debug info is available) and where it was created:
//
//   goroutine 7 [chan receive, 3 minutes]:
//   goro::recv_chan<int>::recv() const
//   	/src/include/goro/chan.hpp:231
//   worker(goro::recv_chan<int>)
//   	/src/app/main.cpp:42
//   created by main()::<lambda()> in goroutine 1
//   	/src/app/main.cpp:60
//
// Level 1 groups goroutines with identical stacks and wait reasons and prints a count
// for each, most common first (pprof's debug=1), with a "# wait: <reason>" line. Stacks of goroutines running on another thread at
// that moment are not shown (their header is). Stacks are walked by frame pointers:
// code built without them (-fomit-frame-pointer, the default at -O2) shows fewer frames.
//
// Blocking: a dump takes no lock that goroutines wait on and does not park; called
//   from a goroutine it symbolizes on a helper thread and blocks its own thread (and
//   processor) until that is done. check_no_leaks waits up to the grace period,
//   sleeping (parking a goroutine) between checks. serve returns once bound (after
//   looking the host up, if it is a name).
// Thread-safety: callable at any moment from any goroutine or thread, while goroutines
//   start, run and exit.
// Panics: none.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "goro/error.hpp"

namespace goro::debug {

// Writes every goroutine; level 1 (grouped) or 2 (each, Go's layout; also used for any
// level other than 1). Level 1 is Go's debug=1 layout: one entry per distinct stack
// and wait reason, "N @ pcs", then "# wait: <reason>" (goro's addition: Go's shows
// no reason) and the frames.
void write_goroutines(std::ostream& os, int level = 2);
// The same, as a string.
std::string goroutines(int level = 2);

// The ids of the goroutines alive now, ascending (a baseline for check_no_leaks).
std::vector<std::uint64_t> goroutine_ids();

struct leak_options {
  // Goroutines alive at the baseline are not leaks (see goroutine_ids()).
  std::vector<std::uint64_t> baseline = {};
  // A goroutine whose stack has a frame whose function contains one of these is
  // ignored (goleak's IgnoreTopFunction / IgnoreAnyFunction). Only the stacks of
  // goroutines not running at that moment are known.
  std::vector<std::string> ignore_functions = {};
  // A goroutine whose spawn_options::name equals one of these is ignored.
  std::vector<std::string> ignore_names = {};
  // A goroutine created at a place containing one of these ("file.cpp:42" or just
  // "file.cpp") is ignored.
  std::vector<std::string> ignore_created_at = {};
  // How long goroutines get to finish before they count as leaked.
  std::chrono::milliseconds grace{1000};
};

// nil when, within the grace period, every goroutine other than the caller, the
// baseline and the ignored ones has exited (checked every 10 ms); otherwise an error
// whose message is "found N leaked goroutine(s):" followed by their level-2 dump.
[[nodiscard]] error check_no_leaks(const leak_options& options = {});

// Writes the goroutine profile in pprof's format, as Go's runtime/pprof does for
// /debug/pprof/goroutine without ?debug: a gzip-compressed profile.proto `Profile`
// that `go tool pprof` reads (-top, -traces, -png, ...). Sample type and period type
// goroutine/count, period 1; one sample per distinct stack, wait state and name, with
// the number of goroutines as its value; locations leaf first, inlined calls as
// several lines of one location; functions demangled, with file and line where debug
// info has them; mappings from /proc/self/maps. goro's additions are sample labels:
// `state` (the wait reason, "running", "runnable", or what a goroutine holding its
// thread does, as in a dump's header) and `name` (spawn_options::name, when set).
// Stacks are those a level-2 dump shows (goro's internal frames cut); a goroutine
// running on another thread at that moment, whose stack is not sampled, gets one frame
// "goro::debug::(running on another thread)" so that every goroutine is counted.
//
// Errors: the stream failing ("debug::write_goroutine_profile: write failed"), or a
// library built without protobuf and zlib (GORO_PPROF=OFF or not found), which says
// so and names the packages.
// Blocking: as write_goroutines (symbolizes on a helper thread when called from a
// goroutine).
[[nodiscard]] error write_goroutine_profile(std::ostream& os);

// A snapshot of the runtime's gauges and counters. Reading it walks every goroutine
// descriptor and every stack slab (a mincore call each): milliseconds with a million
// goroutines, meant for a scrape every few seconds. Counting itself costs the hot
// paths nothing shared: per-processor counters are summed here.
struct runtime_metrics {
  // Goroutines alive now, by state. Waiting ones by reason, with the words of a dump's
  // header ("chan receive", "select", "sleep", "IO wait", ...), most first.
  std::uint64_t goroutines = 0;
  std::uint64_t goroutines_running = 0;
  std::uint64_t goroutines_runnable = 0;
  std::uint64_t goroutines_waiting = 0;
  std::vector<std::pair<std::string, std::uint64_t>> waiting_by_reason;
  std::uint64_t goroutines_created_total = 0;  // since start-up
  // Processors: max_procs() slots, how many of them sleep idle or spin for work.
  int max_procs = 0;
  int processors_idle = 0;
  int processors_spinning = 0;
  // OS threads of the process (/proc/self/stat), and goro's by role: workers (every
  // processor's thread: slot holders, spares, locked and handed-off ones), helpers
  // running goro::blocking calls and name lookups, and goro's own (system monitor,
  // stack scavenger, dump and fault helpers). The rest are the program's.
  int threads = 0;
  int worker_threads = 0;
  int blocking_threads = 0;
  int runtime_threads = 0;
  // Since start-up: goroutines installed on a worker thread (each run of a goroutine
  // after a spawn, wake-up or yield), stolen by one processor from another, parked;
  // worker threads put to sleep on their futex or in epoll, and signalled to wake
  // (a signal may reach a worker that had not gone to sleep yet: wake-ups can
  // outnumber sleeps).
  std::uint64_t context_switches_total = 0;
  std::uint64_t steals_total = 0;
  std::uint64_t parks_total = 0;
  std::uint64_t worker_sleeps_total = 0;
  std::uint64_t worker_wakeups_total = 0;
  // Timers pending (sleeps, timers, tickers, deadlines; a synctest bubble's are not
  // counted), and goroutines and threads waiting in the network poller.
  std::uint64_t timers_pending = 0;
  std::uint64_t network_waiters = 0;
  // Goroutine stacks: address space reserved (guard pages included), the part of it
  // resident in memory (pages written; a page only read maps the shared zero page,
  // on kernels that map one, and is not counted), and the bytes of stacks not in use
  // (released ones pooled for reuse, and slots of mapped slabs never used yet).
  std::uint64_t stack_bytes_reserved = 0;
  std::uint64_t stack_bytes_committed = 0;
  std::uint64_t stack_bytes_pooled = 0;
};
runtime_metrics metrics();

// metrics() in Prometheus' text exposition format (version 0.0.4): goro_goroutines,
// goro_goroutines_waiting{reason="chan receive"}, goro_threads{role="worker"},
// goro_context_switches_total, ..., each with # HELP and # TYPE.
void write_metrics(std::ostream& os);
// metrics() as JSON in expvar's shape: an object with "cmdline" (the process's
// arguments) and one member per metric ("goroutines": 12, "goroutines_waiting":
// {"chan receive": 3}, "threads": {"worker": 4, ...}, ...).
void write_vars(std::ostream& os);

// Serves over HTTP, as Go's net/http/pprof and expvar do: /debug/pprof/goroutine (the
// pprof profile of write_goroutine_profile with no ?debug or debug=0, level 2 text
// with debug=2, level 1 text with any other number), /metrics (write_metrics),
// /debug/vars (write_vars) and an index of them at /debug/pprof/. It answers on its
// own threads, even when every processor is busy; it runs until the process exits,
// and each call starts another.
//
// Address: "host:port", parsed as goro::net::listen parses it (Go's errors: "missing
// port in address", "invalid port" for one out of range, "unknown port" for one that is
// not a number). Port 0 is refused: the port the system would choose is not reported.
// An empty host means 127.0.0.1. The host is resolved (a name through the system's
// resolver; IP literals strictly, so "127.1" is not one) and, unless allow_remote,
// every address it resolves to must be loopback (127.0.0.0/8, ::1 or ::ffff:127.x.y.z),
// whatever its spelling: "localhost" is served only while it resolves to loopback. The
// socket is bound to the resolved address (the first IPv4 one if there are several).
//
// Limits, so that slow or hostile clients cannot take the server from others: a
// request's line and headers must arrive within 5 s in all, its response be taken
// within 10 s; a connection waits 2 s for its next request and serves at most 5; a
// request with a body (Content-Length other than 0, or Transfer-Encoding) is answered
// 413 and its connection closed without the body being read. Connections are served by
// up to 64 threads, started as connections arrive and ended after 10 s without work;
// beyond 64 at once, connections wait for a thread. A request late with its headers
// gets a 400 or no answer, and its connection is closed.
//
// Signals: the process's SIGPIPE disposition is left as it was (cpp-httplib would set
// it to SIG_IGN); the server's writes raise no SIGPIPE.
//
// Errors, each starting "debug::serve": a bad address ("debug::serve: address
// 127.0.0.1:71596: invalid port"), a failed lookup ("lookup x: no such host"), a
// non-loopback address without allow_remote, one that cannot be bound ("listen tcp
// 127.0.0.1:6060: Address already in use"), or a library built without the HTTP server
// (GORO_DEBUG_SERVER=OFF). A running server turns off deadlock detection (its threads
// could act on goroutines).
[[nodiscard]] error serve(const std::string& addr = "127.0.0.1:6060", bool allow_remote = false);

}  // namespace goro::debug
