// The warehouse tables follow the canonical registry, and docs/warehouse.md follows them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "caregate/engine/engine.h"
#include "caregate/export/warehouse.h"
#include "caregate/model/field_registry.h"

namespace caregate::exporter {
namespace {

TEST(ExportWarehouse, EveryRegistryFieldHasExactlyOneColumn) {
  std::multiset<std::string_view> seen;
  for (const auto& t : WarehouseTables())
    for (const auto& c : t.columns)
      if (c.field) seen.insert(c.field->name);
  for (const auto& f : model::AllFields()) EXPECT_EQ(seen.count(f.name), 1u) << f.name;
  EXPECT_EQ(seen.size(), model::AllFields().size());
}

TEST(ExportWarehouse, EveryTableStartsWithThePersonKeyAndHasUniqueColumns) {
  std::set<std::string> names;
  for (const auto& t : WarehouseTables()) {
    EXPECT_TRUE(names.insert(t.name).second) << t.name;
    ASSERT_FALSE(t.columns.empty());
    EXPECT_EQ(t.columns[0].name, "person_key") << t.name;
    std::set<std::string> cols;
    for (const auto& c : t.columns) EXPECT_TRUE(cols.insert(c.name).second) << t.name << "." << c.name;
    EXPECT_TRUE(t.header.ends_with("\r\n"));
  }
  EXPECT_EQ(WarehouseTables().front().name, "persons");
  EXPECT_TRUE(names.count("episodes") && names.count("goals") && names.count("entries") && names.count("unmapped"));
}

TEST(ExportWarehouse, RowsCarryPositionsAndQuoteLikeRfc4180) {
  model::CareRecord r;
  r.person.cis_id = "LCC-1";
  r.person.family_name = "O'Neill, \"Jo\"";
  r.care_plans.emplace_back();
  r.care_plans[0].goals.push_back({"G-1", "walk", "2024-01-01", "", "in_progress"});
  r.care_plans[0].goals.push_back({"G-2", "line one\nline two", "2024-01-02", "", "achieved"});
  r.unmapped.push_back({"/Favourite_Colour", "blue"});
  std::vector<TextBuffer> rows(WarehouseTables().size());
  AppendWarehouseRows(r, "cis:LCC-1", rows);
  std::vector<std::string> out;
  for (const auto& b : rows) out.emplace_back(b.view());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& t = WarehouseTables()[i];
    if (t.name == "persons") {
      EXPECT_NE(out[i].find("\"O'Neill, \"\"Jo\"\"\""), std::string::npos) << out[i];
      EXPECT_TRUE(out[i].starts_with("cis:LCC-1,"));
    } else if (t.name == "goals") {
      EXPECT_TRUE(out[i].starts_with("cis:LCC-1,1,1,G-1,walk,2024-01-01,,in_progress\r\n")) << out[i];
      EXPECT_NE(out[i].find("cis:LCC-1,1,2,G-2,\"line one\nline two\""), std::string::npos) << out[i];
    } else if (t.name == "care_plans") {
      EXPECT_EQ(out[i], "cis:LCC-1,1,,,,\r\n");
    } else if (t.name == "unmapped") {
      EXPECT_EQ(out[i], "cis:LCC-1,1,/Favourite_Colour,blue\r\n");
    } else {
      EXPECT_EQ(out[i], "") << t.name;
    }
  }
}

// docs/warehouse.md is generated; regenerate with
//   caregate export --describe-warehouse > docs/warehouse.md
// or run this test with CAREGATE_UPDATE_DOCS=1.
TEST(ExportWarehouse, DocsPageMatchesRegistry) {
  auto engine = engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  std::string expected = WarehouseMarkdown(engine->plan());
  std::string path = std::string(CAREGATE_SOURCE_DIR) + "/docs/warehouse.md";
  if (const char* u = std::getenv("CAREGATE_UPDATE_DOCS"); u && std::string(u) == "1") {
    std::ofstream(path, std::ios::binary) << expected;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), expected) << "docs/warehouse.md is out of date: run `caregate export --describe-warehouse > "
                                   "docs/warehouse.md` (or this test with CAREGATE_UPDATE_DOCS=1)";
  // Every column of every table is described.
  for (const auto& t : WarehouseTables())
    for (const auto& c : t.columns)
      EXPECT_NE(expected.find("| `" + c.name + "` |"), std::string::npos) << t.name << "." << c.name;
}

}  // namespace
}  // namespace caregate::exporter
