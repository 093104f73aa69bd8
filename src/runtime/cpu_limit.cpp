// cpu_limit.cpp — the affinity mask and the cgroup CPU bandwidth limit. See
// cpu_limit.hpp for the rule; the system monitor rereads the limit (monitor.cpp).
//
// Finding the limit files, as Go's runtime does:
//   1. /proc/self/cgroup names the process's cgroup in each hierarchy
//      ("4:cpu,cpuacct:/docker/1f2e" for v1, "0::/user.slice/app" for v2). The v1
//      hierarchy with the cpu controller wins (a hybrid system has both, and the cpu
//      controller then lives in v1).
//   2. /proc/self/mountinfo says where that hierarchy is mounted (field 5) and which
//      of its cgroups is the root of the mount (field 4): "/" normally, the container's
//      own cgroup when a container runtime bind-mounts it without a cgroup namespace.
//      Paths in both files are relative to the process's cgroup namespace, so the
//      process's directory is the mount point plus its path with the mount's root
//      taken off; a mount whose root is not above the process's cgroup is skipped.
//   3. From that directory up to the mount point, every directory with a limit file
//      counts: the tightest limit on the way up is the process's limit. (Go reads the
//      leaf only; a parent's tighter limit is just as real, and container runtimes
//      usually hide the parents anyway.)
//
// Invariants: the process's files are found once (own_cpu_limit_files) and never
// change afterwards; only the monitor thread rereads the limit.
#include "runtime/cpu_limit.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>

#include "runtime/scheduler.hpp"

namespace goro::detail {
namespace {

std::string read_small_file(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

bool parse_int(std::string_view s, std::int64_t& out) {
  s = trim(s);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Splits off the text up to the first `sep` (all of it if none).
std::string_view next_field(std::string_view& s, char sep) {
  std::size_t at = s.find(sep);
  std::string_view field = s.substr(0, at);
  s = at == std::string_view::npos ? std::string_view() : s.substr(at + 1);
  return field;
}

bool list_contains(std::string_view list, std::string_view item) {
  while (!list.empty()) {
    if (next_field(list, ',') == item) return true;
  }
  return false;
}

// ceil(quota / period), at least 1; 0 for no quota; -1 for nonsense.
int processors_for(std::int64_t quota, std::int64_t period) {
  if (period <= 0 || quota == 0 || quota < -1) return -1;
  if (quota == -1) return 0;
  std::int64_t n = quota / period + (quota % period != 0);
  return static_cast<int>(std::min<std::int64_t>(n, 1 << 30));
}

// mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134.
std::string unescape_octal(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool has_limit_file(int version, const std::string& dir) {
  const char* file = version == 2 ? "/cpu.max" : "/cpu.cfs_quota_us";
  return access((dir + file).c_str(), R_OK) == 0;
}

// The directories with a limit file from the process's cgroup directory up to the
// mount point. Empty if `path` is not below the mount's root, or lies outside the
// cgroup namespace ("/../other": its files are not visible).
std::vector<std::string> limit_dirs(int version, std::string_view path, std::string_view root,
                                    std::string_view mount_point) {
  std::string_view rel;
  std::string slashed = std::string(path) + "/";
  if (slashed.find("/../") != std::string::npos) {
    return {};
  } else if (root == "/") {
    rel = path;
  } else if (path == root) {
    rel = "";
  } else if (path.size() > root.size() && path.substr(0, root.size()) == root &&
             path[root.size()] == '/') {
    rel = path.substr(root.size());
  } else {
    return {};
  }
  while (!rel.empty() && rel.back() == '/') rel.remove_suffix(1);
  std::string top(mount_point);
  while (top.size() > 1 && top.back() == '/') top.pop_back();
  std::string dir = top == "/" && !rel.empty() ? std::string(rel) : top + std::string(rel);
  std::vector<std::string> dirs;
  for (;;) {
    if (has_limit_file(version, dir)) dirs.push_back(dir);
    if (dir.size() <= top.size()) break;
    dir.resize(std::max(dir.rfind('/'), top.size()));
  }
  return dirs;
}

}  // namespace

int cpu_max_processors(std::string_view cpu_max) {
  std::string_view s = trim(cpu_max);
  std::string_view quota = next_field(s, ' ');
  std::int64_t period = 0, q = 0;
  if (!parse_int(s, period)) return -1;
  if (quota == "max") return period > 0 ? 0 : -1;
  if (!parse_int(quota, q) || q <= 0) return -1;
  return processors_for(q, period);
}

int cfs_quota_processors(std::string_view quota, std::string_view period) {
  std::int64_t q = 0, p = 0;
  if (!parse_int(quota, q) || !parse_int(period, p)) return -1;
  return processors_for(q, p);
}

namespace {

// Steps 2 and 3 for one hierarchy: its mount ("id parent major:minor root mount-point
// options [optional...] - fstype source super-options"), then the directories with a
// limit file on the way up.
cpu_limit_files find_in(int version, std::string_view path, std::string_view mountinfo) {
  cpu_limit_files out;
  while (!mountinfo.empty()) {
    std::string_view line = next_field(mountinfo, '\n');
    std::string_view fields[5];
    for (auto& f : fields) f = next_field(line, ' ');
    std::size_t sep = line.find(" - ");
    if (sep == std::string_view::npos) continue;
    std::string_view tail = line.substr(sep + 3);
    std::string_view fstype = next_field(tail, ' ');
    next_field(tail, ' ');  // source
    if (version == 2 ? fstype != "cgroup2"
                     : fstype != "cgroup" || !list_contains(trim(tail), "cpu")) {
      continue;
    }
    out.dirs = limit_dirs(version, path, unescape_octal(fields[3]), unescape_octal(fields[4]));
    if (!out.dirs.empty()) {
      out.version = version;
      return out;
    }
  }
  return out;
}

}  // namespace

cpu_limit_files find_cpu_limit_files(std::string_view proc_cgroup, std::string_view mountinfo) {
  // 1. The process's cgroup in the v1 hierarchy with the cpu controller, and in v2.
  std::string_view v1_path, v2_path;
  while (!proc_cgroup.empty()) {
    std::string_view line = next_field(proc_cgroup, '\n');
    std::string_view id = next_field(line, ':');
    std::string_view controllers = next_field(line, ':');
    if (line.empty() || line.front() != '/') continue;  // the rest is the path (may hold ':')
    if (id == "0" && controllers.empty()) {
      v2_path = line;
    } else if (list_contains(controllers, "cpu")) {
      v1_path = line;
    }
  }
  if (!v1_path.empty()) {
    cpu_limit_files v1 = find_in(1, v1_path, mountinfo);
    if (v1.version != 0) return v1;
  }
  if (!v2_path.empty()) return find_in(2, v2_path, mountinfo);
  return {};
}

int read_cpu_limit(const cpu_limit_files& files) {
  int limit = 0;
  for (const std::string& dir : files.dirs) {
    int n = files.version == 2 ? cpu_max_processors(read_small_file(dir + "/cpu.max"))
                               : cfs_quota_processors(read_small_file(dir + "/cpu.cfs_quota_us"),
                                                      read_small_file(dir + "/cpu.cfs_period_us"));
    if (n > 0 && (limit == 0 || n < limit)) limit = n;
  }
  return limit;
}

int default_processors(long cpus, int cgroup_limit) noexcept {
  long n = cpus > 0 ? cpus : 1;
  if (cgroup_limit > 0 && cgroup_limit < n) n = cgroup_limit;
  return static_cast<int>(std::min<long>(n, scheduler::max_processors));
}

const cpu_limit_files& own_cpu_limit_files() {
  // Never destroyed: the monitor thread reads it after main returns.
  static const cpu_limit_files* const files = new cpu_limit_files(find_cpu_limit_files(
      read_small_file("/proc/self/cgroup"), read_small_file("/proc/self/mountinfo")));
  return *files;
}

long available_cpus() noexcept {
  // A mask as large as the kernel's: a fixed cpu_set_t (1024 CPUs) is refused with
  // EINVAL on a machine configured for more.
  for (int ncpus = CPU_SETSIZE; ncpus <= (1 << 20); ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (set == nullptr) break;
    std::size_t size = CPU_ALLOC_SIZE(ncpus);
    int rc = sched_getaffinity(0, size, set);
    int err = errno;
    int n = rc == 0 ? CPU_COUNT_S(size, set) : 0;
    CPU_FREE(set);
    if (rc == 0 && n > 0) return n;
    if (rc == 0 || err != EINVAL) break;
  }
  return sysconf(_SC_NPROCESSORS_ONLN);
}

}  // namespace goro::detail
