// The export parses with format::ParseJsonInto, reusing one tree per worker. Whatever
// the previous document left in the tree, the result must be exactly ParseJson's.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "caregate/engine/engine.h"
#include "caregate/format/json.h"
#include "caregate/synth/synth.h"

namespace caregate::exporter {
namespace {

namespace fs = std::filesystem;

bool SameTree(const SourceNode& a, const SourceNode& b, std::string& where) {
  if (a.name != b.name || a.value != b.value || a.kind != b.kind || a.line != b.line ||
      a.children.size() != b.children.size()) {
    where = "'" + a.name + "' vs '" + b.name + "'";
    return false;
  }
  for (std::size_t i = 0; i < a.children.size(); ++i)
    if (!SameTree(a.children[i], b.children[i], where)) {
      where = a.name + "/" + where;
      return false;
    }
  return true;
}

void ExpectSameAsParseJson(std::string_view text, SourceNode& reused) {
  auto fresh = format::ParseJson(text);
  auto error = format::ParseJsonInto(text, reused);
  ASSERT_EQ(fresh.ok(), !error.has_value()) << text.substr(0, 200);
  if (fresh.ok()) {
    std::string where;
    EXPECT_TRUE(SameTree(fresh.value(), reused, where)) << where << " in " << text.substr(0, 200);
  } else {
    EXPECT_EQ(fresh.errors()[0], *error) << text.substr(0, 200);
  }
}

TEST(ExportParseReuse, ReusedTreeGivesTheSameResultAsAFreshParse) {
  auto engine = engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  std::vector<std::string> docs;
  synth::Generator gen(3, "cis");
  for (std::uint64_t i = 0; i < 300; ++i) {
    std::string out;
    engine->Render(out, gen.Make(i), "cis", true);
    docs.push_back(out);
  }
  // Shapes that differ from record to record: nested containers replaced by scalars and
  // back, arrays growing and shrinking, errors part-way, multi-line documents.
  docs.push_back(R"({"a":{"b":[1,2,{"c":"d"}]},"e":"f"})");
  docs.push_back(R"({"a":"scalar now","e":{"x":[[],[[]]]}})");
  docs.push_back(R"({"a":{"b":[1,2,{"c":"d"}]},"e":"f","a":2})");  // duplicate key
  docs.push_back(R"({"a":{"b":[1,2,{"c":)");                       // truncated
  docs.push_back("{\n  \"a\": [\n    1,\n    {\"b\": null}\n  ],\n  \"c\": true\n}");
  docs.push_back(R"({"k":"\u00e9\ud83d\ude00","n":-1.5e3,"t":false,"z":null})");
  docs.push_back(R"({"bad":"\udc00"})");
  docs.push_back(R"({})");
  docs.push_back(R"([1,2])");
  std::string many = "{";
  for (int i = 0; i < 200; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  docs.push_back(many + "}");
  docs.push_back(many + ",\"k150\":1}");  // duplicate found by the hash set
  // And the fuzz corpus, when present.
  fs::path corpus = fs::path(CAREGATE_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "json";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(corpus, ec)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    docs.push_back(ss.str());
  }
  std::mt19937 rng(7);
  SourceNode reused;
  for (int round = 0; round < 3; ++round) {
    std::shuffle(docs.begin(), docs.end(), rng);
    for (const auto& d : docs) ExpectSameAsParseJson(d, reused);
  }
}

}  // namespace
}  // namespace caregate::exporter
