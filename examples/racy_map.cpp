// racy_map — a std::unordered_map shared by goroutines, and the two fixes.
//   racy_map racy | mutex | owner
// Go stops a program that writes one map from two goroutines ("fatal error:
// concurrent map writes"); C++ does not: it is a data race, undefined behaviour, and
// an insert racing another can corrupt the table. Built with -DGORO_SANITIZE=thread,
// `racy` is reported by ThreadSanitizer as a data race between two goroutines; the
// fixes report nothing (CI checks both). The racy version only updates values of keys
// that exist, so that it stays a reportable race rather than a crash.
#include <goro/goro.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "racy";
  goro::set_max_procs(2);  // two goroutines really run at once
  return goro::run([mode] {
    constexpr int goroutines = 4, words = 20'000, keys = 16;
    std::unordered_map<std::string, long> counts;
    for (int k = 0; k < keys; ++k) counts["word" + std::to_string(k)] = 0;
    goro::wait_group wg;
    if (std::strcmp(mode, "racy") == 0) {
      // As racy_counter: two of them really run at once, on two threads.
      std::atomic<int> arrived{0};
      for (int g = 0; g < goroutines; ++g) {
        wg.go([&, g] {
          arrived.fetch_add(1, std::memory_order_relaxed);
          while (arrived.load(std::memory_order_relaxed) < 2) {
          }
          for (int i = 0; i < words; ++i) ++counts["word" + std::to_string((i + g) % keys)];  // data race
        });
      }
      wg.wait();
    } else if (std::strcmp(mode, "mutex") == 0) {
      goro::mutex mu;  // guards counts
      for (int g = 0; g < goroutines; ++g) {
        wg.go([&, g] {
          for (int i = 0; i < words; ++i) {
            std::string word = "word" + std::to_string((i + g) % keys);  // outside the lock
            std::lock_guard lk(mu);
            ++counts[word];
          }
        });
      }
      wg.wait();
    } else {
      // One goroutine owns the map; the others send it words.
      auto updates = goro::make_chan<std::string>(64);
      goro::wait_group owner;
      owner.go([&] {
        for (std::string& w : updates) ++counts[w];
      });
      for (int g = 0; g < goroutines; ++g) {
        wg.go([&, g] {
          for (int i = 0; i < words; ++i) updates.send("word" + std::to_string((i + g) % keys));
        });
      }
      wg.wait();
      updates.close();
      owner.wait();
    }
    long total = 0;
    for (auto& [word, n] : counts) total += n;
    std::printf("%s: %zu words counted %ld times (want %d)\n", mode, counts.size(), total,
                goroutines * words);
  });
}
