#include "extract_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "caregate/core/error.h"

namespace caregate::exporter {
namespace {
constexpr std::size_t kChunk = 4 << 20;
}

ExtractReader::ExtractReader(const std::string& path, std::size_t max_line) : path_(path), max_line_(max_line) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw FatalError(Problem::kIoFailure, path + ": cannot open the extract: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      fd_ = -1;
      throw FatalError(Problem::kIoFailure, path + ": cannot read the extract: it is a directory");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  buf_.resize(kChunk + max_line_ + 1);
}

ExtractReader::~ExtractReader() {
  if (fd_ >= 0) ::close(fd_);
}

bool ExtractReader::Fill() {
  if (eof_) return false;
  if (pos_ > 0) {  // keep the unfinished line at the front
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  std::size_t room = buf_.size() - end_;
  if (room > kChunk) room = kChunk;
  ssize_t n;
  do {
    n = ::read(fd_, buf_.data() + end_, room);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw FatalError(Problem::kIoFailure, path_ + ": read error: " + std::strerror(errno));
  if (n == 0) {
    eof_ = true;
    return false;
  }
  sha_.update(std::string_view(buf_.data() + end_, static_cast<std::size_t>(n)));
  end_ += static_cast<std::size_t>(n);
  return true;
}

bool ExtractReader::Next(Line& line) {
  for (;;) {
    const char* start = buf_.data() + pos_;
    const void* nl = pos_ < end_ ? std::memchr(start, '\n', end_ - pos_) : nullptr;
    if (nl) {
      std::size_t len = static_cast<std::size_t>(static_cast<const char*>(nl) - start);
      consumed_ += len + 1;
      pos_ += len + 1;
      if (len > 0 && start[len - 1] == '\r') --len;
      line = Line{std::string_view(start, len), ++line_, false};
      return true;
    }
    if (end_ - pos_ > max_line_) {
      // Too long to be a record: skip to the end of the line without keeping it.
      consumed_ += end_ - pos_;
      pos_ = end_ = 0;
      while (Fill()) {
        const void* e = std::memchr(buf_.data(), '\n', end_);
        if (e) {
          std::size_t len = static_cast<std::size_t>(static_cast<const char*>(e) - buf_.data());
          consumed_ += len + 1;
          pos_ = len + 1;
          break;
        }
        consumed_ += end_;
        pos_ = end_ = 0;
      }
      line = Line{{}, ++line_, true};
      return true;
    }
    if (!Fill()) {
      if (pos_ >= end_) return false;
      // The last line has no '\n'.
      std::size_t len = end_ - pos_;
      consumed_ += len;
      const char* s = buf_.data() + pos_;
      pos_ = end_;
      if (s[len - 1] == '\r') --len;
      line = Line{std::string_view(s, len), ++line_, false};
      return true;
    }
  }
}

std::string ExtractReader::Sha256Hex() { return sha_.hex_digest(); }

}  // namespace caregate::exporter
