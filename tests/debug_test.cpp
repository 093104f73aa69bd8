// debug_test — goro/debug.hpp: dumps, wait reasons, grouping, leak checks, the
// deadlock detector, the debug server and the dump signal.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <regex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/address.hpp"  // resolver_hook: names that resolve where a test says
#include "support/fixture.hpp"
#include "support/loopback_http.hpp"
#include <goro/testing.hpp>
#include <gtest/gtest-spi.h>

namespace {

using namespace goro_test;

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Every blocking primitive parks with Go's wait reason, shown with how long it waited.
TEST(debug, parked_goroutines_show_their_wait_reason_and_duration) {
  auto to_receive = goro::make_chan<int>();  // a receiver waits on it
  auto to_send = goro::make_chan<int>();     // a sender waits on it
  goro::chan<int> nil;
  goro::mutex mu;
  goro::rw_mutex rw;
  goro::rw_mutex rw2;
  goro::wait_group wg_block;
  goro::cond cv;
  goro::mutex cv_mu;
  goro::semaphore sem(1);
  bool stop = false;
  mu.lock();
  rw.lock();
  rw2.lock_shared();
  wg_block.add(1);
  sem.acquire(1);
  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::wait_group all;
  all.go([&] { to_receive.recv(); });                                                // chan receive
  all.go([&] { to_send.send(1); });                                                  // chan send
  all.go([&] { goro::select(goro::case_recv(ctx.done()), goro::case_recv(nil)); });  // select
  all.go([&] { std::lock_guard lk(mu); });   // sync.Mutex.Lock
  all.go([&] { std::shared_lock lk(rw); });  // sync.RWMutex.RLock
  all.go([&] { std::lock_guard lk(rw2); });  // sync.RWMutex.Lock
  all.go([&] { wg_block.wait(); });          // sync.WaitGroup.Wait
  all.go([&] {                               // sync.Cond.Wait
    std::unique_lock lk(cv_mu);
    while (!stop) cv.wait(lk);
  });
  all.go([&] {
    sem.acquire(1);
    sem.release(1);
  });                                    // semacquire
  all.go([&] { goro::sleep(1500ms); });  // sleep
  std::this_thread::sleep_for(1200ms);
  // One that parks now, after every processor sat idle (the monitor's deep sleep,
  // whose clock a waking worker refreshes): it shows no duration.
  auto fresh = goro::make_chan<int>();
  all.go([&] { fresh.recv(); });
  std::this_thread::sleep_for(20ms);
  std::string dump = goro::debug::goroutines(2);
  EXPECT_TRUE(std::regex_search(dump, std::regex("goroutine [0-9]+ \\[chan receive\\]:")))
      << "the goroutine that just parked shows a duration\n"
      << dump;
  for (const char* reason :
       {"chan receive", "chan send", "select", "sync.Mutex.Lock", "sync.RWMutex.RLock",
        "sync.RWMutex.Lock", "sync.WaitGroup.Wait", "sync.Cond.Wait", "semacquire", "sleep"}) {
    std::regex header("goroutine [0-9]+ \\[" + std::string(reason) + ", [0-9]+ seconds?\\]:");
    EXPECT_TRUE(std::regex_search(dump, header))
        << "no parked goroutine shows [" << reason << ", N seconds]\n"
        << dump;
  }
  EXPECT_TRUE(std::regex_search(
      dump, std::regex("created by .* in goroutine 0|created by .*\n\t.*debug_test.cpp:[0-9]+")))
      << dump;
  // release everything
  fresh.send(3);
  to_receive.send(2);
  to_send.recv();
  cancel();
  mu.unlock();
  rw.unlock();
  rw2.unlock_shared();
  wg_block.done();
  {
    std::lock_guard lk(cv_mu);
    stop = true;
  }
  cv.broadcast();
  sem.release(1);
  all.wait();
}

TEST(debug, a_goroutine_that_parks_after_a_long_system_call_shows_its_own_wait) {
  // A goroutine in a 1.3 s raw nanosleep: its processor is handed off, every other
  // processor is idle, and the system monitor sleeps deeply (nothing refreshes the
  // runtime's cached clock meanwhile). It then parks; 880 ms later the dump must not
  // say it has waited a second: the time it parked is its own, not the clock's last
  // refresh (up to a second old).
  auto ch = goro::make_chan<int>();
  std::atomic<bool> parking{false};
  goro::wait_group wg;
  wg.go([&] {
    timespec ts{1, 300'000'000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    parking = true;
    ch.recv();
  });
  while (!parking) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(880ms);
  std::string dump = goro::debug::goroutines(2);
  EXPECT_TRUE(std::regex_search(dump, std::regex("goroutine [0-9]+ \\[chan receive\\]:")))
      << dump;
  ch.send(1);
  wg.wait();
}

TEST(debug, nil_channel_and_empty_select_reasons) {
  EXPECT_EXIT(
      {
        goro::go([] {
          goro::chan<int> nil;
          nil.recv();
        });
        goro::go([] { goro::select(); });
        std::this_thread::sleep_for(100ms);
        std::string dump = goro::debug::goroutines(2);
        bool ok =
            contains(dump, "[chan receive (nil chan)") && contains(dump, "[select (no cases)");
        std::fputs(dump.c_str(), stderr);
        std::exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(debug, dump_names_the_function_and_creation_site) {
  goro::wait_group gate, done;
  gate.add(1);
  goro::spawn_options opts;
  opts.name = "named-worker";
  done.add(1);
  goro::go(opts, [&] {
    gate.wait();
    done.done();
  });
  std::this_thread::sleep_for(50ms);
  std::string dump = goro::debug::goroutines(2);
  EXPECT_TRUE(contains(dump, "name: named-worker")) << dump;
  EXPECT_TRUE(std::regex_search(dump, std::regex("created by .*\n\t.*debug_test.cpp:[0-9]+")))
      << dump;
  EXPECT_TRUE(contains(dump, "sync.WaitGroup.Wait")) << dump;
  gate.done();
  done.wait();
}

TEST(debug, level_1_groups_identical_stacks_with_a_count) {
  auto block = goro::make_chan<int>();
  goro::wait_group started;
  started.add(1000);
  for (int i = 0; i < 1000; ++i) {
    goro::go([&] {
      started.done();
      block.recv();
    });
  }
  started.wait();
  std::this_thread::sleep_for(100ms);
  std::string dump = goro::debug::goroutines(1);
  EXPECT_TRUE(contains(dump, "goroutine profile: total ")) << dump.substr(0, 500);
  EXPECT_TRUE(std::regex_search(dump, std::regex("\n1000 @ 0x[^\n]*\n# wait: chan receive\n")))
      << dump.substr(0, 2000);
  block.close();
  EXPECT_FALSE(goro::debug::check_no_leaks());
}

TEST(debug, dumps_are_safe_while_goroutines_churn) {
  std::atomic<bool> stop{false};
  goro::wait_group churners;
  for (int w = 0; w < 4; ++w) {
    churners.go([&] {
      while (!stop.load()) {
        goro::wait_group wg;
        for (int i = 0; i < 2500; ++i) {
          wg.go([] {
            if (goro::this_goroutine::id() % 3 == 0) goro::yield();
          });
        }
        wg.wait();
      }
    });
  }
  EXPECT_TRUE(eventually([] { return goro::num_goroutine() > 1000; })) << "the churn never started";
  std::size_t total = 0;
  for (int i = 0; i < 100; ++i) total += goro::debug::goroutines(i % 2 + 1).size();
  stop = true;
  churners.wait();
  EXPECT_GT(total, 0u);
}

[[gnu::noinline]] void blocks_forever_in_a_static_function(goro::chan<int> never) {
  never.recv();
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
}

void leak_and_report_with_the_symbol_tables_only() {
  setenv("GORO_SYMBOLIZER", "symtab", 1);  // as a build without libdw symbolizes
  auto base = goro::debug::goroutine_ids();
  auto never = goro::make_chan<int>();
  goro::go([never] { blocks_forever_in_a_static_function(never); });
  goro::error err = goro::debug::check_no_leaks({.baseline = base, .grace = 100ms});
  std::fputs(err ? err.message().c_str() : "no leak found\n", stderr);
  std::exit(err ? 0 : 1);
}

TEST(debug_symtab, a_leaked_goroutine_is_named_by_its_function_without_libdw) {
  // A function in an anonymous namespace is in no dynamic symbol table: dladdr alone
  // printed "program+0x..." for it.
  EXPECT_EXIT(leak_and_report_with_the_symbol_tables_only(), ::testing::ExitedWithCode(0),
              "found 1 leaked goroutine(.|\n)*\\(anonymous namespace\\)::blocks_forever_in_a_"
              "static_function\\(goro::chan<int>\\)");
}

TEST(debug, leak_check_fails_with_the_dump_and_passes_when_clean) {
  auto base = goro::debug::goroutine_ids();
  EXPECT_FALSE(goro::debug::check_no_leaks({.baseline = base, .grace = 200ms}));
  auto never = goro::make_chan<int>();
  goro::spawn_options opts;
  opts.name = "leaky";
  goro::go(opts, [never] { never.recv(); });
  goro::error err = goro::debug::check_no_leaks({.baseline = base, .grace = 200ms});
  ASSERT_TRUE(err);
  EXPECT_TRUE(contains(err.message(), "found 1 leaked goroutine")) << err.message();
  EXPECT_TRUE(contains(err.message(), "[chan receive")) << err.message();
  EXPECT_TRUE(contains(err.message(), "name: leaky")) << err.message();
  EXPECT_FALSE(
      goro::debug::check_no_leaks({.baseline = base, .ignore_names = {"leaky"}, .grace = 50ms}));
  never.close();
  EXPECT_FALSE(goro::debug::check_no_leaks({.baseline = base}));
}

// The public GoogleTest helper fails a test that leaks, with the dump; a test that
// cleans up passes.
class leaky_case : public goro::testing::no_leaks_test {
 public:
  void TestBody() override {}
  void run_leaking(goro::chan<int> never) {
    SetUp();
    goro::go([never] { never.recv(); });
    TearDown();
  }
  void run_clean() {
    SetUp();
    goro::wait_group wg;
    wg.go([] { goro::yield(); });
    wg.wait();
    TearDown();
  }
  goro::debug::leak_options leak_options() const override { return {.grace = 100ms}; }
};

TEST(debug_testing, no_leaks_test_fails_a_leaking_test_with_the_dump) {
  auto never = goro::make_chan<int>();
  leaky_case c;
  EXPECT_NONFATAL_FAILURE(c.run_leaking(never), "found 1 leaked goroutine");
  never.close();
  c.run_clean();  // passes: no failure recorded
  EXPECT_FALSE(
      goro::debug::check_no_leaks({.ignore_created_at = {"debug_test.cpp"}, .grace = 50ms}));
}

TEST(debug_deadlock, all_goroutines_asleep_is_fatal_with_exit_code_2) {
  EXPECT_EXIT(goro::run([] {
                auto ch = goro::make_chan<int>();
                goro::go([ch] { ch.recv(); });
                ch.recv();  // nobody will ever send
              }),
              ::testing::ExitedWithCode(2),
              "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 \\[chan receive");
}

TEST(debug_deadlock, is_found_once_a_plain_thread_alive_at_the_time_has_ended) {
  // When the goroutines fall asleep a plain thread still runs (it might send), so the
  // detector holds its verdict; the thread ends later without touching goro, which
  // wakes nobody. The verdict must still come (it was never looked at again).
  EXPECT_EXIT(goro::run([] {
                std::thread([] { std::this_thread::sleep_for(300ms); }).detach();
                auto ch = goro::make_chan<int>();
                ch.recv();  // nobody will ever send
              }),
              ::testing::ExitedWithCode(2),
              "fatal error: all goroutines are asleep - deadlock!");
}

TEST(debug_deadlock, no_false_deadlock_while_a_timer_or_a_thread_can_wake) {
  EXPECT_EXIT(
      {
        goro::run([] {
          auto ch = goro::make_chan<int>();
          goro::go([ch] {
            goro::sleep(300ms);  // a timer is pending: not a deadlock
            ch.send(1);
          });
          ch.recv();
          auto from_thread = goro::make_chan<int>();
          std::thread t([from_thread] {
            std::this_thread::sleep_for(300ms);  // a plain thread will send
            from_thread.send(2);
          });
          from_thread.recv();
          t.join();
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}



TEST(debug_server, answers_while_every_processor_spins) {
  goro::set_max_procs(2);
  int port = free_port();
  goro::error err = goro::debug::serve("127.0.0.1:" + std::to_string(port));
  // serve() is optional (cpp-httplib); CI installs it, so this runs there.
  if (err && contains(err.message(), "built without")) GTEST_SKIP() << err.message();
  ASSERT_FALSE(err) << err.message();
  EXPECT_TRUE(goro::debug::serve("0.0.0.0:" + std::to_string(free_port())))
      << "non-loopback must be refused";
  std::atomic<bool> stop{false};
  goro::wait_group spinners;
  for (int i = 0; i < 2; ++i) {
    spinners.go([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  std::this_thread::sleep_for(50ms);
  std::string body = http_get(port, "/debug/pprof/goroutine?debug=2");
  std::string grouped = http_get(port, "/debug/pprof/goroutine?debug=1");
  std::string index = http_get(port, "/debug/pprof/");
  stop = true;
  spinners.wait();
  EXPECT_TRUE(contains(body, "200 OK")) << body.substr(0, 200);
  EXPECT_TRUE(contains(body, "goroutine ")) << body.substr(0, 500);
  EXPECT_TRUE(contains(body, "[running")) << body.substr(0, 500);
  EXPECT_TRUE(contains(grouped, "goroutine profile: total")) << grouped.substr(0, 300);
  EXPECT_TRUE(contains(index, "goroutine?debug=2")) << index.substr(0, 300);
}


// serve(addr), skipping the test where the library has no HTTP server.
#define SERVE_OR_SKIP(addr)                                          \
  do {                                                               \
    goro::error serve_err = goro::debug::serve(addr);                \
    if (serve_err && contains(serve_err.message(), "built without")) \
      GTEST_SKIP() << serve_err.message();                           \
    ASSERT_FALSE(serve_err) << serve_err.message();                  \
  } while (0)

// A connected TCP socket to 127.0.0.1:port, or -1.
int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads what the peer sends until it closes, `done(text)` holds or `limit` passes.
// Sets `closed` when the peer closed (or reset) the connection.
std::string read_for(int fd, std::chrono::milliseconds limit, bool& closed,
                     const std::function<bool(const std::string&)>& done = nullptr) {
  std::string out;
  closed = false;
  auto until = steady::now() + limit;
  while (steady::now() < until) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count())));
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      closed = true;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (done && done(out)) break;
  }
  return out;
}

bool send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// GET `path` with HTTP/1.0; the response or what came of it within `limit`.
std::string http_get_within(int port, const std::string& path, std::chrono::milliseconds limit) {
  int fd = connect_loopback(port);
  if (fd < 0) return "(connect failed)";
  std::string out;
  bool closed = false;
  if (send_all(fd, "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n"))
    out = read_for(fd, limit, closed);
  ::close(fd);
  return out;
}

// The resident set of this process in KiB (/proc/self/status VmRSS).
long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// getaddrinfo for the address tests: these names resolve to a documentation address
// (192.0.2.1, never loopback); every other name goes to the system's resolver.
int remote_resolver(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  std::string name = node != nullptr ? node : "";
  if (name != "localhost" && name != "127.attacker.example")
    return ::getaddrinfo(node, service, hints, res);
  addrinfo numeric = *hints;
  numeric.ai_flags |= AI_NUMERICHOST;
  numeric.ai_family = AF_INET;
  return ::getaddrinfo("192.0.2.1", service, &numeric, res);
}

// The loopback check is made on the addresses a host resolves to, not on its spelling:
// a name starting with "127." or "localhost" itself is refused when it resolves
// elsewhere, and inet_aton's shorthand ("127.1") is not an address.
TEST(debug_server, the_loopback_check_is_made_on_resolved_addresses) {
  int port = free_port();
  std::string p = std::to_string(port);
  goro::error probe = goro::debug::serve("0.0.0.0:" + p);
  if (probe && contains(probe.message(), "built without")) GTEST_SKIP() << probe.message();
  EXPECT_TRUE(probe) << "0.0.0.0 must be refused";
  EXPECT_TRUE(goro::debug::serve("127.1:" + p)) << "127.1 is not an IP address";
  EXPECT_TRUE(goro::debug::serve("[::ffff:10.0.0.1]:" + p));
  auto* saved = goro::net::addr::resolver_hook.exchange(&remote_resolver);
  goro::error spoofed = goro::debug::serve("127.attacker.example:" + p);
  goro::error renamed = goro::debug::serve("localhost:" + p);
  goro::net::addr::resolver_hook.store(saved);
  ASSERT_TRUE(spoofed) << "127.attacker.example resolving to 192.0.2.1 was accepted";
  EXPECT_TRUE(contains(spoofed.message(), "192.0.2.1 is not a loopback address"))
      << spoofed.message();
  ASSERT_TRUE(renamed) << "localhost resolving to 192.0.2.1 was accepted";
  EXPECT_TRUE(contains(renamed.message(), "not a loopback address")) << renamed.message();
  goro::error nul = goro::debug::serve(std::string("127.0.0.1\0.attacker.example:", 28) + p);
  ASSERT_TRUE(nul);
  EXPECT_TRUE(contains(nul.message(), "no such host")) << nul.message();
  // Loopback spelled in its other ways is served.
  EXPECT_FALSE(goro::debug::serve("localhost:" + p));  // the system's resolver
  std::string ok = http_get_within(port, "/debug/pprof/", 10s);
  EXPECT_TRUE(contains(ok, "200 OK")) << ok.substr(0, 200);
  int port2 = free_port();
  EXPECT_FALSE(goro::debug::serve(":" + std::to_string(port2)));  // empty host: 127.0.0.1
  ok = http_get_within(port2, "/debug/pprof/", 10s);
  EXPECT_TRUE(contains(ok, "200 OK")) << ok.substr(0, 200);
  int port3 = free_port();
  EXPECT_FALSE(goro::debug::serve("[::ffff:127.0.0.1]:" + std::to_string(port3)));
  ok = http_get_within(port3, "/debug/pprof/", 10s);
  EXPECT_TRUE(contains(ok, "200 OK")) << ok.substr(0, 200);
  int v6 = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 any6{};
  any6.sin6_family = AF_INET6;
  any6.sin6_addr = in6addr_loopback;
  bool have_v6 = v6 >= 0 && ::bind(v6, reinterpret_cast<sockaddr*>(&any6), sizeof any6) == 0;
  if (v6 >= 0) ::close(v6);
  if (have_v6) {
    goro::error err = goro::debug::serve("[::1]:" + std::to_string(free_port()));
    EXPECT_FALSE(err) << err.message();
  }
}

// Ports are parsed as Go parses them: out of range is "invalid port", trailing bytes
// "unknown port"; nothing listens on a port the caller did not name.
TEST(debug_server, ports_are_parsed_strictly) {
  goro::error probe = goro::debug::serve("127.0.0.1:71596");
  if (probe && contains(probe.message(), "built without")) GTEST_SKIP() << probe.message();
  ASSERT_TRUE(probe) << "port 71596 was accepted";
  EXPECT_EQ(probe.message(), "debug::serve: address 127.0.0.1:71596: invalid port");
  goro::error too_big = goro::debug::serve(":65536");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big.message(), "debug::serve: address :65536: invalid port");
  int port = free_port();
  goro::error junk = goro::debug::serve(":" + std::to_string(port) + "junk");
  ASSERT_TRUE(junk) << "a port with trailing bytes was accepted";
  EXPECT_EQ(junk.message(),
            "debug::serve: address :" + std::to_string(port) + "junk: unknown port");
  int fd = connect_loopback(port);
  EXPECT_LT(fd, 0) << "something listens on " << port;
  if (fd >= 0) ::close(fd);
  goro::error none = goro::debug::serve("127.0.0.1");
  ASSERT_TRUE(none);
  EXPECT_EQ(none.message(), "debug::serve: address 127.0.0.1: missing port in address");
  goro::error zero = goro::debug::serve("127.0.0.1:0");
  ASSERT_TRUE(zero) << "port 0 (a port nobody could learn) was accepted";
  EXPECT_TRUE(contains(zero.message(), "port 0")) << zero.message();
}

// Slow clients (a byte every 200 ms, never finishing their headers) do not occupy every
// worker: a well-behaved request is answered at once, and the slow ones are cut off.
TEST(debug_server, slow_clients_do_not_starve_a_well_behaved_one) {
  int port = free_port();
  SERVE_OR_SKIP("127.0.0.1:" + std::to_string(port));
  const std::string line = "GET /debug/pprof/goroutine HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  std::vector<int> slow;
  for (int i = 0; i < 32; ++i) {
    int fd = connect_loopback(port);
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    for (std::size_t i = 0; !stop.load(); ++i) {
      char c = i < line.size() ? line[i] : 'a';
      for (int fd : slow) ::send(fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(200ms);
    }
  });
  std::this_thread::sleep_for(1s);  // every slow connection accepted and being read
  auto t0 = steady::now();
  std::string answer = http_get_within(port, "/debug/pprof/goroutine?debug=1", 3s);
  double took = ms_since(t0);
  EXPECT_TRUE(contains(answer, " 200 OK")) << "no answer within 3 s while 32 clients trickle";
  EXPECT_LT(took, 3000);
  // The server ends a request whose headers take too long (5 s): each slow connection
  // is closed (after a 408 or without an answer) well within 20 s.
  bool all_closed = true;
  auto until = steady::now() + 20s;
  for (int fd : slow) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    bool closed = false;
    read_for(fd, std::max(left, std::chrono::milliseconds(1)), closed);
    all_closed = all_closed && closed;
  }
  stop = true;
  trickler.join();
  for (int fd : slow) ::close(fd);
  EXPECT_TRUE(all_closed) << "a client trickling its headers was never cut off";
}

// A request line or headers without end are cut off at 64 KiB, not buffered: httplib
// grows its line buffer until a newline and takes any number of headers (one client
// sending for 5 s grew the server past a gigabyte).
TEST(debug_server, endless_request_lines_and_headers_are_cut_off) {
  int port = free_port();
  SERVE_OR_SKIP("127.0.0.1:" + std::to_string(port));
  long rss0 = rss_kib();
  for (const std::string& start :
       {std::string("GET /"), std::string("GET / HTTP/1.1\r\nHost: x\r\n")}) {
    int fd = connect_loopback(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, start));
    // A long path, or one header line after another.
    std::string more = start.size() < 10 ? std::string(64 * 1024, 'a')
                                         : "X-Pad: " + std::string(8000, 'a') + "\r\n";
    bool closed = false;
    std::size_t sent = 0;
    long rss_most = rss0;
    auto t0 = steady::now();
    while (ms_since(t0) < 4000 && !closed && sent < (64u << 20)) {
      ssize_t n = ::send(fd, more.data(), more.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) closed = true;  // reset or shut
      read_for(fd, 1ms, closed);
      rss_most = std::max(rss_most, rss_kib());
    }
    ::close(fd);
    EXPECT_TRUE(closed) << "still reading after " << sent / 1024 << " KiB";
    EXPECT_LT(sent, 16u << 20) << "the server took " << (sent >> 20) << " MiB of one request";
    EXPECT_LT(rss_most - rss0, 50 * 1024) << "RSS grew " << (rss_most - rss0) / 1024 << " MB";
  }
}

// Connections that wait for a worker are not given extra time: a request's header
// deadline counts from when it was accepted. 200 silent connections (64 workers) once
// kept a well-behaved client waiting 15 s.
TEST(debug_server, silent_connections_queued_for_a_worker_do_not_stall_others) {
  int port = free_port();
  SERVE_OR_SKIP("127.0.0.1:" + std::to_string(port));
  std::vector<int> silent;
  for (int i = 0; i < 200; ++i) {
    int fd = connect_loopback(port);
    ASSERT_GE(fd, 0);
    silent.push_back(fd);
  }
  std::this_thread::sleep_for(200ms);
  auto t0 = steady::now();
  std::string answer = http_get_within(port, "/debug/pprof/", 12s);
  double took = ms_since(t0);
  for (int fd : silent) ::close(fd);
  EXPECT_TRUE(contains(answer, " 200 OK")) << "no answer within 12 s";
  // The silent ones' 5 s runs out for all of them at once; then the queue drains.
  EXPECT_LT(took, 9000) << "answered after " << took << " ms";
}

// A request body is refused, not read into memory: the endpoints take none.
TEST(debug_server, a_huge_request_body_is_refused_without_buffering) {
  int port = free_port();
  SERVE_OR_SKIP("127.0.0.1:" + std::to_string(port));
  long rss0 = rss_kib();
  int fd = connect_loopback(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd,
                       "GET /debug/pprof/goroutine HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 536870912\r\n\r\n"));
  std::string chunk(64 * 1024, 'x');
  std::string got;
  bool closed = false;
  long rss_most = rss0;
  auto t0 = steady::now();
  while (ms_since(t0) < 3000 && !closed && !contains(got, " 413 ")) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EINTR) closed = true;  // reset or shut
    got += read_for(fd, 1ms, closed);
    rss_most = std::max(rss_most, rss_kib());
  }
  double took = ms_since(t0);
  ::close(fd);
  EXPECT_TRUE(closed || contains(got, " 413 "))
      << "still reading the body after 3 s: " << got.substr(0, 200);
  EXPECT_LT(took, 3000);
  EXPECT_LT(rss_most - rss0, 50 * 1024)
      << "the server buffered the body (RSS grew " << (rss_most - rss0) / 1024 << " MB)";
  // A chunked body too.
  fd = connect_loopback(port);
  ASSERT_GE(fd, 0);
  send_all(fd,
           "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           "10000\r\n" +
               chunk);
  got =
      read_for(fd, 3s, closed, [](const std::string& text) { return contains(text, "\r\n\r\n"); });
  ::close(fd);
  EXPECT_TRUE(contains(got, " 413 ")) << got.substr(0, 200);
}

std::atomic<int> sigpipes{0};
void count_sigpipe(int) { sigpipes.fetch_add(1); }

// serve leaves the process's SIGPIPE disposition alone, and the server's writes to a
// peer that has gone raise no SIGPIPE.
TEST(debug_server, leaves_sigpipe_alone_and_raises_none) {
  struct sigaction mine {};
  mine.sa_handler = count_sigpipe;
  sigemptyset(&mine.sa_mask);
  struct sigaction before {};
  ASSERT_EQ(::sigaction(SIGPIPE, &mine, &before), 0);
  int port = free_port();
  goro::error err = goro::debug::serve("127.0.0.1:" + std::to_string(port));
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  if (err && contains(err.message(), "built without")) {
    ::sigaction(SIGPIPE, &before, nullptr);
    GTEST_SKIP() << err.message();
  }
  ASSERT_FALSE(err) << err.message();
  EXPECT_EQ(now.sa_handler, &count_sigpipe) << "serve changed the SIGPIPE disposition";
  // Peers that ask for a large dump and close at once: the server's first write is
  // answered with a reset, and its next one fails with EPIPE.
  goro::wait_group sleepers;
  auto release = goro::make_chan<int>();
  for (int i = 0; i < 300; ++i) sleepers.go([release] { release.recv(); });
  for (int i = 0; i < 30; ++i) {
    int fd = connect_loopback(port);
    ASSERT_GE(fd, 0);
    send_all(fd, "GET /debug/pprof/goroutine?debug=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    ::close(fd);
  }
  std::this_thread::sleep_for(500ms);
  std::string ok = http_get_within(port, "/debug/pprof/", 10s);  // still serving
  release.close();
  sleepers.wait();
  EXPECT_TRUE(contains(ok, "200 OK")) << ok.substr(0, 200);
  EXPECT_EQ(sigpipes.load(), 0) << "the server raised SIGPIPE";
  ::sigaction(SIGPIPE, &before, nullptr);
}

TEST(debug_signal, dump_signal_writes_the_dump_and_continues) {
  EXPECT_EXIT(
      {
        setenv("GORO_DUMP_SIGNAL", "SIGQUIT", 1);
        goro::go([] { goro::sleep(1h); });
        std::this_thread::sleep_for(50ms);
        std::raise(SIGQUIT);
        std::this_thread::sleep_for(500ms);
        std::fputs("continued\n", stderr);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "goroutine [0-9]+ \\[sleep\\]:(.|\n)*continued");
}

TEST(debug_starvation, a_goroutine_that_never_yields_is_named) {
  EXPECT_EXIT(
      {
        setenv("GORO_STARVE_MS", "50", 1);
        goro::set_max_procs(1);
        std::atomic<bool> stop{false};
        goro::wait_group wg;
        wg.go([&] {
          auto until = steady::now() + 400ms;
          while (steady::now() < until) {
          }  // no scheduling point
        });
        wg.go([&] { stop = true; });  // waits for the processor, which is handed on
        wg.wait();
        std::exit(stop ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "goroutine [0-9]+ has run for [0-9]+ ms without a scheduling point while 1 goroutine\\(s\\) "
      "waited to run; its processor was handed to another thread \\(created at "
      ".*debug_test.cpp:[0-9]+\\)");
}

}  // namespace
