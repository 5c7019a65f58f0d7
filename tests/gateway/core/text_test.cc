#include "caregate/core/text.h"

#include <gtest/gtest.h>

#include <string>

using caregate::OneLine;

TEST(OneLine, LeavesOrdinaryTextAlone) {
  EXPECT_EQ(OneLine("record 1: /NHS_Number: fails Modulus 11"), "record 1: /NHS_Number: fails Modulus 11");
  EXPECT_EQ(OneLine("tab\there, Zoë, Ŵyn, 北京"), "tab\there, Zoë, Ŵyn, 北京");
  EXPECT_EQ(OneLine(""), "");
}

TEST(OneLine, LineEndsBecomeSpaces) {
  EXPECT_EQ(OneLine("a\nb\r\nc"), "a b  c");
}

// Data quoted in an error line (a JSON key, an XML name) must not reach a terminal or a
// log as control characters: an ESC would start an escape sequence, a NUL cut the line.
TEST(OneLine, WritesOutEveryOtherControlCharacter) {
  EXPECT_EQ(OneLine(std::string("/a\0b", 4)), "/a\\x00b");
  EXPECT_EQ(OneLine("\x1b[31mred\x1b[0m"), "\\x1B[31mred\\x1B[0m");
  EXPECT_EQ(OneLine("bell\x07 del\x7f"), "bell\\x07 del\\x7F");
  EXPECT_EQ(OneLine("csi \xc2\x9b" "2J, nel \xc2\x85"), "csi \\u009B2J, nel \\u0085");
  // U+00A0 and the rest of the C2 lead byte's range are text.
  EXPECT_EQ(OneLine("no\xc2\xa0" "break \xc2\xa3" "5"), "no\xc2\xa0" "break \xc2\xa3" "5");
  // A lone C2 at the end, or before a byte that is no continuation, is left as it was.
  EXPECT_EQ(OneLine("end \xc2"), "end \xc2");
}
