// goro/detail/channel.hpp — channel<T>: a channel_core with a typed ring buffer.
// Not public API: goro::chan<T> (goro/chan.hpp) is the handle users hold.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include "goro/detail/chan_core.hpp"

namespace goro::detail {

template <class T>
class channel final : public channel_core {
 public:
  explicit channel(std::size_t cap)
      : channel_core(cap),
        buf_(cap ? static_cast<T*>(::operator new (cap * sizeof(T), std::align_val_t{alignof(T)}))
                 : nullptr) {}

  ~channel() override {
    for (std::size_t i = 0; i < count; ++i) buf_[(recvx + i) % capacity].~T();
    if (buf_) ::operator delete (buf_, std::align_val_t{alignof(T)});
  }

  void put(void* src) override {
    ::new (static_cast<void*>(buf_ + sendx)) T(std::move(*static_cast<T*>(src)));
    sendx = sendx + 1 == capacity ? 0 : sendx + 1;
  }

  void take(void* dst) override {
    T& slot = buf_[recvx];
    if (dst) static_cast<std::optional<T>*>(dst)->emplace(std::move(slot));
    slot.~T();
    recvx = recvx + 1 == capacity ? 0 : recvx + 1;
  }

  void clear(void* dst) override {
    if (dst) static_cast<std::optional<T>*>(dst)->reset();
  }

  void hand_off(void* src, void* dst) override {
    if (dst) static_cast<std::optional<T>*>(dst)->emplace(std::move(*static_cast<T*>(src)));
  }

 private:
  T* buf_;
};

// The largest capacity make_chan accepts (Go's "makechan: size out of range").
template <class T>
constexpr std::size_t max_chan_capacity() {
  return (std::size_t{1} << 40) / (sizeof(T) ? sizeof(T) : 1);
}

}  // namespace goro::detail
