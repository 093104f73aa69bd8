// cpu_limit_test — the default number of processors: the affinity mask limited by the
// cgroup CPU bandwidth limit (runtime/cpu_limit.hpp). The parsers are fed sample
// /proc files and sample cgroup trees in a temporary directory; where the process may
// create a cgroup (root on a writable cgroup file system), child processes check the
// whole rule in a real one, limit changes and overrides included, and are skipped
// otherwise.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/cpu_limit.hpp"
#include "support/fixture.hpp"

namespace {

using namespace goro_test;
using goro::detail::cfs_quota_processors;
using goro::detail::cpu_max_processors;
using goro::detail::default_processors;
using goro::detail::find_cpu_limit_files;
using goro::detail::read_cpu_limit;
namespace fs = std::filesystem;

// ---- the limit files' contents -------------------------------------------------------

TEST(cpu_limit, cpu_max_is_quota_over_period_rounded_up) {
  EXPECT_EQ(cpu_max_processors("200000 100000\n"), 2);
  EXPECT_EQ(cpu_max_processors("150000 100000\n"), 2);
  EXPECT_EQ(cpu_max_processors("100000 100000\n"), 1);
  EXPECT_EQ(cpu_max_processors("50000 100000\n"), 1);
  EXPECT_EQ(cpu_max_processors("1000 100000"), 1);
  EXPECT_EQ(cpu_max_processors("6400000 100000\n"), 64);
  EXPECT_EQ(cpu_max_processors("200000 50000\n"), 4);
}

TEST(cpu_limit, cpu_max_of_max_is_no_limit) { EXPECT_EQ(cpu_max_processors("max 100000\n"), 0); }

TEST(cpu_limit, cpu_max_that_is_not_understood_is_reported_as_such) {
  EXPECT_EQ(cpu_max_processors(""), -1);
  EXPECT_EQ(cpu_max_processors("max\n"), -1);
  EXPECT_EQ(cpu_max_processors("abc 100000\n"), -1);
  EXPECT_EQ(cpu_max_processors("200000 0\n"), -1);
  EXPECT_EQ(cpu_max_processors("-5 100000\n"), -1);
}

TEST(cpu_limit, cfs_quota_of_minus_one_is_no_limit) {
  EXPECT_EQ(cfs_quota_processors("-1\n", "100000\n"), 0);
  EXPECT_EQ(cfs_quota_processors("200000\n", "100000\n"), 2);
  EXPECT_EQ(cfs_quota_processors("250000\n", "100000\n"), 3);
  EXPECT_EQ(cfs_quota_processors("50000\n", "100000\n"), 1);
  EXPECT_EQ(cfs_quota_processors("", "100000\n"), -1);
}

// ---- the default from CPUs and limit -------------------------------------------------

TEST(cpu_limit, the_default_is_the_smaller_of_cpus_and_limit) {
  EXPECT_EQ(default_processors(64, 2), 2);  // a 2-CPU quota on a 64-CPU host
  EXPECT_EQ(default_processors(64, 0), 64);
  EXPECT_EQ(default_processors(2, 8), 2);
  EXPECT_EQ(default_processors(4, 1), 1);
}

TEST(cpu_limit, the_default_is_at_least_one_and_at_most_1024) {
  EXPECT_EQ(default_processors(0, 0), 1);   // the CPU count is not known
  EXPECT_EQ(default_processors(-1, 0), 1);  // sysconf failed
  EXPECT_EQ(default_processors(4096, 0), 1024);
  EXPECT_EQ(default_processors(100000, 3000), 1024);
  EXPECT_EQ(default_processors(4096, 3), 3);
}

TEST(cpu_limit, the_cpus_available_are_counted) {
  long n = goro::detail::available_cpus();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, sysconf(_SC_NPROCESSORS_CONF));
}

// ---- finding the files: sample trees ---------------------------------------------------

// A temporary directory standing in for /sys/fs/cgroup; removed at the end.
class cgroup_tree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/goro-cgroup-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes `text` to root/relative, creating the directories on the way.
  void write(const std::string& relative, const std::string& text) {
    fs::path p = fs::path(root_) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string at(const std::string& relative) const { return root_ + "/" + relative; }
  // A mountinfo line for a hierarchy mounted at root/relative.
  std::string mount(const std::string& cgroup_root, const std::string& relative,
                    const std::string& fstype, const std::string& super_options) const {
    return "35 24 0:30 " + cgroup_root + " " + at(relative) +
           " rw,nosuid,nodev,noexec,relatime shared:9 - " + fstype + " " + fstype + " " +
           super_options + "\n";
  }

  std::string root_;
};

TEST_F(cgroup_tree, v2_reads_cpu_max_of_the_process_cgroup) {
  write("cg/a/b/cpu.max", "200000 100000\n");
  auto files = find_cpu_limit_files("0::/a/b\n", mount("/", "cg", "cgroup2", "rw"));
  ASSERT_EQ(files.version, 2);
  ASSERT_EQ(files.dirs.size(), 1u);
  EXPECT_EQ(files.dirs[0], at("cg/a/b"));
  EXPECT_EQ(read_cpu_limit(files), 2);
}

TEST_F(cgroup_tree, v2_limit_changes_are_seen_when_reread) {
  write("cg/a/b/cpu.max", "max 100000\n");
  auto files = find_cpu_limit_files("0::/a/b\n", mount("/", "cg", "cgroup2", "rw"));
  ASSERT_EQ(files.version, 2) << "a file saying `max` is still a file to watch";
  EXPECT_EQ(read_cpu_limit(files), 0);
  write("cg/a/b/cpu.max", "150000 100000\n");
  EXPECT_EQ(read_cpu_limit(files), 2);
  write("cg/a/b/cpu.max", "50000 100000\n");
  EXPECT_EQ(read_cpu_limit(files), 1);
}

TEST_F(cgroup_tree, v2_the_tightest_limit_on_the_way_to_the_root_wins) {
  write("cg/cgroup.controllers", "cpu\n");  // the root cgroup has no cpu.max
  write("cg/a/cpu.max", "300000 100000\n");
  write("cg/a/b/cpu.max", "max 100000\n");
  write("cg/a/b/c/cgroup.procs", "");  // no cpu controller here: no cpu.max
  auto files = find_cpu_limit_files("0::/a/b/c\n", mount("/", "cg", "cgroup2", "rw"));
  ASSERT_EQ(files.version, 2);
  ASSERT_EQ(files.dirs.size(), 2u);
  EXPECT_EQ(files.dirs[0], at("cg/a/b"));
  EXPECT_EQ(files.dirs[1], at("cg/a"));
  EXPECT_EQ(read_cpu_limit(files), 3);
  write("cg/a/b/cpu.max", "400000 100000\n");
  EXPECT_EQ(read_cpu_limit(files), 3) << "the parent's limit is still the tighter one";
  write("cg/a/b/cpu.max", "120000 100000\n");
  EXPECT_EQ(read_cpu_limit(files), 2);
}

TEST_F(cgroup_tree, v2_in_a_cgroup_namespace_the_process_is_at_the_mount_point) {
  // Docker with a private cgroup namespace: "0::/" and the mount's root "/".
  write("sys/fs/cgroup/cpu.max", "200000 100000\n");
  auto files = find_cpu_limit_files("0::/\n", mount("/", "sys/fs/cgroup", "cgroup2", "rw"));
  ASSERT_EQ(files.version, 2);
  ASSERT_EQ(files.dirs.size(), 1u);
  EXPECT_EQ(files.dirs[0], at("sys/fs/cgroup"));
  EXPECT_EQ(read_cpu_limit(files), 2);
}

TEST_F(cgroup_tree, v2_a_bind_mount_of_the_process_cgroup_is_entered_from_its_root) {
  // No cgroup namespace: the container's cgroup is bind-mounted as the file system's
  // root, and /proc/self/cgroup names it from the real root.
  write("cg/cpu.max", "100000 100000\n");
  std::string mounts = mount("/other", "elsewhere", "cgroup2", "rw") +
                       mount("/system.slice/docker-1f2e.scope", "cg", "cgroup2", "rw");
  auto files = find_cpu_limit_files("0::/system.slice/docker-1f2e.scope\n", mounts);
  ASSERT_EQ(files.version, 2);
  ASSERT_EQ(files.dirs.size(), 1u);
  EXPECT_EQ(files.dirs[0], at("cg"));
  EXPECT_EQ(read_cpu_limit(files), 1);
}

TEST_F(cgroup_tree, a_mount_whose_root_is_not_above_the_process_cgroup_is_not_used) {
  write("cg/cpu.max", "100000 100000\n");
  auto files = find_cpu_limit_files("0::/a/b\n", mount("/a/bc", "cg", "cgroup2", "rw"));
  EXPECT_EQ(files.version, 0);
  EXPECT_TRUE(files.dirs.empty());
}

TEST_F(cgroup_tree, a_cgroup_outside_the_cgroup_namespace_is_not_followed_up_the_tree) {
  // The process was moved out of its namespace's root after it started.
  write("cg/cpu.max", "100000 100000\n");
  write("other/cpu.max", "100000 100000\n");
  auto files = find_cpu_limit_files("0::/../other\n", mount("/", "cg", "cgroup2", "rw"));
  EXPECT_EQ(files.version, 0);
}

TEST_F(cgroup_tree, escaped_mount_points_are_unescaped) {
  write("my cgroup/a/cpu.max", "300000 100000\n");
  std::string line = "35 24 0:30 / " + root_ + "/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
  auto files = find_cpu_limit_files("0::/a\n", line);
  ASSERT_EQ(files.version, 2);
  EXPECT_EQ(read_cpu_limit(files), 3);
}

TEST_F(cgroup_tree, v1_reads_the_cfs_quota_of_the_cpu_hierarchy) {
  // A hybrid system: v1 controllers, the cpu one co-mounted with cpuacct, and an empty
  // unified hierarchy beside them. The cpu controller lives in v1.
  write("cpu,cpuacct/docker/1f2e/cpu.cfs_quota_us", "-1\n");
  write("cpu,cpuacct/docker/1f2e/cpu.cfs_period_us", "100000\n");
  write("cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n");
  write("cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
  write("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  write("cpuacct-only/docker/1f2e/cpu.cfs_quota_us", "50000\n");  // must not be used
  write("unified/docker/1f2e/cpu.max", "50000 100000\n");         // must not be used
  std::string cgroup =
      "12:pids:/docker/1f2e\n"
      "5:cpuacct:/docker/1f2e\n"
      "4:cpu,cpuacct:/docker/1f2e\n"
      "1:name=systemd:/docker/1f2e\n"
      "0::/docker/1f2e\n";
  std::string mounts = mount("/", "unified", "cgroup2", "rw,nsdelegate") +
                       mount("/", "cpuacct-only", "cgroup", "rw,cpuacct") +
                       mount("/", "cpu,cpuacct", "cgroup", "rw,cpu,cpuacct");
  auto files = find_cpu_limit_files(cgroup, mounts);
  ASSERT_EQ(files.version, 1);
  ASSERT_EQ(files.dirs.size(), 3u) << "the mount point itself is the root cgroup";
  EXPECT_EQ(files.dirs[0], at("cpu,cpuacct/docker/1f2e"));
  EXPECT_EQ(read_cpu_limit(files), 0) << "-1: no limit";
  write("cpu,cpuacct/docker/1f2e/cpu.cfs_quota_us", "250000\n");
  EXPECT_EQ(read_cpu_limit(files), 3);
  write("cpu,cpuacct/docker/cpu.cfs_quota_us", "100000\n");
  EXPECT_EQ(read_cpu_limit(files), 1);
}

TEST_F(cgroup_tree, v1_without_a_cpu_mount_falls_back_to_v2) {
  write("unified/a/cpu.max", "200000 100000\n");
  auto files = find_cpu_limit_files("3:cpu:/a\n0::/a\n", mount("/", "unified", "cgroup2", "rw"));
  ASSERT_EQ(files.version, 2);
  EXPECT_EQ(read_cpu_limit(files), 2);
}

TEST_F(cgroup_tree, no_cgroup_or_no_limit_file_means_no_limit) {
  EXPECT_EQ(find_cpu_limit_files("", "").version, 0);
  write("cg/a/cgroup.procs", "");
  auto files = find_cpu_limit_files("0::/a\n", mount("/", "cg", "cgroup2", "rw"));
  EXPECT_EQ(files.version, 0) << "the cpu controller is not enabled anywhere";
  EXPECT_EQ(read_cpu_limit(files), 0);
  EXPECT_EQ(default_processors(8, read_cpu_limit(files)), 8);
}

// ---- the whole rule in a real cgroup (root only) -----------------------------------------

std::string slurp(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool write_file(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// A cgroup made for the test below the process's own CPU cgroup, removed at the end.
// Only child processes join it (the test process stays where it is).
class cgroup_sandbox {
 public:
  cgroup_sandbox() {
    auto files = find_cpu_limit_files(slurp("/proc/self/cgroup"), slurp("/proc/self/mountinfo"));
    if (files.version == 0) {
      why_ = "no cgroup CPU limit file for this process";
      return;
    }
    std::string dir = files.dirs[0] + "/goro-test-" + std::to_string(getpid());
    if (mkdir(dir.c_str(), 0755) != 0) {
      why_ = "cannot create a cgroup in " + files.dirs[0] + ": " + std::strerror(errno);
      return;
    }
    dir_ = dir;
    version_ = files.version;
    parent_ = files.dirs[0];
    if (!set_quota(-1)) why_ = "cannot set a CPU limit in " + dir_;
  }
  ~cgroup_sandbox() {
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  cgroup_sandbox(const cgroup_sandbox&) = delete;
  cgroup_sandbox& operator=(const cgroup_sandbox&) = delete;

  // Empty when the sandbox works, else why not.
  const std::string& why_not() const { return why_; }

  // Microseconds of CPU per 100 ms period; -1: no limit.
  bool set_quota(long quota_us) const {
    if (version_ == 2) {
      return write_file(dir_ + "/cpu.max",
                        (quota_us < 0 ? "max" : std::to_string(quota_us)) + " 100000");
    }
    return write_file(dir_ + "/cpu.cfs_period_us", "100000") &&
           write_file(dir_ + "/cpu.cfs_quota_us", std::to_string(quota_us));
  }
  // Moves the calling process into the sandbox, and back out.
  bool join() const { return write_file(dir_ + "/cgroup.procs", std::to_string(getpid())); }
  bool leave() const { return write_file(parent_ + "/cgroup.procs", std::to_string(getpid())); }

 private:
  std::string dir_, parent_, why_;
  int version_ = 0;
};

// Runs `body` in a forked child (the runtime starts there only, fresh, inside the
// sandbox) and returns its exit code; the child explains a non-zero code on stderr.
int in_child(const cgroup_sandbox& box, const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    int rc = box.join() ? body() : 90;
    std::fflush(nullptr);
    box.leave();
    _exit(rc);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 91;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The default when there is no cgroup limit.
int cpus_default() { return default_processors(goro::detail::available_cpus(), 0); }

#define CHILD_EXPECT(cond, code)                                                               \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "child: %s failed (max_procs() = %d)\n", #cond, goro::max_procs()); \
      return code;                                                                             \
    }                                                                                          \
  } while (0)

// Every test here starts the runtime in a child only: the test process itself must not
// have started it (fork keeps no threads).
class real_cgroup : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cpus_default() < 2) GTEST_SKIP() << "needs two CPUs to see a limit of one";
    if (!box_.why_not().empty()) GTEST_SKIP() << box_.why_not();
  }
  cgroup_sandbox box_;
};

TEST_F(real_cgroup, the_default_follows_the_cgroup_limit_as_it_changes) {
  ASSERT_TRUE(box_.set_quota(50'000));
  int rc = in_child(box_, [&] {
    CHILD_EXPECT(goro::max_procs() == 1, 10);  // before the runtime starts
    goro::wait_group wg;
    wg.go([] {});
    wg.wait();
    CHILD_EXPECT(goro::max_procs() == 1, 11);
    CHILD_EXPECT(box_.set_quota(-1), 12);
    CHILD_EXPECT(eventually([] { return goro::max_procs() == cpus_default(); }, 3000ms), 13);
    CHILD_EXPECT(box_.set_quota(100'000), 14);
    CHILD_EXPECT(eventually([] { return goro::max_procs() == 1; }, 3000ms), 15);
    std::atomic<int> ran{0};
    for (int i = 0; i < 8; ++i) wg.go([&] { ran.fetch_add(1); });
    wg.wait();
    CHILD_EXPECT(ran.load() == 8, 16);
    return 0;
  });
  EXPECT_EQ(rc, 0) << "see the child's line on stderr";
}

TEST_F(real_cgroup, goro_maxprocs_overrides_the_cgroup_limit) {
  ASSERT_TRUE(box_.set_quota(50'000));
  int rc = in_child(box_, [&] {
    setenv("GORO_MAXPROCS", "3", 1);
    CHILD_EXPECT(goro::max_procs() == 3, 20);
    goro::wait_group wg;
    wg.go([] {});
    wg.wait();
    CHILD_EXPECT(goro::max_procs() == 3, 21);
    CHILD_EXPECT(box_.set_quota(100'000), 22);
    std::this_thread::sleep_for(1500ms);  // the monitor rereads about once a second
    CHILD_EXPECT(goro::max_procs() == 3, 23);
    return 0;
  });
  EXPECT_EQ(rc, 0) << "see the child's line on stderr";
}

TEST_F(real_cgroup, set_max_procs_stops_following_the_cgroup_limit) {
  ASSERT_TRUE(box_.set_quota(-1));
  int rc = in_child(box_, [&] {
    goro::wait_group wg;
    wg.go([] {});
    wg.wait();
    CHILD_EXPECT(goro::max_procs() == cpus_default(), 30);
    goro::set_max_procs(3);
    CHILD_EXPECT(box_.set_quota(50'000), 31);
    std::this_thread::sleep_for(1500ms);
    CHILD_EXPECT(goro::max_procs() == 3, 32);
    return 0;
  });
  EXPECT_EQ(rc, 0) << "see the child's line on stderr";
}

}  // namespace
