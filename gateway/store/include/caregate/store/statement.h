#pragma once
// A prepared statement: prepare once, then bind / step / reset as often as needed (hot
// paths keep their Statement alive). Bind indices are 1-based, column indices 0-based,
// as in SQLite. Text and blobs are copied by SQLite at bind time (SQLITE_TRANSIENT), so
// the caller's buffers may go away before step().
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace caregate::store {

class Database;

class Statement {
 public:
  Statement(Database& db, std::string_view sql);  // throws DatabaseError
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& BindInt64(int index, std::int64_t value);
  Statement& BindDouble(int index, double value);
  Statement& BindText(int index, std::string_view value);
  Statement& BindBlob(int index, std::string_view bytes);
  // Binds without a copy (SQLITE_STATIC): the caller keeps the bytes alive and unchanged
  // until the statement has run and been reset, or the parameter is bound again. For hot
  // inserts whose values live in the caller's batch.
  Statement& BindTextNoCopy(int index, std::string_view value);
  Statement& BindNull(int index);
  // Overloads for brevity; int and int64 both bind as INTEGER.
  Statement& Bind(int index, int value) { return BindInt64(index, value); }
  Statement& Bind(int index, std::int64_t value) { return BindInt64(index, value); }
  Statement& Bind(int index, double value) { return BindDouble(index, value); }
  Statement& Bind(int index, std::string_view value) { return BindText(index, value); }
  Statement& Bind(int index, const char* value) { return BindText(index, value); }
  Statement& Bind(int index, const std::string& value) { return BindText(index, value); }
  Statement& Bind(int index, std::nullptr_t) { return BindNull(index); }

  // Advances: true when a row is available, false when the statement is done.
  // Throws DatabaseError on failure (the statement is then reset).
  bool Step();
  // Steps to completion, for statements that return no rows.
  void Run();
  // Ready to run again; clears the bindings too.
  void Reset();
  // Ready to run again, keeping the bindings: for hot statements that bind every
  // parameter again before each run (saves sqlite3_clear_bindings, ~4% of the audit
  // writer). A parameter not bound again keeps its last value.
  void Rewind();

  int ColumnCount() const;
  bool ColumnIsNull(int column) const;
  std::int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;       // "" for NULL
  std::string_view ColumnTextView(int column) const;  // valid until the next Step/Reset
  std::string ColumnBlob(int column) const;       // the bytes, "" for NULL

  std::string_view sql() const;

 private:
  sqlite3* db() const;
  // Only the SQLite handle: the connection is found through it, so moving the Database
  // that prepared this statement does not leave it dangling.
  sqlite3_stmt* stmt_ = nullptr;
};

// "<insert_head> VALUES <row>, <row>, ..." with `rows` copies of `row` (e.g. "(?, ?)"):
// one statement for several rows, its parameters numbered row after row.
std::string InsertValuesSql(std::string_view insert_head, std::string_view row, int rows);

// Inserts rows 0..n-1: rows_per_statement at a time through `many` (InsertValuesSql with
// that many rows), the rest one by one through `one`. Each statement is rewound, not
// reset, before it is bound again: every parameter is bound each time, so the bindings
// may stay (and text bound without a copy must outlive the call).
// bind_row(statement, slot, row) binds `row` as the statement's slot-th row (0 for `one`).
template <class BindRow>
void InsertRows(Statement& many, Statement& one, int rows_per_statement, std::size_t n, BindRow&& bind_row) {
  const auto per = static_cast<std::size_t>(rows_per_statement);
  std::size_t i = 0;
  for (; i + per <= n; i += per) {
    many.Rewind();
    for (std::size_t k = 0; k < per; ++k) bind_row(many, static_cast<int>(k), i + k);
    many.Run();
  }
  for (; i < n; ++i) {
    one.Rewind();
    bind_row(one, 0, i);
    one.Run();
  }
}

}  // namespace caregate::store
