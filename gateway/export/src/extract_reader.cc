#include "extract_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "caregate/core/error.h"

namespace caregate::exporter {

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
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  lines_ = std::make_unique<LineReader>(fd, max_line, chunk, &sha_);
}

bool ExtractReader::Next(Line& line) {
  if (lines_->Next(line)) return true;
  if (lines_->error() != 0)
    throw FatalError(Problem::kIoFailure, path_ + ": read error: " + std::strerror(lines_->error()));
  return false;
}

std::string ExtractReader::Sha256Hex() { return sha_.hex_digest(); }

}  // namespace caregate::exporter
