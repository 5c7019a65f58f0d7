// The user index (audit_user_seqs, migration 102): appended by the writer a stretch of
// events at a time, sorted, instead of an SQL index row per event on the user's page.
// Queries by user find exactly that user's events whether indexed or in the tail; verify
// catches an edited index; a file from before the index is converted.
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
  log.Close();
  const std::int64_t upto = Scalar(path_, "SELECT users_indexed_upto FROM audit_head");
  EXPECT_GE(upto, 56);  // at most one stretch (4 events, or one group commit) behind
  EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM audit_user_seqs"), upto);
  EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_events_by_user'"), 0);
  // Combined with other filters.
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
    ASSERT_EQ(Scalar(path_, "SELECT users_indexed_upto FROM audit_head"), 8);
    ASSERT_TRUE(VerifyAuditTrail(path_).ok);
  }
  VerifyResult TamperThenVerify(const std::string& sql, const std::string& problem) {
    return testing::TamperThenVerify(path_, sql, problem);
  }
};

TEST_F(UserIndexTampered, ARowRemovedIsFound) {
  // Hiding an access from reports by user without touching the chain.
  const auto r = TamperThenVerify("DELETE FROM audit_user_seqs WHERE seq = 5", "missing from the user index");
  EXPECT_EQ(r.first_bad_seq, 5);
}

TEST_F(UserIndexTampered, ARowMovedToAnotherUserIsFound) {
  const auto r =
      TamperThenVerify("UPDATE audit_user_seqs SET user = 'bob.smith' WHERE seq = 5", "user index");
  EXPECT_EQ(r.first_bad_seq, 5);
}

TEST_F(UserIndexTampered, ARowAddedBeyondTheIndexedEventsIsFound) {
  const auto r = TamperThenVerify("INSERT INTO audit_user_seqs(user, seq) VALUES ('bob.smith', 10)", "user index");
  EXPECT_EQ(r.first_bad_seq, 10);
}

TEST_F(UserIndex, AFileFromBeforeTheIndexIsConverted) {
  {
    AuditLog log(path_);
    for (int i = 1; i <= 12; ++i) expected_[UserOf(i)].insert(log.AppendDurable(MakeEvent(UserOf(i), {})));
  }
  // Put the file back as migration 101 left it: the SQL index on (user, time_utc).
  Tamper(path_,
         "DROP TABLE audit_user_seqs; ALTER TABLE audit_head DROP COLUMN users_indexed_upto;"
         "CREATE INDEX audit_events_by_user ON audit_events(user, time_utc);"
         "DELETE FROM schema_migrations WHERE version = 102;");
  ExpectQueriesMatch(path_);  // the old file is still queried correctly
  ASSERT_TRUE(VerifyAuditTrail(path_).ok);
  {
    AuditLog log(path_, kSmallStretches);  // migration 102 runs: history indexed at once
    EXPECT_EQ(Scalar(path_, "SELECT users_indexed_upto FROM audit_head"), 12);
    EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM audit_user_seqs"), 12);
    for (int i = 13; i <= 15; ++i) expected_[UserOf(i)].insert(log.AppendDurable(MakeEvent(UserOf(i), {})));
    ExpectQueriesMatch(path_);
    EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
  }
}

}  // namespace
}  // namespace caregate::audit
