// TextBuffer (core/text_buffer.h) and the raw-room writers that fill it.
#include "caregate/core/text_buffer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "caregate/core/text.h"

namespace caregate {
namespace {

TEST(TextBuffer, AppendsAndKeepsWhatWasWrittenAcrossGrowth) {
  TextBuffer b;
  EXPECT_TRUE(b.empty());
  std::string expected;
  for (int i = 0; i < 5000; ++i) {
    std::string piece = std::to_string(i) + ",";
    b += piece;
    b += '|';
    expected += piece + "|";
  }
  EXPECT_EQ(b.view(), expected);
  EXPECT_EQ(b.size(), expected.size());
  EXPECT_GE(b.capacity(), b.size());
}

TEST(TextBuffer, RoomIsWrittenThroughAPointerAndOnlyTheWrittenPartCounts) {
  TextBuffer b;
  b += "head:";
  char* p = b.Room(1000);  // worst case asked for, little used
  std::memcpy(p, "abc", 3);
  b.Done(p + 3);
  EXPECT_EQ(b.view(), "head:abc");
  p = b.Room(10);
  *p++ = '!';
  b.Done(p);
  EXPECT_EQ(b.view(), "head:abc!");
}

TEST(TextBuffer, ClearKeepsTheStorageForTheNextUse) {
  TextBuffer b;
  b.append(std::string(100000, 'x'));
  const std::size_t cap = b.capacity();
  const char* storage = b.data();
  b.clear();
  EXPECT_TRUE(b.empty());
  b.append("next");
  EXPECT_EQ(b.view(), "next");
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.data(), storage);
}

TEST(TextBuffer, CopiesHoldTheSameTextInStorageOfTheirOwn) {
  TextBuffer a;
  a += "one,two";
  TextBuffer b = a;
  b += ",three";
  EXPECT_EQ(a.view(), "one,two");
  EXPECT_EQ(b.view(), "one,two,three");
  a = b;
  EXPECT_EQ(a.view(), "one,two,three");
  EXPECT_NE(a.data(), b.data());
}

TEST(TextBuffer, AMovedFromBufferIsEmptyAndUsable) {
  TextBuffer a;
  a.append(std::string(10000, 'a'));
  TextBuffer b = std::move(a);
  EXPECT_EQ(b.size(), 10000u);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): what a move leaves is the test
  EXPECT_EQ(a.capacity(), 0u);
  a += "again";
  EXPECT_EQ(a.view(), "again");
  TextBuffer c;
  c += "c";
  c = std::move(b);
  EXPECT_EQ(c.size(), 10000u);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  b += 'x';
  EXPECT_EQ(b.view(), "x");
}

// A control byte other than TAB, CR and LF is no text a warehouse loader takes (a NUL
// stops PostgreSQL's COPY): it becomes U+FFFD, as in the XML writer. Quoting is still
// decided by comma, quote, CR and LF alone.
TEST(AppendCsvField, ReplacesControlBytesAndQuotesOnlyWhatRfc4180Needs) {
  const auto csv = [](std::string_view s) {
    std::string out;
    AppendCsvField(out, s);
    return out;
  };
  EXPECT_EQ(csv(std::string("a\0b", 3)), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(csv("tab\there"), "tab\there");
  EXPECT_EQ(csv("\x1b[2J"), "\xEF\xBF\xBD[2J");
  EXPECT_EQ(csv("a,\x07"), "\"a,\xEF\xBF\xBD\"");
  EXPECT_EQ(csv("line\r\nbreak"), "\"line\r\nbreak\"");
  EXPECT_EQ(csv("del\x7f kept"), "del\x7f kept");
}

// WriteCsvField is AppendCsvField into raw room: the same bytes for plain and quoted
// fields, and never more than CsvFieldMax(s) of them.
TEST(WriteCsvField, WritesWhatAppendCsvFieldAppends) {
  for (std::string s : std::vector<std::string>{"", "plain", "a,b", "say \"hi\"", "\"", "line\r\nbreak", "12345678,", "\"\"\"\"",
                        "ends with quote\"", "Björn, Zoë", std::string("nul\0byte", 8), "\x01\x02\x1f", "tab\there",
                        "esc\x1b, then a comma"}) {
    std::string expected;
    AppendCsvField(expected, s);
    TextBuffer b;
    b += "x";
    char* p = b.Room(CsvFieldMax(s));
    char* end = WriteCsvField(p, s);
    EXPECT_LE(static_cast<std::size_t>(end - p), CsvFieldMax(s)) << s;
    b.Done(end);
    EXPECT_EQ(b.view(), "x" + expected) << s;
  }
}

}  // namespace
}  // namespace caregate
