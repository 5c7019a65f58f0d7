#include "caregate/core/line_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <thread>
#include <mutex>
#include <condition_variable>

#include "caregate/core/hash.h"

namespace caregate {

namespace {
std::size_t RoundUp(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

// read(2), again when a signal interrupts it; errno as it left it.
ssize_t ReadSome(int fd, char* p, std::size_t n) {
  ssize_t got;
  do {
    got = ::read(fd, p, n);
  } while (got < 0 && errno == EINTR);
  return got;
}
}  // namespace

// Two aligned blocks, each [room for the unfinished line | one chunk], and a thread that
// fills the chunk part of whichever block the reader is not using.
struct LineReader::ReadAhead {
  int fd;
  std::size_t prefix, chunk;
  std::string storage[2];
  char* mem[2];
  std::mutex m;
  std::condition_variable cv;
  bool filled[2] = {false, false};  // read, not yet taken
  bool in_use[2] = {false, false};  // the reader's lines are in it
  ssize_t got[2] = {0, 0};
  int err[2] = {0, 0};
  bool stop = false;
  std::thread thread;

  ReadAhead(int f, std::size_t max_line, std::size_t ch)
      : fd(f), prefix(RoundUp(max_line + 2, kDirectAlign)), chunk(ch - ch % kDirectAlign) {
    for (int b = 0; b < 2; ++b) {
      storage[b].resize(prefix + chunk + kDirectAlign);
      const auto addr = reinterpret_cast<std::uintptr_t>(storage[b].data());
      mem[b] = storage[b].data() + (kDirectAlign - addr % kDirectAlign) % kDirectAlign;
    }
    thread = std::thread([this] { Run(); });
  }
  ~ReadAhead() {
    {
      std::lock_guard lock(m);
      stop = true;
    }
    cv.notify_all();
    thread.join();
  }
  void Run() {
    for (int b = 0;; b ^= 1) {
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return stop || (!filled[b] && !in_use[b]); });
        if (stop) return;
      }
      const ssize_t n = ReadSome(fd, mem[b] + prefix, chunk);
      const int e = n < 0 ? errno : 0;
      {
        std::lock_guard lock(m);
        got[b] = n;
        err[b] = e;
        filled[b] = true;
      }
      cv.notify_all();
      if (n < static_cast<ssize_t>(chunk)) return;  // the end, or an error
    }
  }
};

LineReader::LineReader(int fd, std::size_t max_line, std::size_t chunk, Sha256* hash, bool direct)
    : fd_(fd), max_line_(max_line), chunk_(chunk == 0 ? 1 : chunk), hash_(hash) {
  cap_ = chunk_ + max_line_ + 2;  // an unfinished line kept at the front, then a whole read
  if (direct && chunk_ >= kDirectAlign) {
    try {
      ahead_ = std::make_unique<ReadAhead>(fd_, max_line_, chunk_);
      return;
    } catch (const std::system_error&) {  // no thread to be had: ordinary reads
    }
  }
  if (direct) EndDirect();
  buf_.resize(cap_);
}

void LineReader::LeaveReadAhead() {
  const std::string unfinished(data() + pos_, end_ - pos_);
  EndDirect();  // joins the thread (it has stopped or stops now), frees the blocks
  block_ = nullptr;
  buf_.resize(cap_);
  std::memcpy(buf_.data(), unfinished.data(), unfinished.size());
  pos_ = 0;
  end_ = unfinished.size();
}

LineReader::LineReader(std::string text, std::size_t max_line)
    : max_line_(max_line), chunk_(0), buf_(std::move(text)), cap_(buf_.size()), end_(buf_.size()), eof_(true) {}

void LineReader::EndDirect() {
  ahead_.reset();
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
}

LineReader::~LineReader() {
  ahead_.reset();  // its thread reads from fd_
  if (fd_ >= 0) ::close(fd_);
}

bool LineReader::FillAhead() {
  ReadAhead& a = *ahead_;
  const int cur = block_ == nullptr ? -1 : block_ == a.mem[0] ? 0 : 1;
  const int next = cur == 0 ? 1 : 0;
  ssize_t n;
  int e;
  {
    std::unique_lock lock(a.m);
    a.cv.wait(lock, [&] { return a.filled[next]; });
    a.filled[next] = false;
    a.in_use[next] = true;
    n = a.got[next];
    e = a.err[next];
  }
  if (n < 0 && e == EINVAL) {
    // A file system that takes O_DIRECT at open but refuses this read (its alignment is
    // not ours): ordinary reads from where the refused one would have started.
    LeaveReadAhead();
    return Fill();
  }
  // The unfinished line goes in front of the new chunk.
  const std::size_t r = end_ - pos_;
  if (r > 0) std::memcpy(a.mem[next] + a.prefix - r, data() + pos_, r);
  if (cur >= 0) {
    {
      std::lock_guard lock(a.m);
      a.in_use[cur] = false;
    }
    a.cv.notify_all();
  }
  block_ = a.mem[next];
  pos_ = a.prefix - r;
  end_ = a.prefix;
  if (!Took(n, e)) return false;
  // The thread stops at a short read: the end of the file, as a rule, but not
  // necessarily (a file still growing, a file system that returns less): ordinary reads
  // go on from there, and the end is where one returns 0.
  if (static_cast<std::size_t>(n) < a.chunk) ordinary_next_ = true;
  return true;
}

bool LineReader::Fill() {
  if (eof_) return false;
  if (ordinary_next_) {
    ordinary_next_ = false;
    LeaveReadAhead();
  }
  if (ahead_) return FillAhead();
  if (pos_ > 0) {  // keep the unfinished line at the front
    std::memmove(data(), data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  std::size_t room = cap_ - end_;
  if (room > chunk_) room = chunk_;
  const ssize_t n = ReadSome(fd_, data() + end_, room);
  return Took(n, n < 0 ? errno : 0);
}

bool LineReader::Took(ssize_t n, int err) {
  if (n <= 0) {
    if (n < 0) error_ = err;
    eof_ = true;
    return false;
  }
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
