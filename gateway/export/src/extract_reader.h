#pragma once
// Reads a CIS NDJSON extract in fixed-size chunks (never the whole file), hashing every
// byte (the manifest's input SHA-256) and handing out one line at a time with its
// 1-based line number. A UTF-8 byte order mark at the start of the file is skipped
// (hashed and counted as read, not part of line 1). A line longer than the cap is reported as too long and skipped
// without being buffered, so one giant line cannot make memory grow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "caregate/core/hash.h"

namespace caregate::exporter {

class ExtractReader {
 public:
  // Throws FatalError(kIoFailure) when the file cannot be opened.
  // `chunk`: bytes per read (tests use tiny ones to put a read's end everywhere).
  ExtractReader(const std::string& path, std::size_t max_line, std::size_t chunk = kDefaultChunk);
  static constexpr std::size_t kDefaultChunk = std::size_t{512} << 10;
  ~ExtractReader();
  ExtractReader(const ExtractReader&) = delete;
  ExtractReader& operator=(const ExtractReader&) = delete;

  struct Line {
    std::string_view text;  // without '\n' and a trailing '\r'; valid until the next call
    std::uint64_t number = 0;
    // More than max_line bytes: `text` is then only the line's first
    // min(max_line + 1, kTooLongHead) bytes, enough to name the person in the reject.
    bool too_long = false;
  };
  static constexpr std::size_t kTooLongHead = 4096;
  // False at the end of the input. Throws FatalError(kIoFailure) on a read error.
  bool Next(Line& line);

  std::uint64_t size() const { return size_; }        // file size at open (for progress)
  std::uint64_t consumed() const { return consumed_; }  // bytes handed out so far
  // SHA-256 (hex) of every byte read; call once, after Next returned false.
  std::string Sha256Hex();

 private:
  bool Fill();  // false at end of file
  std::string path_;
  int fd_ = -1;
  std::size_t max_line_, chunk_;
  std::string buf_;
  std::string head_;  // of the last too-long line
  std::size_t pos_ = 0, end_ = 0;
  bool eof_ = false, start_checked_ = false;
  std::uint64_t size_ = 0, consumed_ = 0, line_ = 0;
  Sha256 sha_;  // of every byte read
};

}  // namespace caregate::exporter
