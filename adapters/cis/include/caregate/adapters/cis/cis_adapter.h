#pragma once
// CIS-style client records: Client Level Data JSON, NDJSON extracts (spec section 2).
#include <memory>

#include "caregate/adapters/adapter.h"

namespace caregate::adapters {
std::unique_ptr<Adapter> MakeCisAdapter();

// Splits NDJSON into lines without holding the whole file: fixed-size reads, one line
// at a time, with its 1-based line number. Used by the adapter and the export job.
class NdjsonLineReader {
 public:
  static Expected<std::unique_ptr<NdjsonLineReader>> OpenFile(const std::string& path);
  static std::unique_ptr<NdjsonLineReader> FromBuffer(std::string bytes);
  ~NdjsonLineReader();
  // False at end of input. `line` excludes the '\n' (and a trailing '\r').
  bool Next(std::string& line, std::size_t& line_number);
  // Bytes consumed so far (for progress and resumption).
  std::size_t offset() const { return offset_; }
  bool failed() const { return failed_; }

 private:
  NdjsonLineReader() = default;
  bool Fill();
  int fd_ = -1;
  std::string buf_;
  std::size_t pos_ = 0, offset_ = 0, line_ = 0;
  bool eof_ = false, failed_ = false;
};
}  // namespace caregate::adapters
