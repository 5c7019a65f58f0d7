// RecordReader (mapping straight from parser events) against MappingPlan::Read on the
// parsed tree: for every input the two must give the same record, lineage and unmapped
// items, or the same errors in the same order. Inputs: synthetic records, the golden and
// spec CIS examples, and deterministic mutations of them that put the wrong kind of
// value at every sort of place (objects for scalars, arrays for objects, unknown
// members with nested content, blanks, nulls).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "caregate/engine/engine.h"
#include "caregate/format/json.h"
#include "caregate/mapping/mapping_plan.h"
#include "caregate/model/canonical_json.h"
#include "caregate/synth/synth.h"

namespace fs = std::filesystem;
using namespace caregate;

namespace {

const engine::Engine& TheEngine() {
  static auto e = engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  return *e;
}

std::string Describe(const Expected<model::CareRecord>& r) {
  if (!r.ok()) return "errors: " + FormatErrors(r.errors());
  model::CanonicalJsonOptions opt;
  opt.lineage = true;
  opt.unmapped = true;
  return "record: " + model::ToCanonicalJson(r.value(), opt);
}

// The tree path: the parser's tree, then MappingPlan::Read.
Expected<model::CareRecord> ViaTree(std::string_view text, bool lineage) {
  auto tree = format::ParseJson(text);
  if (!tree) return tree.errors();
  return TheEngine().plan().Read("cis", tree.value(), lineage);
}

// The streaming path, with a reader reused across calls and each record finished in
// place (as the export's workers do): nothing of one record may show in the next.
Expected<model::CareRecord> ViaEvents(mapping::RecordReader& reader, std::string_view text, bool lineage) {
  reader.Begin(lineage);
  if (auto error = format::ParseJsonEvents(text, reader)) return *error;
  Expected<const model::CareRecord*> r = reader.FinishInPlace();
  if (!r.ok()) return r.errors();
  return *r.value();
}

class RecordReaderTest : public ::testing::Test {
 protected:
  mapping::RecordReader reader_{TheEngine().plan(), "cis"};
  std::size_t compared_ = 0, rejected_ = 0;

  void ExpectSame(const std::string& text, const std::string& what) {
    for (bool lineage : {true, false}) {
      std::string tree = Describe(ViaTree(text, lineage));
      std::string events = Describe(ViaEvents(reader_, text, lineage));
      ASSERT_EQ(tree, events) << what << " (lineage " << lineage << ")\ninput: " << text;
      // Engine::Read takes the streaming path for CIS.
      ASSERT_EQ(tree, Describe(TheEngine().Read("cis", text, lineage))) << what;
      if (tree.rfind("errors", 0) == 0) ++rejected_;
    }
    ++compared_;
  }
};

std::vector<std::string> SynthRecords(std::size_t n) {
  std::vector<std::string> out;
  synth::Generator gen(7, "cis");
  for (std::size_t i = 0; i < n; ++i) {
    std::string s;
    TheEngine().Render(s, gen.Make(i), "cis", true);
    out.push_back(s);
  }
  return out;
}

// Every node of the tree, in document order, with its parent.
void Collect(SourceNode& n, std::vector<SourceNode*>& out) {
  out.push_back(&n);
  for (auto& c : n.children) Collect(c, out);
}

SourceNode Scalar(NodeKind kind, std::string value) { return SourceNode{{}, std::move(value), kind, 0, {}}; }

// The replacement values the mutations put in place of a node.
std::vector<SourceNode> Replacements() {
  std::vector<SourceNode> r;
  r.push_back(Scalar(NodeKind::kNull, ""));
  r.push_back(Scalar(NodeKind::kString, ""));
  r.push_back(Scalar(NodeKind::kString, "zz-not-a-code"));
  r.push_back(Scalar(NodeKind::kNumber, "12.5"));
  r.push_back(Scalar(NodeKind::kBool, "true"));
  SourceNode obj{{}, {}, NodeKind::kObject, 0, {}};
  r.push_back(obj);
  obj.add("Unknown", NodeKind::kString, "x");
  SourceNode& inner = obj.add("Deeper", NodeKind::kArray);
  inner.add("", NodeKind::kNumber, "1");
  inner.add("", NodeKind::kObject).add("k", NodeKind::kString, "v");
  r.push_back(obj);
  SourceNode arr{{}, {}, NodeKind::kArray, 0, {}};
  r.push_back(arr);
  arr.add("", NodeKind::kString, "line one");
  arr.add("", NodeKind::kNull);
  arr.add("", NodeKind::kObject).add("Reference", NodeKind::kString, "R1");
  arr.add("", NodeKind::kArray).add("", NodeKind::kString, "nested");
  r.push_back(arr);
  return r;
}

TEST_F(RecordReaderTest, SameAsTheTreeOnSyntheticRecords) {
  for (const auto& text : SynthRecords(200)) ExpectSame(text, "synthetic record");
  EXPECT_EQ(compared_, 200u);
}

TEST_F(RecordReaderTest, SameAsTheTreeOnTheExamples) {
  std::vector<fs::path> files;
  for (const char* dir : {"tests/golden", "tests/spec", "samples"}) {
    fs::path d = fs::path(CAREGATE_SOURCE_DIR) / dir;
    if (!fs::exists(d)) continue;
    for (const auto& e : fs::recursive_directory_iterator(d))
      if (e.is_regular_file() && (e.path().extension() == ".json" || e.path().extension() == ".ndjson"))
        files.push_back(e.path());
  }
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    if (f.extension() == ".ndjson") {
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line))
        if (!line.empty()) ExpectSame(line, f.string());
    } else {
      ExpectSame(text, f.string());
    }
  }
  EXPECT_GT(compared_, 10u);
}

TEST_F(RecordReaderTest, SameAsTheTreeWhenAnyValueIsTheWrongKind) {
  const auto records = SynthRecords(30);
  const auto replacements = Replacements();
  std::mt19937_64 rng(20261123);
  for (std::size_t r = 0; r < records.size(); ++r) {
    SourceNode base = format::ParseJson(records[r]).value();
    std::vector<SourceNode*> nodes;
    Collect(base, nodes);
    // Every node once with one replacement (cycling), plus random extra pairs.
    for (std::size_t k = 1; k < nodes.size(); ++k) {
      SourceNode copy = base;
      std::vector<SourceNode*> cn;
      Collect(copy, cn);
      const SourceNode& with = replacements[(k + r) % replacements.size()];
      std::string name = cn[k]->name;
      *cn[k] = with;
      cn[k]->name = name;
      ExpectSame(format::WriteJson(copy), "node " + std::to_string(k) + " replaced");
    }
    for (int extra = 0; extra < 20; ++extra) {
      SourceNode copy = base;
      std::vector<SourceNode*> cn;
      Collect(copy, cn);
      std::size_t k = 1 + rng() % (cn.size() - 1);
      SourceNode* target = cn[k];
      if (target->kind == NodeKind::kObject) {  // an unknown member, possibly nested
        SourceNode extra_member = replacements[rng() % replacements.size()];
        extra_member.name = "Zz_Extra_" + std::to_string(extra);
        target->children.insert(target->children.begin() + static_cast<long>(rng() % (target->children.size() + 1)),
                                extra_member);
      } else {
        std::string name = target->name;
        *target = replacements[rng() % replacements.size()];
        target->name = name;
      }
      ExpectSame(format::WriteJson(copy), "random mutation " + std::to_string(extra));
    }
  }
  EXPECT_GT(compared_, 1000u);
  EXPECT_GT(rejected_, 100u) << "the mutations should produce invalid records too";
}

TEST_F(RecordReaderTest, ParseErrorsAreTheParsers) {
  for (std::string bad : {std::string("{\"a\":1,\"a\":2}"), std::string("[1]"), std::string("{\"Person\":"),
                          std::string("{} trailing"), std::string("")}) {
    ExpectSame(bad, "malformed");
  }
  EXPECT_EQ(rejected_, 10u);
}

TEST(RecordReader, RefusesAnXPathSystem) {
  EXPECT_THROW(mapping::RecordReader(TheEngine().plan(), "systmone"), FatalError);
}

}  // namespace
