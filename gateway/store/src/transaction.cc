#include "caregate/store/transaction.h"

namespace caregate::store {

Transaction::Transaction(Database& db, Mode mode) : db_(db) {
  db_.Run(mode == Mode::kImmediate ? Database::Verb::kBeginImmediate : Database::Verb::kBeginDeferred);
}

Transaction::~Transaction() {
  try {
    Rollback();
  } catch (...) {
    // A destructor must not throw; SQLite has already undone what it could not keep.
  }
}

void Transaction::Commit() {
  db_.Run(Database::Verb::kCommit);
  active_ = false;
}

void Transaction::Rollback() {
  if (!active_) return;
  active_ = false;
  // SQLite rolls back by itself after some errors (I/O, full disk); then there is
  // nothing left to undo and ROLLBACK would only fail.
  if (db_.InTransaction()) db_.Run(Database::Verb::kRollback);
}

}  // namespace caregate::store
