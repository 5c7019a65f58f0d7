#pragma once
// One output file of a run, written under a temporary name beside its final name
// (".<name>.partial"), hashed as it is written, fsynced, and renamed into place only
// when the run publishes. Nothing a reader could mistake for a finished file ever
// appears under the final name before that.
#include <cstdint>
#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace caregate::exporter {

// "<dir>/.<name>.partial" for "<dir>/<name>".
std::string PartialPath(const std::string& final_path);

// fsync of a directory, so renames and unlinks in it are durable.
void SyncDirectory(const std::string& dir);

// Writes `bytes` to `path` via its partial file: write, fsync, rename, fsync the directory.
void WriteFileAtomically(const std::string& path, std::string_view bytes);

class OutputFile {
 public:
  // Creates (truncates) the partial file. Throws FatalError(kIoFailure).
  explicit OutputFile(std::string final_path);
  ~OutputFile();  // discards the partial file unless published
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Small pieces are gathered in a buffer; a large one (a run of records' bytes) goes to
  // the file as it is, after what is buffered, without being copied first.
  void Append(std::string_view bytes) {
    if (bytes.size() >= kDirectBytes) {
      Flush();
      Write(bytes);
      return;
    }
    buf_.append(bytes);
    if (buf_.size() >= kFlushBytes) Flush();
  }
  void Flush();
  // Flushes, fsyncs and closes; the SHA-256 is known afterwards.
  void Finish();
  // Renames the partial file to the final name (the caller fsyncs the directory).
  void Publish();
  void Discard();

  const std::string& final_path() const { return final_path_; }
  const std::string& sha256() const { return sha256_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  static constexpr std::size_t kFlushBytes = 1 << 20;
  static constexpr std::size_t kDirectBytes = 64 << 10;
  void Write(std::string_view bytes);  // hash, write, start writeback, drop old pages
  // Writeback of written bytes is started in steps of at least this much.
  static constexpr std::uint64_t kWritebackBytes = 8 << 20;
  // Written pages further back than this are waited for and dropped from the page cache.
  static constexpr std::uint64_t kKeepCachedBytes = 16 << 20;
  std::string final_path_, partial_path_;
  int fd_ = -1;
  std::string buf_;
  EVP_MD_CTX* sha_ = nullptr;
  std::string sha256_;
  std::uint64_t bytes_ = 0;
  std::uint64_t writeback_ = 0;  // writeback started for [0, writeback_)
  std::uint64_t dropped_ = 0;  // bytes [0, dropped_) are on disk and out of the page cache
  bool published_ = false;
};

}  // namespace caregate::exporter
