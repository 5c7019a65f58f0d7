#pragma once
// Lines of an NDJSON text, read in fixed-size chunks (never the whole input), one at a
// time with its 1-based line number. The one set of rules for every NDJSON input (the
// export's extract, `translate` and `ingest` files, request bodies):
//   - '\n' ends a line; one '\r' before it is dropped (CRLF); the last line may lack it;
//   - a UTF-8 byte order mark at the very start is skipped (it is not part of line 1),
//     but counted in consumed() and hashed;
//   - a line whose text has more than `max_line` bytes is "too long" wherever the reads
//     happen to end; it is skipped without being buffered, except for its first
//     min(max_line + 1, kTooLongHead) bytes (enough to say whose record it was).
// Memory: one chunk plus max_line + 2 bytes (twice that, and a thread, when reading
// with O_DIRECT), whatever the input.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace caregate {

class Sha256;

class LineReader {
 public:
  static constexpr std::size_t kDefaultChunk = std::size_t{512} << 10;
  static constexpr std::size_t kTooLongHead = 4096;

  struct Line {
    std::string_view text;  // without '\n' and a trailing '\r'; valid until the next call
    std::uint64_t number = 0;
    bool too_long = false;  // `text` is then only the line's head (see above)
  };

  // Reads `fd`, which the reader closes. `chunk`: bytes per read (tests use tiny ones to
  // put a read's end everywhere). `hash`, when given, receives every byte read.
  // `direct`: `fd` is a regular file at offset 0 opened (or set, F_SETFL) with O_DIRECT.
  // A thread of the reader's own then reads ahead, one chunk at a time into one of two
  // aligned blocks (direct reads are synchronous: without it the caller would wait for
  // each read, then hash it); each read is kDirectAlign-aligned in memory and in the
  // file, a multiple of it long, and the unfinished line is copied in front of the next
  // block. A chunk below kDirectAlign, no thread to be had, or a file system that
  // refuses a read (EINVAL) means ordinary reads from there on, and so does a short
  // read (the end of the file, as a rule: an ordinary read then returns 0). The lines,
  // bytes and hash are the same either way.
  static constexpr std::size_t kDirectAlign = 4096;
  LineReader(int fd, std::size_t max_line, std::size_t chunk = kDefaultChunk, Sha256* hash = nullptr,
             bool direct = false);
  // Reads an in-memory text.
  LineReader(std::string text, std::size_t max_line);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // False at the end of the input, or at a read error: error() is then its errno.
  bool Next(Line& line);
  // The problem every reader of NDJSON records reports for a too-long line.
  static std::string TooLongProblem(std::size_t max_line) {
    return "line longer than " + std::to_string(max_line) + " bytes, the limit for one record";
  }
  std::uint64_t consumed() const { return consumed_; }  // bytes handed out so far, BOM included
  int error() const { return error_; }
  // Whether reads bypass the page cache (O_DIRECT, read ahead; tests).
  bool direct() const { return ahead_ != nullptr; }

 private:
  bool Fill();  // false at the end of the input
  bool FillAhead();  // Fill, reading ahead with O_DIRECT
  // The outcome `n` (errno `err`) of a read into data() + end_: its bytes hashed and
  // taken in; false at the end or an error.
  bool Took(ssize_t n, int err);
  void EndDirect();  // O_DIRECT off: ordinary reads from here on
  void LeaveReadAhead();  // EndDirect, the unfinished line moved to buf_
  char* data() { return block_ ? block_ : buf_.data(); }
  struct ReadAhead;
  std::unique_ptr<ReadAhead> ahead_;
  char* block_ = nullptr;  // the block the lines are in, when reading ahead
  int fd_ = -1;
  std::size_t max_line_, chunk_;
  Sha256* hash_ = nullptr;
  std::string buf_;
  std::size_t cap_ = 0;  // room in buf_
  std::string head_;  // of the last too-long line
  std::size_t pos_ = 0, end_ = 0;
  bool eof_ = false, start_checked_ = false;
  bool ordinary_next_ = false;  // the read-ahead thread stopped at a short read
  int error_ = 0;
  std::uint64_t consumed_ = 0, line_ = 0;
};

}  // namespace caregate
