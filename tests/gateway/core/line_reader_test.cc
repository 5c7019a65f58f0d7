// LineReader (every NDJSON input's line splitter) against a reference splitter, for
// every chunk size from 1 byte up and for an in-memory text: wherever a read ends
// (inside a line, between '\r' and '\n', inside a BOM, on a line that is too long), the
// lines, their numbers, the too-long flags, the bytes consumed and the hash of every
// byte read must come out the same. A line is too long exactly when its text (without
// '\n' and one trailing '\r') has more than max_line bytes, wherever it falls; its text
// is then its first bytes only.
#include "caregate/core/line_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "caregate/core/hash.h"

namespace caregate {
namespace {

struct Got {
  std::string text;
  std::uint64_t number;
  bool too_long;
  std::uint64_t consumed;
  bool operator==(const Got&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
  return os << "{line " << g.number << " '" << g.text << "' too_long " << g.too_long << " consumed " << g.consumed
            << "}";
}

// What the reader must hand out: NDJSON split by hand.
std::vector<Got> Reference(const std::string& content, std::size_t max_line) {
  std::vector<Got> out;
  std::size_t pos = content.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // a UTF-8 BOM at the start is skipped
  std::uint64_t n = 0;
  while (pos < content.size()) {
    std::size_t nl = content.find('\n', pos);
    std::size_t end = nl == std::string::npos ? content.size() : nl;
    std::string text = content.substr(pos, end - pos);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    pos = nl == std::string::npos ? content.size() : nl + 1;
    const bool too_long = text.size() > max_line;
    if (too_long) text.resize(std::min(max_line + 1, LineReader::kTooLongHead));
    out.push_back({text, ++n, too_long, pos});
  }
  return out;
}

std::vector<Got> Drain(LineReader& reader) {
  std::vector<Got> out;
  LineReader::Line line;
  while (reader.Next(line)) out.push_back({std::string(line.text), line.number, line.too_long, reader.consumed()});
  EXPECT_FALSE(reader.Next(line)) << "the end stays the end";
  EXPECT_EQ(reader.error(), 0);
  return out;
}

// An in-memory file holding `content`, read from the start.
int MemFile(const std::string& content) {
  const int fd = ::memfd_create("line-reader-test", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  EXPECT_EQ(::lseek(fd, 0, SEEK_SET), 0);
  return fd;
}

// Every chunk size from 1 to a little more than the content, then the text in memory.
void ExpectLikeReference(const std::string& content, std::size_t max_line) {
  const std::vector<Got> want = Reference(content, max_line);
  const std::string want_sha = Sha256Hex(content);
  for (std::size_t chunk = 1; chunk <= content.size() + 2; ++chunk) {
    Sha256 sha;
    LineReader reader(MemFile(content), max_line, chunk, &sha);
    ASSERT_EQ(Drain(reader), want) << "chunk " << chunk << ", max_line " << max_line;
    ASSERT_EQ(sha.hex_digest(), want_sha) << "chunk " << chunk;
  }
  LineReader memory(content, max_line);
  ASSERT_EQ(Drain(memory), want) << "in memory, max_line " << max_line;
}

TEST(LineReader, PlainLinesAtEveryChunkSize) { ExpectLikeReference("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", 16); }

TEST(LineReader, CrLfBlankLinesAndNoFinalNewline) {
  ExpectLikeReference("one\r\n\r\n\ntwo\rx\r\nthree\r", 16);
  ExpectLikeReference("\n\n", 16);
  ExpectLikeReference("", 16);
  ExpectLikeReference("last line without a newline", 64);
}

// A UTF-8 byte order mark at the start (Windows tools write one) is not part of line 1;
// anywhere else it is part of its line (and the JSON parser names it).
TEST(LineReader, ByteOrderMarkAtTheStartIsSkipped) {
  ExpectLikeReference("\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n", 16);
  ExpectLikeReference("\xEF\xBB\xBF", 16);
  ExpectLikeReference("\xEF\xBB\xBF\n", 16);
  ExpectLikeReference("\xEF\xBB", 16);  // not a whole BOM: kept
  LineReader reader(MemFile("\xEF\xBB\xBF{}\n"), 16, 1);
  std::vector<Got> got = Drain(reader);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "{}");
  EXPECT_EQ(got[0].consumed, 6u) << "the BOM's bytes count as read";
}

TEST(LineReader, LinesAtAndAroundTheLimit) {
  const std::size_t max = 8;
  const std::string at(max, 'a'), over(max + 1, 'b'), far_over(5 * max + 3, 'c');
  // At the limit: with '\n', with "\r\n" (the '\r' is not part of the text), at the end.
  ExpectLikeReference(at + "\n" + at + "\r\n" + at, max);
  // One byte over, with and without '\r', between short lines and at the end.
  ExpectLikeReference("x\n" + over + "\ny\n" + over + "\r\nz\n" + over, max);
  // Much longer than the limit and than any chunk: skipped without being kept.
  ExpectLikeReference(far_over + "\nshort\n" + far_over + "\r\n" + far_over, max);
}

// A 64 MiB line is skipped to its end (the reader holds one chunk plus the limit), and
// the next line is read as usual.
TEST(LineReader, AGiantLineIsSkippedToItsEnd) {
  const std::string giant(std::size_t{64} << 20, 'x');
  LineReader reader(MemFile(giant + "\n{}\n"), 1 << 20, 1 << 16);
  LineReader::Line line;
  ASSERT_TRUE(reader.Next(line));
  EXPECT_TRUE(line.too_long);
  EXPECT_EQ(line.text.size(), LineReader::kTooLongHead);
  ASSERT_TRUE(reader.Next(line));
  EXPECT_EQ(line.text, "{}");
  EXPECT_EQ(line.number, 2u);
  EXPECT_EQ(reader.consumed(), giant.size() + 4);
}

// Lines of every length around the 4 KiB alignment of direct reads: a BOM, CRLF, blank
// lines, lines over the limit, no final newline.
std::string MixedLines(std::size_t max_line) {
  std::string content = "\xEF\xBB\xBF";
  std::uint32_t x = 12345;
  for (int i = 0; i < 400; ++i) {
    x = x * 1103515245u + 12345u;
    const std::size_t len = (x >> 8) % (i % 37 == 0 ? 3 * max_line : 9000);
    content += std::string(len, static_cast<char>('a' + i % 26));
    content += (x & 1) ? "\r\n" : "\n";
  }
  return content + "{\"last\":true}";
}

// Direct reads (the export's extract, O_DIRECT) go ahead on a thread of their own into
// two aligned blocks, the unfinished line copied in front of the next: the lines,
// numbers, flags, bytes consumed and hash are those of ordinary reads. First the blocks
// on an ordinary file (a memfd, which takes no O_DIRECT), at chunk sizes around the
// alignment; then a real O_DIRECT file.
TEST(LineReader, DirectReadsGiveTheSameLines) {
  const std::size_t max = 6000;
  const std::string content = MixedLines(max);
  const std::vector<Got> want = Reference(content, max);
  const std::string want_sha = Sha256Hex(content);
  for (std::size_t chunk : {std::size_t{100}, LineReader::kDirectAlign, LineReader::kDirectAlign + 1,
                            2 * LineReader::kDirectAlign, 3 * LineReader::kDirectAlign - 1, std::size_t{1} << 16,
                            LineReader::kDefaultChunk}) {
    Sha256 sha;
    LineReader reader(MemFile(content), max, chunk, &sha, /*direct=*/true);
    ASSERT_EQ(Drain(reader), want) << "chunk " << chunk;
    ASSERT_EQ(sha.hex_digest(), want_sha) << "chunk " << chunk;
  }

  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("caregate-direct-" + std::to_string(::getpid()) + ".ndjson");
  {
    const int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(w, 0);
    ASSERT_EQ(::write(w, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(w);
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const bool direct = ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_DIRECT) == 0;
  if (!direct) {
    ::close(fd);
    std::filesystem::remove(path);
    GTEST_SKIP() << path << ": this file system takes no O_DIRECT (the memfd cases above ran)";
  }
  Sha256 sha;
  LineReader reader(fd, max, 1 << 16, &sha, /*direct=*/true);
  LineReader::Line line;
  ASSERT_TRUE(reader.Next(line));
  EXPECT_TRUE(reader.direct()) << "reads bypass the page cache";
  std::vector<Got> got = {{std::string(line.text), line.number, line.too_long, reader.consumed()}};
  for (const auto& g : Drain(reader)) got.push_back(g);
  EXPECT_EQ(got, want);
  EXPECT_EQ(sha.hex_digest(), want_sha);
  EXPECT_EQ(reader.consumed(), content.size());
  std::filesystem::remove(path);
}

// A file of `content` opened with O_DIRECT, or -1 where the file system takes none.
int DirectFile(const std::filesystem::path& path, const std::string& content) {
  const int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(w, 0);
  EXPECT_EQ(::write(w, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(w);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_DIRECT) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The edges of direct reads on a real O_DIRECT file: exact multiples of the chunk, an
// empty file, one shorter than a block; a file system refusing a read (an unaligned
// file offset makes the first read fail with EINVAL): ordinary reads from there, with
// the same lines; a read error (a directory); a reader destroyed straight away, or
// while its thread waits for a block.
TEST(LineReader, DirectReadsAtTheEdges) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("caregate-direct-edges-" + std::to_string(::getpid()));
  const std::size_t chunk = 2 * LineReader::kDirectAlign, max = 100;
  std::string line = std::string(99, 'x') + "\n";
  std::string exact;
  while (exact.size() < 3 * chunk) exact += line;
  exact.resize(3 * chunk);
  for (const std::string& content : {exact, exact.substr(0, chunk), std::string(), std::string("{\"a\":1}\n{}"),
                                     MixedLines(max)}) {
    const int fd = DirectFile(path, content);
    if (fd < 0) GTEST_SKIP() << path << ": this file system takes no O_DIRECT";
    Sha256 sha;
    LineReader reader(fd, max, chunk, &sha, true);
    EXPECT_EQ(Drain(reader), Reference(content, max)) << content.size() << " bytes";
    EXPECT_EQ(sha.hex_digest(), Sha256Hex(content));
  }
  {
    const std::string content = MixedLines(max);
    const int fd = DirectFile(path, content);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::lseek(fd, 1, SEEK_SET), 1);  // unaligned: the direct read is refused
    Sha256 sha;
    LineReader reader(fd, max, chunk, &sha, true);
    LineReader::Line first;
    ASSERT_TRUE(reader.Next(first));
    EXPECT_FALSE(reader.direct()) << "refused: ordinary reads";
    std::vector<Got> got = {{std::string(first.text), first.number, first.too_long, reader.consumed()}};
    for (const auto& g : Drain(reader)) got.push_back(g);
    EXPECT_EQ(got, Reference(content.substr(1), max));
    EXPECT_EQ(sha.hex_digest(), Sha256Hex(content.substr(1)));
  }
  {
    const int fd = ::open(std::filesystem::temp_directory_path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    LineReader reader(fd, max, chunk, nullptr, true);
    LineReader::Line l;
    EXPECT_FALSE(reader.Next(l));
    EXPECT_EQ(reader.error(), EISDIR);
  }
  {
    const std::string content = MixedLines(max);  // many chunks: the thread waits for a block
    LineReader gone(DirectFile(path, content), max, chunk, nullptr, true);
    LineReader reader(DirectFile(path, content), max, chunk, nullptr, true);
    LineReader::Line l;
    ASSERT_TRUE(reader.Next(l));
  }
  std::filesystem::remove(path);
}

// A read error ends the lines without handing out the partial one, and says why.
TEST(LineReader, ReadErrorEndsWithoutAPartialLine) {
  const int fd = ::open(std::filesystem::temp_directory_path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  LineReader reader(fd, 16);
  LineReader::Line line;
  EXPECT_FALSE(reader.Next(line));
  EXPECT_EQ(reader.error(), EISDIR);
}

}  // namespace
}  // namespace caregate
