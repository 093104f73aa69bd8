// dump.hpp — snapshots of goroutines for dumps and reports (debug/dump.cpp).
#pragma once

#include <cstdint>
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
  std::uint64_t parent_id = 0;
  std::int64_t created_at = 0;
  std::source_location where{};
  std::string name;
  std::vector<std::uintptr_t> pcs;  // return addresses, innermost first
  bool is_caller = false;           // the goroutine taking the snapshot
};

// A copy of g's description (and, with_stack, its frames); false if g is not alive.
bool view_of(goroutine* g, bool with_stack, goroutine_view& out);
// Every live goroutine, by id.
std::vector<goroutine_view> collect_goroutines(bool with_stacks);
// Go's header words: "chan receive, 2 minutes", "running", ...
std::string header_status(const goroutine_view& v);
// The level-1 or level-2 dump of every goroutine except `skip_id` (0: none).
void write_goroutine_dump(std::ostream& os, int level, std::uint64_t skip_id);

}  // namespace goro::detail
