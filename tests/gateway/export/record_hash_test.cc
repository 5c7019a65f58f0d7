// The export's change hashes (record_hash.h): deterministic for one seed and version,
// different for another seed or version, and part boundaries count.
#include "record_hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace caregate::exporter {
namespace {

TEST(RecordHasher, SameSeedVersionAndBytesGiveTheSameHash) {
  RecordHasher a(42, "tables-v1"), b(42, "tables-v1");
  EXPECT_EQ(a.Line("{\"x\":1}"), b.Line("{\"x\":1}"));
  a.Begin();
  a.Part("row 1\n");
  a.Part("");
  b.Begin();
  b.Part("row 1\n");
  b.Part("");
  EXPECT_EQ(a.Finish(), b.Finish());
}

TEST(RecordHasher, SeedVersionAndBytesEachChangeTheHash) {
  const std::string line = "{\"LA_Person_Unique_Identifier\":\"LCC-1\"}";
  std::set<ContentHash> seen = {
      RecordHasher(42, "tables-v1").Line(line),
      RecordHasher(43, "tables-v1").Line(line),
      RecordHasher(42, "tables-v2").Line(line),
      RecordHasher(42, "tables-v1").Line(line + " "),
      RecordHasher(42, "tables-v1").Line(""),
  };
  EXPECT_EQ(seen.size(), 5u);
}

TEST(RecordHasher, LineAndContentHashesDifferForTheSameBytes) {
  RecordHasher h(7, "v");
  h.Begin();
  h.Part("abc");
  EXPECT_NE(h.Finish(), h.Line("abc"));
}

TEST(RecordHasher, BytesCannotMoveBetweenParts) {
  RecordHasher h(7, "v");
  auto hash = [&](std::initializer_list<std::string_view> parts) {
    h.Begin();
    for (auto p : parts) h.Part(p);
    return h.Finish();
  };
  std::set<ContentHash> seen = {
      hash({"ab", "c"}), hash({"a", "bc"}), hash({"abc", ""}), hash({"", "abc"}), hash({"abc"}),
      // A separator byte inside a part must not imitate a boundary.
      hash({"a\x1e", "bc"}), hash({"a", "\x1e" "bc"}),
  };
  EXPECT_EQ(seen.size(), 7u);
  // The object is reusable: the same parts again give the same hash.
  EXPECT_EQ(hash({"ab", "c"}), hash({"ab", "c"}));
}

TEST(RecordHasher, LongInputsAreHashedWhole) {
  // XXH3 takes another path above 240 bytes; a change in the last byte still counts.
  std::string big(100000, 'x');
  RecordHasher h(1, "v");
  const ContentHash before = h.Line(big);
  big.back() = 'y';
  EXPECT_NE(h.Line(big), before);
  h.Begin();
  h.Part(big);
  const ContentHash part = h.Finish();
  big.front() = 'z';
  h.Begin();
  h.Part(big);
  EXPECT_NE(h.Finish(), part);
}

std::string Hex(const ContentHash& h) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : h) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// Lines and records both sides of XXH3's 240-byte switch, hashed as session 12 stored
// them: state databases hold these hashes, so any change to how they are computed would
// make every record look changed on the next night. The values were taken from the
// XXH3_128bits_withSeed implementation before it was made faster.
TEST(RecordHasher, HashesAreThoseStoredStateDatabasesHold) {
  RecordHasher h(0x0123456789abcdefULL, "tables-v1");
  const std::string short_line = "{\"LA_Person_Unique_Identifier\":\"LCC-1\"}";
  std::string long_line(3000, 'x');
  for (std::size_t i = 0; i < long_line.size(); ++i) long_line[i] = static_cast<char>('a' + (i * 7) % 26);
  EXPECT_EQ(Hex(h.Line(short_line)), "4d92529518586d4559bae75272e32b06");
  EXPECT_EQ(Hex(h.Line(long_line)), "ddda4208a100097f672b700e68b952cc");
  h.Begin();
  h.Part("cis:LCC-1,1,2\r\n");
  EXPECT_EQ(Hex(h.Finish()), "1e7858977278b3a13fcf755888202203");
  h.Begin();
  h.Part(long_line);
  h.Part(short_line);
  h.Part({});
  EXPECT_EQ(Hex(h.Finish()), "6b82e7473e1fb8248fe3272fe4720d2a");
}

}  // namespace
}  // namespace caregate::exporter
