#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "caregate/format/compare.h"
#include "caregate/format/xml.h"
#include "test_util.h"

namespace caregate::format {
namespace {

using testing::ErrorPath;
using testing::Problem;
using testing::SpecExample;
using testing::Stopwatch;

std::string Record(int i, const std::string& extra = "") {
  return "  <ClientIntegrationResponse>\n"
         "    <ResponseUID>R" + std::to_string(i) + "</ResponseUID>\n" + extra +
         "  </ClientIntegrationResponse>\n";
}

std::string Batch(const std::vector<std::string>& records) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ClientIntegrationBatch>\n";
  for (const auto& r : records) out += r;
  return out + "</ClientIntegrationBatch>\n";
}

// Drains a reader: "R1" for a record whose ResponseUID is R1, "!problem" for an error.
std::vector<std::string> Drain(XmlStreamReader& reader, std::vector<FieldError>* errors = nullptr) {
  std::vector<std::string> out;
  Expected<SourceNode> rec = SourceNode{};
  while (reader.Next(rec)) {
    if (rec.ok()) {
      const SourceNode* uid = rec->child("ResponseUID");
      out.push_back(uid ? uid->value : rec->name);
    } else {
      out.push_back("!" + rec.errors().front().problem);
      if (errors) errors->push_back(rec.errors().front());
    }
  }
  return out;
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char name[] = "/tmp/caregate_xml_stream_XXXXXX";
    int fd = mkstemp(name);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    close(fd);
    path_ = name;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(XmlStreamReader, YieldsEachRecordOfBatchFromMemory) {
  auto reader = XmlStreamReader::OpenMemory(Batch({Record(1), Record(2), Record(3)}));
  ASSERT_TRUE(reader.ok()) << FormatErrors(reader.errors());
  EXPECT_EQ((*reader)->root_name(), "ClientIntegrationBatch");
  EXPECT_TRUE((*reader)->is_batch());
  EXPECT_EQ(Drain(**reader), (std::vector<std::string>{"R1", "R2", "R3"}));
  EXPECT_EQ((*reader)->records_yielded(), 3u);
  Expected<SourceNode> rec = SourceNode{};
  EXPECT_FALSE((*reader)->Next(rec));  // stays finished
}

TEST(XmlStreamReader, YieldsEachRecordOfBatchFromFile) {
  TempFile file(Batch({Record(1), Record(2), Record(3)}));
  auto reader = XmlStreamReader::OpenFile(file.path());
  ASSERT_TRUE(reader.ok()) << FormatErrors(reader.errors());
  Expected<SourceNode> rec = SourceNode{};
  std::vector<std::uint32_t> lines;
  while ((*reader)->Next(rec)) {
    ASSERT_TRUE(rec.ok()) << FormatErrors(rec.errors());
    EXPECT_EQ(rec->name, "ClientIntegrationResponse");
    EXPECT_EQ(rec->kind, NodeKind::kObject);
    lines.push_back(rec->line);
  }
  EXPECT_EQ(lines, (std::vector<std::uint32_t>{3, 6, 9}));  // document lines
}

TEST(XmlStreamReader, RecordsMatchParseXml) {
  const std::string one = SpecExample("systmone-record.xml");
  const std::string body = one.substr(one.find("<ClientIntegrationResponse>"));
  auto reader = XmlStreamReader::OpenMemory(Batch({body, body}));
  ASSERT_TRUE(reader.ok());
  auto expected = ParseXml(one);
  ASSERT_TRUE(expected.ok());
  Expected<SourceNode> rec = SourceNode{};
  int n = 0;
  while ((*reader)->Next(rec)) {
    ASSERT_TRUE(rec.ok()) << FormatErrors(rec.errors());
    EXPECT_EQ(FirstDifference(*rec, *expected), "");
    ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(XmlStreamReader, YieldsRecordsBeforeMalformedThirdRecord) {
  const std::string bad = "  <ClientIntegrationResponse>\n    <ResponseUID>R3</Response>\n  </ClientIntegrationResponse>\n";
  for (bool from_file : {false, true}) {
    const std::string text = Batch({Record(1), Record(2), bad, Record(4)});
    TempFile file(text);
    auto reader = from_file ? XmlStreamReader::OpenFile(file.path()) : XmlStreamReader::OpenMemory(text);
    ASSERT_TRUE(reader.ok()) << FormatErrors(reader.errors());
    std::vector<FieldError> errors;
    auto got = Drain(**reader, &errors);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], "R1");
    EXPECT_EQ(got[1], "R2");
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].problem.find("not well-formed XML at line 10"), std::string::npos) << errors[0].problem;
    EXPECT_EQ(errors[0].path, "/ClientIntegrationBatch/ClientIntegrationResponse[3]/ResponseUID");
  }
}

TEST(XmlStreamReader, EndsStreamOnTruncatedBatch) {
  std::string text = Batch({Record(1), Record(2), Record(3)});
  text.resize(text.rfind("<ResponseUID>R3") + 5);
  auto reader = XmlStreamReader::OpenMemory(text);
  ASSERT_TRUE(reader.ok());
  auto got = Drain(**reader);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "R1");
  EXPECT_EQ(got[1], "R2");
  EXPECT_EQ(got[2].rfind("!not well-formed XML", 0), 0u) << got[2];
}

TEST(XmlStreamReader, YieldsNonBatchRootOnce) {
  auto reader = XmlStreamReader::OpenMemory(SpecExample("systmone-record.xml"));
  ASSERT_TRUE(reader.ok()) << FormatErrors(reader.errors());
  EXPECT_EQ((*reader)->root_name(), "ClientIntegrationResponse");
  EXPECT_FALSE((*reader)->is_batch());
  auto got = Drain(**reader);
  EXPECT_EQ(got, (std::vector<std::string>{"1F3A9C40-5B2D-11EF-9C21-0242AC120002"}));
}

TEST(XmlStreamReader, EmptyBatchYieldsNothing) {
  for (std::string text : {"<ClientIntegrationBatch/>", "<ClientIntegrationBatch>\n  <!-- none -->\n</ClientIntegrationBatch>"}) {
    auto reader = XmlStreamReader::OpenMemory(text);
    ASSERT_TRUE(reader.ok());
    EXPECT_TRUE((*reader)->is_batch());
    EXPECT_TRUE(Drain(**reader).empty());
  }
}

TEST(XmlStreamReader, RejectsDoctypeAtOpen) {
  auto reader = XmlStreamReader::OpenMemory(
      "<!DOCTYPE ClientIntegrationBatch [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
      "<ClientIntegrationBatch><ClientIntegrationResponse>&e;</ClientIntegrationResponse></ClientIntegrationBatch>");
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(Problem(reader).find("DTD not allowed"), std::string::npos) << Problem(reader);
}

TEST(XmlStreamReader, RejectsOtherEncodingsAtOpen) {
  auto reader = XmlStreamReader::OpenMemory("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><ClientIntegrationBatch/>");
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(Problem(reader).find("only UTF-8 is accepted"), std::string::npos) << Problem(reader);
}

TEST(XmlStreamReader, ReportsUnopenableAndEmptyFiles) {
  auto missing = XmlStreamReader::OpenFile("/nonexistent/caregate/batch.xml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(Problem(missing).find("cannot open /nonexistent/caregate/batch.xml"), std::string::npos);
  TempFile empty("");
  auto e = XmlStreamReader::OpenFile(empty.path());
  ASSERT_FALSE(e.ok());
  EXPECT_FALSE(Problem(e).empty());
}

TEST(XmlStreamReader, SkipsOversizeRecordAndCarriesOn) {
  XmlLimits limits;
  limits.max_bytes = 400;
  const std::string big = Record(2, "    <Note>" + std::string(2000, 'x') + "</Note>\n");
  auto reader = XmlStreamReader::OpenMemory(Batch({Record(1), big, Record(3)}), limits);
  ASSERT_TRUE(reader.ok());
  std::vector<FieldError> errors;
  auto got = Drain(**reader, &errors);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "R1");
  EXPECT_EQ(got[2], "R3");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].problem.find("record larger than 400 bytes"), std::string::npos) << errors[0].problem;
  EXPECT_EQ(errors[0].path.rfind("/ClientIntegrationBatch/ClientIntegrationResponse[2]", 0), 0u) << errors[0].path;
}

TEST(XmlStreamReader, SkipsOversizeAttributeRecord) {
  XmlLimits limits;
  limits.max_bytes = 400;
  const std::string big = "<ClientIntegrationResponse a=\"" + std::string(1000, 'y') + "\"><ResponseUID>R2</ResponseUID></ClientIntegrationResponse>";
  auto reader = XmlStreamReader::OpenMemory(Batch({Record(1), big, Record(3)}), limits);
  ASSERT_TRUE(reader.ok());
  auto got = Drain(**reader);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "R1");
  EXPECT_NE(got[1].find("record larger than 400 bytes"), std::string::npos) << got[1];
  EXPECT_EQ(got[2], "R3");
}

TEST(XmlStreamReader, SkipsTooDeepRecordAndCarriesOn) {
  std::string deep;
  for (int i = 0; i < 70; ++i) deep += "<d>";
  for (int i = 0; i < 70; ++i) deep += "</d>";
  auto reader = XmlStreamReader::OpenMemory(Batch({Record(1), Record(2, deep), Record(3)}));
  ASSERT_TRUE(reader.ok());
  auto got = Drain(**reader);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "R1");
  EXPECT_NE(got[1].find("nested deeper than 64 levels"), std::string::npos) << got[1];
  EXPECT_EQ(got[2], "R3");
}

TEST(XmlStreamReader, EndsQuicklyOnVeryDeepNesting) {
  std::string deep;
  for (int i = 0; i < 200000; ++i) deep += "<d>";
  for (int i = 0; i < 200000; ++i) deep += "</d>";
  Stopwatch watch;
  auto reader = XmlStreamReader::OpenMemory(Batch({Record(1), Record(2, deep), Record(3)}));
  ASSERT_TRUE(reader.ok());
  auto got = Drain(**reader);
  EXPECT_LT(watch.seconds(), 2.0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "R1");
  EXPECT_NE(got[1].find("nested deeper than 256 levels"), std::string::npos) << got[1];
}

TEST(XmlStreamReader, RejectsInvalidUtf8MidStream) {
  auto reader = XmlStreamReader::OpenMemory(Batch({Record(1), Record(2, "<N>\xC0\xAF</N>\n"), Record(3)}));
  ASSERT_TRUE(reader.ok());
  auto got = Drain(**reader);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "R1");
  EXPECT_NE(got[1].find("text is not valid UTF-8 at line 8"), std::string::npos) << got[1];
}

TEST(XmlStreamReader, StreamsLargeBatchAcrossChunks) {
  // ~6 MB: many parser chunks, records straddling chunk borders, default 4 MB cap
  // applying per record rather than to the whole file.
  std::string text = "<ClientIntegrationBatch>\n";
  const int n = 20000;
  for (int i = 1; i <= n; ++i)
    text += Record(i, "    <Note a=\"" + std::to_string(i) + "\">" + std::string(static_cast<std::size_t>(200 + i % 97), 'n') +
                          "</Note>\n");
  text += "</ClientIntegrationBatch>\n";
  ASSERT_GT(text.size(), std::size_t{4} << 20);
  TempFile file(text);
  auto reader = XmlStreamReader::OpenFile(file.path());
  ASSERT_TRUE(reader.ok());
  Expected<SourceNode> rec = SourceNode{};
  int count = 0;
  while ((*reader)->Next(rec)) {
    ASSERT_TRUE(rec.ok()) << FormatErrors(rec.errors());
    ++count;
    ASSERT_EQ(rec->child("ResponseUID")->value, "R" + std::to_string(count));
    ASSERT_EQ(rec->child("Note")->child("#text")->value.size(), static_cast<std::size_t>(200 + count % 97));
  }
  EXPECT_EQ(count, n);
}

// Found by fuzzing: libxml2's push parser left CR inside CDATA unnormalised.
TEST(XmlStreamReader, NormalisesLineEndsInCdataLikeParseXml) {
  const std::string long_cdata = std::string(1000, 'x') + "\r\n" + std::string(297, 'y') + "\r\nz";
  const std::string text = "<r><a><![CDATA[1\r2\r\n3\r\r\n4\n]]></a><b>p&#13;q\r\nr</b><c><![CDATA[" + long_cdata +
                           "]]></c></r>";
  auto whole = ParseXml(text);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->child("a")->value, "1\n2\n3\n\n4\n");
  EXPECT_EQ(whole->child("b")->value, "p\rq\nr");  // a character reference keeps its CR
  for (std::size_t chunk : {0, 1, 2, 5, 301}) {
    XmlStreamReader::SetChunkSizeForTesting(chunk);
    auto reader = XmlStreamReader::OpenMemory(text);
    XmlStreamReader::SetChunkSizeForTesting(0);
    ASSERT_TRUE(reader.ok());
    Expected<SourceNode> rec = SourceNode{};
    ASSERT_TRUE((*reader)->Next(rec));
    ASSERT_TRUE(rec.ok()) << FormatErrors(rec.errors());
    EXPECT_EQ(FirstDifference(*whole, *rec), "") << "chunk " << chunk;
  }
}

TEST(XmlStreamReader, SameRecordsWhateverTheChunkSize) {
  const std::string one = SpecExample("systmone-record.xml");
  const std::string body = one.substr(one.find("<ClientIntegrationResponse>"));
  const std::string text = Batch({body, Record(2, "<N a=\"x&amp;y\">t<![CDATA[<c>]]>&#233;</N>"), body});
  std::vector<SourceNode> reference;
  {
    auto reader = XmlStreamReader::OpenMemory(text);
    ASSERT_TRUE(reader.ok());
    Expected<SourceNode> rec = SourceNode{};
    while ((*reader)->Next(rec)) {
      ASSERT_TRUE(rec.ok()) << FormatErrors(rec.errors());
      reference.push_back(*rec);
    }
  }
  ASSERT_EQ(reference.size(), 3u);
  EXPECT_EQ(reference[1].child("N")->child("#text")->value, "t<c>\xC3\xA9");
  for (std::size_t chunk : {1, 2, 3, 7, 64, 333}) {
    XmlStreamReader::SetChunkSizeForTesting(chunk);
    auto reader = XmlStreamReader::OpenMemory(text);
    ASSERT_TRUE(reader.ok()) << chunk;
    Expected<SourceNode> rec = SourceNode{};
    std::size_t i = 0;
    while ((*reader)->Next(rec)) {
      ASSERT_TRUE(rec.ok()) << chunk << ": " << FormatErrors(rec.errors());
      ASSERT_LT(i, reference.size());
      EXPECT_EQ(FirstDifference(*rec, reference[i]), "") << "chunk " << chunk;
      EXPECT_EQ(rec->line, reference[i].line) << "chunk " << chunk;
      ++i;
    }
    EXPECT_EQ(i, reference.size()) << chunk;
  }
  XmlStreamReader::SetChunkSizeForTesting(0);
}

}  // namespace
}  // namespace caregate::format
