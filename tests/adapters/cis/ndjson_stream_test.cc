// The CIS adapter's record streams (`translate` and `ingest` files, OpenBuffer): one
// record per non-blank NDJSON line, or one pretty-printed record read whole. They cut
// lines with core's LineReader, so a leading BOM is skipped, an over-long line is one
// refused record (not a reason to hold the file in memory), and a whole document over
// the JSON size limit is refused without being gathered.
#include "caregate/adapters/cis/cis_adapter.h"

#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "caregate/core/error.h"

namespace caregate::adapters {
namespace {

namespace fs = std::filesystem;

struct Rec {
  std::size_t index, line;
  std::string result;  // "ok" or the first error's problem
};

std::vector<Rec> Drain(RecordStream& stream) {
  std::vector<Rec> out;
  StreamRecord r;
  while (stream.Next(r))
    out.push_back({r.index, r.line, r.tree.ok() ? "ok" : r.tree.errors().at(0).problem});
  return out;
}

class CisStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() / ("caregate-cis-stream-" + std::to_string(::getpid()) + "-" +
                                          ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
  }
  void TearDown() override { fs::remove(path_); }

  // The records of `content` read from a file and from a buffer, which must agree.
  std::vector<Rec> Read(const std::string& content) {
    {
      std::ofstream f(path_, std::ios::binary | std::ios::trunc);
      f << content;
    }
    auto file = adapter_->OpenFile(path_);
    EXPECT_TRUE(file.ok());
    std::vector<Rec> from_file = Drain(*file.value());
    auto buffer = adapter_->OpenBuffer(content);
    EXPECT_TRUE(buffer.ok());
    std::vector<Rec> from_buffer = Drain(*buffer.value());
    EXPECT_EQ(from_file.size(), from_buffer.size());
    for (std::size_t i = 0; i < from_file.size() && i < from_buffer.size(); ++i) {
      EXPECT_EQ(from_file[i].line, from_buffer[i].line);
      EXPECT_EQ(from_file[i].result, from_buffer[i].result);
    }
    return from_file;
  }

  std::unique_ptr<Adapter> adapter_ = MakeCisAdapter();
  std::string path_;
};

const std::string kLong = "line longer than 1048576 bytes, the limit for one record";

TEST_F(CisStreamTest, OneRecordPerLineWithCrLfAndBlankLines) {
  auto got = Read("{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":\n");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].line, 1u);
  EXPECT_EQ(got[0].result, "ok");
  EXPECT_EQ(got[1].line, 4u);
  EXPECT_EQ(got[1].result, "ok");
  EXPECT_EQ(got[2].line, 5u);
  EXPECT_NE(got[2].result, "ok");
  EXPECT_EQ(got[2].index, 3u);
}

TEST_F(CisStreamTest, AByteOrderMarkAtTheStartIsSkipped) {
  auto got = Read("\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF{\"b\":2}\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].result, "ok");
  EXPECT_EQ(got[1].result, "starts with a UTF-8 byte order mark (EF BB BF), which JSON text must not have");
  // A pretty-printed record too.
  auto whole = Read("\xEF\xBB\xBF{\n  \"a\": 1\n}\n");
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].result, "ok");
}

TEST_F(CisStreamTest, AnOverLongLineIsOneRefusedRecord) {
  const std::string big = "{\"a\":\"" + std::string(std::size_t{1} << 20, 'x') + "\"}";
  auto got = Read("{\"a\":1}\n" + big + "\n{\"b\":2}\n");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].line, 2u);
  EXPECT_EQ(got[1].result, kLong);
  EXPECT_EQ(got[2].result, "ok");
}

// Before, the line reader gathered a line whatever its length: a 300 MB file without a
// newline took 1.2 GB to refuse. Now the stream's memory stays at about a chunk plus
// the limit.
TEST_F(CisStreamTest, AGiantLineIsRefusedWithoutBeingHeld) {
  {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    const std::string block(std::size_t{1} << 20, 'x');
    f << "{";
    for (int i = 0; i < 256; ++i) f << block;
  }
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  auto file = adapter_->OpenFile(path_);
  ASSERT_TRUE(file.ok());
  std::vector<Rec> got = Drain(*file.value());
  ::getrusage(RUSAGE_SELF, &after);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, kLong);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "KiB of peak RSS grown reading a 256 MiB line";
}

TEST_F(CisStreamTest, APrettyPrintedRecordOverTheLimitIsRefusedWithoutBeingHeld) {
  std::string doc = "{\n  \"a\": [\n";
  const std::string item = "    \"" + std::string(1000, 'y') + "\",\n";
  while (doc.size() < (std::size_t{3} << 20)) doc += item;
  doc += "    1\n  ]\n}\n";
  auto got = Read(doc);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].line, 1u);
  EXPECT_EQ(got[0].result, "JSON document larger than the limit of 1048576 bytes");
  auto small = Read("{\n  \"a\": [1,\n 2]\n}\n");
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].result, "ok");
}

// One pretty-printed record only when the first non-blank line, trimmed, is exactly "{"
// (what json.dumps(indent=...), JSON.stringify(x, null, 2) and jq write); anything else is
// NDJSON. A truncated first line used to make the whole input one record, which failed
// to parse: the valid lines after it were lost.
TEST_F(CisStreamTest, ATruncatedFirstLineIsOneBadRecordAndTheRestAreRead) {
  auto got = Read("{\"Record_Type\":\"CIS_Client\",\"NHS_Num\n{\"a\":1}\n{\"b\":2}\n");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].line, 1u);
  EXPECT_NE(got[0].result, "ok");
  EXPECT_EQ(got[1].line, 2u);
  EXPECT_EQ(got[1].result, "ok");
  EXPECT_EQ(got[2].line, 3u);
  EXPECT_EQ(got[2].result, "ok");
  EXPECT_EQ(got[2].index, 3u);
  // A first line that is not JSON at all, or an object split over lines without a lone
  // "{": each line is a record.
  got = Read("garbage\n{\"a\":1}\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].result, "ok");
  EXPECT_EQ(got[1].result, "ok");
  got = Read("{\"a\": 1,\n \"b\": 2}\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].result, "ok");
  EXPECT_NE(got[1].result, "ok");
}

TEST_F(CisStreamTest, AFirstLineOfOnlyABraceIsOnePrettyPrintedRecord) {
  for (const std::string& doc : {std::string("{\n  \"a\": 1,\n  \"b\": {\n    \"c\": 2\n  }\n}\n"),
                                 std::string("\n  \t{  \r\n\"a\": [1,\n2]}\n\n"), std::string("{\n}\n")}) {
    auto got = Read(doc);
    ASSERT_EQ(got.size(), 1u) << doc;
    EXPECT_EQ(got[0].result, "ok") << doc;
  }
  auto spec = Read([] {
    std::ifstream f(std::string(CAREGATE_SPEC_DIR) + "/examples/cis-record.json", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }());
  ASSERT_EQ(spec.size(), 1u);
  EXPECT_EQ(spec[0].line, 1u);
  EXPECT_EQ(spec[0].result, "ok");
}

TEST_F(CisStreamTest, ADirectoryIsAReadErrorThatSaysWhy) {
  auto file = adapter_->OpenFile(fs::temp_directory_path().string());
  ASSERT_TRUE(file.ok());
  std::vector<Rec> got = Drain(*file.value());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, "read error: Is a directory");
}

}  // namespace
}  // namespace caregate::adapters
