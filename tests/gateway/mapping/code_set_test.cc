// CodeSet's string index (code_set.h): exact keys only, the first value kept, found by
// string_view, through growth; and a code set's lookups in both directions.
#include "caregate/mapping/code_set.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "support/temp_dir.h"

namespace caregate::mapping {
namespace {

TEST(StringIndexTest, FindsExactlyTheKeysGivenThroughGrowth) {
  StringIndex index;
  EXPECT_EQ(index.Find("x"), nullptr);
  std::map<std::string, std::size_t> expected;
  // Keys of every length 0-40 and near-misses of each other (shared prefixes, one byte
  // apart, the same bytes in other lengths), several hundred in all.
  for (std::size_t n = 0; n < 500; ++n) {
    std::string key = std::string(n % 41, static_cast<char>('a' + n % 26)) + std::to_string(n / 41);
    if (n % 7 == 0) key = "White: Any other " + std::to_string(n);
    if (expected.emplace(key, n).second) {
      EXPECT_TRUE(index.Emplace(key, n)) << key;
    } else {
      EXPECT_FALSE(index.Emplace(key, n + 1000)) << key;
    }
  }
  EXPECT_EQ(index.size(), expected.size());
  for (const auto& [key, value] : expected) {
    const std::size_t* found = index.Find(key);
    ASSERT_NE(found, nullptr) << key;
    EXPECT_EQ(*found, value) << key;
    EXPECT_EQ(index.Find(key + "!"), nullptr) << key;
    if (!key.empty()) {
      EXPECT_EQ(index.Find(std::string_view(key).substr(0, key.size() - 1)) != nullptr,
                expected.count(key.substr(0, key.size() - 1)) == 1)
          << key;
    }
  }
  EXPECT_EQ(index.Find(""), nullptr);
  EXPECT_TRUE(index.Emplace("", 9));  // "" is a key like any other
  EXPECT_FALSE(index.Emplace("", 10));
  ASSERT_NE(index.Find(""), nullptr);
  EXPECT_EQ(*index.Find(""), 9u);
}

TEST(StringIndexTest, HashDependsOnEveryByteAndTheLength) {
  const std::string base = "Short Term Support: ST-Max";
  const auto h = StringIndex::Hash(base);
  for (std::size_t i = 0; i < base.size(); ++i) {
    std::string changed = base;
    changed[i] ^= 1;
    EXPECT_NE(StringIndex::Hash(changed), h) << i;
  }
  EXPECT_NE(StringIndex::Hash(std::string("ab\0", 3)), StringIndex::Hash("ab"));
}

TEST(CodeSetTest, LooksUpBothWaysAndKeepsTheExactCodeForASharedValue) {
  testing::TempDir dir;
  const auto path = dir.path() / "gender.csv";
  std::ofstream(path) << "code,cis,lossy_to_cis,systmone,lossy_to_systmone,meaning\n"
                         "male,1,,M,,Male\n"
                         "female,2,,F,,Female\n"
                         "other,9,,I,,Indeterminate\n"
                         "unknown,X,,U,,Not known\n"
                         "not-stated,X,yes,U,yes,Not stated\n";
  auto set = CodeSet::Load("gender", path.string());
  ASSERT_TRUE(set.ok()) << set.errors()[0].path << ": " << set.errors()[0].problem;
  const CodeSet& cs = *set.value();
  const int cis = cs.SystemIndex("cis"), s1 = cs.SystemIndex("systmone");
  ASSERT_GE(cis, 0);
  ASSERT_GE(s1, 0);
  ASSERT_NE(cs.ToCanonical(cis, "2"), nullptr);
  EXPECT_EQ(*cs.ToCanonical(cis, "2"), "female");
  EXPECT_EQ(*cs.ToCanonical(cis, "X"), "unknown");  // shared: the one not lossy towards CIS
  EXPECT_EQ(cs.ToCanonical(cis, "F"), nullptr);     // another system's value
  EXPECT_EQ(cs.ToCanonical(cis, "2 "), nullptr);
  EXPECT_EQ(*cs.ToCanonical(s1, "U"), "unknown");
  ASSERT_NE(cs.FromCanonical(s1, "other"), nullptr);
  EXPECT_EQ(cs.FromCanonical(s1, "other")->value, "I");
  EXPECT_TRUE(cs.FromCanonical(cis, "not-stated")->lossy);
  EXPECT_EQ(cs.FromCanonical(cis, "nope"), nullptr);
  EXPECT_TRUE(cs.HasCode("male"));
  EXPECT_FALSE(cs.HasCode("mal"));
}

}  // namespace
}  // namespace caregate::mapping
