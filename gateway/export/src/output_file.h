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
  enum class Io { kDirectWherePossible, kPageCache };
  // Creates (truncates) the partial file. Throws FatalError(kIoFailure). `io` is for
  // tests of the page-cache path (which file systems without O_DIRECT take).
  explicit OutputFile(std::string final_path, Io io = Io::kDirectWherePossible);
  ~OutputFile();  // discards the partial file unless published
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Direct I/O (O_DIRECT, where the file system takes it): bytes are gathered into
  // aligned 1 MiB blocks, each written straight from that buffer to the disk, bypassing
  // the page cache. Otherwise small pieces are gathered in a buffer, and a large one (a
  // run of records' bytes) goes to the file as it is, after what is buffered.
  void Append(std::string_view bytes) {
    if (direct_) {
      AppendDirect(bytes);
      return;
    }
    if (bytes.size() >= kDirectBytes) {
      Flush();
      Write(bytes);
      return;
    }
    buf_.append(bytes);
    if (buf_.size() >= kFlushBytes) Flush();
  }
  // Writes what is buffered (with direct I/O, only whole blocks are ever written before
  // Finish: the buffer keeps the rest).
  void Flush();
  // Flushes, fsyncs and closes; the SHA-256 is known afterwards.
  void Finish();
  // Renames the partial file to the final name (the caller fsyncs the directory).
  void Publish();
  void Discard();

  const std::string& final_path() const { return final_path_; }
  // Whether the file is being written with direct I/O (tests; it falls back to the page
  // cache on file systems without O_DIRECT, such as tmpfs).
  bool direct() const { return direct_; }
  const std::string& sha256() const { return sha256_; }
  std::uint64_t bytes() const { return bytes_; }
  // Tests: behave as a file system that opened the file for direct I/O but refuses
  // (EINVAL) every direct write from byte `offset` on, as some network and FUSE file
  // systems do; the rest then goes through the page cache.
  void RefuseDirectWritesFrom(std::uint64_t offset) { refuse_direct_from_ = offset; }

 private:
  static constexpr std::size_t kFlushBytes = 1 << 20;
  static constexpr std::size_t kDirectBytes = 64 << 10;
  void Write(std::string_view bytes);  // hash, then Put
  void Put(std::string_view bytes);    // write (hashed already), start writeback, drop old pages
  void AppendDirect(std::string_view bytes);
  void WriteBlock();              // the full direct block (hashed as it filled): write, empty it
  void LeaveDirect();             // back to the page cache (fcntl), for the tail or a refusal
  // Direct I/O: a block of kBlockBytes aligned to kAlign (offsets and lengths of direct
  // writes must be multiples of the device's block size; 4096 covers every common one).
  static constexpr std::size_t kAlign = 4096;
  static constexpr std::size_t kBlockBytes = 1 << 20;
  bool direct_ = false;
  std::uint64_t refuse_direct_from_ = UINT64_MAX;  // RefuseDirectWritesFrom
  char* block_ = nullptr;
  std::size_t block_used_ = 0;
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
