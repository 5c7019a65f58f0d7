#pragma once
// Numbered SQL migrations. Every module that keeps tables in the shared database owns a
// range of version numbers (below) and registers its migrations as {version, sql} at
// open: `db.Migrate("audit", {{100, "CREATE TABLE ..."}, {101, "ALTER TABLE ..."}})`.
// Applied versions are recorded in schema_migrations(version, module, applied_at); a
// migration, once shipped, is never edited, only followed by a new one.
#include <optional>
#include <string_view>

namespace caregate::store {

struct Migration {
  int version;
  std::string_view sql;  // one or more ';'-separated statements
};

struct MigrationRange {
  std::string_view module;
  int first;
  int last;
};

// The one table of version ranges; a new module adds a line here.
inline constexpr MigrationRange kMigrationRanges[] = {
    {"store", 1, 99},
    {"audit", 100, 199},
    {"export", 200, 299},
    {"identity", 300, 399},
};

inline std::optional<MigrationRange> FindMigrationRange(std::string_view module) {
  for (const auto& r : kMigrationRanges)
    if (r.module == module) return r;
  return std::nullopt;
}

}  // namespace caregate::store
