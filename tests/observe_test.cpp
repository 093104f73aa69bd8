// observe_test — the runtime seen from outside: the goroutine profile in pprof's
// format (decoded here with libprotobuf and zlib, and read by `go tool pprof` where it
// is installed), runtime metrics and their Prometheus (`promtool check metrics`) and
// expvar renderings, and the HTTP endpoints that serve them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "debug/dump.hpp"
#include "support/fixture.hpp"
#include "support/loopback_http.hpp"

#if defined(GORO_TEST_PPROF)
#include <zlib.h>

#include "profile.pb.h"
#endif

namespace {

using namespace goro_test;

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

// Runs a shell command; its standard output, and its exit status in `status`.
std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    status = -1;
    return out;
  }
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

bool have_program(const std::string& name) {
  int status = 0;
  run_command("command -v " + name + " >/dev/null 2>&1", status);
  return status == 0;
}

std::string temp_dir() {
  char tmpl[] = "/tmp/goro-observe-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  return d ? d : "/tmp";
}

// Goroutines parked in three functions with known names, for profiles to count. Each
// body differs (its own counter): identical ones are folded into one at -O2.
std::atomic<int> alphas{0}, betas{0}, gammas{0};
[[gnu::noinline]] void park_in_alpha(goro::chan<int> c) {
  alphas.fetch_add(1);
  c.recv();
}
[[gnu::noinline]] void park_in_beta(goro::chan<int> c) {
  betas.fetch_add(2);
  c.recv();
}
[[gnu::noinline]] void park_in_gamma(goro::chan<int> c) {
  gammas.fetch_add(3);
  c.recv();
}

struct parked_crowd {
  goro::chan<int> release = goro::make_chan<int>();
  goro::wait_group wg;
  int alpha, beta, gamma;
  parked_crowd(int a, int b, int c) : alpha(a), beta(b), gamma(c) {
    for (int i = 0; i < a; ++i) wg.go([ch = release] { park_in_alpha(ch); });
    for (int i = 0; i < b; ++i) wg.go([ch = release] { park_in_beta(ch); });
    for (int i = 0; i < c; ++i) wg.go([ch = release] { park_in_gamma(ch); });
    // All parked: the metrics say so (generous: 10,000 goroutines under a sanitizer).
    bool parked = false;
    for (auto until = steady::now() + 60s; !parked && steady::now() < until;) {
      for (auto& [reason, n] : goro::debug::metrics().waiting_by_reason) {
        if (reason == "chan receive" && n >= static_cast<std::uint64_t>(a + b + c)) parked = true;
      }
      if (!parked) goro::sleep(10ms);
    }
    EXPECT_TRUE(parked);
  }
  ~parked_crowd() {
    release.close();
    wg.wait();
  }
};


std::string body_of(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : response.substr(at + 4);
}


// One server for the whole test program (each serve call starts another), or -1 when
// the library was built without the HTTP server.
int server_port() {
  static int port = [] {
    int p = free_port();
    goro::error err = goro::debug::serve("127.0.0.1:" + std::to_string(p));
    return err ? -1 : p;
  }();
  return port;
}

// ---- metrics ---------------------------------------------------------------------

std::uint64_t waiting_for(const goro::debug::runtime_metrics& m, const std::string& reason) {
  for (auto& [r, n] : m.waiting_by_reason) {
    if (r == reason) return n;
  }
  return 0;
}

TEST(metrics, count_goroutines_by_state_and_move_as_they_start_park_and_exit) {
  goro::run([] {
    auto before = goro::debug::metrics();
    {
      parked_crowd crowd(60, 30, 10);
      auto during = goro::debug::metrics();
      EXPECT_GE(during.goroutines, before.goroutines + 100);
      EXPECT_EQ(during.goroutines,
                during.goroutines_running + during.goroutines_runnable +
                    during.goroutines_waiting);
      EXPECT_GE(waiting_for(during, "chan receive"), waiting_for(before, "chan receive") + 100);
      EXPECT_GE(during.goroutines_created_total, before.goroutines_created_total + 100);
      EXPECT_GE(during.parks_total, before.parks_total + 100);
      EXPECT_GE(during.context_switches_total, before.context_switches_total + 100);
      EXPECT_GE(during.goroutines_running, 1u) << "the caller runs";
      EXPECT_GE(during.stack_bytes_reserved, during.stack_bytes_committed);
      EXPECT_GT(during.stack_bytes_committed, 0u);
      EXPECT_GE(during.stack_bytes_reserved, 100u * 16 * 1024);
    }
    // Released and exited: back down (other tests' goroutines may come and go).
    EXPECT_TRUE(eventually([&] {
      return goro::debug::metrics().goroutines <= before.goroutines;
    }));
    auto after = goro::debug::metrics();
    EXPECT_GE(after.goroutines_created_total, before.goroutines_created_total + 100)
        << "a counter never goes down";
  });
}

long rss_anon_bytes() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8)) * 1024;
  }
  return -1;
}

TEST(metrics, committed_stack_memory_is_what_is_resident) {
  // Parked goroutines touch a page or two of their stacks; the bottom page of an
  // unguarded one may be read at a switch (a clean reserve zone), which maps the shared
  // zero page where the kernel has one. That page costs nothing and must not be counted.
  goro::run([] {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer counts each goroutine (a fiber) as a thread, 8128 at most, and
    // zeroes about a megabyte for each one alive at once: milliseconds apiece where
    // page faults are slow.
    constexpr int n = 1000;
#else
    constexpr int n = 10000;
#endif
    parked_crowd crowd(n, 0, 0);
    auto m = goro::debug::metrics();
    long rss = rss_anon_bytes();
    ASSERT_GT(rss, 0);
    EXPECT_LE(m.stack_bytes_committed, static_cast<std::uint64_t>(rss))
        << "more stack counted resident than the process has anonymous memory";
    EXPECT_GE(m.stack_bytes_committed, std::uint64_t{n} * 4096) << "each parked stack has a page written";
  });
}

TEST(metrics, processors_and_threads_add_up) {
  goro::run([] {
    auto m = goro::debug::metrics();
    EXPECT_EQ(m.max_procs, goro::max_procs());
    EXPECT_GE(m.worker_threads, m.max_procs) << "every slot has a worker thread";
    EXPECT_GE(m.runtime_threads, 1) << "the system monitor";
    EXPECT_GT(m.threads, 0);
    EXPECT_LE(m.worker_threads + m.blocking_threads + m.runtime_threads, m.threads);
    EXPECT_LE(m.processors_spinning, m.worker_threads);
    // A goro::blocking call holds a helper thread while it runs.
    std::atomic<bool> inside{false}, leave{false};
    goro::wait_group wg;
    wg.go([&] {
      goro::blocking([&] {
        inside = true;
        while (!leave) std::this_thread::sleep_for(1ms);
        return 0;
      });
    });
    ASSERT_TRUE(eventually([&] { return inside.load(); }));
    EXPECT_GE(goro::debug::metrics().blocking_threads, 1);
    leave = true;
    wg.wait();
  });
}

TEST(metrics, timers_and_network_waiters_are_gauges) {
  goro::run([] {
    auto before = goro::debug::metrics();
    goro::wait_group wg;
    auto stop = goro::make_chan<int>();
    for (int i = 0; i < 20; ++i) {
      wg.go([stop] {
        goro::select(goro::case_recv(stop), goro::case_recv(goro::after(std::chrono::hours(1))));
      });
    }
    EXPECT_TRUE(eventually([&] {
      return goro::debug::metrics().timers_pending >= before.timers_pending + 20;
    }));
    // A goroutine blocked reading a socket nobody writes to waits in the poller.
    auto [ln, lerr] = goro::net::listen("tcp", "127.0.0.1:0");
    ASSERT_FALSE(lerr);
    wg.go([&ln = ln] {
      auto [c, err] = ln.accept();
      if (!err) c.close();
    });
    EXPECT_TRUE(eventually([&] { return goro::debug::metrics().network_waiters >= 1; }));
    ln.close();
    stop.close();
    wg.wait();
  });
}

TEST(metrics, prometheus_text_names_every_family_with_help_and_type) {
  goro::run([] {
    parked_crowd crowd(5, 0, 0);
    std::ostringstream os;
    goro::debug::write_metrics(os);
    std::string text = os.str();
    for (const char* family :
         {"goro_goroutines", "goro_goroutines_running", "goro_goroutines_runnable",
          "goro_goroutines_waiting", "goro_goroutines_created_total", "goro_max_procs",
          "goro_processors_idle", "goro_processors_spinning", "goro_threads",
          "goro_context_switches_total", "goro_steals_total", "goro_parks_total",
          "goro_worker_sleeps_total", "goro_worker_wakeups_total", "goro_timers_pending",
          "goro_network_waiters", "goro_stack_reserved_bytes", "goro_stack_committed_bytes",
          "goro_stack_pooled_bytes"}) {
      EXPECT_TRUE(contains(text, std::string("# HELP ") + family + " ")) << family;
      EXPECT_TRUE(contains(text, std::string("# TYPE ") + family + " ")) << family;
    }
    EXPECT_TRUE(contains(text, "goro_goroutines_waiting{reason=\"chan receive\"} "));
    EXPECT_TRUE(contains(text, "goro_threads{role=\"worker\"} "));
    EXPECT_TRUE(contains(text, "# TYPE goro_parks_total counter\n"));
    if (!have_program("promtool")) GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
    std::string dir = temp_dir();
    std::ofstream(dir + "/metrics.txt") << text;
    int status = 0;
    std::string out = run_command("promtool check metrics < " + dir + "/metrics.txt 2>&1", status);
    EXPECT_EQ(status, 0) << out << "\n" << text;
  });
}

TEST(metrics, vars_are_json_with_the_same_values) {
  goro::run([] {
    parked_crowd crowd(7, 0, 0);
    std::ostringstream os;
    goro::debug::write_vars(os);
    std::string json = os.str();
    EXPECT_TRUE(contains(json, "\"cmdline\": ["));
    EXPECT_TRUE(contains(json, "\"goroutines_waiting\": {"));
    EXPECT_TRUE(contains(json, "\"chan receive\": "));
    if (!have_program("python3")) GTEST_SKIP() << "python3 not installed";
    std::string dir = temp_dir();
    std::ofstream(dir + "/vars.json") << json;
    int status = 0;
    std::string out = run_command(
        "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
        "print(d[\"goroutines\"], d[\"threads\"][\"worker\"], d[\"goroutines_waiting\"][\"chan receive\"])' " +
            dir + "/vars.json 2>&1",
        status);
    ASSERT_EQ(status, 0) << out << "\n" << json;
    std::istringstream in(out);
    std::uint64_t goroutines = 0, waiting = 0;
    int workers = 0;
    in >> goroutines >> workers >> waiting;
    EXPECT_GE(goroutines, 8u);
    EXPECT_GE(workers, goro::max_procs());
    EXPECT_GE(waiting, 7u);
  });
}

// ---- the pprof profile -----------------------------------------------------------

#if defined(GORO_TEST_PPROF)

namespace pp = perftools::profiles;

std::string gunzip(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  std::vector<char> buf(65536);  // not on a goroutine's 64 KiB stack
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
  } while (rc == Z_OK);
  inflateEnd(&zs);
  EXPECT_EQ(rc, Z_STREAM_END) << "not a complete gzip stream";
  return out;
}

pp::Profile take_profile() {
  std::ostringstream os;
  goro::error err = goro::debug::write_goroutine_profile(os);
  EXPECT_FALSE(err) << err.message();
  std::string gz = os.str();
  EXPECT_GE(gz.size(), 2u);
  if (gz.size() >= 2) {
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  }
  pp::Profile prof;
  EXPECT_TRUE(prof.ParseFromString(gunzip(gz)));
  return prof;
}

// Checks the references inside a profile; returns the goroutines it counts.
std::int64_t check_well_formed(const pp::Profile& prof) {
  const int strings = prof.string_table_size();
  EXPECT_GE(strings, 1);
  if (strings >= 1) {
    EXPECT_EQ(prof.string_table(0), "");
  }
  auto str_ok = [&](std::int64_t i) { return i >= 0 && i < strings; };
  EXPECT_EQ(prof.sample_type_size(), 1);
  if (prof.sample_type_size() == 1) {
    EXPECT_EQ(prof.string_table(static_cast<int>(prof.sample_type(0).type())), "goroutine");
    EXPECT_EQ(prof.string_table(static_cast<int>(prof.sample_type(0).unit())), "count");
  }
  EXPECT_EQ(prof.string_table(static_cast<int>(prof.period_type().type())), "goroutine");
  EXPECT_EQ(prof.period(), 1);
  EXPECT_GT(prof.time_nanos(), 0);
  std::set<std::uint64_t> functions, mappings, locations;
  for (const auto& f : prof.function()) {
    EXPECT_NE(f.id(), 0u);
    EXPECT_TRUE(functions.insert(f.id()).second) << "duplicate function id";
    EXPECT_TRUE(str_ok(f.name()) && str_ok(f.system_name()) && str_ok(f.filename()));
  }
  for (const auto& m : prof.mapping()) {
    EXPECT_NE(m.id(), 0u);
    EXPECT_TRUE(mappings.insert(m.id()).second) << "duplicate mapping id";
    EXPECT_LT(m.memory_start(), m.memory_limit());
    EXPECT_TRUE(str_ok(m.filename()));
  }
  for (const auto& l : prof.location()) {
    EXPECT_NE(l.id(), 0u);
    EXPECT_TRUE(locations.insert(l.id()).second) << "duplicate location id";
    if (l.mapping_id() != 0) {
      EXPECT_TRUE(mappings.count(l.mapping_id()));
    }
    EXPECT_GE(l.line_size(), 1);
    for (const auto& line : l.line()) EXPECT_TRUE(functions.count(line.function_id()));
  }
  std::int64_t total = 0;
  for (const auto& s : prof.sample()) {
    EXPECT_EQ(s.value_size(), 1);
    if (s.value_size() == 1) {
      EXPECT_GT(s.value(0), 0);
      total += s.value(0);
    }
    for (auto id : s.location_id()) EXPECT_TRUE(locations.count(id)) << "dangling location " << id;
    for (const auto& label : s.label()) EXPECT_TRUE(str_ok(label.key()) && str_ok(label.str()));
  }
  return total;
}

// The functions of a sample's stack, leaf first (a location's lines are innermost
// first).
std::vector<std::string> stack_of(const pp::Profile& prof, const pp::Sample& s) {
  std::map<std::uint64_t, const pp::Location*> locs;
  for (const auto& l : prof.location()) locs[l.id()] = &l;
  std::map<std::uint64_t, std::string> fns;
  for (const auto& f : prof.function()) fns[f.id()] = prof.string_table(static_cast<int>(f.name()));
  std::vector<std::string> out;
  for (auto id : s.location_id()) {
    for (const auto& line : locs[id]->line()) out.push_back(fns[line.function_id()]);
  }
  return out;
}

std::string label_of(const pp::Profile& prof, const pp::Sample& s, const std::string& key) {
  for (const auto& l : s.label()) {
    if (prof.string_table(static_cast<int>(l.key())) == key) {
      return prof.string_table(static_cast<int>(l.str()));
    }
  }
  return {};
}

TEST(profile, one_sample_per_stack_with_counts_wait_states_and_leaf_first_locations) {
  goro::run([] {
    parked_crowd crowd(500, 300, 200);
    pp::Profile prof = take_profile();
    std::int64_t total = check_well_formed(prof);
    EXPECT_GE(total, 1001) << "1000 parked and the caller";
    EXPECT_LE(static_cast<std::uint64_t>(total), goro::debug::metrics().goroutines + 5);
    std::map<std::string, std::int64_t> by_function;
    for (const auto& s : prof.sample()) {
      auto stack = stack_of(prof, s);
      for (const char* fn : {"park_in_alpha", "park_in_beta", "park_in_gamma"}) {
        bool here = false;
        for (const auto& f : stack) here |= contains(f, fn);
        if (!here) continue;
        by_function[fn] += s.value(0);
        EXPECT_EQ(label_of(prof, s, "state"), "chan receive");
        // Leaf first: the frame that parked (the channel's receive, when debug info
        // shows it inlined, else our function), then ours, then the lambda that
        // called it.
        ASSERT_FALSE(stack.empty());
        EXPECT_TRUE(contains(stack.front(), "recv") || contains(stack.front(), fn))
            << testing::PrintToString(stack);
        std::size_t ours = stack.size(), caller = stack.size();
        for (std::size_t i = 0; i < stack.size(); ++i) {
          if (ours == stack.size() && contains(stack[i], fn)) ours = i;
          if (caller == stack.size() && contains(stack[i], "parked_crowd")) caller = i;
        }
        EXPECT_LT(ours, caller) << testing::PrintToString(stack);
      }
    }
    EXPECT_EQ(by_function["park_in_alpha"], 500);
    EXPECT_EQ(by_function["park_in_beta"], 300);
    EXPECT_EQ(by_function["park_in_gamma"], 200);
    // Functions carry file and line where the binary has debug info; mappings name
    // the binary.
    bool named = false;
    for (const auto& f : prof.function()) {
      if (!contains(prof.string_table(static_cast<int>(f.name())), "park_in_alpha")) continue;
      named = true;
      const std::string& file = prof.string_table(static_cast<int>(f.filename()));
      if (!file.empty()) {
        EXPECT_TRUE(contains(file, "observe_test.cpp")) << file;
      }
    }
    EXPECT_TRUE(named);
    bool self_mapped = false;
    for (const auto& m : prof.mapping()) {
      self_mapped |= contains(prof.string_table(static_cast<int>(m.filename())), "observe_test") &&
                     m.has_functions();
    }
    EXPECT_TRUE(self_mapped);
  });
}

// Starts n goroutines named `name`, parked; takes a profile and returns how many
// goroutines its samples labelled with name `label`.
std::int64_t goroutines_labelled(int n, const char* name, const std::string& label) {
  std::int64_t found = -1;
  goro::run([&] {
    auto stop = goro::make_chan<int>();
    goro::wait_group wg;
    for (int i = 0; i < n; ++i) {
      wg.add(1);
      goro::go(goro::spawn_options{.name = name}, [stop, &wg] {
        stop.recv();
        wg.done();
      });
    }
    EXPECT_TRUE(eventually([&] {
      return waiting_for(goro::debug::metrics(), "chan receive") >= static_cast<std::uint64_t>(n);
    }));
    pp::Profile prof = take_profile();
    check_well_formed(prof);
    found = 0;
    for (const auto& s : prof.sample()) {
      if (label_of(prof, s, "name") == label) found += s.value(0);
    }
    stop.close();
    wg.wait();
  });
  return found;
}

TEST(profile, strings_are_made_valid_utf8) {
  EXPECT_EQ(goro::detail::valid_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(goro::detail::valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(goro::detail::valid_utf8("bad\xff\xfe"), "bad\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(goro::detail::valid_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd") << "overlong";
  EXPECT_EQ(goro::detail::valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd")
      << "a surrogate";
  EXPECT_EQ(goro::detail::valid_utf8("cut \xe2\x82"), "cut \xef\xbf\xbd\xef\xbf\xbd");
  // A goroutine named with bytes that are not UTF-8: the profile still parses (proto3
  // strings must be UTF-8), with the name's bad bytes replaced.
  EXPECT_EQ(goroutines_labelled(1, "odd\xff name", "odd\xef\xbf\xbd name"), 1);
}

TEST(profile, named_goroutines_carry_their_name_as_a_label) {
  EXPECT_EQ(goroutines_labelled(3, "flusher \"main\"", "flusher \"main\""), 3);
}

TEST(profile, stays_well_formed_while_goroutines_start_and_exit_everywhere) {
  std::uint64_t seed = test_seed();
  goro::run([seed] {
    std::atomic<bool> stop{false};
    goro::wait_group churners;
    for (int w = 0; w < 4 * goro::max_procs(); ++w) {
      churners.go([&stop, seed, w] {
        std::mt19937_64 rng(seed + static_cast<std::uint64_t>(w));
        while (!stop) {
          goro::wait_group kids;
          int n = static_cast<int>(rng() % 8);
          for (int k = 0; k < n; ++k) {
            kids.go([yield = rng() % 2 == 0] {
              if (yield) goro::yield();
            });
          }
          kids.wait();
        }
      });
    }
    // For 1.5 s and at least three profiles (under ThreadSanitizer one can take longer
    // than 0.5 s while the churn goes on), within a minute.
    auto start = steady::now();
    int taken = 0;
    while ((steady::now() < start + 1500ms || taken < 3) && steady::now() < start + 60s) {
      pp::Profile prof = take_profile();
      EXPECT_GE(check_well_formed(prof), 1);
      ++taken;
    }
    stop = true;
    churners.wait();
    EXPECT_GE(taken, 3);
  });
}

TEST(profile, go_tool_pprof_reads_it) {
  if (!have_program("go")) GTEST_SKIP() << "go not installed (Debian: golang-go)";
  std::string dir = temp_dir();
  goro::run([&] {
    parked_crowd crowd(500, 300, 200);
    std::ofstream f(dir + "/goroutine.pb.gz", std::ios::binary);
    ASSERT_FALSE(goro::debug::write_goroutine_profile(f));
  });
  // go tool pprof wants a home for its settings; the network is never asked.
  std::string pprof = "HOME=" + dir + " GOFLAGS= go tool pprof ";
  int status = 0;
  std::string top = run_command(pprof + "-top " + dir + "/goroutine.pb.gz 2>&1", status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_TRUE(contains(top, "Type: goroutine")) << top;
  // -top's cumulative column: each function's goroutines.
  for (auto [fn, count] : {std::pair{"park_in_alpha", "500"}, std::pair{"park_in_beta", "300"},
                           std::pair{"park_in_gamma", "200"}}) {
    bool found = false;
    std::istringstream lines(top);
    for (std::string line; std::getline(lines, line);) {
      if (!contains(line, fn)) continue;
      found = true;
      std::istringstream cols(line);
      std::string flat, flat_pct, sum_pct, cum;
      cols >> flat >> flat_pct >> sum_pct >> cum;
      EXPECT_EQ(cum, count) << line;
    }
    EXPECT_TRUE(found) << fn << " missing from\n" << top;
  }
  std::string raw = run_command(pprof + "-raw " + dir + "/goroutine.pb.gz 2>&1", status);
  ASSERT_EQ(status, 0) << raw;
  EXPECT_TRUE(contains(raw, "park_in_alpha")) << raw;
  std::string traces = run_command(pprof + "-traces " + dir + "/goroutine.pb.gz 2>&1", status);
  ASSERT_EQ(status, 0) << traces;
  EXPECT_TRUE(contains(traces, "state:  chan receive")) << traces;
}

#else

TEST(profile, without_protobuf_the_error_says_what_is_missing) {
  std::ostringstream os;
  goro::error err = goro::debug::write_goroutine_profile(os);
  ASSERT_TRUE(err);
  EXPECT_TRUE(contains(err.message(), "libprotobuf-dev")) << err.message();
  EXPECT_TRUE(os.str().empty());
}

#endif

TEST(profile, a_failing_stream_is_an_error) {
  std::ostringstream os;
  os.setstate(std::ios::badbit);
  goro::error err = goro::debug::write_goroutine_profile(os);
  EXPECT_TRUE(err);
}

// ---- the HTTP endpoints ----------------------------------------------------------

TEST(observe_server, serves_the_profile_metrics_vars_and_an_index) {
  int port = server_port();
  if (port < 0) GTEST_SKIP() << "built without the HTTP server";
  goro::run([port] {
    parked_crowd crowd(40, 0, 0);
    std::string prof = http_get(port, "/debug/pprof/goroutine");
    EXPECT_TRUE(contains(prof, " 200 ")) << prof.substr(0, 200);
#if defined(GORO_TEST_PPROF)
    EXPECT_TRUE(contains(prof, "application/octet-stream"));
    std::string body = body_of(prof);
    ASSERT_GE(body.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(body[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(body[1]), 0x8b);
    EXPECT_TRUE(contains(body_of(http_get(port, "/debug/pprof/goroutine?debug=0")), "\x1f\x8b"));
    EXPECT_TRUE(contains(body_of(http_get(port, "/debug/pprof/goroutine?debug=x")), "\x1f\x8b"))
        << "as Go: a debug value that is not a number is 0";
#endif
    EXPECT_TRUE(contains(http_get(port, "/debug/pprof/goroutine?debug=1"), "goroutine profile: total"));
    EXPECT_TRUE(contains(http_get(port, "/debug/pprof/goroutine?debug=2"), "[chan receive"));
    // Go's rule (strconv.Atoi): 2 or more is every goroutine; 0, negative numbers and
    // what is not a number (a space included) the profile.
    EXPECT_TRUE(contains(http_get(port, "/debug/pprof/goroutine?debug=3"), "[chan receive"));
    EXPECT_TRUE(contains(http_get(port, "/debug/pprof/goroutine?debug=99999999999999999999"),
                         "[chan receive"))
        << "out of range saturates";
#if defined(GORO_TEST_PPROF)
    EXPECT_TRUE(contains(body_of(http_get(port, "/debug/pprof/goroutine?debug=-1")), "\x1f\x8b"));
    EXPECT_TRUE(contains(body_of(http_get(port, "/debug/pprof/goroutine?debug=%202")), "\x1f\x8b"));
#endif
    std::string redirect = http_get(port, "/debug/pprof");
    EXPECT_TRUE(contains(redirect, " 301 ") && contains(redirect, "Location: /debug/pprof/"))
        << redirect.substr(0, 300);
    std::string metrics = http_get(port, "/metrics");
    EXPECT_TRUE(contains(metrics, "text/plain; version=0.0.4"));
    EXPECT_TRUE(contains(metrics, "goro_goroutines_waiting{reason=\"chan receive\"} "));
    std::string vars = http_get(port, "/debug/vars");
    EXPECT_TRUE(contains(vars, "application/json"));
    EXPECT_TRUE(contains(vars, "\"goroutines\": "));
    std::string index = http_get(port, "/debug/pprof/");
    for (const char* link : {"href=\"goroutine\"", "goroutine?debug=1", "goroutine?debug=2",
                             "href=\"/metrics\"", "href=\"/debug/vars\""}) {
      EXPECT_TRUE(contains(index, link)) << link;
    }
  });
}

}  // namespace
