#include <gtest/gtest.h>

#include "support/temp_dir.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include <sqlite3.h>

#include "caregate/store/database.h"
#include "caregate/store/statement.h"
#include "caregate/store/transaction.h"

namespace caregate::store {
namespace {

namespace fs = std::filesystem;

using caregate::testing::TempDir;

std::string PragmaText(Database& db, const std::string& pragma) {
  auto s = db.Prepare("PRAGMA " + pragma);
  EXPECT_TRUE(s.Step());
  return s.ColumnText(0);
}

TEST(SqliteDatabase, OpensWithWalFullSyncForeignKeysAndBusyTimeout) {
  TempDir dir;
  Database db(dir.file("a.db"));
  EXPECT_EQ(PragmaText(db, "journal_mode"), "wal");
  EXPECT_EQ(PragmaText(db, "synchronous"), "2");  // FULL
  EXPECT_EQ(PragmaText(db, "foreign_keys"), "1");
  EXPECT_EQ(PragmaText(db, "busy_timeout"), "5000");
}

TEST(SqliteDatabase, SqliteKeepsNoGlobalMemoryStatistics) {
  // Off before SQLite initialises, so its allocations take no process-wide mutex.
  Database db(":memory:");
  db.Exec("CREATE TABLE t(v TEXT); INSERT INTO t VALUES (randomblob(100000))");
  sqlite3_int64 current = -1, highwater = -1;
  ASSERT_EQ(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &current, &highwater, 0), SQLITE_OK);
  EXPECT_EQ(current, 0);
}

TEST(SqliteDatabase, HasTableNamesTablesOnly) {
  Database db(":memory:");
  EXPECT_FALSE(db.HasTable("t"));
  db.Exec("CREATE TABLE t(x); CREATE INDEX t_by_x ON t(x); CREATE TEMP TABLE scratch(y)");
  EXPECT_TRUE(db.HasTable("t"));
  EXPECT_FALSE(db.HasTable("t_by_x"));    // an index
  EXPECT_FALSE(db.HasTable("scratch"));   // temp, not the file's
  EXPECT_FALSE(db.HasTable("T'; --"));
}

TEST(SqliteDatabase, OpensInMemory) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  auto s = db.Prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(s.Step());
  EXPECT_EQ(s.ColumnInt64(0), 1);
}

TEST(SqliteDatabase, UnopenableFileIsFatalIoFailureNamingTheFile) {
  TempDir dir;
  const std::string path = dir.file("missing-dir/a.db");
  try {
    Database db(path);
    FAIL() << "opened " << path;
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kIoFailure);
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
  }
}

TEST(SqliteDatabase, FileThatIsNotADatabaseIsFatalIoFailure) {
  TempDir dir;
  const std::string path = dir.file("junk.db");
  std::ofstream(path) << std::string(4096, 'x');
  try {
    Database db(path);
    FAIL() << "opened junk";
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kIoFailure);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
  }
}

TEST(SqliteDatabase, MissingFileWithoutCreateIsFatal) {
  TempDir dir;
  EXPECT_THROW(Database(dir.file("none.db"), OpenOptions{.create = false}), FatalError);
  EXPECT_FALSE(fs::exists(dir.file("none.db")));
}

TEST(SqliteDatabase, ConstraintViolationIsConflict) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY)");
  db.Exec("INSERT INTO t VALUES (1)");
  try {
    db.Exec("INSERT INTO t VALUES (1)");
    FAIL();
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.problem(), Problem::kConflict);
    EXPECT_NE(std::string(e.what()).find("UNIQUE"), std::string::npos) << e.what();
  }
}

TEST(SqliteStatement, BindsAndReadsEveryType) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(i INTEGER, d REAL, s TEXT, b BLOB, n)");
  const std::string blob("a\0b\xff", 4);
  auto insert = db.Prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)");
  insert.BindInt64(1, INT64_C(9007199254740993))
      .BindDouble(2, 2.5)
      .BindText(3, "héllo")
      .BindBlob(4, blob)
      .BindNull(5);
  EXPECT_FALSE(insert.Step());
  EXPECT_EQ(db.Changes(), 1);
  EXPECT_EQ(db.LastInsertRowId(), 1);

  auto select = db.Prepare("SELECT i, d, s, b, n, typeof(b) FROM t");
  ASSERT_TRUE(select.Step());
  EXPECT_EQ(select.ColumnCount(), 6);
  EXPECT_EQ(select.ColumnInt64(0), INT64_C(9007199254740993));
  EXPECT_DOUBLE_EQ(select.ColumnDouble(1), 2.5);
  EXPECT_EQ(select.ColumnText(2), "héllo");
  EXPECT_EQ(select.ColumnBlob(3), blob);
  EXPECT_TRUE(select.ColumnIsNull(4));
  EXPECT_EQ(select.ColumnText(4), "");
  EXPECT_EQ(select.ColumnText(5), "blob");
  EXPECT_FALSE(select.Step());
}

TEST(SqliteStatement, EmptyTextBindsAsEmptyStringNotNull) {
  Database db(":memory:");
  auto s = db.Prepare("SELECT ? IS NULL, typeof(?)");
  s.Bind(1, std::string_view{}).Bind(2, std::string());
  ASSERT_TRUE(s.Step());
  EXPECT_EQ(s.ColumnInt64(0), 0);
  EXPECT_EQ(s.ColumnText(1), "text");
}

TEST(SqliteStatement, ResetLetsOnePreparedStatementRunManyTimes) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(k INTEGER, v TEXT)");
  auto insert = db.Prepare("INSERT INTO t VALUES (?, ?)");
  for (int i = 0; i < 100; ++i) {
    insert.Reset();
    insert.Bind(1, i).Bind(2, "v" + std::to_string(i)).Run();
  }
  auto select = db.Prepare("SELECT v FROM t WHERE k = ?");
  for (int k : {7, 42, 99}) {
    select.Reset();
    select.Bind(1, k);
    ASSERT_TRUE(select.Step());
    EXPECT_EQ(select.ColumnText(0), "v" + std::to_string(k));
    EXPECT_FALSE(select.Step());
  }
}

TEST(SqliteStatement, ResetClearsBindings) {
  Database db(":memory:");
  auto s = db.Prepare("SELECT ?");
  s.Bind(1, 5);
  ASSERT_TRUE(s.Step());
  s.Reset();
  ASSERT_TRUE(s.Step());
  EXPECT_TRUE(s.ColumnIsNull(0));
}

TEST(SqliteStatement, InsertValuesSqlRepeatsTheRowAndItsParametersNumberOn) {
  EXPECT_EQ(InsertValuesSql("INSERT INTO t(a, b)", "(?, ?)", 1), "INSERT INTO t(a, b) VALUES (?, ?)");
  EXPECT_EQ(InsertValuesSql("INSERT INTO t(a, b)", "(?1, ?)", 3),
            "INSERT INTO t(a, b) VALUES (?1, ?), (?1, ?), (?1, ?)");
  Database db(":memory:");
  db.Exec("CREATE TABLE t(a INTEGER, b INTEGER)");
  auto insert = db.Prepare(InsertValuesSql("INSERT INTO t(a, b)", "(?1, ?)", 3));
  insert.Bind(1, 7).Bind(2, 1).Bind(3, 2).Bind(4, 3).Run();  // ?1 shared, the others 2, 3, 4
  auto rows = db.Prepare("SELECT group_concat(a || ':' || b, ' ') FROM (SELECT a, b FROM t ORDER BY b)");
  ASSERT_TRUE(rows.Step());
  EXPECT_EQ(rows.ColumnText(0), "7:1 7:2 7:3");
}

TEST(SqliteStatement, RewindKeepsBindings) {
  Database db(":memory:");
  auto s = db.Prepare("SELECT ?, ?");
  s.Bind(1, 5).Bind(2, "kept");
  ASSERT_TRUE(s.Step());
  s.Rewind();
  s.Bind(1, 6);  // the second parameter is not bound again
  ASSERT_TRUE(s.Step());
  EXPECT_EQ(s.ColumnInt64(0), 6);
  EXPECT_EQ(s.ColumnText(1), "kept");
  EXPECT_FALSE(s.Step());
}

TEST(SqliteStatement, BindTextNoCopyStoresTheBytesAtStepTime) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(v TEXT)");
  auto insert = db.Prepare("INSERT INTO t(v) VALUES (?)");
  std::string value = "first";
  insert.BindTextNoCopy(1, value).Run();
  value = "second";  // the row already holds its own copy
  insert.Rewind();
  insert.BindTextNoCopy(1, value).Run();
  insert.Rewind();
  insert.BindTextNoCopy(1, std::string_view()).Run();  // empty, not NULL
  auto select = db.Prepare("SELECT v, v IS NULL FROM t ORDER BY rowid");
  ASSERT_TRUE(select.Step());
  EXPECT_EQ(select.ColumnText(0), "first");
  ASSERT_TRUE(select.Step());
  EXPECT_EQ(select.ColumnText(0), "second");
  ASSERT_TRUE(select.Step());
  EXPECT_EQ(select.ColumnText(0), "");
  EXPECT_EQ(select.ColumnInt64(1), 0);
}

TEST(SqliteStatement, SurvivesMovesOfItselfAndItsDatabase) {
  Database first(":memory:");
  auto s = first.Prepare("SELECT 1 + ?");
  Database db = std::move(first);
  Statement moved = std::move(s);
  moved.Bind(1, 41);
  ASSERT_TRUE(moved.Step());
  EXPECT_EQ(moved.ColumnInt64(0), 42);
}

TEST(SqliteStatement, BadSqlThrowsWithTheMessage) {
  Database db(":memory:");
  try {
    db.Prepare("SELEKT 1");
    FAIL();
  } catch (const DatabaseError& e) {
    EXPECT_NE(std::string(e.what()).find("syntax error"), std::string::npos) << e.what();
  }
  EXPECT_THROW(db.Prepare("   "), DatabaseError);
}

TEST(SqliteStatement, StepErrorThrowsAndLeavesStatementReusable) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(k INTEGER PRIMARY KEY)");
  auto insert = db.Prepare("INSERT INTO t VALUES (?)");
  insert.Bind(1, 1).Run();
  insert.Reset();
  insert.Bind(1, 1);
  EXPECT_THROW(insert.Run(), DatabaseError);
  insert.Reset();
  insert.Bind(1, 2).Run();
  EXPECT_EQ(db.LastInsertRowId(), 2);
}

int64_t CountRows(Database& db) {
  auto s = db.Prepare("SELECT count(*) FROM t");
  EXPECT_TRUE(s.Step());
  return s.ColumnInt64(0);
}

TEST(SqliteTransaction, RollsBackWhenAnExceptionLeavesTheScope) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(x)");
  try {
    Transaction tx(db);
    db.Exec("INSERT INTO t VALUES (1)");
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(db.InTransaction());
  EXPECT_EQ(CountRows(db), 0);
}

TEST(SqliteTransaction, CommitKeepsChanges) {
  TempDir dir;
  {
    Database db(dir.file("a.db"));
    db.Exec("CREATE TABLE t(x)");
    Transaction tx(db);
    db.Exec("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)");
    tx.Commit();
  }
  Database db(dir.file("a.db"));
  EXPECT_EQ(CountRows(db), 2);
}

TEST(SqliteTransaction, ExplicitRollbackIsIdempotent) {
  Database db(":memory:");
  db.Exec("CREATE TABLE t(x)");
  Transaction tx(db);
  db.Exec("INSERT INTO t VALUES (1)");
  tx.Rollback();
  tx.Rollback();
  EXPECT_FALSE(tx.active());
  EXPECT_EQ(CountRows(db), 0);
}

// BEGIN, COMMIT and ROLLBACK are prepared once per connection and kept: they must move
// with the Database, and a COMMIT that fails must say why and leave the connection usable.
TEST(SqliteTransaction, PreparedVerbsMoveWithTheDatabaseAndReportFailures) {
  TempDir dir;
  Database first(dir.file("a.db"));
  first.Exec(
      "CREATE TABLE parent(id INTEGER PRIMARY KEY);"
      "CREATE TABLE child(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) "
      "DEFERRABLE INITIALLY DEFERRED)");
  {
    Transaction tx(first);
    first.Exec("INSERT INTO parent VALUES (1)");
    tx.Commit();
  }
  Database db = std::move(first);
  {
    Transaction tx(db);
    db.Exec("INSERT INTO child VALUES (1, 1)");
    tx.Commit();
  }
  {
    Transaction tx(db);
    db.Exec("INSERT INTO child VALUES (2, 99)");  // no parent 99: found at COMMIT
    try {
      tx.Commit();
      FAIL() << "COMMIT should have failed";
    } catch (const DatabaseError& e) {
      EXPECT_NE(std::string(e.what()).find("FOREIGN KEY"), std::string::npos) << e.what();
    }
  }  // rolled back
  Database moved_again(":memory:");
  moved_again = std::move(db);
  {
    Transaction tx(moved_again);
    moved_again.Exec("INSERT INTO child VALUES (3, 1)");
    tx.Commit();
  }
  auto count = moved_again.Prepare("SELECT count(*), sum(id) FROM child");
  ASSERT_TRUE(count.Step());
  EXPECT_EQ(count.ColumnInt64(0), 2);
  EXPECT_EQ(count.ColumnInt64(1), 4);
  EXPECT_FALSE(moved_again.InTransaction());
}

TEST(SqliteTransaction, ImmediateTakesTheWriteLockAtOnce) {
  TempDir dir;
  Database a(dir.file("a.db"));
  a.Exec("CREATE TABLE t(x)");
  Database b(dir.file("a.db"), OpenOptions{.busy_timeout_ms = 0});
  Transaction tx(a);
  try {
    Transaction other(b);
    FAIL() << "second writer got the lock";
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.problem(), Problem::kUnavailable) << e.what();
  }
  // A reader is not blocked by the writer (WAL).
  EXPECT_EQ(CountRows(b), 0);
}

}  // namespace
}  // namespace caregate::store
