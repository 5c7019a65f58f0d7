// ExtractReader (the export's line reader) against a reference splitter, for every
// chunk size from 1 byte up: wherever a read ends (inside a line, between '\r' and
// '\n', on a line that is too long), the lines, their numbers, the too-long flags, the
// bytes consumed and the input's SHA-256 must come out the same. A line is too long
// exactly when its text (without '\n' and one trailing '\r') has more than max_line
// bytes, wherever it falls in the file; its text is then its first bytes only.
#include "extract_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"

namespace caregate::exporter {
namespace {

namespace fs = std::filesystem;

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
    if (too_long) text.resize(std::min(max_line + 1, ExtractReader::kTooLongHead));
    out.push_back({text, ++n, too_long, pos});
  }
  return out;
}

class ExtractReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() /
             ("caregate-extract-reader-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
  }
  void TearDown() override { fs::remove(path_); }

  std::vector<Got> Read(const std::string& content, std::size_t max_line, std::size_t chunk, std::string* sha) {
    {
      std::ofstream f(path_, std::ios::binary | std::ios::trunc);
      f << content;
    }
    ExtractReader reader(path_, max_line, chunk);
    EXPECT_EQ(reader.size(), content.size());
    std::vector<Got> out;
    ExtractReader::Line line;
    while (reader.Next(line)) out.push_back({std::string(line.text), line.number, line.too_long, reader.consumed()});
    EXPECT_FALSE(reader.Next(line)) << "the end stays the end";
    *sha = reader.Sha256Hex();
    return out;
  }

  // Every chunk size from 1 to a little more than the content.
  void ExpectLikeReference(const std::string& content, std::size_t max_line) {
    const std::vector<Got> want = Reference(content, max_line);
    const std::string want_sha = Sha256Hex(content);
    for (std::size_t chunk = 1; chunk <= content.size() + 2; ++chunk) {
      std::string sha;
      ASSERT_EQ(Read(content, max_line, chunk, &sha), want) << "chunk " << chunk << ", max_line " << max_line;
      ASSERT_EQ(sha, want_sha) << "chunk " << chunk;
    }
  }

  std::string path_;
};

TEST_F(ExtractReaderTest, PlainLinesAtEveryChunkSize) {
  ExpectLikeReference("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", 16);
}

TEST_F(ExtractReaderTest, CrLfBlankLinesAndNoFinalNewline) {
  ExpectLikeReference("one\r\n\r\n\ntwo\rx\r\nthree\r", 16);
  ExpectLikeReference("\n\n", 16);
  ExpectLikeReference("last line without a newline", 64);
}

// A UTF-8 byte order mark at the start of the file (Windows tools write one) is not
// part of line 1; anywhere else it is part of its line (and the parser names it).
TEST_F(ExtractReaderTest, ByteOrderMarkAtTheStartIsSkipped) {
  ExpectLikeReference("\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n", 16);
  ExpectLikeReference("\xEF\xBB\xBF", 16);
  ExpectLikeReference("\xEF\xBB\xBF\n", 16);
  ExpectLikeReference("\xEF\xBB", 16);  // not a whole BOM: kept
  std::string sha;
  std::vector<Got> got = Read("\xEF\xBB\xBF{}\n", 16, 1, &sha);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "{}");
  EXPECT_EQ(got[0].consumed, 6u) << "the BOM's bytes count as read (the manifest's input size)";
}

TEST_F(ExtractReaderTest, LinesAtAndAroundTheLimit) {
  const std::size_t max = 8;
  const std::string at(max, 'a'), over(max + 1, 'b'), far_over(5 * max + 3, 'c');
  // At the limit: with '\n', with "\r\n" (the '\r' is not part of the text), at the end.
  ExpectLikeReference(at + "\n" + at + "\r\n" + at, max);
  // One byte over, with and without '\r', between short lines and at the end.
  ExpectLikeReference("x\n" + over + "\ny\n" + over + "\r\nz\n" + over, max);
  // Much longer than the limit and than any chunk: skipped without being kept.
  ExpectLikeReference(far_over + "\nshort\n" + far_over + "\r\n" + far_over, max);
}

TEST_F(ExtractReaderTest, DefaultChunkGivesTheSameLines) {
  std::string content;
  for (int i = 0; i < 3000; ++i) content += "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(i % 97, 'p') + "\"}\n";
  content += std::string(3000, 'x') + "\n";  // too long for a 2,048-byte cap
  std::string sha;
  {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f << content;
  }
  ExtractReader reader(path_, 2048);
  std::vector<Got> got;
  ExtractReader::Line line;
  while (reader.Next(line)) got.push_back({std::string(line.text), line.number, line.too_long, reader.consumed()});
  EXPECT_EQ(got, Reference(content, 2048));
  EXPECT_EQ(reader.Sha256Hex(), Sha256Hex(content));
}

TEST_F(ExtractReaderTest, MissingFileAndDirectoryAreClearErrors) {
  try {
    ExtractReader reader(path_ + "-missing", 16);
    FAIL() << "opened a missing file";
  } catch (const FatalError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open the extract"), std::string::npos) << e.what();
  }
  try {
    ExtractReader reader(fs::temp_directory_path().string(), 16);
    FAIL() << "opened a directory";
  } catch (const FatalError& e) {
    EXPECT_NE(std::string(e.what()).find("it is a directory"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace caregate::exporter
