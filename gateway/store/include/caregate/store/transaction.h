#pragma once
// Transaction guard: begins at construction and rolls back in its destructor unless
// Commit() succeeded, so an exception anywhere in between leaves the database untouched.
// Not nestable: SQLite has one transaction per connection.
#include "caregate/store/database.h"

namespace caregate::store {

class Transaction {
 public:
  enum class Mode {
    kImmediate,  // BEGIN IMMEDIATE: takes the write lock now (the default; writers)
    kDeferred,   // BEGIN: a consistent read snapshot; upgrades on the first write
  };

  explicit Transaction(Database& db, Mode mode = Mode::kImmediate);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void Commit();    // throws DatabaseError; the guard then rolls back
  void Rollback();  // explicit, early; idempotent
  bool active() const { return active_; }

 private:
  Database& db_;
  bool active_ = true;
};

}  // namespace caregate::store
