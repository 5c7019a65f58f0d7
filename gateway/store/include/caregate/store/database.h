#pragma once
// A thin RAII wrapper over one SQLite connection (after Orthanc's SQLite layer).
//
// A Database is one connection and is NOT thread-safe: give each thread its own, or guard
// it. Several connections (in one process or many) may share a file: WAL lets readers run
// beside the single writer, and busy_timeout makes writers queue rather than fail.
//
// SQLite errors are thrown as DatabaseError (a FatalError): a database that misbehaves
// is not an expected outcome on the data path. Constraint violations map to
// Problem::kConflict, a lock held past the busy timeout to kUnavailable, the rest to
// kIoFailure.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "caregate/core/error.h"
#include "caregate/store/migrations.h"
#include "caregate/store/statement.h"

struct sqlite3;
struct sqlite3_stmt;

namespace caregate::store {

class DatabaseError : public FatalError {
 public:
  DatabaseError(Problem p, std::string message, int sqlite_code)
      : FatalError(p, std::move(message)), sqlite_code_(sqlite_code) {}
  int sqlite_code() const { return sqlite_code_; }  // extended result code

 private:
  int sqlite_code_;
};

struct OpenOptions {
  bool create = true;           // create the file when missing
  bool read_only = false;       // no writes; the file must exist
  int busy_timeout_ms = 5000;   // how long a writer waits for another's lock
};

class Database {
 public:
  // Opens `path` (or ":memory:") with WAL, synchronous=FULL, foreign_keys=ON and the busy
  // timeout. Throws FatalError(kIoFailure, "<path>: <sqlite message>") when it cannot.
  explicit Database(const std::string& path, OpenOptions options = {});
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more ';'-separated statements that return no rows we care about.
  void Exec(std::string_view sql);
  // The transaction verbs, prepared once per connection rather than parsed each time
  // (for Transaction: a group commit runs two per batch).
  enum class Verb { kBeginImmediate, kBeginDeferred, kCommit, kRollback };
  void Run(Verb verb);
  Statement Prepare(std::string_view sql) { return Statement(*this, sql); }

  // Applies, in one transaction, every migration of `module` not yet recorded in
  // schema_migrations, in version order. Idempotent: running it again applies nothing.
  // Throws FatalError(kInternal) when a version is outside the module's range, repeated,
  // claimed by another module, or when the file holds a newer version of the module than
  // this build knows (the binary is older than the database).
  void Migrate(std::string_view module, std::span<const Migration> migrations);
  void Migrate(std::string_view module, std::initializer_list<Migration> migrations) {
    Migrate(module, std::span<const Migration>(migrations.begin(), migrations.size()));
  }

  std::int64_t LastInsertRowId() const;
  // Whether the file (its main schema) has a table of that name.
  bool HasTable(std::string_view name);
  int Changes() const;            // rows changed by the last INSERT/UPDATE/DELETE
  bool InTransaction() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

  // Throws DatabaseError for `rc` with the connection's message, prefixed by the path.
  [[noreturn]] void ThrowError(int rc, std::string_view context = {}) const;

 private:
  void FinalizeVerbs() noexcept;

  sqlite3* db_ = nullptr;
  std::string path_;
  std::array<sqlite3_stmt*, 4> verbs_{};  // prepared on first use, finalised before close
};

}  // namespace caregate::store
