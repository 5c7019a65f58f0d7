#include "caregate/store/database.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "caregate/store/transaction.h"
#include "sqlite_error.h"
#include "sqlite_memory.h"

namespace caregate::store {
namespace {

std::string UtcNowIso() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Before SQLite initialises (its first open): no global memory statistics. With them on,
// every allocation SQLite makes takes a process-wide mutex to count itself, on every
// connection; caregate never reads the figures (no sqlite3_memory_used, no heap limit).
// About 6% of the audit writer's CPU was that mutex. Returns SQLITE_MISUSE, harmlessly,
// if something in the process initialised SQLite first.
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    // Large blocks (page splits' buffers) reused per thread: sqlite_memory.h.
    sqlite3_config(SQLITE_CONFIG_MALLOC, &sqlite_memory::Methods());
  });
}

}  // namespace

Database::Database(const std::string& path, OpenOptions options) : path_(path) {
  ConfigureSqliteOnce();
  int flags = SQLITE_OPEN_NOMUTEX;  // one connection per thread; see the header
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw FatalError(Problem::kIoFailure, path + ": " + message);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, options.busy_timeout_ms);
  // The first statement is where SQLite notices a file that is not a database.
  try {
    if (!options.read_only) Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON");
  } catch (const DatabaseError& e) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw FatalError(Problem::kIoFailure, e.what());
  }
}

Database::~Database() {
  // Statements must be finalised first; close_v2 defers the close until they are.
  FinalizeVerbs();
  if (db_) sqlite3_close_v2(db_);
}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      verbs_(std::exchange(other.verbs_, {})) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    FinalizeVerbs();
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    verbs_ = std::exchange(other.verbs_, {});
  }
  return *this;
}

void Database::FinalizeVerbs() noexcept {
  for (auto& s : verbs_) {
    sqlite3_finalize(s);  // a no-op for null
    s = nullptr;
  }
}

void Database::Run(Verb verb) {
  static constexpr const char* kSql[] = {"BEGIN IMMEDIATE", "BEGIN DEFERRED", "COMMIT", "ROLLBACK"};
  const auto i = static_cast<std::size_t>(verb);
  sqlite3_stmt*& s = verbs_[i];
  if (!s) {
    if (int rc = sqlite3_prepare_v2(db_, kSql[i], -1, &s, nullptr); rc != SQLITE_OK) {
      s = nullptr;
      ThrowError(rc, kSql[i]);
    }
  }
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);  // ready for next time; its result is rc's, already in hand
  if (rc != SQLITE_DONE) ThrowError(rc);
}

void Database::ThrowError(int rc, std::string_view context) const {
  ThrowSqliteError(db_, rc, context, path_);
}

void Database::Exec(std::string_view sql) {
  const std::string text(sql);  // sqlite3_exec needs a NUL-terminated string
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) ThrowError(rc);
}

std::int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

bool Database::HasTable(std::string_view name) {
  Statement s(*this, "SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?");
  s.Bind(1, name);
  return s.Step();
}
int Database::Changes() const { return sqlite3_changes(db_); }
bool Database::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

void Database::Migrate(std::string_view module, std::span<const Migration> migrations) {
  const std::string mod(module);
  const auto range = FindMigrationRange(module);
  if (!range)
    throw FatalError(Problem::kInternal,
                     "migrations: module '" + mod + "' has no version range in kMigrationRanges");
  std::vector<Migration> wanted(migrations.begin(), migrations.end());
  std::sort(wanted.begin(), wanted.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const int v = wanted[i].version;
    if (v < range->first || v > range->last)
      throw FatalError(Problem::kInternal, "migrations: " + mod + " version " + std::to_string(v) +
                                               " is outside its range " +
                                               std::to_string(range->first) + "-" +
                                               std::to_string(range->last));
    if (i > 0 && wanted[i - 1].version == v)
      throw FatalError(Problem::kInternal,
                       "migrations: " + mod + " version " + std::to_string(v) + " is listed twice");
  }

  // One transaction for the bookkeeping table and every pending step: a failure leaves
  // the database as it was, and two processes opening the same file apply each step once
  // (BEGIN IMMEDIATE serialises them; the second re-reads what the first recorded).
  Transaction tx(*this);
  Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER PRIMARY KEY,"
      " module TEXT NOT NULL,"
      " applied_at TEXT NOT NULL)");
  std::map<int, std::string> applied;  // version -> module
  {
    Statement q(*this, "SELECT version, module FROM schema_migrations");
    while (q.Step()) applied.emplace(static_cast<int>(q.ColumnInt64(0)), q.ColumnText(1));
  }
  const int newest_known = wanted.empty() ? 0 : wanted.back().version;
  for (const auto& [version, owner] : applied) {
    if (owner == mod && version > newest_known)
      throw FatalError(Problem::kInternal,
                       path_ + ": " + mod + " schema version " + std::to_string(version) +
                           " is newer than this build knows (" + std::to_string(newest_known) +
                           "); use a newer caregate");
  }
  Statement record(*this,
                   "INSERT INTO schema_migrations(version, module, applied_at) VALUES (?, ?, ?)");
  for (const auto& m : wanted) {
    auto it = applied.find(m.version);
    if (it != applied.end()) {
      if (it->second != mod)
        throw FatalError(Problem::kInternal, path_ + ": migration " + std::to_string(m.version) +
                                                 " of " + mod + " was applied by " + it->second);
      continue;
    }
    try {
      Exec(m.sql);
    } catch (const DatabaseError& e) {
      throw DatabaseError(Problem::kInternal,
                          "migration " + std::to_string(m.version) + " of " + mod + ": " + e.what(),
                          e.sqlite_code());
    }
    record.Reset();
    record.Bind(1, m.version).Bind(2, mod).Bind(3, UtcNowIso()).Run();
  }
  tx.Commit();
}

}  // namespace caregate::store
