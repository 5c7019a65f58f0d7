#include <gtest/gtest.h>

#include "support/temp_dir.h"

#include <atomic>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "caregate/store/database.h"
#include "caregate/store/migrations.h"
#include "caregate/store/statement.h"

namespace caregate::store {
namespace {

namespace fs = std::filesystem;

using caregate::testing::TempDir;

// Deliberately without IF NOT EXISTS: applying either twice would fail.
constexpr Migration kV100{100, "CREATE TABLE a(x INTEGER)"};
constexpr Migration kV101{101, "ALTER TABLE a ADD COLUMN y TEXT; CREATE INDEX a_y ON a(y)"};

std::vector<std::pair<int, std::string>> Applied(Database& db) {
  std::vector<std::pair<int, std::string>> out;
  auto s = db.Prepare("SELECT version, module, applied_at FROM schema_migrations ORDER BY version");
  while (s.Step()) {
    EXPECT_FALSE(s.ColumnText(2).empty());
    out.emplace_back(static_cast<int>(s.ColumnInt64(0)), s.ColumnText(1));
  }
  return out;
}

using Rows = std::vector<std::pair<int, std::string>>;

TEST(Migrations, AppliedInVersionOrderAndRecorded) {
  Database db(":memory:");
  db.Migrate("audit", {kV101, kV100});  // listed out of order on purpose
  db.Exec("INSERT INTO a(x, y) VALUES (1, 'one')");
  EXPECT_EQ(Applied(db), (Rows{{100, "audit"}, {101, "audit"}}));
}

TEST(Migrations, IdempotentOnReopen) {
  TempDir dir;
  {
    Database db(dir.file("m.db"));
    db.Migrate("audit", {kV100, kV101});
    db.Migrate("audit", {kV100, kV101});
  }
  Database db(dir.file("m.db"));
  EXPECT_NO_THROW(db.Migrate("audit", {kV100, kV101}));
  EXPECT_EQ(Applied(db), (Rows{{100, "audit"}, {101, "audit"}}));
}

TEST(Migrations, OnlyNewStepsRunOnReopen) {
  TempDir dir;
  {
    Database db(dir.file("m.db"));
    db.Migrate("audit", {kV100});
    db.Exec("INSERT INTO a(x) VALUES (7)");
  }
  Database db(dir.file("m.db"));
  db.Migrate("audit", {kV100, kV101});
  auto s = db.Prepare("SELECT x, y FROM a");
  ASSERT_TRUE(s.Step());
  EXPECT_EQ(s.ColumnInt64(0), 7);
  EXPECT_TRUE(s.ColumnIsNull(1));
  EXPECT_EQ(Applied(db), (Rows{{100, "audit"}, {101, "audit"}}));
}

TEST(Migrations, FailedStepRollsBackTheWholeRun) {
  Database db(":memory:");
  try {
    db.Migrate("audit", {kV100, {101, "CREATE TABLE b(x); THIS IS NOT SQL"}});
    FAIL();
  } catch (const FatalError& e) {
    EXPECT_NE(std::string(e.what()).find("migration 101 of audit"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(db.InTransaction());
  auto s = db.Prepare("SELECT count(*) FROM sqlite_schema WHERE name IN ('a', 'b', 'schema_migrations')");
  ASSERT_TRUE(s.Step());
  EXPECT_EQ(s.ColumnInt64(0), 0);
}

TEST(Migrations, ModulesShareOneTableWithTheirOwnRanges) {
  Database db(":memory:");
  db.Migrate("audit", {kV100});
  db.Migrate("export", {{200, "CREATE TABLE runs(id INTEGER PRIMARY KEY)"}});
  db.Migrate("identity", {{300, "CREATE TABLE links(a, b)"}});
  db.Migrate("store", {{1, "CREATE TABLE persons(id TEXT PRIMARY KEY)"}});
  EXPECT_EQ(Applied(db), (Rows{{1, "store"}, {100, "audit"}, {200, "export"}, {300, "identity"}}));
}

TEST(Migrations, RejectsVersionOutsideTheModuleRange) {
  Database db(":memory:");
  try {
    db.Migrate("export", {{150, "CREATE TABLE x(y)"}});
    FAIL();
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kInternal);
    EXPECT_NE(std::string(e.what()).find("outside its range 200-299"), std::string::npos) << e.what();
  }
}

TEST(Migrations, RejectsDuplicateVersionAndUnknownModule) {
  Database db(":memory:");
  EXPECT_THROW(db.Migrate("audit", {kV100, {100, "CREATE TABLE z(x)"}}), FatalError);
  EXPECT_THROW(db.Migrate("nobody", {{1000, "CREATE TABLE z(x)"}}), FatalError);
}

TEST(Migrations, RefusesADatabaseNewerThanTheBuild) {
  TempDir dir;
  {
    Database db(dir.file("m.db"));
    db.Migrate("audit", {kV100, kV101});
  }
  Database db(dir.file("m.db"));
  try {
    db.Migrate("audit", {kV100});
    FAIL();
  } catch (const FatalError& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this build"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace caregate::store
