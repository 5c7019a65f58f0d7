#include "output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>

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

OutputFile::OutputFile(std::string final_path, Io io) : final_path_(std::move(final_path)) {
  partial_path_ = PartialPath(final_path_);
  // Direct I/O first: on this kind of machine, writing through the page cache cost the
  // export's writer thread more kernel time (copies, writeback, dropping the pages again)
  // than hashing its output (docs/performance.md, session 12). A file system that does
  // not take O_DIRECT (tmpfs) refuses the open with EINVAL; it then gets the page cache.
  if (io == Io::kDirectWherePossible) {
    fd_ = ::open(partial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
    direct_ = fd_ >= 0;
  }
  if (fd_ < 0 && (io == Io::kPageCache || errno == EINVAL))
    fd_ = ::open(partial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) Fail(partial_path_, "cannot create");
  sha_ = EVP_MD_CTX_new();
  if (!sha_ || EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr) != 1)
    throw FatalError(Problem::kInternal, "OpenSSL: cannot initialise SHA-256");
  if (direct_) {
    block_ = static_cast<char*>(std::aligned_alloc(kAlign, kBlockBytes));
    if (!block_) throw std::bad_alloc();
  } else {
    buf_.reserve(kFlushBytes + (64 << 10));
  }
}

OutputFile::~OutputFile() {
  if (!published_) Discard();
  EVP_MD_CTX_free(sha_);
  std::free(block_);
}

void OutputFile::AppendDirect(std::string_view bytes) {
  while (!bytes.empty()) {
    const std::size_t n = std::min(bytes.size(), kBlockBytes - block_used_);
    std::memcpy(block_ + block_used_, bytes.data(), n);
    EVP_DigestUpdate(sha_, block_ + block_used_, n);  // while the bytes are in the cache
    block_used_ += n;
    bytes.remove_prefix(n);
    if (block_used_ == kBlockBytes) WriteBlock();
    if (!direct_) {  // the block was refused: the rest goes through the page cache
      Append(bytes);
      return;
    }
  }
}

void OutputFile::WriteBlock() {  // its bytes are hashed already (AppendDirect)
  const char* data = block_;
  std::size_t n = block_used_;
  while (n > 0) {
    ssize_t w;
    if (bytes_ >= refuse_direct_from_) {
      errno = EINVAL;
      w = -1;
    } else {
      w = ::write(fd_, data, n);
    }
    if (w < 0 && errno == EINTR) continue;
    // EINVAL: the file system opened the file for direct I/O but refuses this write (or
    // a short write left the offset unaligned): the rest goes through the page cache.
    if (w < 0 && errno == EINVAL) {
      LeaveDirect();
      Put(std::string_view(data, n));
      break;
    }
    if (w < 0) Fail(partial_path_, "write failed");
    data += w;
    n -= static_cast<std::size_t>(w);
    bytes_ += static_cast<std::uint64_t>(w);
  }
  block_used_ = 0;
}

void OutputFile::LeaveDirect() {
  if (!direct_) return;
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) Fail(partial_path_, "cannot leave direct I/O");
  direct_ = false;
  writeback_ = dropped_ = bytes_;  // what direct I/O wrote never entered the page cache
  buf_.reserve(kFlushBytes + (64 << 10));
}

void OutputFile::Flush() {
  if (direct_) return;  // whole blocks are written as they fill; the tail at Finish
  if (buf_.empty()) return;
  Write(buf_);
  buf_.clear();
}

void OutputFile::Write(std::string_view bytes) {
  EVP_DigestUpdate(sha_, bytes.data(), bytes.size());
  Put(bytes);
}

void OutputFile::Put(std::string_view bytes) {
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
  if (direct_ && block_used_ > 0) {
    // The tail is shorter than a block (and not a multiple of the alignment in general):
    // written through the page cache, then fsynced with everything else.
    const std::size_t tail = block_used_;
    LeaveDirect();
    block_used_ = 0;
    Put(std::string_view(block_, tail));
  }
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
