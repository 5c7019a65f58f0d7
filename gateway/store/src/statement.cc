#include "caregate/store/statement.h"

#include <sqlite3.h>

#include <climits>
#include <utility>

#include "caregate/store/database.h"
#include "sqlite_error.h"

namespace caregate::store {
namespace {

int CheckedLength(sqlite3* db, std::string_view s) {
  if (s.size() > static_cast<std::size_t>(INT_MAX)) ThrowSqliteError(db, SQLITE_TOOBIG, "bind");
  return static_cast<int>(s.size());
}

}  // namespace

sqlite3* Statement::db() const { return sqlite3_db_handle(stmt_); }

Statement::Statement(Database& db, std::string_view sql) {
  const int rc = sqlite3_prepare_v3(db.handle(), sql.data(), CheckedLength(db.handle(), sql),
                                    SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    db.ThrowError(rc, "prepare");
  }
  if (!stmt_) db.ThrowError(SQLITE_MISUSE, "prepare: no SQL statement in \"" + std::string(sql) + "\"");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement& Statement::BindInt64(int index, std::int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) ThrowSqliteError(db(), rc, "bind");
  return *this;
}

Statement& Statement::BindDouble(int index, double value) {
  if (int rc = sqlite3_bind_double(stmt_, index, value); rc != SQLITE_OK) ThrowSqliteError(db(), rc, "bind");
  return *this;
}

Statement& Statement::BindText(int index, std::string_view value) {
  // A non-null pointer even for "" so the value binds as empty TEXT, not NULL.
  const char* data = value.data() ? value.data() : "";
  if (int rc = sqlite3_bind_text(stmt_, index, data, CheckedLength(db(), value), SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    ThrowSqliteError(db(), rc, "bind");
  return *this;
}

Statement& Statement::BindTextNoCopy(int index, std::string_view value) {
  const char* data = value.data() ? value.data() : "";
  if (int rc = sqlite3_bind_text(stmt_, index, data, CheckedLength(db(), value), SQLITE_STATIC); rc != SQLITE_OK)
    ThrowSqliteError(db(), rc, "bind");
  return *this;
}

Statement& Statement::BindBlob(int index, std::string_view bytes) {
  const char* data = bytes.data() ? bytes.data() : "";
  if (int rc = sqlite3_bind_blob(stmt_, index, data, CheckedLength(db(), bytes), SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    ThrowSqliteError(db(), rc, "bind");
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) ThrowSqliteError(db(), rc, "bind");
  return *this;
}

bool Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3_reset(stmt_);
  ThrowSqliteError(db(), rc);
}

void Statement::Run() {
  while (Step()) {
  }
}

void Statement::Reset() {
  // sqlite3_reset repeats the last step's error; Step() has already reported it.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Statement::Rewind() {
  sqlite3_reset(stmt_);  // as in Reset: Step() has already reported any error
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }

std::string_view Statement::ColumnTextView(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);  // before _bytes, as SQLite requires
  const int n = sqlite3_column_bytes(stmt_, column);
  if (!p) return {};
  return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
}

std::string Statement::ColumnText(int column) const { return std::string(ColumnTextView(column)); }

std::string Statement::ColumnBlob(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  const int n = sqlite3_column_bytes(stmt_, column);
  if (!p) return {};
  return std::string(static_cast<const char*>(p), static_cast<std::size_t>(n));
}

std::string_view Statement::sql() const {
  const char* s = sqlite3_sql(stmt_);
  return s ? std::string_view(s) : std::string_view();
}

std::string InsertValuesSql(std::string_view insert_head, std::string_view row, int rows) {
  std::string sql(insert_head);
  for (int i = 0; i < rows; ++i) {
    sql += i ? ", " : " VALUES ";
    sql += row;
  }
  return sql;
}

}  // namespace caregate::store
