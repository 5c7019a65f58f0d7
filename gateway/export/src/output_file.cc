#include "output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "caregate/core/error.h"

namespace caregate::exporter {
namespace {

[[noreturn]] void Fail(const std::string& path, const char* what) {
  throw FatalError(Problem::kIoFailure, path + ": " + what + ": " + std::strerror(errno));
}

void WriteAll(int fd, const std::string& path, const char* data, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      Fail(path, "write failed");
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::string Hex(const unsigned char* md, unsigned len) {
  static const char* kHex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

}  // namespace

std::string PartialPath(const std::string& final_path) {
  std::filesystem::path p(final_path);
  return (p.parent_path() / ("." + p.filename().string() + ".partial")).string();
}

void SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) Fail(dir, "cannot open directory");
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) Fail(dir, "fsync failed");
}

void WriteFileAtomically(const std::string& path, std::string_view bytes) {
  OutputFile f(path);
  f.Append(bytes);
  f.Finish();
  f.Publish();
  SyncDirectory(std::filesystem::path(path).parent_path().string());
}

OutputFile::OutputFile(std::string final_path) : final_path_(std::move(final_path)) {
  partial_path_ = PartialPath(final_path_);
  fd_ = ::open(partial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) Fail(partial_path_, "cannot create");
  sha_ = EVP_MD_CTX_new();
  if (!sha_ || EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr) != 1)
    throw FatalError(Problem::kInternal, "OpenSSL: cannot initialise SHA-256");
  buf_.reserve(kFlushBytes + (64 << 10));
}

OutputFile::~OutputFile() {
  if (!published_) Discard();
  EVP_MD_CTX_free(sha_);
}

void OutputFile::Flush() {
  if (buf_.empty()) return;
  Write(buf_);
  buf_.clear();
}

void OutputFile::Write(std::string_view bytes) {
  EVP_DigestUpdate(sha_, bytes.data(), bytes.size());
  WriteAll(fd_, partial_path_, bytes.data(), bytes.size());
  bytes_ += bytes.size();
  // Start writing these pages back now rather than leave gigabytes dirty for the final
  // fsync (Linux; it does not wait, and failure only means fsync does it all). Every
  // kWritebackBytes, not every write: each call kicks the disk, and in a VM a kick is
  // an exit to the hypervisor.
  if (bytes_ - writeback_ >= kWritebackBytes) {
    ::sync_file_range(fd_, static_cast<off_t>(writeback_), static_cast<off_t>(bytes_ - writeback_),
                      SYNC_FILE_RANGE_WRITE);
    writeback_ = bytes_;
  }
  // Pages written back long ago are dropped from the page cache, so that a run's output
  // (gigabytes a night) reuses a few megabytes of cache instead of filling memory.
  if (bytes_ - dropped_ >= 2 * kKeepCachedBytes) {
    const std::uint64_t upto = bytes_ - kKeepCachedBytes;
    const auto off = static_cast<off_t>(dropped_), len = static_cast<off_t>(upto - dropped_);
    if (::sync_file_range(fd_, off, len, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                             SYNC_FILE_RANGE_WAIT_AFTER) == 0)
      ::posix_fadvise(fd_, off, len, POSIX_FADV_DONTNEED);
    dropped_ = upto;
  }
}

void OutputFile::Finish() {
  Flush();
  if (::fsync(fd_) != 0) Fail(partial_path_, "fsync failed");
  if (::close(fd_) != 0) {
    fd_ = -1;
    Fail(partial_path_, "close failed");
  }
  fd_ = -1;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(sha_, md, &len);
  sha256_ = Hex(md, len);
}

void OutputFile::Publish() {
  if (::rename(partial_path_.c_str(), final_path_.c_str()) != 0) Fail(final_path_, "cannot rename into place");
  published_ = true;
}

void OutputFile::Discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!published_) ::unlink(partial_path_.c_str());
  published_ = true;  // nothing left to clean up
}

}  // namespace caregate::exporter
