#pragma once
// TextBuffer: bytes written through a raw pointer, for output built piece by piece at
// high rates (the export's SystmOne fragments and warehouse rows).
//
// std::string can only grow by resize(), which fills every byte it adds with zeros, and
// the only way to write past size() is to grow first; writers that ask for worst-case
// room (an escaped value can be 6x its input) then pay for filling and trimming bytes
// they never use, on every record. A TextBuffer's storage is allocated uninitialised and
// kept between uses: Room(n) guarantees n writable bytes past the end, Done(p) says how
// far they were written, clear() keeps the storage for the next batch.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "caregate/core/swar.h"

namespace caregate {

class TextBuffer {
 public:
  TextBuffer() = default;
  // A moved-from buffer is empty, without storage, and usable.
  TextBuffer(TextBuffer&& other) noexcept
      : bytes_(std::move(other.bytes_)), size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  TextBuffer& operator=(TextBuffer&& other) noexcept {
    bytes_ = std::move(other.bytes_);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }
  TextBuffer(const TextBuffer& other) { append(other.view()); }
  TextBuffer& operator=(const TextBuffer& other) {
    if (this != &other) {
      clear();
      append(other.view());
    }
    return *this;
  }

  const char* data() const { return bytes_.get(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return capacity_; }
  std::string_view view() const { return {bytes_.get(), size_}; }
  void clear() { size_ = 0; }
  friend bool operator==(const TextBuffer& a, const TextBuffer& b) { return a.view() == b.view(); }

  // At least n writable bytes at the end (their content is unspecified until written).
  char* Room(std::size_t n) {
    if (capacity_ - size_ < n) Grow(n);
    return bytes_.get() + size_;
  }
  // The bytes up to `end` (a pointer into the last Room) are now written.
  void Done(char* end) { size_ = static_cast<std::size_t>(end - bytes_.get()); }

  // `s` must not lie in this buffer's own storage (Room may move it).
  void append(std::string_view s) {
    char* p = Room(s.size());
    swar::CopyBytes(p, s.data(), s.size());
    size_ += s.size();
  }
  TextBuffer& operator+=(std::string_view s) {
    append(s);
    return *this;
  }
  TextBuffer& operator+=(char c) {
    *Room(1) = c;
    ++size_;
    return *this;
  }

 private:
  void Grow(std::size_t n) {
    std::size_t want = std::max({capacity_ * 2, size_ + n, std::size_t{4096}});
    auto bigger = std::make_unique_for_overwrite<char[]>(want);
    if (size_) std::memcpy(bigger.get(), bytes_.get(), size_);
    bytes_ = std::move(bigger);
    capacity_ = want;
  }

  std::unique_ptr<char[]> bytes_;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace caregate
