#include "caregate/mapping/csv.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include "caregate/engine/engine.h"

using namespace caregate;
using namespace caregate::mapping;

TEST(MappingCsv, ReadsHeaderRowsCommentsAndQuotedFields) {
  auto t = ParseCsv("# a comment\ncode,label\n\n1,\"Yes, \"\"really\"\"\"\n2,No\n", "t.csv");
  ASSERT_TRUE(t.ok()) << FormatErrors(t.errors());
  EXPECT_EQ(t->header_line, 2);  // a problem with the header names its own line
  EXPECT_EQ(t->header, (std::vector<std::string>{"code", "label"}));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[0].line, 4);
  EXPECT_EQ(t->Cell(t->rows[0], 1), "Yes, \"really\"");
  EXPECT_EQ(t->Cell(t->rows[1], t->Column("code")), "2");
}

// An IG officer who edits a table in a spreadsheet and saves it as "CSV UTF-8" gets a
// byte order mark at the start: the table must read as it did ("the first column must
// be 'code'" was the error, then "empty canonical code" on rows that had one).
TEST(MappingCsv, AByteOrderMarkIsNoPartOfTheFirstColumn) {
  auto t = ParseCsv("\xEF\xBB\xBF" "code,label\n1,Yes\n", "t.csv");
  ASSERT_TRUE(t.ok()) << FormatErrors(t.errors());
  EXPECT_EQ(t->header[0], "code");
  EXPECT_EQ(t->Column("code"), 0);
  EXPECT_EQ(t->Cell(t->rows[0], 0), "1");
}

TEST(MappingCsv, ShippedTablesSavedWithByteOrderMarksLoadAlike) {
  namespace fs = std::filesystem;
  const fs::path src = fs::path(CAREGATE_SOURCE_DIR) / "mappings";
  const fs::path dir = fs::temp_directory_path() / ("caregate-bom-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(src, dir, fs::copy_options::recursive);
  int with_bom = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".csv") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << "\xEF\xBB\xBF" << text;
    ++with_bom;
  }
  EXPECT_GT(with_bom, 2);
  auto bom = engine::Engine::Load(dir.string());
  auto shipped = engine::Engine::Load(src.string());
  fs::remove_all(dir);
  ASSERT_NE(bom, nullptr);
  EXPECT_EQ(bom->plan().code_sets().size(), shipped->plan().code_sets().size());
  std::ifstream in(std::string(CAREGATE_SPEC_DIR) + "/examples/cis-record.json", std::ios::binary);
  const std::string json((std::istreambuf_iterator<char>(in)), {});
  auto a = bom->Read("cis", json);
  auto b = shipped->Read("cis", json);
  ASSERT_TRUE(a.ok() && b.ok());
  std::string xa, xb;
  bom->Render(xa, a.value(), "systmone", false);
  shipped->Render(xb, b.value(), "systmone", false);
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa.find("<Ethnicity>A</Ethnicity>"), std::string::npos);
}
