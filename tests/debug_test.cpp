// debug_test — goro/debug.hpp: dumps, wait reasons, grouping, leak checks, the
// deadlock detector, the debug server and the dump signal.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <regex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/fixture.hpp"
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
  std::string dump = goro::debug::goroutines(2);
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

std::string http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

TEST(debug_server, answers_while_every_processor_spins) {
  goro::set_max_procs(2);
  int port = 20000 + static_cast<int>(::getpid() % 20000);
  goro::error err = goro::debug::serve("127.0.0.1:" + std::to_string(port));
  // serve() is optional (cpp-httplib); CI installs it, so this runs there.
  if (err && contains(err.message(), "built without")) GTEST_SKIP() << err.message();
  ASSERT_FALSE(err) << err.message();
  EXPECT_TRUE(goro::debug::serve("0.0.0.0:" + std::to_string(port + 1)))
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
