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
// default) blocks forever ("select (no cases)" / "select"). select_recv (below) takes a
// run-time list of channels, as Go's reflect.Select.
//
// Blocking: parks the calling goroutine, or blocks the calling plain thread, until a
//   case can run; never blocks with a case_default().
// Thread-safety: any number of selects, sends and receives may run concurrently.
// Panics: a send case on a closed channel counts as ready and panics (panic_error
//   "send on closed channel") when it is chosen, also when the channel is closed while
//   select waits, as in Go.
// Compile-time errors, each one sentence at the call: an argument that is not a case
//   (a channel given where case_recv(ch) was meant), two defaults, a case_send value
//   that does not convert implicitly to the element type or narrows (as T{v} would).
// Cancel safety: exactly one case runs; a send case that did not run has not sent
//   (its value is destroyed with the case), a receive case that did not run has not
//   received.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"
#include "goro/detail/chan_core.hpp"

namespace goro {

namespace detail {

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

template <class C>
inline constexpr bool is_case_v = false;
template <class T>
inline constexpr bool is_case_v<recv_case<T>> = true;
template <class T>
inline constexpr bool is_case_v<send_case<T>> = true;
template <>
inline constexpr bool is_case_v<default_case> = true;

// What select and select_recv take: a case made by case_recv, case_send or
// case_default (not a const one: a send case's value is moved out of it).
template <class C>
concept select_case_arg =
    is_case_v<std::remove_cvref_t<C>> && !std::is_const_v<std::remove_reference_t<C>>;

// The checks of select, select_recv and case_send as plain constants, so that a failed
// static_assert prints its sentence without a page of constraint notes.
template <class... Cases>
inline constexpr bool all_cases_v = (select_case_arg<Cases> && ...);

// Cases are temporaries made in the select call: a case kept in a variable holds no
// reference to its channel (which may be gone by the time it is used), and a send
// case's value is moved out by the first select that runs it.
template <class... Cases>
inline constexpr bool all_temporaries_v = (!std::is_lvalue_reference_v<Cases> && ...);

template <class... Cases>
inline constexpr int default_count =
    (0 + ... + static_cast<int>(std::is_same_v<std::remove_cvref_t<Cases>, default_case>));

// Whether converting a V to T is free of narrowing: always for a class T; for a scalar
// T (arithmetic, enum, pointer) when T{v} compiles, which rejects double -> int,
// int -> unsigned, int -> double and pointer -> bool.
template <class V, class T>
concept non_narrowing_to = !std::is_scalar_v<T> || requires(V&& v) { T{std::forward<V>(v)}; };

template <class V, class T>
inline constexpr bool non_narrowing_v = non_narrowing_to<V, T>;

// A range of channel handles that select_recv can receive a T from: lvalues, so that
// they keep their channels alive while select waits.
template <class R, class T>
concept recv_chan_range =
    std::ranges::forward_range<const R> &&
    std::is_lvalue_reference_v<std::ranges::range_reference_t<const R>> &&
    std::derived_from<std::remove_cvref_t<std::ranges::range_reference_t<const R>>, recv_chan<T>>;

template <class R, class T>
inline constexpr bool recv_chan_range_v = recv_chan_range<R, T>;

// Room for a select's erased cases: inline for a few, else on the heap.
class case_buffer {
 public:
  explicit case_buffer(std::size_t n)
      : heap_(n > inline_cases ? std::make_unique<select_case[]>(n) : nullptr) {}
  select_case* data() noexcept { return heap_ ? heap_.get() : inline_; }

 private:
  static constexpr std::size_t inline_cases = 16;
  select_case inline_[inline_cases];
  std::unique_ptr<select_case[]> heap_;
};

}  // namespace detail

// A receive case (Go's `case v, ok := <-ch:`): runs when a value arrives (stored in
// `out`) or the channel is closed and drained (out = nullopt). `out` is written only if
// this case runs, and must outlive the select. Takes a chan<T> or a recv_chan<T>.
template <class T>
detail::recv_case<T> case_recv(const recv_chan<T>& ch, std::optional<T>& out) {
  return {detail::chan_access::core(ch), &out};
}
// A receive case that discards the value (Go's `case <-ch:`); also runs on close.
template <class T>
detail::recv_case<T> case_recv(const recv_chan<T>& ch) {
  return {detail::chan_access::core(ch), nullptr};
}

// A send case (Go's `case ch <- v:`): `value` is converted to T (copied, or moved from
// an rvalue) into the case when case_send is called; the channel receives it only if
// this case runs, otherwise it is destroyed with the case. The conversion must be
// implicit and, for a scalar T, not narrowing as for T{value}, where the type decides
// and a literal's value does not: case_send(doubles, 1.0), not 1; case_send(sizes,
// std::size_t{0}), not 0. Anything else is a compile-time error. Takes a chan<T> or a
// send_chan<T>.
template <class T, class V>
detail::send_case<T> case_send(const send_chan<T>& ch, V&& value) {
  if constexpr (!std::is_convertible_v<V, T>) {
    static_assert(std::is_convertible_v<V, T>,
                  "goro::case_send: the value does not convert implicitly to the channel's "
                  "element type");
    std::terminate();  // not reached: the program does not compile
  } else if constexpr (!detail::non_narrowing_v<V, T>) {
    static_assert(detail::non_narrowing_v<V, T>,
                  "goro::case_send: narrowing conversion to the channel's element type (as "
                  "in T{v}); convert the value explicitly");
    std::terminate();  // not reached: the program does not compile
  } else {
    return {detail::chan_access::core(ch), T(std::forward<V>(value))};
  }
}

// Runs when no other case is ready; makes select non-blocking (Go's `default:`).
inline detail::default_case case_default() { return {}; }

// Blocks until one case can run, runs it, and returns its index (see above). The cases
// are the temporaries made by case_recv/case_send/case_default in the same call;
// anything else is a compile-time error.
template <class... Cases>
int select(Cases&&... cases) {
  if constexpr (!detail::all_cases_v<Cases...>) {
    static_assert(detail::all_cases_v<Cases...>,
                  "goro::select takes cases: goro::case_recv(ch), goro::case_send(ch, v), "
                  "goro::case_default()");
    return -1;
  } else if constexpr (!detail::all_temporaries_v<Cases...>) {
    static_assert(detail::all_temporaries_v<Cases...>,
                  "goro::select: make the cases in the call, goro::select(goro::case_recv(ch), "
                  "...): a case kept in a variable does not keep its channel alive, and a send "
                  "case's value is moved out by the first select that runs it");
    return -1;
  } else if constexpr (detail::default_count<Cases...> > 1) {
    static_assert(detail::default_count<Cases...> <= 1, "goro::select: at most one case_default()");
    return -1;
  } else if constexpr (sizeof...(Cases) == 0) {
    detail::block_forever(detail::wait_reason::select_no_cases);
  } else {
    detail::select_case erased[] = {cases.erase()...};
    return detail::select_impl(erased, static_cast<int>(sizeof...(Cases)));
  }
}

// Go's reflect.Select over a run-time list of receives (fan-in): one receive case per
// channel of `chans` (chan<T> or recv_chan<T> handles: a vector, an array, a span...),
// into `out`, followed by the fixed `cases` (case_recv(ctx.done()), case_default()...).
// Returns the index of the case that ran: i < size(chans) for chans[i] (out holds its
// value, or nullopt if that channel is closed and drained), size(chans) + k for the k-th
// of `cases`. Chooses uniformly among the ready cases, like select. Nil channels never
// fire; an empty list with no cases blocks forever, as select() does; with a
// case_default() it never blocks. Blocking, panics and cancel safety as select: `out`
// is written only if a list case runs.
//
//   std::vector<goro::recv_chan<int>> inputs = ...;
//   std::optional<int> v;
//   int i = goro::select_recv(inputs, v, goro::case_recv(ctx.done()));
//   if (i == int(inputs.size())) return ctx.err();
template <class Chans, class T, class... Cases>
int select_recv(const Chans& chans, std::optional<T>& out, Cases&&... cases) {
  if constexpr (!detail::recv_chan_range_v<Chans, T>) {
    static_assert(detail::recv_chan_range_v<Chans, T>,
                  "goro::select_recv takes a forward range of goro::chan<T> or "
                  "goro::recv_chan<T> lvalues, and a std::optional<T> for the value");
    return -1;
  } else if constexpr (!detail::all_cases_v<Cases...>) {
    static_assert(detail::all_cases_v<Cases...>,
                  "goro::select_recv: after the list come cases: goro::case_recv(ch), "
                  "goro::case_send(ch, v), goro::case_default()");
    return -1;
  } else if constexpr (!detail::all_temporaries_v<Cases...>) {
    static_assert(detail::all_temporaries_v<Cases...>,
                  "goro::select_recv: make the cases in the call (see goro::select)");
    return -1;
  } else if constexpr (detail::default_count<Cases...> > 1) {
    static_assert(detail::default_count<Cases...> <= 1,
                  "goro::select_recv: at most one case_default()");
    return -1;
  } else {
    auto n = static_cast<std::size_t>(std::ranges::distance(chans));
    detail::case_buffer buffer(n + sizeof...(Cases));
    detail::select_case* erased = buffer.data();
    std::size_t i = 0;
    for (const recv_chan<T>& ch : chans) {
      erased[i++] = detail::select_case{detail::chan_access::core(ch), &out, false, false};
    }
    ((erased[i++] = cases.erase()), ...);
    return detail::select_impl(erased, static_cast<int>(i));
  }
}

}  // namespace goro
