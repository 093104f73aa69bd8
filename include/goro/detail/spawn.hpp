// goro/detail/spawn.hpp — the type-erased task behind goro::go, and go_call, which
// checks go's arguments at the caller's line. Not public API.
//
// go() decay-copies its callable and arguments into a task_impl and hands it to
// the runtime; the runtime runs it once on the goroutine's stack, then destroys it.
//
// go_call: go(f, args...) has a variadic argument list and still records its caller's
// source_location. It cannot put a defaulted location after a pack, so its first
// parameter is a go_call<kind, Args...> built from f, whose type is deduced from the
// arguments after it only (the technique of std::format_string). go_call's converting
// constructor deduces f's type, takes the caller's location as its defaulted
// argument, and checks that f can be called with copies of the arguments, with one
// static_assert sentence for each mistake. A `kind` says what the call starts (a plain
// goroutine, a wait_group's, an errgroup's task).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <source_location>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace goro {
struct spawn_options;
}

namespace goro::detail {

// Memory for tasks: small ones come from per-processor pools (runtime/task_alloc.cpp).
void* allocate_task(std::size_t bytes);
void free_task(void* block, std::size_t bytes) noexcept;

// A base that gives a class the task pools as its new and delete. Sized delete: the
// classes that use it have virtual destructors, so delete passes the whole object's size.
struct pool_allocated {
  static void* operator new(std::size_t bytes) { return allocate_task(bytes); }
  static void operator delete(void* block, std::size_t bytes) noexcept { free_task(block, bytes); }
  // Over-aligned objects (a callable with an alignas member) bypass the pools.
  static void* operator new(std::size_t bytes, std::align_val_t align) {
    return ::operator new(bytes, align);
  }
  static void operator delete(void* block, std::size_t, std::align_val_t align) noexcept {
    ::operator delete(block, align);
  }
};

// One unit of work a goroutine runs. run() is called at most once.
class task : public pool_allocated {
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
  // No bytes for a capture-less callable or no arguments: a lambda of 56 bytes then
  // still fits the task pools' largest block (64 bytes with the vtable pointer).
  [[no_unique_address]] F f_;
  [[no_unique_address]] std::tuple<Args...> args_;
};

// Starts a goroutine running `t` (ownership passes to the runtime, also when this throws).
void spawn(const spawn_options& options, task* t, const std::source_location& where);

template <class F, class... Args>
void spawn_callable(const spawn_options& options, const std::source_location& where, F&& f,
                    Args&&... args) {
  using impl = task_impl<std::decay_t<F>, std::decay_t<Args>...>;
  spawn(options, new impl(std::forward<F>(f), std::forward<Args>(args)...), where);
}

// A callable and its arguments, decay-copied, called once as rvalues.
template <class F, class... Args>
class bound_call {
 public:
  template <class UF, class... UArgs>
  explicit bound_call(UF&& f, UArgs&&... args)
      : f_(std::forward<UF>(f)), args_(std::forward<UArgs>(args)...) {}
  decltype(auto) operator()() { return std::apply(std::move(f_), std::move(args_)); }

 private:
  [[no_unique_address]] F f_;
  [[no_unique_address]] std::tuple<Args...> args_;
};

template <class...>
inline constexpr bool always_false = false;

// Whether `what` (go, wait_group::go, ...) can call F with decay-copies of Args as
// std::thread would; when not, one static_assert names the mistake and returns false,
// so the caller instantiates nothing more (no second page of errors from <tuple>).
template <class F, class... Args>
consteval bool check_callable() {
  using fn = std::decay_t<F>;
  if constexpr (!std::is_constructible_v<fn, F>) {
    if constexpr (std::is_move_constructible_v<fn> && !std::is_const_v<std::remove_reference_t<F>>) {
      static_assert(always_false<F>,
                    "go(f, args...) copies the callable (like std::thread), and this one cannot "
                    "be copied: pass it with std::move(f)");
    } else {
      static_assert(always_false<F>,
                    "go(f, args...) copies the callable (like std::thread), and this one can be "
                    "neither copied nor moved from here: pass std::ref(f) and keep f alive until "
                    "the goroutine is done");
    }
    return false;
  } else if constexpr (!(std::is_constructible_v<std::decay_t<Args>, Args> && ...)) {
    constexpr bool movable = ((std::is_constructible_v<std::decay_t<Args>, Args> ||
                               (std::is_move_constructible_v<std::decay_t<Args>> &&
                                !std::is_const_v<std::remove_reference_t<Args>>)) &&
                              ...);
    if constexpr (movable) {
      static_assert(always_false<F>,
                    "go(f, args...) copies its arguments (like std::thread), and one of them is "
                    "move-only: pass it with std::move(arg)");
    } else {
      static_assert(always_false<F>,
                    "go(f, args...) copies its arguments (like std::thread), and one of them can "
                    "be neither copied nor moved from here (a mutex, an atomic, a const move-only "
                    "value): pass std::ref(arg) or a pointer, and keep it alive until the "
                    "goroutine is done with it");
    }
    return false;
  } else if constexpr (!std::is_invocable_v<fn, std::decay_t<Args>...>) {
    if constexpr (sizeof...(Args) > 0 && std::is_invocable_v<fn, std::decay_t<Args>&...>) {
      static_assert(always_false<F>,
                    "go(f, args...) passes copies of its arguments (like std::thread), and the "
                    "function takes one by non-const reference: wrap that argument in "
                    "std::ref(x), and keep x alive until the goroutine is done with it");
    } else if constexpr (std::is_invocable_v<fn&, std::decay_t<Args>...>) {
      static_assert(always_false<F>,
                    "go(f, args...) calls its copy of f once, as an rvalue, and f's call "
                    "operator takes only an lvalue (operator() &): make it callable as an "
                    "rvalue");
    } else {
      static_assert(always_false<F>,
                    "go(f, args...): f cannot be called with (copies of) these arguments; "
                    "check their number and types");
    }
    return false;
  } else {
    return true;
  }
}

// What go_call starts: the plain goroutine of goro::go.
struct plain_go {
  using target = const spawn_options*;
  template <class F, class... Args>
  static constexpr bool check() {
    return true;
  }
  template <class F, class... Args>
  static void launch(target options, const std::source_location& where, F&& f, Args&&... args);
};

// go's first parameter: the callable, the caller's location, and the function that
// starts it (instantiated for the callable's type). Valid only during the call
// expression it is made in (it points at the caller's argument).
template <class Kind, class... Args>
class go_call {
 public:
  // Not from what initialises spawn_options: go({"name"}, f) is the options
  // overload's (a name is no callable). Clang 16 picks this constructor for a
  // designated list, go({.name = n}, f), whatever the constraint: there, name the type,
  // go(goro::spawn_options{.name = n}, f).
  template <class F>
    requires(!std::is_void_v<std::remove_reference_t<F>> &&
             !std::is_constructible_v<spawn_options, F>)
  go_call(F&& f,  // NOLINT: implicit, it is go's first argument
          std::source_location where = std::source_location::current()) noexcept
      : where_(where) {
    if constexpr (check_callable<F, Args...>()) {
      if constexpr (Kind::template check<F, Args...>()) {
        if constexpr (std::is_function_v<std::remove_reference_t<F>>) {
          fn_ = reinterpret_cast<void (*)()>(&f);
        } else {
          obj_ = const_cast<void*>(static_cast<const volatile void*>(std::addressof(f)));
        }
        launch_ = &launch<F>;
      }
    }
  }
  go_call(const go_call&) = delete;
  go_call& operator=(const go_call&) = delete;

  const std::source_location& where() const noexcept { return where_; }

  // Starts it; forwards the caller's arguments.
  void start(typename Kind::target target, Args&&... args) const {
    launch_(*this, target, std::forward<Args>(args)...);
  }

 private:
  template <class F>
  static void launch(const go_call& self, typename Kind::target target, Args&&... args) {
    using ref = std::remove_reference_t<F>;
    if constexpr (std::is_function_v<ref>) {
      Kind::launch(target, self.where_, reinterpret_cast<ref*>(self.fn_),
                   std::forward<Args>(args)...);
    } else {
      Kind::launch(target, self.where_, std::forward<F>(*static_cast<ref*>(self.obj_)),
                   std::forward<Args>(args)...);
    }
  }

  union {
    void* obj_ = nullptr;
    void (*fn_)();
  };
  std::source_location where_;
  void (*launch_)(const go_call&, typename Kind::target, Args&&...) = nullptr;
};

}  // namespace goro::detail
