#pragma once
// The export's CIS NDJSON extract: a file read through core's LineReader (chunked, never
// the whole file; a leading BOM skipped; over-long lines reported, not buffered), every
// byte hashed for the manifest's input SHA-256. Read errors stop the run.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "caregate/core/hash.h"
#include "caregate/core/line_reader.h"

namespace caregate::exporter {

class ExtractReader {
 public:
  using Line = LineReader::Line;
  static constexpr std::size_t kDefaultChunk = LineReader::kDefaultChunk;
  static constexpr std::size_t kTooLongHead = LineReader::kTooLongHead;

  // Throws FatalError(kIoFailure) when the file cannot be opened or is a directory.
  ExtractReader(const std::string& path, std::size_t max_line, std::size_t chunk = kDefaultChunk);
  ExtractReader(const ExtractReader&) = delete;
  ExtractReader& operator=(const ExtractReader&) = delete;

  // False at the end of the input. Throws FatalError(kIoFailure) on a read error.
  bool Next(Line& line);

  // A regular file: its size is known before reading, and it can be read twice (the
  // "already completed" check hashes it first). Not so for a pipe (--in /dev/stdin).
  bool regular_file() const { return regular_; }
  std::uint64_t size() const { return size_; }                    // file size at open (for progress)
  // Whether it began reading with O_DIRECT (a regular file mostly not in the page cache).
  bool began_direct() const { return began_direct_; }
  std::uint64_t consumed() const { return lines_->consumed(); }  // bytes handed out so far
  // SHA-256 (hex) of every byte read; call once, after Next returned false.
  std::string Sha256Hex();

 private:
  std::string path_;
  std::uint64_t size_ = 0;
  bool regular_ = false, began_direct_ = false;
  Sha256 sha_;  // of every byte read
  std::unique_ptr<LineReader> lines_;
};

}  // namespace caregate::exporter
