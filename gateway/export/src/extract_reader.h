#pragma once
// Reads a CIS NDJSON extract in fixed-size chunks (never the whole file), hashing every
// byte (the manifest's input SHA-256) and handing out one line at a time with its
// 1-based line number. A line longer than the cap is reported as too long and skipped
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
  ExtractReader(const std::string& path, std::size_t max_line);
  ~ExtractReader();
  ExtractReader(const ExtractReader&) = delete;
  ExtractReader& operator=(const ExtractReader&) = delete;

  struct Line {
    std::string_view text;  // without '\n' and a trailing '\r'; valid until the next call
    std::uint64_t number = 0;
    bool too_long = false;  // text is empty then
  };
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
  std::size_t max_line_;
  std::string buf_;
  std::size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  std::uint64_t size_ = 0, consumed_ = 0, line_ = 0;
  Sha256 sha_;  // of every byte read
};

}  // namespace caregate::exporter
