#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include <string>
#include <vector>

#include "audit_test_support.h"
#include "caregate/audit/audit_log.h"
#include "caregate/store/database.h"

namespace caregate::audit {
namespace {

using testing::MakeEvent;
using testing::TempDir;

std::vector<std::int64_t> Seqs(const std::vector<AuditEvent>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.seq);
  return out;
}

using Seq = std::vector<std::int64_t>;

class AuditQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_.AppendDurable(MakeEvent("alice", {"nhs:9912003888", "s1:A1"}, "200", "2024-05-01T10:00:00Z"));
    log_.AppendDurable(MakeEvent("bob", {"cis:77"}, "200", "2024-05-02T00:00:00Z"));
    log_.AppendDurable(MakeEvent("alice", {"cis:77", "nhs:9912003888"}, "403 consent-withheld",
                                 "2024-05-02T23:59:59.999Z"));
    log_.AppendDurable(MakeEvent("carol", {"nhs:9912003888"}, "200", "2024-05-03T00:00:00Z"));
    log_.AppendDurable(MakeEvent("bob", {}, "200", "2024-05-03T12:00:00.500Z"));
  }

  TempDir dir_;
  std::string path_ = dir_.file("a.db");
  AuditLog log_{path_};
};

TEST_F(AuditQueryTest, NoFiltersReturnsEverythingInSeqOrder) {
  EXPECT_EQ(Seqs(log_.Query({})), (Seq{1, 2, 3, 4, 5}));
}

TEST_F(AuditQueryTest, FiltersByPersonOnAnyOfTheEventsIds) {
  EXPECT_EQ(Seqs(log_.Query({.person_id = "nhs:9912003888"})), (Seq{1, 3, 4}));
  EXPECT_EQ(Seqs(log_.Query({.person_id = "cis:77"})), (Seq{2, 3}));
  EXPECT_EQ(Seqs(log_.Query({.person_id = "s1:A1"})), (Seq{1}));
  EXPECT_TRUE(log_.Query({.person_id = "nhs:99120038"}).empty());  // exact, not prefix
  const auto events = log_.Query({.person_id = "cis:77"});
  EXPECT_EQ(events[1].person_ids, (std::vector<std::string>{"cis:77", "nhs:9912003888"}));
}

TEST_F(AuditQueryTest, FiltersByUser) {
  EXPECT_EQ(Seqs(log_.Query({.user = "bob"})), (Seq{2, 5}));
  EXPECT_TRUE(log_.Query({.user = "Bob"}).empty());
}

TEST_F(AuditQueryTest, DateBoundsAreInclusiveWholeDays) {
  EXPECT_EQ(Seqs(log_.Query({.from = "2024-05-02", .to = "2024-05-02"})), (Seq{2, 3}));
  EXPECT_EQ(Seqs(log_.Query({.from = "2024-05-03"})), (Seq{4, 5}));
  EXPECT_EQ(Seqs(log_.Query({.to = "2024-05-01"})), (Seq{1}));
}

TEST_F(AuditQueryTest, TimeBoundsAreInclusiveAndHonourOffsets) {
  EXPECT_EQ(Seqs(log_.Query({.from = "2024-05-01T10:00:00Z", .to = "2024-05-01T10:00:00Z"})), (Seq{1}));
  EXPECT_EQ(Seqs(log_.Query({.from = "2024-05-01T11:00:00+01:00", .to = "2024-05-01T11:00:00+01:00"})),
            (Seq{1}));
  EXPECT_EQ(Seqs(log_.Query({.from = "2024-05-03T12:00:00Z", .to = "2024-05-03T12:00:00Z"})), (Seq{5}));
  EXPECT_EQ(Seqs(log_.Query({.from = "2024-05-03T12:00:00.501Z"})), (Seq{}));
  EXPECT_EQ(Seqs(log_.Query({.to = "2024-05-02T23:59:59.998Z"})), (Seq{1, 2}));
}

TEST_F(AuditQueryTest, CombinesFilters) {
  EXPECT_EQ(Seqs(log_.Query({.person_id = "nhs:9912003888", .user = "alice", .from = "2024-05-02"})),
            (Seq{3}));
}

TEST_F(AuditQueryTest, LimitAndAfterSeqPage) {
  EXPECT_EQ(Seqs(log_.Query({.limit = 2})), (Seq{1, 2}));
  EXPECT_EQ(Seqs(log_.Query({.after_seq = 2, .limit = 2})), (Seq{3, 4}));
  EXPECT_EQ(Seqs(log_.Query({.person_id = "nhs:9912003888", .after_seq = 1, .limit = 1})), (Seq{3}));
  EXPECT_TRUE(log_.Query({.limit = 0}).empty());
}

TEST_F(AuditQueryTest, BadQueriesAreReportedAsFieldErrors) {
  const FieldErrors errors = CheckAuditQuery({.from = "yesterday", .to = "2024-02-30", .limit = -1});
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].path, "from");
  EXPECT_EQ(errors[1].path, "to");
  EXPECT_EQ(errors[2].path, "limit");
  EXPECT_TRUE(CheckAuditQuery({.from = "2024-05-01", .to = "2024-05-01T10:00:00Z"}).empty());
  try {
    log_.Query({.from = "yesterday"});
    FAIL();
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kUsage);
  }
}

TEST_F(AuditQueryTest, QueriesByPathWhileTheLogIsOpen) {
  EXPECT_EQ(Seqs(QueryAuditTrail(path_, {.user = "carol"})), (Seq{4}));
}

TEST_F(AuditQueryTest, PersonAndUserFiltersUseIndexes) {
  store::Database db(path_);
  auto plan = [&](const std::string& sql) {
    std::string out;
    auto s = db.Prepare("EXPLAIN QUERY PLAN " + sql);
    while (s.Step()) out += s.ColumnText(3) + "\n";
    return out;
  };
  // A person's events: one primary-key seek per completed run, and the tail after them
  // read by seq (not the whole table).
  const std::string person = plan(
      "SELECT r.seq FROM audit_runs AS k CROSS JOIN audit_person_runs AS r "
      "ON r.first_seq = k.first_seq AND r.person_id = 'x' "
      "UNION ALL SELECT seq FROM audit_event_persons "
      "WHERE seq > (SELECT indexed_upto FROM audit_head WHERE id = 1) AND person_id = 'x'");
  EXPECT_NE(person.find("SEARCH r USING PRIMARY KEY (first_seq=? AND person_id=?)"), std::string::npos) << person;
  EXPECT_NE(person.find("SEARCH audit_event_persons USING PRIMARY KEY (seq>?)"), std::string::npos) << person;
  // A user's events: one primary-key seek per completed run, and the tail after them
  // read by seq.
  const std::string user = plan(
      "SELECT r.seq FROM audit_user_run_list AS k CROSS JOIN audit_user_runs AS r "
      "ON r.first_seq = k.first_seq AND r.user = 'x' "
      "UNION ALL SELECT seq FROM audit_events "
      "WHERE seq > (SELECT users_indexed_upto FROM audit_head WHERE id = 1) AND user = 'x'");
  EXPECT_NE(user.find("SEARCH r USING PRIMARY KEY (first_seq=? AND user=?)"), std::string::npos) << user;
  EXPECT_NE(user.find("SEARCH audit_events USING INTEGER PRIMARY KEY (rowid>?)"), std::string::npos) << user;
  EXPECT_NE(plan("SELECT seq FROM audit_events WHERE time_utc >= 'x'").find("audit_events_by_time"),
            std::string::npos);
}

// A file without the audit tables is no caregate database: a report of it would say that
// nobody saw anything, so the query refuses it by name (it gave no events). Nothing is
// written to the file, whatever it is.
TEST_F(AuditQueryTest, FileWithoutAnAuditTrailIsRefusedAndLeftAsItWas) {
  TempDir dir;
  {  // someone else's SQLite file, in the default rollback-journal mode
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir.file("a.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  const auto before = std::filesystem::file_size(dir.file("a.db"));
  try {
    QueryAuditTrail(dir.file("a.db"), {});
    ADD_FAILURE() << "no error";
  } catch (const FatalError& e) {
    EXPECT_NE(std::string(e.what()).find("holds no audit trail"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(VerifyAuditTrail(dir.file("a.db")).ok);
  EXPECT_EQ(std::filesystem::file_size(dir.file("a.db")), before);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.db-wal")));
  std::ofstream(dir.file("empty.db")).flush();
  EXPECT_THROW(QueryAuditTrail(dir.file("empty.db"), {}), FatalError);
  EXPECT_EQ(std::filesystem::file_size(dir.file("empty.db")), 0u);
}

}  // namespace
}  // namespace caregate::audit
