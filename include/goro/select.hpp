// goro/select.hpp — Go's select statement: wait on several channel operations, run one.
//
//   std::optional<Job> job;
//   switch (goro::select(goro::case_recv(jobs, job),      // job = value, or nullopt if closed
//                        goro::case_recv(ctx_done),       // value discarded
//                        goro::case_send(results, 42))) { // optional trailing case_default()
//     case 0: ...; case 1: return; case 2: ...;
//   }
//
// select returns the index (in argument order) of the case that ran. When several are
// ready it picks one uniformly at random; when none is ready it blocks until one is,
// unless a case_default() is given, which then runs (its index is returned). Cases on
// nil channels are never ready; select() with no cases (or only nil channels and no
// default) blocks forever ("select (no cases)" / "select").
//
// Blocking: parks the calling goroutine, or blocks the calling plain thread, until a
//   case can run; never blocks with a case_default().
// Thread-safety: any number of selects, sends and receives may run concurrently.
// Panics: a send case on a closed channel counts as ready and panics (panic_error
//   "send on closed channel") when it is chosen, also when the channel is closed while
//   select waits, as in Go. Two defaults are a compile-time error.
// Cancel safety: exactly one case runs; a send case that did not run has not sent
//   (its value is destroyed with the case), a receive case that did not run has not
//   received.
#pragma once

#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"
#include "goro/detail/chan_core.hpp"

namespace goro {

namespace detail {

struct select_case {
  channel_core* ch = nullptr;  // null: a nil channel (never ready) or the default case
  void* elem = nullptr;        // send: T*; recv: std::optional<T>* or null
  bool is_send = false;
  bool is_default = false;
};

// Runs Go's select over `n` cases; returns the index of the case that ran.
int select_impl(select_case* cases, int n);

template <class T>
struct recv_case {
  channel_core* ch;
  std::optional<T>* out;
  select_case erase() { return select_case{ch, out, false, false}; }
};

template <class T>
struct send_case {
  channel_core* ch;
  T value;
  select_case erase() { return select_case{ch, &value, true, false}; }
};

struct default_case {
  select_case erase() { return select_case{nullptr, nullptr, false, true}; }
};

template <class H>
channel_core* core_of(const H& h) {
  return chan_access::core(h);
}

}  // namespace detail

// A receive case (Go's `case v, ok := <-ch:`): runs when a value arrives (stored in
// `out`) or the channel is closed and drained (out = nullopt). `out` is written only if
// this case runs, and must outlive the select.
template <class T>
detail::recv_case<T> case_recv(const recv_chan<T>& ch, std::optional<T>& out) {
  return {detail::core_of(ch), &out};
}
template <class T>
detail::recv_case<T> case_recv(const chan<T>& ch, std::optional<T>& out) {
  return {detail::core_of(ch), &out};
}
// A receive case that discards the value (Go's `case <-ch:`); also runs on close.
template <class T>
detail::recv_case<T> case_recv(const recv_chan<T>& ch) {
  return {detail::core_of(ch), nullptr};
}
template <class T>
detail::recv_case<T> case_recv(const chan<T>& ch) {
  return {detail::core_of(ch), nullptr};
}

// A send case (Go's `case ch <- v:`): `value` is converted to T (copied, or moved from
// an rvalue) into the case when case_send is called; the channel receives it only if
// this case runs, otherwise it is destroyed with the case.
template <class T, class V>
detail::send_case<T> case_send(const send_chan<T>& ch, V&& value) {
  return {detail::core_of(ch), T(std::forward<V>(value))};
}
template <class T, class V>
detail::send_case<T> case_send(const chan<T>& ch, V&& value) {
  return {detail::core_of(ch), T(std::forward<V>(value))};
}

// Runs when no other case is ready; makes select non-blocking (Go's `default:`).
inline detail::default_case case_default() { return {}; }

// Blocks until one case can run, runs it, and returns its index (see above). The cases
// are the temporaries made by case_recv/case_send/case_default in the same call.
template <class... Cases>
int select(Cases&&... cases) {
  static_assert((0 + ... + std::is_same_v<std::remove_cvref_t<Cases>, detail::default_case>) <= 1,
                "select: at most one case_default()");
  if constexpr (sizeof...(Cases) == 0) {
    detail::block_forever(detail::wait_reason::select_no_cases);
  } else {
    detail::select_case erased[] = {cases.erase()...};
    return detail::select_impl(erased, static_cast<int>(sizeof...(Cases)));
  }
}

}  // namespace goro
