#include "caregate/store/transaction.h"

namespace caregate::store {

Transaction::Transaction(Database& db, Mode mode) : db_(db) {
  db_.Exec(mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

Transaction::~Transaction() {
  try {
    Rollback();
  } catch (...) {
    // A destructor must not throw; SQLite has already undone what it could not keep.
  }
}

void Transaction::Commit() {
  db_.Exec("COMMIT");
  active_ = false;
}

void Transaction::Rollback() {
  if (!active_) return;
  active_ = false;
  // SQLite rolls back by itself after some errors (I/O, full disk); then there is
  // nothing left to undo and ROLLBACK would only fail.
  if (db_.InTransaction()) db_.Exec("ROLLBACK");
}

}  // namespace caregate::store
