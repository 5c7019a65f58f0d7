#include "sqlite_error.h"

#include <sqlite3.h>

#include <string>

#include "caregate/store/database.h"

namespace caregate::store {
namespace {

Problem ProblemFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return Problem::kConflict;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Problem::kUnavailable;
    default:
      return Problem::kIoFailure;
  }
}

}  // namespace

void ThrowSqliteError(sqlite3* db, int rc, std::string_view context, std::string_view path) {
  std::string message;
  if (!path.empty()) {
    message.append(path);
  } else {
    const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
    message.append(file && *file ? file : ":memory:");
  }
  message.append(": ");
  if (!context.empty()) message.append(context).append(": ");
  message.append(db && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  throw DatabaseError(ProblemFor(rc), std::move(message), rc);
}

}  // namespace caregate::store
