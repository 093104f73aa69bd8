// goro/detail/spawn.hpp — the type-erased task behind goro::go. Not public API.
//
// go() decay-copies its callable and arguments into a task_impl and hands it to
// the runtime; the runtime runs it once on the goroutine's stack, then destroys it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <source_location>
#include <string_view>
#include <tuple>
#include <utility>

namespace goro {
struct spawn_options;
}

namespace goro::detail {

// One unit of work a goroutine runs. run() is called at most once.
class task {
 public:
  virtual ~task() = default;
  virtual void run() = 0;
};

template <class F, class... Args>
class task_impl final : public task {
 public:
  template <class UF, class... UArgs>
  explicit task_impl(UF&& f, UArgs&&... args)
      : f_(std::forward<UF>(f)), args_(std::forward<UArgs>(args)...) {}
  void run() override { std::apply(std::move(f_), std::move(args_)); }

 private:
  F f_;
  std::tuple<Args...> args_;
};

// Starts a goroutine running `t` (ownership passes to the runtime, also when this throws).
void spawn(const spawn_options& options, task* t, const std::source_location& where);

template <class F, class... Args>
void spawn_callable(const spawn_options& options, const std::source_location& where, F&& f,
                    Args&&... args) {
  using impl = task_impl<std::decay_t<F>, std::decay_t<Args>...>;
  spawn(options, new impl(std::forward<F>(f), std::forward<Args>(args)...), where);
}

}  // namespace goro::detail
