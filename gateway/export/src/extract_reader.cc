#include "extract_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "caregate/core/error.h"

namespace caregate::exporter {

namespace {

// Whether fewer than half of the file's pages are in the page cache (mincore over a
// read-only mapping, a window at a time so that memory stays flat). False when it
// cannot tell.
bool MostlyUncached(int fd, std::uint64_t size) {
  if (size == 0) return false;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  constexpr std::uint64_t kWindow = std::uint64_t{64} << 20;
  std::vector<unsigned char> v(static_cast<std::size_t>(kWindow / page));
  std::uint64_t pages = 0, resident = 0;
  for (std::uint64_t at = 0; at < size; at += kWindow) {
    const std::uint64_t len = std::min(kWindow, size - at);
    void* m = ::mmap(nullptr, static_cast<std::size_t>(len), PROT_READ, MAP_SHARED, fd, static_cast<off_t>(at));
    if (m == MAP_FAILED) return false;
    const int rc = ::mincore(m, static_cast<std::size_t>(len), v.data());
    ::munmap(m, static_cast<std::size_t>(len));
    if (rc != 0) return false;
    const std::uint64_t n = (len + page - 1) / page;
    for (std::uint64_t i = 0; i < n; ++i) resident += v[static_cast<std::size_t>(i)] & 1;
    pages += n;
  }
  return resident * 2 < pages;
}

}  // namespace

ExtractReader::ExtractReader(const std::string& path, std::size_t max_line, std::size_t chunk) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FatalError(Problem::kIoFailure, path + ": cannot open the extract: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      throw FatalError(Problem::kIoFailure, path + ": cannot read the extract: it is a directory");
    }
    regular_ = S_ISREG(st.st_mode);
    size_ = regular_ ? static_cast<std::uint64_t>(st.st_size) : 0;
  }
  // A regular file mostly not in the page cache is read with O_DIRECT where the file
  // system allows it: read once, sequentially, it gains nothing from the cache, and
  // bringing 2.25 GB into it cost ~3 s of system time here (docs/performance.md, session
  // 18). A file the cache holds (one just written by the job before) is read from it: a
  // direct read would go to the disk instead, and was slower. LineReader turns O_DIRECT
  // off again if reads are refused.
  bool direct = false;
  if (regular_ && MostlyUncached(fd, size_)) {
    const int flags = ::fcntl(fd, F_GETFL);
    direct = flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
  }
  if (!direct) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  lines_ = std::make_unique<LineReader>(fd, max_line, chunk, &sha_, direct);
  began_direct_ = lines_->direct();
}

bool ExtractReader::Next(Line& line) {
  if (lines_->Next(line)) return true;
  if (lines_->error() != 0)
    throw FatalError(Problem::kIoFailure, path_ + ": read error: " + std::strerror(lines_->error()));
  return false;
}

std::string ExtractReader::Sha256Hex() { return sha_.hex_digest(); }

}  // namespace caregate::exporter
