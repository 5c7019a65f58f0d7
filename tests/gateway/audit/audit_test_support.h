#pragma once
// Helpers shared by the audit tests: a temp directory per test, event builders and
// direct SQLite access standing in for someone tampering with the file.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "caregate/audit/audit_event.h"
#include "caregate/audit/audit_log.h"
#include "caregate/store/database.h"
#include "caregate/store/statement.h"
#include "support/temp_dir.h"

namespace caregate::audit::testing {

using caregate::testing::TempDir;

// "YYYY-MM-DDTHH:MM:SS.mmmZ": the one form the log stores, which normalising leaves alone.
inline bool IsCanonicalTime(const std::string& t) {
  const auto normal = NormaliseAuditTime(t);
  return t.size() == 24 && normal && *normal == t;
}

inline AuditEvent MakeEvent(std::string user, std::vector<std::string> persons,
                            std::string outcome = "200", std::string time = "") {
  AuditEvent e;
  e.time_utc = std::move(time);
  e.user = std::move(user);
  e.role = "health";
  e.organisation = "LCH";
  e.action = "read";
  e.person_ids = std::move(persons);
  e.view = "systmone";
  e.outcome = std::move(outcome);
  e.request_id = "req-" + e.user;
  e.detail = "record viewed";
  return e;
}

// Runs SQL on the file with a plain SQLite connection, as an attacker with write access
// to the file would; fails the test if the SQL does not run.
inline void Tamper(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message << " in " << sql;
}

// The single integer `sql` gives on the file.
inline std::int64_t Scalar(const std::string& path, const std::string& sql) {
  store::Database db(path);
  auto s = db.Prepare(sql);
  EXPECT_TRUE(s.Step()) << sql;
  return s.ColumnInt64(0);
}

// Edits the file as an intruder would; verify must then fail and say `problem`.
inline VerifyResult TamperThenVerify(const std::string& path, const std::string& sql, const std::string& problem) {
  Tamper(path, sql);
  VerifyResult r = VerifyAuditTrail(path);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find(problem), std::string::npos) << r.problem;
  return r;
}

}  // namespace caregate::audit::testing
