// The 8-byte tests of core/swar.h against plain byte comparisons: every byte value at
// every position of a word, alone and in pairs.
#include "caregate/core/swar.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace caregate::swar {
namespace {

bool Csv(unsigned char c) { return c == ',' || c == '"' || c < 0x20; }
template <bool attribute>
bool Xml(unsigned char c) {
  return c < 0x20 || c == '&' || c == '<' || c == '>' || c == 0xEF || (attribute && c == '"');
}

std::uint64_t Word(const std::array<unsigned char, 8>& b) { return Load(reinterpret_cast<const char*>(b.data())); }

TEST(SwarTest, EveryByteValueAtEveryPositionAloneAndInPairs) {
  for (unsigned char filler : {static_cast<unsigned char>('a'), static_cast<unsigned char>(0xC3),
                               static_cast<unsigned char>(0x7F), static_cast<unsigned char>(0xFF)}) {
    for (int x = 0; x < 256; ++x) {
      for (int y = 0; y < 256; y += 1) {
        for (int p = 0; p < 8; ++p) {
          for (int q = p; q < 8; q += 3) {
            std::array<unsigned char, 8> b;
            b.fill(filler);
            b[static_cast<std::size_t>(p)] = static_cast<unsigned char>(x);
            b[static_cast<std::size_t>(q)] = static_cast<unsigned char>(y);
            bool csv = false, text = false, attr = false;
            for (unsigned char c : b) {
              csv |= Csv(c);
              text |= Xml<false>(c);
              attr |= Xml<true>(c);
            }
            const std::uint64_t w = Word(b);
            ASSERT_EQ(AnyCsvSpecial(w) != 0, csv) << x << " " << y << " at " << p << "," << q;
            ASSERT_EQ(AnyXmlSpecial<false>(w) != 0, text) << x << " " << y << " at " << p << "," << q;
            ASSERT_EQ(AnyXmlSpecial<true>(w) != 0, attr) << x << " " << y << " at " << p << "," << q;
          }
        }
      }
    }
  }
}

TEST(SwarTest, CsvPlainLooksAtEveryByteIncludingTheTail) {
  EXPECT_TRUE(CsvPlain(""));
  EXPECT_TRUE(CsvPlain("abcdefghijklmnopq"));
  for (std::size_t len = 1; len <= 24; ++len)
    for (std::size_t at = 0; at < len; ++at)
      for (char c : {',', '"', '\r', '\n', '\0', '\t', '\x1b'}) {
        std::string s(len, 'x');
        s[at] = c;
        EXPECT_FALSE(CsvPlain(s)) << len << " " << at << " " << int(c);
        s[at] = ';';
        EXPECT_TRUE(CsvPlain(s)) << len << " " << at;
      }
}

// Every length from 0 to 40 at every source and destination offset within a word:
// exactly the n bytes arrive, and no byte either side of the destination is touched.
TEST(SwarTest, CopyBytesCopiesExactlyNBytes) {
  std::string src(64, '\0');
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<char>('A' + i % 50);
  for (std::size_t n = 0; n <= 40; ++n)
    for (std::size_t from = 0; from < 8; ++from)
      for (std::size_t to = 0; to < 8; ++to) {
        std::string dst(64, '.');
        CopyBytes(dst.data() + to, src.data() + from, n);
        std::string expected(64, '.');
        expected.replace(to, n, src, from, n);
        ASSERT_EQ(dst, expected) << "n " << n << " from " << from << " to " << to;
      }
}

}  // namespace
}  // namespace caregate::swar
