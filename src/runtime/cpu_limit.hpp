// cpu_limit.hpp — how many processors the machine offers the process: its CPU
// affinity mask, limited by the CPU bandwidth limit of its cgroup (Go 1.25's default
// GOMAXPROCS). The parsers take file contents and paths, so tests feed sample trees.
//
// The rule: default = min(CPUs in the affinity mask, ceil(cgroup limit)), at least 1
// and at most scheduler::max_processors. The cgroup limit is quota / period of the
// process's own cgroup and of each ancestor up to the root of the hierarchy as
// mounted (the smallest wins): cgroup v2 `cpu.max` ("max 100000": none), or v1
// `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace goro::detail {

// Where the process's CPU bandwidth limit is read from.
struct cpu_limit_files {
  int version = 0;  // 1 or 2; 0: no cgroup limit file was found
  // The cgroup directories that have a limit file, from the process's own cgroup up
  // to the mount point of its hierarchy.
  std::vector<std::string> dirs;
};

// Processors allowed by a v2 `cpu.max` ("200000 100000" -> 2, "150000 100000" -> 2,
// "max 100000" -> 0): quota / period rounded up, at least 1; 0 for no limit; -1 if
// the text is not understood.
int cpu_max_processors(std::string_view cpu_max);
// The same for v1: `cpu.cfs_quota_us` (-1: no limit) and `cpu.cfs_period_us`.
int cfs_quota_processors(std::string_view quota, std::string_view period);

// Finds the limit files from the text of /proc/self/cgroup and /proc/self/mountinfo:
// the v1 hierarchy with the cpu controller if there is one, else the v2 one. Only the
// directories whose limit file exists are kept.
cpu_limit_files find_cpu_limit_files(std::string_view proc_cgroup, std::string_view mountinfo);

// Reads the limit now: the smallest over `files.dirs`, in processors; 0 if none (or
// unreadable).
int read_cpu_limit(const cpu_limit_files& files);

// The default number of processors from the CPU count (affinity mask, else online
// CPUs; <= 0 if unknown) and the cgroup limit (0: none): clamped to [1, max_processors].
int default_processors(long cpus, int cgroup_limit) noexcept;

// The process's own limit files (/proc/self/cgroup, /proc/self/mountinfo), found once.
const cpu_limit_files& own_cpu_limit_files();
// The CPUs this thread may run on (affinity mask, any size), else the online CPUs.
long available_cpus() noexcept;

}  // namespace goro::detail
