// Primitives destroyed while in use: a fatal error naming the object and its creation
// site (as destroying a joinable std::thread terminates), never silent corruption; and
// no error while the process exits with goroutines abandoned on them (Go's exit).
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "support/fixture.hpp"

namespace {

using namespace goro_test;

// The regex naming this file and a line from `line` to 12 lines below as the creation
// site: for a declaration inside EXPECT_DEATH's statement, GCC gives the macro's line
// and Clang the declaration's own.
std::string created_at(int line) {
  std::string lines;
  for (int l = line; l <= line + 12; ++l) lines += (lines.empty() ? "" : "|") + std::to_string(l);
  return "created at [^ ]*lifetime_test\\.cpp:(" + lines + ") ";
}

bool some_goroutine_waits(const char* reason) {
  return eventually([&] {
    return goro::debug::goroutines(2).find(std::string("[") + reason) != std::string::npos;
  });
}

// The literal port of Go's `merge`: the function returns while its goroutines still
// use the wait_group that lived in its frame.
constexpr int merge_wg_line = __LINE__ + 3;

goro::recv_chan<int> merge_returning_early(goro::chan<int> a, goro::chan<int> b) {
  goro::wait_group wg;  // Go's closure kept it alive; C++ destroys it at return
  auto out = goro::make_chan<int>();
  for (auto c : {a, b}) {
    wg.go([&wg, c, out] {
      for (int v : c) out.send(v);
      (void)wg;
    });
  }
  return out;  // forgot: go func() { wg.Wait(); close(out) }() with wg kept alive
}

TEST(lifetime_death, wait_group_destroyed_with_a_nonzero_counter_names_its_creation_site) {
  EXPECT_DEATH(
      {
        auto a = goro::make_chan<int>();
        auto b = goro::make_chan<int>();
        (void)merge_returning_early(a, b);
      },
      "fatal error: goro: wait_group destroyed with its counter at 2.*" + created_at(merge_wg_line) +
          ".*must outlive");
}

TEST(lifetime_death, wait_group_destroyed_on_a_plain_thread_after_add) {
  const int line = __LINE__ + 1;
  EXPECT_DEATH(
      {
        auto* wg = new goro::wait_group;  // (std::make_unique would name <memory>'s line)
        wg->add(3);
        delete wg;
      },
      "wait_group destroyed with its counter at 3.*" + created_at(line));
}

TEST(lifetime_death, semaphore_destroyed_with_units_held) {
  const int line = __LINE__ + 1;
  EXPECT_DEATH(
      {
        goro::semaphore sem(4);
        sem.acquire(3);
      },
      "semaphore destroyed with 3 of 4 units held.*" + created_at(line));
}

TEST(lifetime_death, semaphore_destroyed_while_an_acquirer_waits) {
  const int line = __LINE__ + 1;
  EXPECT_DEATH(
      {
        auto* sem = new goro::semaphore(1);
        sem->acquire(1);
        goro::go([sem] { sem->acquire(1); });
        ASSERT_TRUE(some_goroutine_waits("semacquire"));
        delete sem;
      },
      "semaphore destroyed with 1 of 1 units held and acquirers waiting.*" + created_at(line) +
          ".*semacquire");
}

TEST(lifetime_death, mutex_destroyed_while_a_goroutine_waits_to_lock_it) {
  const int line = __LINE__ + 1;
  EXPECT_DEATH(
      {
        auto* mu = new goro::mutex;
        mu->lock();
        goro::go([mu] { mu->lock(); });
        ASSERT_TRUE(some_goroutine_waits("sync.Mutex.Lock"));
        delete mu;
      },
      "mutex destroyed while 1 goroutines or threads wait to lock it.*" + created_at(line) +
          ".*sync\\.Mutex\\.Lock");
}

TEST(lifetime_death, rw_mutex_destroyed_while_a_reader_waits) {
  const int line = __LINE__ + 1;
  EXPECT_DEATH(
      {
        auto* rw = new goro::rw_mutex;
        rw->lock();
        goro::go([rw] { rw->lock_shared(); });
        ASSERT_TRUE(some_goroutine_waits("sync.RWMutex.RLock"));
        delete rw;
      },
      "rw_mutex destroyed while readers wait to lock it.*" + created_at(line));
}

TEST(lifetime_death, rw_mutex_destroyed_while_a_writer_waits_for_readers) {
  const int line = __LINE__ + 1;
  EXPECT_DEATH(
      {
        auto* rw = new goro::rw_mutex;
        rw->lock_shared();
        goro::go([rw] { rw->lock(); });
        ASSERT_TRUE(some_goroutine_waits("sync.RWMutex.Lock"));
        delete rw;
      },
      "rw_mutex destroyed while a writer waits for its readers to leave.*" + created_at(line));
}

// What may be destroyed: every primitive once its users are done, and a mutex or an
// rw_mutex locked with nobody waiting (no one will touch it again).
TEST(lifetime, primitives_no_longer_in_use_are_destroyed_quietly) {
  {
    goro::wait_group wg;
    for (int i = 0; i < 4; ++i) wg.go([] { goro::yield(); });
    wg.wait();
  }
  {
    goro::semaphore sem(2);
    sem.acquire(2);
    sem.release(2);
  }
  {
    goro::mutex mu;
    mu.lock();
  }
  {
    goro::rw_mutex rw;
    rw.lock_shared();
    rw.lock_shared();
  }
  {
    goro::rw_mutex rw;
    rw.lock();
  }
  SUCCEED();
}

// Go lets main return while goroutines still wait on a lock: the process exits, and a
// global's destructor must not turn that exit into a crash.
goro::mutex global_mu;
goro::wait_group global_wg;

TEST(lifetime_exit, exit_with_goroutines_parked_on_globals_is_clean) {
  EXPECT_EXIT(
      {
        global_mu.lock();
        global_wg.add(1);
        goro::go([] { global_mu.lock(); });
        goro::go([] { global_wg.wait(); });
        if (!some_goroutine_waits("sync.Mutex.Lock")) std::_Exit(3);
        if (!some_goroutine_waits("sync.WaitGroup.Wait")) std::_Exit(4);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A function-local static is made after the runtime started (its destructor runs
// before the runtime's exit handler): goro::run returning with goroutines abandoned
// marks the exit as begun.
TEST(lifetime_exit, run_returning_with_goroutines_abandoned_on_a_local_static_is_clean) {
  EXPECT_EXIT(
      {
        ::setenv("GORO_EXIT_CHECK", "off", 1);
        goro::run([] {
          static goro::mutex mu;
          mu.lock();
          goro::go([] { mu.lock(); });
          if (!some_goroutine_waits("sync.Mutex.Lock")) std::_Exit(3);
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// Go's os.Exit(3) from a goroutine while others wait on a singleton's lock: the
// function-local static is made after the runtime started (its destructor runs before
// the exit handler), and static objects are never a lifetime error.
goro::mutex& singleton_lock() {
  static goro::mutex m;
  return m;
}

TEST(lifetime_exit, exit_from_a_goroutine_while_others_wait_on_a_local_static) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::go([] {
            singleton_lock().lock();
            goro::sleep(1h);
          });
          goro::sleep(10ms);
          goro::go([] { singleton_lock().lock(); });
          if (!some_goroutine_waits("sync.Mutex.Lock")) std::_Exit(4);
          goro::go([] { std::exit(3); });
          goro::sleep(1h);
        });
      },
      ::testing::ExitedWithCode(3), "");
}

}  // namespace
