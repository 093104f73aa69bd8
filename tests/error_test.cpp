// error_test — goro::error and goro::result<T>, from Go's errors package: Is through
// wraps and joins, As for the exception an error was made from, Join's nil rule and
// message, the sentinels' std::errc, a thrown error keeping its identity, and result's
// tuple, bool and value() contracts.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <fstream>
#include <cstdio>
#include <list>
#include <memory>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

// An exception type of the program's own, carrying data (Go: a custom error type).
struct path_error : std::runtime_error {
  std::string path;
  explicit path_error(std::string p) : std::runtime_error("open " + p + ": denied"), path(p) {}
};

goro::error from_exception(const auto& ex) {
  return goro::error::from(std::make_exception_ptr(ex));
}

// ---- Is, Unwrap, the sentinels ----

TEST(error, the_sentinels_are_their_std_errc) {
  EXPECT_TRUE(goro::canceled.is(std::errc::operation_canceled));
  EXPECT_TRUE(goro::deadline_exceeded.is(std::errc::timed_out));
  EXPECT_FALSE(goro::canceled.is(std::errc::timed_out));
  EXPECT_FALSE(goro::eof.is(std::errc::timed_out));
  EXPECT_EQ(goro::canceled.code(), std::make_error_code(std::errc::operation_canceled));
  EXPECT_EQ(goro::deadline_exceeded.code(), std::make_error_code(std::errc::timed_out));
  // The text stays Go's.
  EXPECT_EQ(goro::canceled.message(), "context canceled");
  EXPECT_EQ(goro::deadline_exceeded.message(), "context deadline exceeded");
  // Through a wrap, as for any code.
  EXPECT_TRUE(goro::wrap(goro::deadline_exceeded, "read").is(std::errc::timed_out));
}

TEST(error, a_sentinel_is_matched_by_identity_not_by_its_code) {
  // Go: errors.Is(syscall.ETIMEDOUT, context.DeadlineExceeded) is false.
  auto timed_out = goro::error::from(std::make_error_code(std::errc::timed_out));
  auto ecanceled = goro::error::from(std::make_error_code(std::errc::operation_canceled));
  EXPECT_FALSE(timed_out.is(goro::deadline_exceeded));
  EXPECT_FALSE(ecanceled.is(goro::canceled));
  EXPECT_FALSE(goro::canceled.is(goro::deadline_exceeded));
  EXPECT_TRUE(goro::wrap(goro::canceled, "x").is(goro::canceled));
  // Errors made from a code still match by code, as before.
  EXPECT_TRUE(goro::wrap(timed_out, "dial")
                  .is(goro::error::from(std::make_error_code(std::errc::timed_out))));
}

// ---- Join ----

TEST(error, join_of_nothing_or_only_nils_is_nil) {
  goro::error nil;
  EXPECT_FALSE(goro::join());
  EXPECT_FALSE(goro::join(nil));
  EXPECT_FALSE(goro::join(nil, nil));
  EXPECT_FALSE(goro::join(std::vector<goro::error>{}));
  EXPECT_FALSE(goro::join(std::vector<goro::error>{nil, nil}));
}

TEST(error, join_skips_nils_and_joins_messages_with_newlines) {
  // Go's TestJoin / TestJoinErrorMethod.
  auto err1 = goro::make_error("err1");
  auto err2 = goro::make_error("err2");
  goro::error nil;
  auto j = goro::join(err1, nil, err2);
  ASSERT_TRUE(j);
  EXPECT_EQ(j.message(), "err1\nerr2");
  std::vector<goro::error> parts = j.unwrap_all();
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], err1);
  EXPECT_EQ(parts[1], err2);
  EXPECT_FALSE(j.unwrap()) << "errors.Unwrap of a join is nil";
  EXPECT_EQ(goro::join(err1).message(), "err1");
}

// Go's `err = errors.Join(err, e)` in a loop, and long wrap chains, on a goroutine's
// 64 KiB stack: message, is, as and destruction walk the tree without recursing per
// link.
TEST(error, deep_joins_and_wrap_chains_work_on_a_goroutine_stack) {
  goro::wait_group wg;
  wg.go([] {
    auto needle = goro::make_error("needle");
    goro::error joined;
    for (int i = 0; i < 5000; ++i) {
      joined = goro::join(joined, i == 10 ? needle : goro::make_error("e"));
    }
    std::string m = joined.message();
    EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 4999);
    EXPECT_EQ(m.substr(0, 4), "e\ne\n");
    EXPECT_TRUE(joined.is(needle));
    EXPECT_FALSE(joined.is(goro::canceled));
    EXPECT_EQ(joined.as<std::runtime_error>(), nullptr);
    goro::error chain = goro::make_error("root");
    for (int i = 0; i < 100000; ++i) chain = goro::wrap(chain, "w");
    EXPECT_TRUE(chain.is(chain));
    EXPECT_EQ(chain.message().size(), 100000 * 3 + 4);  // "w: " per wrap, then "root"
    joined = {};
    chain = {};  // destroyed link by link
  });
  wg.wait();
}

// A join inside a wrap inside a join: the same text as Go's errors.Join and %w.
TEST(error, nested_joins_and_wraps_read_as_in_go) {
  auto a = goro::make_error("a");
  auto b = goro::make_error("b");
  auto inner = goro::wrap(goro::join(a, b), "inner");
  auto outer = goro::join(inner, goro::make_error("c"));
  EXPECT_EQ(outer.message(), "inner: a\nb\nc");
  EXPECT_EQ(goro::wrap(outer, "top").message(), "top: inner: a\nb\nc");
  EXPECT_TRUE(outer.is(b));
}

TEST(error, is_sees_every_joined_error_at_any_depth) {
  auto a = goro::make_error("a");
  auto b = goro::make_error("b");
  auto c = goro::make_error("c");
  auto refused = goro::error::from(std::make_error_code(std::errc::connection_refused));
  auto j = goro::wrap(goro::join(goro::wrap(a, "first"), goro::join(b, refused)), "all");
  EXPECT_TRUE(j.is(a));
  EXPECT_TRUE(j.is(b));
  EXPECT_TRUE(j.is(refused));
  EXPECT_TRUE(j.is(std::errc::connection_refused));
  EXPECT_EQ(j.code(), std::make_error_code(std::errc::connection_refused));
  EXPECT_FALSE(j.is(c));
  EXPECT_EQ(j.message(), "all: first: a\nb\n" + refused.message());
  // A join of one error is a new error that still is() it (Go: Join(err) != err).
  auto one = goro::join(a);
  EXPECT_NE(one, a);
  EXPECT_TRUE(one.is(a));
}

TEST(error, join_takes_any_range_of_errors) {
  auto a = goro::make_error("a");
  auto b = goro::make_error("b");
  std::list<goro::error> l{a, goro::error{}, b};
  auto j = goro::join(l);
  EXPECT_EQ(j.message(), "a\nb");
  auto firsts = std::vector<std::pair<goro::error, int>>{{a, 1}, {b, 2}} |
                std::views::transform([](const auto& p) { return p.first; });
  EXPECT_EQ(goro::join(firsts).message(), "a\nb");
}

TEST(error, wrap_unwrap_all_is_its_cause_and_a_leaf_has_none) {
  auto base = goro::make_error("base");
  auto w = goro::wrap(base, "outer");
  ASSERT_EQ(w.unwrap_all().size(), 1u);
  EXPECT_EQ(w.unwrap_all()[0], base);
  EXPECT_TRUE(base.unwrap_all().empty());
  EXPECT_TRUE(goro::error{}.unwrap_all().empty());
}

// ---- As ----

TEST(error, as_finds_the_exception_an_error_was_made_from) {
  auto err = goro::wrap(from_exception(path_error("/etc/shadow")), "loading");
  const path_error* pe = err.as<path_error>();
  ASSERT_NE(pe, nullptr);
  EXPECT_EQ(pe->path, "/etc/shadow");
  EXPECT_EQ(err.message(), "loading: open /etc/shadow: denied");
  // A base class of the thrown type matches too; an unrelated one does not.
  EXPECT_EQ(static_cast<const std::exception*>(err.as<std::runtime_error>()),
            static_cast<const std::exception*>(pe));
  EXPECT_EQ(err.as<std::logic_error>(), nullptr);
  // The object is the one the error holds: copies of the error see the same one.
  goro::error copy = err;
  EXPECT_EQ(copy.as<path_error>(), pe);
}

TEST(error, as_finds_a_system_error_and_its_code) {
  std::system_error se(std::make_error_code(std::errc::permission_denied), "chmod");
  auto err = goro::wrap(from_exception(se), "setup");
  const auto* found = err.as<std::system_error>();
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->code(), std::make_error_code(std::errc::permission_denied));
  EXPECT_TRUE(err.is(std::errc::permission_denied));
}

TEST(error, as_searches_joined_errors_and_finds_nothing_in_codes_or_nil) {
  auto code_only = goro::error::from(std::make_error_code(std::errc::permission_denied));
  EXPECT_EQ(code_only.as<std::system_error>(), nullptr) << "no exception behind a code";
  EXPECT_EQ(goro::error{}.as<std::exception>(), nullptr);
  auto j = goro::join(goro::make_error("plain"), code_only, from_exception(path_error("/a")),
                      from_exception(path_error("/b")));
  const path_error* pe = j.as<path_error>();
  ASSERT_NE(pe, nullptr);
  EXPECT_EQ(pe->path, "/a") << "the first in depth-first order, as errors.As";
}

TEST(error, as_is_safe_from_many_threads_at_once) {
  auto err = goro::wrap(from_exception(path_error("/shared")), "x");
  const path_error* expect = err.as<path_error>();
  std::vector<std::thread> threads;
  std::atomic<int> same{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (err.as<path_error>() == expect) same.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(same.load(), 800);
}

// ---- A thrown goro::error ----

TEST(error, a_thrown_error_keeps_its_identity) {
  auto original = goro::wrap(goro::make_error("disk full"), "saving");
  goro::error caught;
  try {
    throw original;
  } catch (...) {
    caught = goro::error::from(std::current_exception());
  }
  EXPECT_EQ(caught, original) << "the same error, not a copy of its text";
  EXPECT_EQ(caught.message(), "saving: disk full");
}

TEST(error, a_thrown_nil_error_is_still_an_error) {
  goro::error caught;
  try {
    throw goro::error{};
  } catch (...) {
    caught = goro::error::from(std::current_exception());
  }
  ASSERT_TRUE(caught) << "something was thrown: not success";
  EXPECT_NE(caught.message().find("nil"), std::string::npos) << caught;
}

TEST(error, a_goro_error_thrown_in_an_errgroup_task_is_what_wait_returns) {
  auto sentinel = goro::make_error("quota exceeded");
  goro::errgroup g;
  g.go([sentinel]() -> goro::error { throw sentinel; });
  goro::error err = g.wait();
  EXPECT_EQ(err, sentinel) << err;
  EXPECT_EQ(err.message(), "quota exceeded");
}

TEST(error, a_failed_value_in_an_errgroup_task_makes_wait_return_that_error) {
  auto refused = goro::wrap(goro::error::from(std::make_error_code(std::errc::connection_refused)),
                            "dial tcp 127.0.0.1:1");
  goro::errgroup g;
  g.go([refused] {
    goro::result<int> r(refused);
    int v = r.value();  // throws bad_result_access, which carries `refused`
    (void)v;
  });
  goro::error err = g.wait();
  EXPECT_EQ(err, refused) << err;
}

TEST(error_panic, a_goro_error_escaping_a_goroutine_prints_its_message) {
  EXPECT_DEATH(
      {
        goro::go([] { throw goro::wrap(goro::make_error("disk full"), "saving"); });
        std::this_thread::sleep_for(10s);
      },
      "panic: saving: disk full \\[goro::error\\]\n\ngoroutine [0-9]+ \\[running\\]:");
}

// A NUL byte in the message (text from hostile input) must not cut the report short:
// the type, the goroutine and its creation site still follow. (The child's stderr goes
// to a file: death-test regexes stop at a NUL.)
TEST(error_panic, a_nul_byte_in_the_message_does_not_hide_the_rest_of_the_report) {
  std::string path = ::testing::TempDir() + "goro_nul_panic_report";  // the child re-executes
  EXPECT_DEATH(
      {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 2);
        goro::go([] { throw goro::make_error(std::string("before\0after", 12)); });
        std::this_thread::sleep_for(10s);
      },
      "");
  std::ifstream in(path, std::ios::binary);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  EXPECT_NE(report.find(std::string("panic: before\0after [goro::error]", 33)), std::string::npos)
      << report;
  EXPECT_NE(report.find("created by"), std::string::npos) << report;
}

// ---- Printing ----

TEST(error, stream_output_is_the_message_or_nil) {
  std::ostringstream os;
  os << goro::wrap(goro::eof, "read") << "|" << goro::error{};
  EXPECT_EQ(os.str(), "read: EOF|<nil>");
}

#if defined(__cpp_lib_format) && __cpp_lib_format >= 201907L
TEST(error, std_format_prints_the_message_with_string_options) {
  EXPECT_EQ(std::format("{}", goro::wrap(goro::eof, "read")), "read: EOF");
  EXPECT_EQ(std::format("{}", goro::error{}), "<nil>");
  EXPECT_EQ(std::format("[{:>5}]", goro::eof), "[  EOF]");
}
#endif

// ---- result<T> ----

goro::result<std::size_t> short_read() { return {3, goro::unexpected_eof}; }

TEST(result, binds_like_the_pair_it_replaces) {
  static_assert(std::tuple_size_v<goro::result<int>> == 2);
  static_assert(std::is_same_v<std::tuple_element_t<0, goro::result<int>>, int>);
  static_assert(std::is_same_v<std::tuple_element_t<1, goro::result<int>>, goro::error>);
  auto [n, err] = short_read();  // Go's n, err := r.Read(buf)
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(err, goro::unexpected_eof);

  goro::result<std::string> r("abc");
  auto& [s, e] = r;  // lvalue: references into r
  s += "d";
  e = goro::eof;
  EXPECT_EQ(*r, "abcd");
  EXPECT_EQ(r.error(), goro::eof);
  const auto& [cs, ce] = r;
  static_assert(std::is_same_v<decltype(cs), const std::string>);
  static_assert(std::is_same_v<decltype(ce), const goro::error>);
  EXPECT_EQ(cs, "abcd");
  auto&& [ms, me] = std::move(r);  // rvalue: bound, not copied
  EXPECT_EQ(&ms, &*r);
  EXPECT_EQ(me, goro::eof);
}

TEST(result, move_only_values_unpack_and_move_out) {
  auto make = [](int v) -> goro::result<std::unique_ptr<int>> { return std::make_unique<int>(v); };
  auto [p, err] = make(7);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 7);
  EXPECT_FALSE(err);
  std::unique_ptr<int> q = make(8).value();
  EXPECT_EQ(*q, 8);
}

TEST(result, bool_is_success_and_a_value_can_come_with_an_error) {
  goro::result<std::size_t> ok(5);
  EXPECT_TRUE(ok);
  EXPECT_TRUE(ok.ok());
  EXPECT_FALSE(ok.error());
  EXPECT_EQ(ok.value(), 5u);

  auto partial = short_read();  // Go: n > 0 with a non-nil err
  EXPECT_FALSE(partial) << "bool is !error(), whatever the value";
  EXPECT_FALSE(partial.ok());
  EXPECT_EQ(*partial, 3u) << "* gives the value alongside the error";
  EXPECT_EQ(partial.value_or(0), 0u);
  EXPECT_EQ(ok.value_or(0), 5u);

  goro::result<std::string> failed(goro::eof);
  EXPECT_FALSE(failed);
  EXPECT_EQ(*failed, "") << "T{} with an error";
  EXPECT_TRUE(failed->empty());
  goro::result<std::string> nothing;
  EXPECT_TRUE(nothing) << "default: success with T{}";
}

// As std::expected: a result is made from anything its T is made from.
goro::result<std::string> greeting(bool fail) {
  if (fail) return goro::make_error("no greeting");
  return "hello";
}

TEST(result, converts_from_what_its_value_type_is_made_from) {
  goro::result<std::string> r = "x";
  EXPECT_EQ(*r, "x");
  EXPECT_EQ(greeting(false).value(), "hello");
  EXPECT_FALSE(greeting(true));
  goro::result<std::unique_ptr<int>> p = std::make_unique<int>(3);
  EXPECT_EQ(**p, 3);
  static_assert(!std::is_convertible_v<int, goro::result<std::vector<int>>>,
                "explicit where T's constructor is");
}

TEST(result, value_throws_a_panic_error_carrying_the_error) {
  auto err = goro::wrap(goro::eof, "read tcp");
  goro::result<int> r(4, err);
  try {
    (void)r.value();
    ADD_FAILURE() << "value() on an error returned";
  } catch (const goro::bad_result_access& e) {
    EXPECT_EQ(e.error(), err);
    EXPECT_EQ(std::string(e.what()), "goro::result::value: read tcp: EOF");
  }
  EXPECT_THROW((void)std::move(r).value(), goro::panic_error);
  const goro::result<int> cr(err);
  EXPECT_THROW((void)cr.value(), goro::bad_result_access);
}

}  // namespace
