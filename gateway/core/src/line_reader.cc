#include "caregate/core/line_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "caregate/core/hash.h"

namespace caregate {

namespace {
std::size_t RoundUp(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
}  // namespace

LineReader::LineReader(int fd, std::size_t max_line, std::size_t chunk, Sha256* hash, bool direct)
    : fd_(fd), max_line_(max_line), chunk_(chunk == 0 ? 1 : chunk), hash_(hash), direct_(direct) {
  if (direct_ && chunk_ < kDirectAlign) EndDirect();
  if (!direct_) {
    cap_ = chunk_ + max_line_ + 2;  // an unfinished line kept at the front, then a whole read
    buf_.resize(cap_);
    return;
  }
  // The unfinished line ends at an aligned offset, a whole aligned read follows it.
  cap_ = RoundUp(max_line_ + 2, kDirectAlign) + chunk_ - chunk_ % kDirectAlign;
  buf_.resize(cap_ + kDirectAlign);
  const auto addr = reinterpret_cast<std::uintptr_t>(buf_.data());
  off_ = (kDirectAlign - addr % kDirectAlign) % kDirectAlign;
}

LineReader::LineReader(std::string text, std::size_t max_line)
    : max_line_(max_line), chunk_(0), buf_(std::move(text)), cap_(buf_.size()), end_(buf_.size()), eof_(true) {}

void LineReader::EndDirect() {
  direct_ = false;
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
}

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

bool LineReader::Fill() {
  if (eof_) return false;
  if (direct_) {  // keep the unfinished line just before an aligned offset, read there
    const std::size_t r = end_ - pos_, at = RoundUp(r, kDirectAlign);
    if (r > 0 && pos_ != at - r) std::memmove(data() + at - r, data() + pos_, r);
    pos_ = at - r;
    end_ = at;
  } else if (pos_ > 0) {  // keep the unfinished line at the front
    std::memmove(data(), data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  std::size_t room = cap_ - end_;
  if (room > chunk_) room = chunk_;
  if (direct_) room -= room % kDirectAlign;
  ssize_t n;
  for (;;) {
    do {
      n = ::read(fd_, data() + end_, room);
    } while (n < 0 && errno == EINTR);
    // A file system that takes O_DIRECT at open but not in a read: read as usual.
    if (n < 0 && errno == EINVAL && direct_) {
      EndDirect();
      continue;
    }
    break;
  }
  if (n <= 0) {
    if (n < 0) error_ = errno;
    eof_ = true;
    return false;
  }
  // A short read is the end of the file (or what was there): the next read, at an
  // unaligned offset, goes through the page cache.
  if (direct_ && static_cast<std::size_t>(n) < room) EndDirect();
  if (hash_) hash_->update(std::string_view(data() + end_, static_cast<std::size_t>(n)));
  end_ += static_cast<std::size_t>(n);
  return true;
}

// A line is too long when its text (without '\n' and one trailing '\r') has more than
// max_line_ bytes, wherever the reads happen to end: whether the whole line is in the
// buffer or not must not change how it is reported (a test reads at every chunk size).
bool LineReader::Next(Line& line) {
  const std::size_t head = std::min(max_line_ + 1, kTooLongHead);
  auto too_long = [&](const char* s) {
    head_.assign(s, head);  // the buffer is about to be overwritten
    line = Line{head_, ++line_, true};
    return true;
  };
  auto hand_out = [&](const char* s, std::size_t len) {
    if (len > 0 && s[len - 1] == '\r') --len;
    if (len > max_line_) return too_long(s);
    line = Line{std::string_view(s, len), ++line_, false};
    return true;
  };
  if (!start_checked_) {  // a UTF-8 byte order mark (Windows tools write one) is not data
    start_checked_ = true;
    while (end_ < 3 && Fill()) {
    }
    if (end_ - pos_ >= 3 && std::memcmp(data() + pos_, "\xEF\xBB\xBF", 3) == 0) {
      pos_ += 3;
      consumed_ = 3;
    }
  }
  for (;;) {
    const char* start = data() + pos_;
    const void* nl = pos_ < end_ ? std::memchr(start, '\n', end_ - pos_) : nullptr;
    if (nl) {
      std::size_t len = static_cast<std::size_t>(static_cast<const char*>(nl) - start);
      consumed_ += len + 1;
      pos_ += len + 1;
      return hand_out(start, len);
    }
    // max_line_ bytes and a '\r' may still end in a '\n' not yet read; one byte more may not.
    if (end_ - pos_ > max_line_ + 1) {
      // Too long to be a record: skip to the end of the line, keeping only its head.
      head_.assign(start, head);
      consumed_ += end_ - pos_;
      pos_ = end_ = 0;
      while (Fill()) {
        const void* e = std::memchr(data() + pos_, '\n', end_ - pos_);
        if (e) {
          std::size_t len = static_cast<std::size_t>(static_cast<const char*>(e) - (data() + pos_));
          consumed_ += len + 1;
          pos_ += len + 1;
          break;
        }
        consumed_ += end_ - pos_;
        pos_ = end_ = 0;
      }
      if (error_) return false;
      line = Line{head_, ++line_, true};
      return true;
    }
    if (!Fill()) {
      if (error_ || pos_ >= end_) return false;  // a read error: no partial line
      // The last line has no '\n'.
      std::size_t len = end_ - pos_;
      consumed_ += len;
      const char* s = data() + pos_;
      pos_ = end_;
      return hand_out(s, len);
    }
  }
}

}  // namespace caregate
