// The user index (migration 102: audit_user_seqs, a stretch of events at a time; migration
// 103: sorted runs like the person index, audit_user_runs): no SQL index row per event on
// the user's page. Queries by user find exactly that user's events whether indexed or in
// the tail; verify catches an edited index; files from before either are converted, and
// a file in the 102 format is still queried and verified as it is.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "audit_test_support.h"
#include "caregate/audit/audit_log.h"
#include "caregate/store/database.h"
#include "caregate/store/statement.h"

namespace caregate::audit {
namespace {

using testing::MakeEvent;
using testing::Scalar;
using testing::Tamper;
using testing::TempDir;

constexpr AuditLogOptions kSmallStretches{.user_index_events = 4};


std::string UserOf(int i) { return i % 5 == 0 ? "amy.jones" : i % 2 == 0 ? "bob.smith" : "carol.ig"; }

class UserIndex : public ::testing::Test {
 protected:
  void ExpectQueriesMatch(const std::string& path) {
    for (const auto& [user, seqs] : expected_) {
      std::vector<std::int64_t> got;
      for (const auto& e : QueryAuditTrail(path, {.user = user})) {
        EXPECT_EQ(e.user, user);
        got.push_back(e.seq);
      }
      EXPECT_EQ(got, std::vector<std::int64_t>(seqs.begin(), seqs.end())) << user;  // in seq order
    }
    EXPECT_TRUE(QueryAuditTrail(path, {.user = "nobody"}).empty());
  }

  TempDir dir_;
  std::string path_ = dir_.file("audit.db");
  std::map<std::string, std::set<std::int64_t>> expected_;
};

TEST_F(UserIndex, QueriesFindEveryEventOfAUserIndexedOrNot) {
  AuditLog log(path_, kSmallStretches);
  for (int i = 1; i <= 23; ++i) {
    expected_[UserOf(i)].insert(log.AppendDurable(MakeEvent(UserOf(i), {"cis:1"})));
    ExpectQueriesMatch(path_);  // at every stage: some indexed, the rest in the tail
  }
  // Group commits of several events (one transaction each) are indexed too.
  std::vector<std::future<std::int64_t>> pending;
  for (int i = 24; i <= 60; ++i) pending.push_back(log.Append(MakeEvent(UserOf(i), {})));
  for (int i = 24; i <= 60; ++i) expected_[UserOf(i)].insert(pending[static_cast<std::size_t>(i - 24)].get());
  ExpectQueriesMatch(path_);
  ASSERT_TRUE(log.Verify().ok) << log.Verify().problem;
  // A run takes the events committed before its own commit, once user_index_events of
  // them wait. How the writer grouped 24-60 is up to timing (the ASan build once left
  // 59 and 60 for later), so single commits follow until a run has taken them: at most
  // a few, and the last commit's own event always waits for a later run.
  std::int64_t last = 0;
  do {
    last = log.AppendDurable(MakeEvent(UserOf(static_cast<int>(last ? last + 1 : 61)), {}));
    expected_[UserOf(static_cast<int>(last))].insert(last);
  } while (Scalar(path_, "SELECT users_indexed_upto FROM audit_head") < 60 && last < 66);
  log.Close();
  const std::int64_t upto = Scalar(path_, "SELECT users_indexed_upto FROM audit_head");
  EXPECT_GE(upto, 60);
  EXPECT_LT(upto, last);
  EXPECT_LE(last, 64) << "runs should have taken 1-60 within " << kSmallStretches.user_index_events << " commits";
  EXPECT_EQ(Scalar(path_, "SELECT max(last_seq) FROM audit_user_run_list"), upto);
  EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM audit_user_runs WHERE first_seq <= " + std::to_string(upto)), upto);
  EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_user_seqs'"), 0);
  EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_events_by_user'"), 0);
  // Combined with other filters.
  ExpectQueriesMatch(path_);
  const auto amy = QueryAuditTrail(path_, {.person_id = "cis:1", .user = "amy.jones"});
  ASSERT_EQ(amy.size(), 4u);  // events 5, 10, 15, 20
  EXPECT_EQ(amy.front().seq, 5);
  EXPECT_EQ(amy.back().seq, 20);
}

class UserIndexTampered : public UserIndex {
 protected:
  void SetUp() override {
    AuditLog log(path_, kSmallStretches);
    for (int i = 1; i <= 10; ++i) log.AppendDurable(MakeEvent(UserOf(i), {"cis:1"}));
    log.Close();
    // A run is due once 4 events are unindexed, and takes the committed ones: 1-3, 4-6, 7-9.
    ASSERT_EQ(Scalar(path_, "SELECT users_indexed_upto FROM audit_head"), 9);
    ASSERT_EQ(Scalar(path_, "SELECT count(*) FROM audit_user_run_list"), 3);
    ASSERT_TRUE(VerifyAuditTrail(path_).ok);
  }
  VerifyResult TamperThenVerify(const std::string& sql, const std::string& problem) {
    return testing::TamperThenVerify(path_, sql, problem);
  }
};

TEST_F(UserIndexTampered, ARowRemovedIsFound) {
  // Hiding an access from reports by user without touching the chain.
  const auto r = TamperThenVerify("DELETE FROM audit_user_runs WHERE seq = 5", "user index of events 4 to 6");
  EXPECT_EQ(r.first_bad_seq, 4);
}

TEST_F(UserIndexTampered, ARowMovedToAnotherUserIsFound) {
  const auto r =
      TamperThenVerify("UPDATE audit_user_runs SET user = 'bob.smith' WHERE seq = 5", "does not match the events");
  EXPECT_EQ(r.first_bad_seq, 4);
}

TEST_F(UserIndexTampered, ARowAddedBeyondTheIndexedEventsIsFound) {
  const auto r = TamperThenVerify("INSERT INTO audit_user_runs(first_seq, user, seq) VALUES (10, 'bob.smith', 10)",
                                  "not being built");
  EXPECT_EQ(r.first_bad_seq, 10);
}

TEST_F(UserIndexTampered, ARowAddedToACompletedRunIsFound) {
  const auto r = TamperThenVerify("INSERT INTO audit_user_runs(first_seq, user, seq) VALUES (4, 'amy.jones', 9)",
                                  "does not match the events");
  EXPECT_EQ(r.first_bad_seq, 4);
}

TEST_F(UserIndexTampered, ARunRemovedFromTheListIsFound) {
  TamperThenVerify("DELETE FROM audit_user_run_list WHERE first_seq = 1", "do not follow on");
}

TEST_F(UserIndex, AFileFromBeforeTheIndexIsConverted) {
  {
    AuditLog log(path_);
    for (int i = 1; i <= 12; ++i) expected_[UserOf(i)].insert(log.AppendDurable(MakeEvent(UserOf(i), {})));
  }
  // Put the file back as migration 101 left it: the SQL index on (user, time_utc).
  Tamper(path_,
         "DROP TABLE audit_user_runs; DROP TABLE audit_user_run_list;"
         "ALTER TABLE audit_head DROP COLUMN users_run_last; ALTER TABLE audit_head DROP COLUMN users_run_inserted;"
         "ALTER TABLE audit_head DROP COLUMN users_indexed_upto;"
         "CREATE INDEX audit_events_by_user ON audit_events(user, time_utc);"
         "DELETE FROM schema_migrations WHERE version IN (102, 103);");
  ExpectQueriesMatch(path_);  // the old file is still queried correctly
  ASSERT_TRUE(VerifyAuditTrail(path_).ok);
  {
    AuditLog log(path_, kSmallStretches);  // migrations 102 and 103: the history is run 1
    EXPECT_EQ(Scalar(path_, "SELECT users_indexed_upto FROM audit_head"), 12);
    EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM audit_user_runs WHERE first_seq = 1"), 12);
    EXPECT_EQ(Scalar(path_, "SELECT last_seq FROM audit_user_run_list WHERE first_seq = 1"), 12);
    for (int i = 13; i <= 15; ++i) expected_[UserOf(i)].insert(log.AppendDurable(MakeEvent(UserOf(i), {})));
    ExpectQueriesMatch(path_);
    EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
  }
}

// A file as a version between migrations 102 and 103 left it (one audit_user_seqs table)
// is queried and verified as it is, and converted to runs when next opened for writing.
TEST_F(UserIndex, AFileWithTheStretchIndexIsReadAsItIsThenConverted) {
  {
    AuditLog log(path_, kSmallStretches);
    for (int i = 1; i <= 14; ++i) expected_[UserOf(i)].insert(log.AppendDurable(MakeEvent(UserOf(i), {})));
  }
  const auto upto = Scalar(path_, "SELECT users_indexed_upto FROM audit_head");
  ASSERT_GE(upto, 8);
  Tamper(path_,
         "CREATE TABLE audit_user_seqs (user TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (user, seq)) WITHOUT ROWID;"
         "INSERT INTO audit_user_seqs SELECT user, seq FROM audit_user_runs WHERE first_seq <= "
         "(SELECT users_indexed_upto FROM audit_head);"
         "DROP TABLE audit_user_runs; DROP TABLE audit_user_run_list;"
         "ALTER TABLE audit_head DROP COLUMN users_run_last; ALTER TABLE audit_head DROP COLUMN users_run_inserted;"
         "DELETE FROM schema_migrations WHERE version = 103;");
  ExpectQueriesMatch(path_);
  ASSERT_TRUE(VerifyAuditTrail(path_).ok) << VerifyAuditTrail(path_).problem;
  {
    AuditLog log(path_, kSmallStretches);
    EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_user_seqs'"), 0);
    EXPECT_EQ(Scalar(path_, "SELECT last_seq FROM audit_user_run_list WHERE first_seq = 1"), upto);
    for (int i = 15; i <= 30; ++i) expected_[UserOf(i)].insert(log.AppendDurable(MakeEvent(UserOf(i), {})));
    ExpectQueriesMatch(path_);
    EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
    EXPECT_GT(Scalar(path_, "SELECT count(*) FROM audit_user_run_list"), 1);
  }
  // And the stretch index's own check still runs on such a file.
  Tamper(path_,
         "CREATE TABLE audit_user_seqs (user TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (user, seq)) WITHOUT ROWID;"
         "INSERT INTO audit_user_seqs VALUES ('nobody', 1);");
  const auto r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("user index"), std::string::npos) << r.problem;
}

}  // namespace
}  // namespace caregate::audit
