#pragma once
// Internal: turns an SQLite result code into a DatabaseError.
#include <string_view>

struct sqlite3;

namespace caregate::store {

// "<path>: <context>: <message>"; the path defaults to the connection's main file.
// The message is the connection's own when its last error is `rc`, else SQLite's
// generic text for `rc`.
[[noreturn]] void ThrowSqliteError(sqlite3* db, int rc, std::string_view context = {},
                                   std::string_view path = {});

}  // namespace caregate::store
