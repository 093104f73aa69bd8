// dump.hpp — snapshots of goroutines for dumps and reports (debug/dump.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <source_location>
#include <string>
#include <vector>

#include "runtime/goroutine.hpp"

namespace goro::detail {

struct goroutine_view {
  std::uint64_t id = 0;
  g_state state = g_state::free;
  wait_reason reason = wait_reason::none;
  std::int64_t wait_since = 0;
  // When the view was taken (CLOCK_MONOTONIC_COARSE): a wait is measured to it, not
  // to the moment the text is written (symbolizing a dump can take a second).
  std::int64_t seen_at = 0;
  std::uint64_t parent_id = 0;
  std::uint64_t root_id = 0;  // goroutine.hpp
  std::uint64_t bubble_id = 0;  // its synctest bubble's, or 0
  bool durable = false;         // parked durably in its bubble (goro/synctest.hpp)
  std::int64_t created_at = 0;
  std::source_location where{};
  std::string name;
  std::vector<std::uintptr_t> pcs;  // return addresses, innermost first
  bool is_caller = false;           // the goroutine taking the snapshot
  // For a running goroutine: how it holds its worker thread (monitor.hpp).
  bool holding = false;
  std::int64_t held_ns = 0;
  char thread_state = '?';  // /proc letter: R computing, S/D in the kernel
  long syscall = -1;
  bool handed_off = false;  // its processor's slot went to another thread
  bool sampled = false;     // pcs come from a signal sample of the running thread
};

// A copy of g's description (and, with_stack, its frames); false if g is not alive.
// With sample_running, a goroutine that has held its thread for a while is signalled
// for its current stack (monitor.hpp; interrupts a system call that is not restarted).
bool view_of(goroutine* g, bool with_stack, goroutine_view& out, bool sample_running = false,
             std::int64_t sample_deadline = 0);
// Every live goroutine, by id.
std::vector<goroutine_view> collect_goroutines(bool with_stacks, bool sample_running = false);
// Go's header words: "chan receive, 2 minutes", "running", ...
std::string header_status(const goroutine_view& v);
// Writes the frames of `pcs` (return addresses, innermost first) as a dump does: the
// function, then file:line. goro's own frames at the bottom are cut, and with trim_top
// those at the top too. Symbolizes on a plain thread when called from a goroutine.
void write_frames(std::ostream& os, const std::vector<std::uintptr_t>& pcs, bool trim_top);
// A frame as dumps show it: the return address it came from and one function of it
// (several frames share a pc where calls were inlined, innermost first).
struct shown_frame {
  std::uintptr_t pc;
  std::string function;
  std::string file;
  int line;
};
// The frames a dump shows for `pcs` (goro's internal frames at the top and bottom
// cut). Symbolizes: call it on a big stack (on_big_stack).
std::vector<shown_frame> shown_frames(const std::vector<std::uintptr_t>& pcs);
// What a level-1 dump groups by besides the stack: "wait: chan receive", "running",
// "syscall read, holding its thread", ...; with_prefix false drops the "wait: ".
std::string group_status(const goroutine_view& v, bool with_prefix = true);
// `in` with every byte sequence that is not UTF-8 (overlong forms and surrogates
// included) replaced by U+FFFD, as Go's encoders do: goroutine names, symbols and
// arguments are arbitrary bytes, and protobuf strings and JSON must be UTF-8.
std::string valid_utf8(const std::string& in);
// Runs f on the calling thread, or on a helper thread when called from a goroutine:
// symbolizing reads DWARF with deep recursion, far beyond a goroutine's stack.
void on_big_stack(const std::function<void()>& f);
// The level-1 or level-2 dump of every goroutine except `skip_id` (0: none).
void write_goroutine_dump(std::ostream& os, int level, std::uint64_t skip_id);
// The level-2 dump of the goroutines of synctest bubble `bubble_id`.
void write_bubble_dump(std::ostream& os, std::uint64_t bubble_id);

}  // namespace goro::detail
