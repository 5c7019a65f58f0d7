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

}  // namespace
}  // namespace caregate::exporter
