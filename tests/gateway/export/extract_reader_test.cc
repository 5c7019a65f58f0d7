// ExtractReader: the export's extract file read through core's LineReader (whose line
// rules are tested in tests/gateway/core/line_reader_test.cc), with the file's size,
// the SHA-256 of every byte for the manifest, and clear errors for what cannot be read.
#include "extract_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"

namespace caregate::exporter {
namespace {

namespace fs = std::filesystem;

class ExtractReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() / ("caregate-extract-reader-" + std::to_string(::getpid()) + "-" +
                                          ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
  }
  void TearDown() override { fs::remove(path_); }
  std::string path_;
};

TEST_F(ExtractReaderTest, LinesSizeAndHashOfTheWholeFile) {
  std::string content = "\xEF\xBB\xBF";  // counted and hashed, not part of line 1
  for (int i = 0; i < 3000; ++i) content += "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(i % 97, 'p') + "\"}\n";
  content += std::string(3000, 'x') + "\r\n";  // too long for a 2,048-byte cap
  content += "{\"last\":true}";                 // no final newline
  {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f << content;
  }
  for (std::size_t chunk : {std::size_t{1000}, ExtractReader::kDefaultChunk}) {
    ExtractReader reader(path_, 2048, chunk);
    EXPECT_EQ(reader.size(), content.size());
    ExtractReader::Line line;
    std::uint64_t n = 0, too_long = 0;
    std::string last;
    while (reader.Next(line)) {
      EXPECT_EQ(line.number, ++n);
      too_long += line.too_long;
      last = std::string(line.text);
    }
    EXPECT_EQ(n, 3002u) << "chunk " << chunk;
    EXPECT_EQ(too_long, 1u);
    EXPECT_EQ(last, "{\"last\":true}");
    EXPECT_EQ(reader.consumed(), content.size());
    EXPECT_EQ(reader.Sha256Hex(), Sha256Hex(content)) << "chunk " << chunk;
  }
}

// A file in the page cache is read through it; one mostly not in it with O_DIRECT (where
// the file system allows), with the same lines, bytes and hash either way.
TEST_F(ExtractReaderTest, AFileNotInThePageCacheIsReadAroundIt) {
  std::string content;
  for (int i = 0; i < 20000; ++i) content += "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(i % 211, 'p') + "\"}\n";
  content += "{\"last\":true}";
  {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f << content;
  }
  auto read_all = [&](ExtractReader& reader) {
    ExtractReader::Line line;
    std::string lines;
    while (reader.Next(line)) lines.append(line.text).append("\n");
    return lines;
  };
  std::string cached_lines, uncached_lines;
  {
    ExtractReader cached(path_, 4096);
    EXPECT_FALSE(cached.began_direct()) << "just written: in the page cache";
    cached_lines = read_all(cached);
    EXPECT_EQ(cached.Sha256Hex(), Sha256Hex(content));
  }
  // Out of the cache: written back, then dropped.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  const bool takes_direct = ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_DIRECT) == 0;
  ::close(fd);
  ExtractReader uncached(path_, 4096);
  if (takes_direct) {
    EXPECT_TRUE(uncached.began_direct()) << "dropped from the cache: read with O_DIRECT";
  }
  uncached_lines = read_all(uncached);
  EXPECT_EQ(uncached.Sha256Hex(), Sha256Hex(content));
  EXPECT_EQ(uncached.consumed(), content.size());
  EXPECT_EQ(uncached_lines, cached_lines);
  if (!takes_direct) GTEST_SKIP() << path_ << ": this file system takes no O_DIRECT (read as usual, same lines)";
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
