// Fuzz target for LineReader (gateway/core), the line splitter of every NDJSON input
// (the export's extract, translate and ingest files, request bodies). The first input
// byte picks the line limit and chunk sizes; the rest is the text.
//
// What must hold (line_reader.h): whatever the chunk size and whether reads go ahead in
// aligned blocks (the export's O_DIRECT mode, here on a memfd, which takes no O_DIRECT
// but runs the same blocks and thread) or not, and for the text in memory, the lines,
// their numbers, too-long flags, bytes consumed and the hash of every byte are those of
// a reference splitter written by hand.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/hash.h"
#include "caregate/core/line_reader.h"
#include "fuzz_util.h"

namespace {

using caregate::LineReader;
using caregate::fuzz::Check;

struct Got {
  std::string text;
  std::uint64_t number, consumed;
  bool too_long;
  bool operator==(const Got&) const = default;
};

std::vector<Got> Reference(std::string_view content, std::size_t max_line) {
  std::vector<Got> out;
  std::size_t pos = content.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  std::uint64_t n = 0;
  while (pos < content.size()) {
    const std::size_t nl = content.find('\n', pos);
    const std::size_t end = nl == std::string_view::npos ? content.size() : nl;
    std::string text(content.substr(pos, end - pos));
    if (!text.empty() && text.back() == '\r') text.pop_back();
    pos = nl == std::string_view::npos ? content.size() : nl + 1;
    const bool too_long = text.size() > max_line;
    if (too_long) text.resize(std::min(max_line + 1, LineReader::kTooLongHead));
    out.push_back({text, ++n, pos, too_long});
  }
  return out;
}

std::vector<Got> Drain(LineReader& reader) {
  std::vector<Got> out;
  LineReader::Line line;
  while (reader.Next(line)) out.push_back({std::string(line.text), line.number, reader.consumed(), line.too_long});
  Check(!reader.Next(line), "the end did not stay the end");
  Check(reader.error() == 0, "a read error from a memfd");
  return out;
}

int MemFile(std::string_view content) {
  const int fd = ::memfd_create("line-reader-fuzz", MFD_CLOEXEC);
  Check(fd >= 0, "memfd_create failed");
  for (std::size_t done = 0; done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    Check(n > 0, "write to the memfd failed");
    done += static_cast<std::size_t>(n);
  }
  Check(::lseek(fd, 0, SEEK_SET) == 0, "lseek failed");
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  const std::string_view content(reinterpret_cast<const char*>(data + 1), size - 1);
  // Small limits reach the too-long paths with small inputs; one near a block.
  const std::size_t max_line = (pick & 3) == 3 ? LineReader::kDirectAlign - 2 : std::size_t{8} << (pick & 3);
  const std::vector<Got> want = Reference(content, max_line);
  const std::string want_sha = caregate::Sha256Hex(content);
  const std::size_t small = 1 + ((pick >> 2) & 7) * 5;                              // 1..36 bytes
  const std::size_t blocks = LineReader::kDirectAlign * (1 + ((pick >> 5) & 3));  // 1-4 blocks
  for (auto [chunk, direct] : {std::pair{small, false}, std::pair{blocks, true}, std::pair{blocks + 7, true},
                               std::pair{LineReader::kDefaultChunk, false}}) {
    caregate::Sha256 sha;
    LineReader reader(MemFile(content), max_line, chunk, &sha, direct);
    Check(Drain(reader) == want, "lines differ from the reference",
          "chunk " + std::to_string(chunk) + (direct ? " direct" : "") + ", max_line " + std::to_string(max_line));
    Check(sha.hex_digest() == want_sha, "the hash of the bytes read differs", "chunk " + std::to_string(chunk));
  }
  LineReader memory{std::string(content), max_line};
  Check(Drain(memory) == want, "in-memory lines differ from the reference");
  return 0;
}
