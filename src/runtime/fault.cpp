// fault.cpp — fatal signals: a fault names the goroutine it happened in.
//
// One handler serves SIGSEGV, SIGBUS, SIGFPE and SIGILL, on the worker's alternate
// signal stack (so a goroutine whose stack is exhausted can still be reported). In order:
//   1. A SIGSEGV/SIGBUS in a goroutine's guard page or reserve zone is a stack overflow:
//      report_stack_overflow (api.cpp) names the goroutine and aborts.
//   2. If a handler was installed before goro's (a crash reporter, a runtime that
//      recovers from its own faults), it is called and goro's handler returns: that
//      handler decides what the fault means. Sanitizer builds differ: the sanitizer's
//      handler is the previous one and ends the process, so goro reports first (3, 4)
//      and calls it afterwards. A handler installed after goro's simply replaces it.
//   3. The report, Go's layout, from the faulting thread with write(2) only:
//        fatal error: unexpected signal in goroutine 7
//        [signal SIGSEGV: segmentation violation code=SEGV_MAPERR addr=0x0 pc=0x55d0c1e2]
//
//        goroutine 7 [running]:
//          name: worker-7
//        	pc=0x55d0c1e2 /path/to/program+0x1e2      (for addr2line -Cfe)
//        	...
//        created by main()::{lambda()#1} in goroutine 1
//        	/path/to/main.cpp:42
//      On a thread that runs no goroutine the header names the thread instead.
//   4. Best effort, the same frames symbolized (function, file:line), as a dump shows
//      them — by the reporter thread, not here (below).
//   5. The default action is restored and the handler returns: the faulting instruction
//      runs again and the process dies by the same signal, with a core dump, as it
//      would have without goro. A signal that was sent (kill, si_code <= 0) is raised
//      again instead.
//
// What may run in the handler. It reads the goroutine's fields without its meta_lock
// (the holder could be this very thread): they are written at spawn, before the
// goroutine first runs, and the goroutine is running here, so none is changing. It
// allocates nothing and calls only async-signal-safe functions and raw system calls:
// write, open, read, close, clock_gettime, futex, process_vm_readv, sigaction, raise.
// Frames come from the frame-pointer chain (frames.hpp), read only inside the stack:
// the goroutine's stack bounds, or, on another stack, the readable mapping that holds
// the stack pointer. Memory outside the stack (code bytes, ELF headers) is read through
// the kernel, which answers EFAULT where a plain read would fault again. Module names and
// offsets come from /proc/self/maps read with open/read — not from dladdr or
// dl_iterate_phdr, which take the dynamic loader's lock, and the faulting thread may
// hold it (a fault inside dlopen would then hang the report instead of ending it).
//
// Why symbolizing is done by another thread. libdw allocates, takes locks and recurses
// far deeper than the 64 KiB alternate stack allows, and the fault may have happened
// with a lock held — malloc's, the symbolizer's — that it would need. So a reporter
// thread, started with the handlers, symbolizes the frames the handler hands it, and
// the handler waits at most symbolize_timeout_ns for it: if a lock the faulting thread
// holds stops the reporter, the process still dies, only without the symbolized part.
//
// Not handled: SIGABRT (goro's own fatal errors end in abort() after their report, and
// a failed assert already says where), SIGTRAP. A second thread faulting while one
// reports waits for that report to end the process.
//
// Invariants:
//   - `previous` is written once, by install_fault_handlers, before any worker runs;
//     afterwards it is only read.
//   - `reporter` is used by one faulting thread at a time: the thread that claimed
//     `reporting_thread`.
#include "runtime/fault.hpp"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "debug/dump.hpp"
#include "runtime/frames.hpp"
#include "runtime/goroutine.hpp"
#include "runtime/scheduler_internal.hpp"
#include "runtime/stack.hpp"

namespace goro::detail {

[[noreturn]] void report_stack_overflow(goroutine* g, const char* how) noexcept;  // api.cpp

namespace {

constexpr int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
constexpr int fault_signal_count = sizeof fault_signals / sizeof fault_signals[0];
constexpr int max_frames = 64;
constexpr std::int64_t symbolize_timeout_ns = 5'000'000'000;
constexpr std::int64_t other_report_wait_ns = 10'000'000'000;

#if defined(GORO_ASAN) || defined(GORO_TSAN)
constexpr bool report_before_chaining = true;  // the sanitizer's handler never returns
#else
constexpr bool report_before_chaining = false;
#endif

struct sigaction previous[fault_signal_count];

int gettid_raw() noexcept { return static_cast<int>(syscall(SYS_gettid)); }

// ---- formatting without allocation ---------------------------------------------------

// Formats into a fixed buffer and writes it to stderr with write(2).
class raw_writer {
 public:
  raw_writer() = default;
  raw_writer(const raw_writer&) = delete;
  raw_writer& operator=(const raw_writer&) = delete;
  ~raw_writer() { flush(); }

  raw_writer& chr(char c) noexcept {
    if (n_ == sizeof buf_) flush();
    buf_[n_++] = c;
    return *this;
  }
  raw_writer& str(const char* s, std::size_t max = ~std::size_t{0}) noexcept {
    for (std::size_t i = 0; s != nullptr && s[i] != '\0' && i < max; ++i) chr(s[i]);
    return *this;
  }
  raw_writer& dec(std::uint64_t v) noexcept {
    char digits[20];
    int k = 0;
    do {
      digits[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (k > 0) chr(digits[--k]);
    return *this;
  }
  raw_writer& hex(std::uint64_t v) noexcept {
    char digits[16];
    int k = 0;
    do {
      digits[k++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    str("0x");
    while (k > 0) chr(digits[--k]);
    return *this;
  }
  void flush() noexcept {
    std::size_t done = 0;
    while (done < n_) {
      ssize_t w = ::write(2, buf_ + done, n_ - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      done += static_cast<std::size_t>(w);
    }
    n_ = 0;
  }

 private:
  char buf_[2048];
  std::size_t n_ = 0;
};

const char* signal_name(int sig) noexcept {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV: segmentation violation";
    case SIGBUS: return "SIGBUS: bus error";
    case SIGFPE: return "SIGFPE: floating-point exception";
    case SIGILL: return "SIGILL: illegal instruction";
  }
  return "signal";
}

// si_code's name, or null when there is no name for it here.
const char* code_name(int sig, int code) noexcept {
  switch (code) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
  }
  if (sig == SIGSEGV) {
    if (code == SEGV_MAPERR) return "SEGV_MAPERR";
    if (code == SEGV_ACCERR) return "SEGV_ACCERR";
  } else if (sig == SIGBUS) {
    if (code == BUS_ADRALN) return "BUS_ADRALN";
    if (code == BUS_ADRERR) return "BUS_ADRERR";
    if (code == BUS_OBJERR) return "BUS_OBJERR";
  } else if (sig == SIGFPE) {
    if (code == FPE_INTDIV) return "FPE_INTDIV";
    if (code == FPE_INTOVF) return "FPE_INTOVF";
    if (code == FPE_FLTDIV) return "FPE_FLTDIV";
    if (code == FPE_FLTOVF) return "FPE_FLTOVF";
    if (code == FPE_FLTUND) return "FPE_FLTUND";
    if (code == FPE_FLTRES) return "FPE_FLTRES";
    if (code == FPE_FLTINV) return "FPE_FLTINV";
  } else if (sig == SIGILL) {
    if (code == ILL_ILLOPC) return "ILL_ILLOPC";
    if (code == ILL_ILLOPN) return "ILL_ILLOPN";
    if (code == ILL_ILLADR) return "ILL_ILLADR";
    if (code == ILL_ILLTRP) return "ILL_ILLTRP";
    if (code == ILL_PRVOPC) return "ILL_PRVOPC";
  }
  return nullptr;
}

struct registers {
  std::uintptr_t pc = 0, sp = 0, fp = 0;
};

registers registers_of(const void* uctx) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(uctx);
  registers r;
#if defined(__x86_64__)
  r.pc = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  r.sp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  r.fp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]);
#elif defined(__aarch64__)
  r.pc = uc->uc_mcontext.pc;
  r.sp = uc->uc_mcontext.sp;
  r.fp = uc->uc_mcontext.regs[29];
#endif
  return r;
}

// Copies n bytes at `from` into `to` through the kernel (process_vm_readv on this
// process): memory that cannot be read gives false instead of a fault. Mappings listed
// as readable may still fault: [vvar] pages that are not populated, a file mapping
// past a truncated end, or a mapping another thread just removed.
bool read_memory(void* to, std::uintptr_t from, std::size_t n) noexcept {
  iovec local{to, n};
  iovec remote{reinterpret_cast<void*>(from), n};
  return syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL) ==
         static_cast<long>(n);
}

// ---- /proc/self/maps, read with open/read only ----------------------------------------

struct mapping {
  std::uintptr_t start = 0, end = 0, offset = 0;
  bool readable = false, executable = false;
  const char* path = "";  // empty for an anonymous mapping; valid during the callback
};

const char* parse_hex(const char* s, std::uintptr_t& v) noexcept {
  v = 0;
  for (;; ++s) {
    char c = *s;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return s;
    v = v << 4 | static_cast<std::uintptr_t>(d);
  }
}

const char* skip_field(const char* s) noexcept {
  while (*s == ' ') ++s;
  while (*s != ' ' && *s != '\0') ++s;
  return s;
}

// "start-end perms offset dev inode   path"
bool parse_mapping(const char* line, mapping& m) noexcept {
  const char* s = parse_hex(line, m.start);
  if (*s != '-') return false;
  s = parse_hex(s + 1, m.end);
  if (*s != ' ' || s[1] == '\0') return false;
  m.readable = s[1] == 'r';
  m.executable = s[2] != '\0' && s[3] == 'x';
  s = skip_field(s);  // perms
  while (*s == ' ') ++s;
  s = parse_hex(s, m.offset);
  s = skip_field(s);  // dev
  s = skip_field(s);  // inode
  while (*s == ' ') ++s;
  m.path = s;
  return true;
}

// Calls fn(mapping) for each line until it returns false. A line longer than the
// buffer (a very long path) is cut; a missing /proc gives no lines.
template <class F>
void for_each_mapping(F&& fn) noexcept {
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char chunk[1024];
  char line[384];
  std::size_t len = 0;
  bool more = true;
  while (more) {
    ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t i = 0; i < got && more; ++i) {
      if (chunk[i] != '\n') {
        if (len + 1 < sizeof line) line[len++] = chunk[i];
        continue;
      }
      line[len] = '\0';
      len = 0;
      mapping m;
      if (parse_mapping(line, m)) more = fn(m);
    }
  }
  ::close(fd);
}

// The readable mapping holding sp, as frame-walk bounds [sp, end).
bool stack_bounds_of(std::uintptr_t sp, std::uintptr_t& lo, std::uintptr_t& hi) noexcept {
  bool found = false;
  for_each_mapping([&](const mapping& m) {
    if (sp < m.start || sp >= m.end) return true;
    if (m.readable) {
      lo = sp;
      hi = m.end;
      found = true;
    }
    return false;
  });
  return found;
}

// Whether `v` is a return address: it points into readable, executable code right
// after a call instruction (the common encodings).
bool is_return_address(std::uintptr_t v) noexcept {
  constexpr std::uintptr_t look_back = 7;  // the longest call encoding checked
  bool in_code = false;
  for_each_mapping([&](const mapping& m) {
    if (v < m.start || v >= m.end) return true;
    in_code = m.readable && m.executable && v - m.start >= look_back;
    return false;
  });
  unsigned char code[look_back];
  if (!in_code || !read_memory(code, v - look_back, look_back)) return false;
  const unsigned char* c = code + look_back;  // c[-k]: the k-th byte before v
#if defined(__x86_64__)
  return c[-5] == 0xe8 ||                                    // call rel32
         (c[-2] == 0xff && ((c[-1] & 0xf8) == 0xd0 ||        // call reg
                            ((c[-1] & 0xf8) == 0x10 && (c[-1] & 7) != 4 && (c[-1] & 7) != 5))) ||
         (c[-3] == 0xff && ((c[-2] & 0xf8) == 0x50 || c[-2] == 0x14)) ||  // [reg+d8], [sib]
         (c[-4] == 0xff && c[-3] == 0x54) ||                              // [sib+d8]
         (c[-6] == 0xff && (c[-5] == 0x15 || (c[-5] & 0xf8) == 0x90)) ||  // [rip+d32], [reg+d32]
         (c[-7] == 0xff && c[-6] == 0x94);                                // [sib+d32]
#elif defined(__aarch64__)
  std::uint32_t insn = static_cast<std::uint32_t>(c[-4]) | static_cast<std::uint32_t>(c[-3]) << 8 |
                       static_cast<std::uint32_t>(c[-2]) << 16 |
                       static_cast<std::uint32_t>(c[-1]) << 24;
  return (insn & 0xfc000000u) == 0x94000000u ||  // bl
         (insn & 0xfffffc1fu) == 0xd63f0000u;    // blr
#else
  return false;
#endif
}

// Where each pc lies: a module (its path) and the offset addr2line wants — from the
// module's load address for a position-independent module, the pc itself for a
// non-PIE executable (ELF type ET_EXEC).
struct module_table {
  static constexpr int max_modules = 8;
  static constexpr std::size_t max_path = 200;
  char paths[max_modules][max_path] = {};
  int count = 0;
  int module_of[max_frames];
  std::uintptr_t offset_of[max_frames];

  int intern(const char* path) noexcept {
    for (int i = 0; i < count; ++i) {
      if (std::strncmp(paths[i], path, max_path - 1) == 0) return i;
    }
    if (count == max_modules) return -1;
    std::strncpy(paths[count], path, max_path - 1);
    return count++;
  }
};

void locate(const std::uintptr_t* pcs, int n, module_table& t) noexcept {
  for (int i = 0; i < n; ++i) t.module_of[i] = -1;
  // The latest mapping at file offset 0: the start of the module that follows.
  char base_path[module_table::max_path] = "";
  std::uintptr_t base = 0;
  int left = n;
  for_each_mapping([&](const mapping& m) {
    if (m.path[0] != '\0' && m.offset == 0) {
      std::strncpy(base_path, m.path, sizeof base_path - 1);
      base = m.start;
      Elf64_Ehdr eh;
      if (m.path[0] == '/' && read_memory(&eh, m.start, sizeof eh) &&
          std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_type == ET_EXEC) {
        base = 0;
      }
    }
    if (m.path[0] == '\0') return true;
    for (int i = 0; i < n; ++i) {
      if (t.module_of[i] >= 0 || pcs[i] < m.start || pcs[i] >= m.end) continue;
      bool same = std::strncmp(base_path, m.path, sizeof base_path - 1) == 0;
      t.module_of[i] = t.intern(m.path);
      t.offset_of[i] = pcs[i] - (same ? base : m.start - m.offset);
      --left;
    }
    return left > 0;
  });
}

// ---- symbolizing on the reporter thread -------------------------------------------

struct symbolize_request {
  static constexpr std::uint32_t idle = 0, asked = 1, done = 2;
  std::atomic<std::uint32_t> state{idle};
  int n = 0;                         // written by the faulting thread before `asked`
  std::uintptr_t pcs[max_frames]{};  // likewise
};

symbolize_request reporter;
std::atomic<bool> reporter_running{false};
std::atomic<int> reporter_tid{0};
pid_t reporter_pid = 0;  // a forked child has no reporter thread

void reporter_main() {
  reporter_tid.store(gettid_raw(), std::memory_order_relaxed);
  for (;;) {
    std::uint32_t s;
    while ((s = reporter.state.load(std::memory_order_acquire)) != symbolize_request::asked) {
      futex_wait(&reporter.state, s);
    }
    std::ostringstream os;
    os << "\nsymbolized (best effort):\n";
    write_frames(os, std::vector<std::uintptr_t>(reporter.pcs, reporter.pcs + reporter.n),
                 /*trim_top=*/false);
    std::string text = os.str();
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t w = ::write(2, text.data() + done, text.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      done += static_cast<std::size_t>(w);
    }
    reporter.state.store(symbolize_request::done, std::memory_order_release);
    futex_wake(&reporter.state, 1);
  }
}

// Hands the frames to the reporter thread and waits, at most symbolize_timeout_ns,
// for it to write them (in one write, so that other threads' lines cannot split them).
// Frame 0 is the faulting instruction, not a return address.
void symbolize_best_effort(const std::uintptr_t* pcs, int n) noexcept {
  if (!reporter_running.load(std::memory_order_acquire) || getpid() != reporter_pid ||
      gettid_raw() == reporter_tid.load(std::memory_order_relaxed)) {
    return;
  }
  if (reporter.state.load(std::memory_order_acquire) != symbolize_request::idle) return;
  reporter.n = n;
  for (int i = 0; i < n; ++i) reporter.pcs[i] = pcs[i];
  reporter.pcs[0] = pcs[0] + 1;  // the symbolizer looks up pc - 1, the call
  reporter.state.store(symbolize_request::asked, std::memory_order_release);
  futex_wake(&reporter.state, 1);
  std::int64_t deadline = nanotime() + symbolize_timeout_ns;
  for (;;) {
    std::uint32_t s = reporter.state.load(std::memory_order_acquire);
    if (s == symbolize_request::done) {
      reporter.state.store(symbolize_request::idle, std::memory_order_relaxed);
      return;
    }
    std::int64_t left = deadline - nanotime();
    if (left <= 0) break;
    futex_wait(&reporter.state, s, left);
  }
  raw_writer w;
  w.str("\nsymbolized (best effort): not finished in ")
      .dec(symbolize_timeout_ns / 1'000'000'000)
      .str(" s; given up\n");
}

// ---- the report ---------------------------------------------------------------------

void write_frames_raw(raw_writer& w, const std::uintptr_t* pcs, int n) noexcept {
  module_table modules;
  locate(pcs, n, modules);
  for (int i = 0; i < n; ++i) {
    w.str("\tpc=").hex(pcs[i]);
    if (int m = modules.module_of[i]; m >= 0) {
      w.chr(' ').str(modules.paths[m]).chr('+').hex(modules.offset_of[i]);
    }
    w.chr('\n');
  }
}

// The goroutine's fields are read without its meta_lock: see the top of this file.
__attribute__((no_sanitize("thread"))) void write_goroutine_header(raw_writer& w, goroutine* g) {
  w.str("goroutine ").dec(g->id.load(std::memory_order_relaxed)).str(" [running]:\n");
  if (const char* name = *static_cast<char* const volatile*>(&g->name)) {
    w.str("  name: ").str(name, 128).chr('\n');
  }
}

__attribute__((no_sanitize("thread"))) void write_created_by(raw_writer& w, goroutine* g) {
  std::source_location where = g->where;
  w.str("created by ").str(where.function_name(), 512);
  if (std::uint64_t parent = g->parent_id) w.str(" in goroutine ").dec(parent);
  w.str("\n\t").str(where.file_name(), 512).chr(':').dec(where.line()).chr('\n');
}

// The faulting thread's frames, innermost first: the faulting pc, then return
// addresses. Returns their number.
int collect_frames(const registers& r, goroutine* g, bool on_own_stack,
                   std::uintptr_t* pcs) noexcept {
  int n = 0;
  pcs[n++] = r.pc;
  std::uintptr_t lo = 0, hi = 0;
  if (on_own_stack) {
    lo = r.sp;
    hi = reinterpret_cast<std::uintptr_t>(g->stack.hi);
  } else if (!stack_bounds_of(r.sp, lo, hi)) {
    return n;
  }
  // The faulting function may not have set up its frame (a leaf, or code built without
  // frame pointers, such as libc's string functions): the chain then starts at its
  // caller's frame and would skip the caller. Its return address is then the word at
  // sp; take that word when it is one, and drop it if the chain repeats it.
  // Read through the kernel: the fault may be the stack pointer itself standing on
  // memory that cannot be read, and a second fault here would end the report unsaid.
  std::uintptr_t at_sp = 0;
  if (r.sp + sizeof(std::uintptr_t) <= hi && read_memory(&at_sp, r.sp, sizeof at_sp) &&
      is_return_address(at_sp)) {
    pcs[n++] = at_sp;
  }
  int from = n;
  n = walk_frame_pointers(r.fp, lo, hi, pcs, n, max_frames);
  if (from == 2 && n > 2 && pcs[2] == pcs[1]) {
    for (int i = 2; i + 1 < n; ++i) pcs[i] = pcs[i + 1];
    --n;
  }
  return n;
}

void report_fault(int sig, const siginfo_t* info, void* uctx, processor* p,
                  goroutine* g) noexcept {
  registers r = registers_of(uctx);
  bool on_own_stack = g != nullptr && r.sp >= reinterpret_cast<std::uintptr_t>(g->stack.lo) &&
                      r.sp < reinterpret_cast<std::uintptr_t>(g->stack.hi);
  std::uintptr_t pcs[max_frames];
  int n = collect_frames(r, g, on_own_stack, pcs);

  raw_writer w;
  w.str("fatal error: unexpected signal ");
  if (g != nullptr) {
    w.str("in goroutine ").dec(g->id.load(std::memory_order_relaxed));
  } else if (p != nullptr) {
    w.str("in goro's scheduler (processor ").dec(static_cast<std::uint64_t>(p->id)).chr(')');
  } else {
    w.str("on a thread that runs no goroutine");
  }
  w.str("\n[signal ").str(signal_name(sig)).str(" code=");
  if (const char* code = code_name(sig, info->si_code)) {
    w.str(code);
  } else {
    w.hex(static_cast<std::uint64_t>(static_cast<unsigned>(info->si_code)));
  }
  if (info->si_code > 0) {
    w.str(" addr=").hex(reinterpret_cast<std::uintptr_t>(info->si_addr));
  } else {
    w.str(" from pid=").dec(static_cast<std::uint64_t>(info->si_pid));
  }
  w.str(" pc=").hex(r.pc).str("]\n\n");
  if (g != nullptr) {
    write_goroutine_header(w, g);
    if (!on_own_stack) w.str("\t(not on its own stack: in a signal handler or goro's switch)\n");
  } else {
    w.str("thread ").dec(static_cast<std::uint64_t>(gettid_raw())).str(":\n");
  }
  write_frames_raw(w, pcs, n);
  if (g != nullptr) write_created_by(w, g);
  w.flush();
  symbolize_best_effort(pcs, n);
}

// ---- the handler --------------------------------------------------------------------

std::atomic<int> reporting_thread{0};

// True if this thread is to write the report. A thread faulting while another reports
// waits for that one to end the process (Go does the same), then dies anyway.
bool claim_report() noexcept {
  int me = gettid_raw();
  int expected = 0;
  if (reporting_thread.compare_exchange_strong(expected, me, std::memory_order_acq_rel)) {
    return true;
  }
  if (expected == me) return false;
  std::int64_t until = nanotime() + other_report_wait_ns;
  while (nanotime() < until) {
    timespec ts{0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
  return false;
}

bool is_handler(const struct sigaction& a) noexcept {
  if (a.sa_flags & SA_SIGINFO) return a.sa_sigaction != nullptr;
  return a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN;
}

void call_handler(const struct sigaction& a, int sig, siginfo_t* info, void* uctx) {
  if (a.sa_flags & SA_SIGINFO) {
    a.sa_sigaction(sig, info, uctx);
  } else {
    a.sa_handler(sig);
  }
}

void die_by(int sig, const siginfo_t* info) noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  // A fault happens again when the handler returns; a sent signal must be sent again
  // (it stays pending while the handler runs, and then kills).
  if (info->si_code <= 0) raise(sig);
}

thread_local sigjmp_buf* fault_escape = nullptr;

void on_fault(int sig, siginfo_t* info, void* uctx) {
  if ((sig == SIGSEGV || sig == SIGBUS) && info->si_code > 0 && fault_escape != nullptr) {
    sigjmp_buf* escape = fault_escape;
    fault_escape = nullptr;
    siglongjmp(*escape, 1);  // a guarded stack walk read a wild address
  }
  int saved_errno = errno;
  processor* p = tls_processor;
  goroutine* g = p ? p->current : nullptr;
  if ((sig == SIGSEGV || sig == SIGBUS) && g && g->stack.lo &&
      in_overflow_zone(g->stack, info->si_addr)) {
    report_stack_overflow(g, g->stack.guarded ? "hit the guard page" : "ran below the stack");
  }
  int slot = 0;
  while (slot + 1 < fault_signal_count && fault_signals[slot] != sig) ++slot;
  const struct sigaction& prev = previous[slot];
  bool chain = is_handler(prev);
  if (!chain || report_before_chaining) {
    if (claim_report()) report_fault(sig, info, uctx, p, g);
  }
  if (chain) {
    call_handler(prev, sig, info, uctx);
  } else {
    die_by(sig, info);
  }
  errno = saved_errno;
}

}  // namespace

void set_fault_escape(sigjmp_buf* escape) noexcept { fault_escape = escape; }

void install_fault_handlers() {
  try {
    note_runtime_thread(+1);  // the deadlock detector counts goro's own threads
    reporter_pid = getpid();
    std::thread(reporter_main).detach();
    reporter_running.store(true, std::memory_order_release);
  } catch (const std::system_error&) {
    note_runtime_thread(-1);  // no thread: reports go without the symbolized part
  }
  struct sigaction sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  // Another fault while reporting one kills at once (the kernel's rule for a blocked
  // synchronous signal) rather than re-entering the report.
  for (int sig : fault_signals) sigaddset(&sa.sa_mask, sig);
  for (int i = 0; i < fault_signal_count; ++i) sigaction(fault_signals[i], &sa, &previous[i]);
}

}  // namespace goro::detail
