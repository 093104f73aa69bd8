// goro/debug.hpp — see every goroutine: dumps, leak checks, the debug HTTP server.
//
// write_goroutines(os, 2) prints Go's /debug/pprof/goroutine?debug=2 layout: one entry
// per goroutine with its state, wait reason and how long it has waited, its stack
// (function, file:line when debug info is available) and where it was created:
//
//   goroutine 7 [chan receive, 3 minutes]:
//   goro::chan<int>::recv() const
//   	/src/include/goro/chan.hpp:156
//   worker(goro::recv_chan<int>)
//   	/src/app/main.cpp:42
//   created by main::{lambda()#1}::operator()() const in goroutine 1
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
error check_no_leaks(const leak_options& options = {});

// Serves /debug/pprof/goroutine?debug=1|2 (debug=2 gives level 2, anything else level
// 1) and an index at /debug/pprof/ over HTTP on its own threads, which answer even when
// every processor is busy; the server runs until the process exits, and each call
// starts another.
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
error serve(const std::string& addr = "127.0.0.1:6060", bool allow_remote = false);

}  // namespace goro::debug
