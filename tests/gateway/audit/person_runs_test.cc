// The person index kept as sorted runs (gateway/audit/src/person_runs.h): queries by
// person find exactly the events naming them, whether their events are in completed
// runs, in the run being appended or in the unindexed tail; Verify catches an edited
// index; a file from before the runs is converted; two writers on one file agree.
#include <gtest/gtest.h>

#include <algorithm>
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

constexpr AuditLogOptions kSmallRuns{.person_run_events = 8, .person_run_chunk = 3};


// The persons of event i (1-based): a few people seen often, some events naming two ids
// (one of them twice), some none.
std::vector<std::string> PersonsOf(int i) {
  if (i % 7 == 0) return {};
  std::vector<std::string> ids{"cis:" + std::to_string(i % 5)};
  if (i % 3 == 0) ids.push_back("nhs:99120038" + std::to_string(10 + i % 4));
  if (i % 11 == 0) ids.push_back(ids.front());
  return ids;
}

class PersonRuns : public ::testing::Test {
 protected:
  // What every person query must return: from the events as appended.
  void Note(std::int64_t seq, const std::vector<std::string>& ids) {
    for (const auto& id : ids) expected_[id].insert(seq);
  }
  void ExpectQueriesMatch(const AuditLog& log) {
    for (const auto& [id, seqs] : expected_) {
      std::set<std::int64_t> got;
      for (const auto& e : log.Query({.person_id = id})) got.insert(e.seq);
      EXPECT_EQ(got, seqs) << id;
    }
    EXPECT_TRUE(log.Query({.person_id = "cis:nobody"}).empty());
  }

  TempDir dir_;
  std::string path_ = dir_.file("audit.db");
  std::map<std::string, std::set<std::int64_t>> expected_;
};

TEST_F(PersonRuns, QueriesFindEveryEventOfAPersonAsRunsAreBuilt) {
  AuditLog log(path_, kSmallRuns);
  for (int i = 1; i <= 60; ++i) {
    const auto ids = PersonsOf(i);
    Note(log.AppendDurable(MakeEvent("user" + std::to_string(i % 3), ids)), ids);
    ExpectQueriesMatch(log);  // at every stage: tail, run half appended, runs complete
    ASSERT_TRUE(log.Verify().ok) << "after event " << i << ": " << log.Verify().problem;
  }
  log.Close();
  // Runs were completed, covering a prefix of the events with no gap.
  EXPECT_GE(Scalar(path_, "SELECT count(*) FROM audit_runs"), 3);
  EXPECT_EQ(Scalar(path_, "SELECT min(first_seq) FROM audit_runs"), 1);
  EXPECT_EQ(Scalar(path_, "SELECT indexed_upto FROM audit_head"), Scalar(path_, "SELECT max(last_seq) FROM audit_runs"));
  EXPECT_GT(Scalar(path_, "SELECT count(*) FROM audit_person_runs"), 40);
}

TEST_F(PersonRuns, GroupCommitsOfManyEventsAreIndexedToo) {
  AuditLog log(path_, kSmallRuns);
  std::vector<std::future<std::int64_t>> futures;
  std::vector<std::vector<std::string>> ids;
  for (int i = 1; i <= 200; ++i) {
    ids.push_back(PersonsOf(i));
    futures.push_back(log.Append(MakeEvent("u", ids.back())));
  }
  for (std::size_t i = 0; i < futures.size(); ++i) Note(futures[i].get(), ids[i]);
  ExpectQueriesMatch(log);
  EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
}

// Runs prepared on a thread of their own (every run, however small): each is taken by a
// later batch once it has arrived, and a batch finding two runs' worth of events unindexed
// waits for it, so the tail a person query scans stays bounded.
TEST_F(PersonRuns, RunsPreparedInTheBackgroundIndexEveryEventAndKeepTheTailBounded) {
  constexpr AuditLogOptions kBackground{.person_run_events = 8, .person_run_chunk = 3, .person_run_background_pairs = 0};
  AuditLog log(path_, kBackground);
  for (int i = 1; i <= 120; ++i) {
    const auto ids = PersonsOf(i);
    Note(log.AppendDurable(MakeEvent("u", ids)), ids);
    // A run covers 8 events (~12 pairs, 4 batches of 3): the tail never passes 2 runs + 8.
    const auto tail = Scalar(path_, "SELECT seq - indexed_upto FROM audit_head");
    ASSERT_LE(tail, 3 * kBackground.person_run_events) << "after event " << i;
    if (i % 10 == 0) {
      ExpectQueriesMatch(log);
      ASSERT_TRUE(log.Verify().ok) << "after event " << i << ": " << log.Verify().problem;
    }
  }
  ExpectQueriesMatch(log);
  EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
  EXPECT_GE(Scalar(path_, "SELECT count(*) FROM audit_runs"), 5);
}

// A server stopped while a run was half appended: the next one reads that run's pairs
// back from the table (in the background) and completes it.
TEST_F(PersonRuns, ARunHalfAppendedBeforeARestartIsReadBackAndCompleted) {
  {
    AuditLog log(path_, {.person_run_events = 8, .person_run_chunk = 1});
    int i = 0;
    while (Scalar(path_, "SELECT run_inserted FROM audit_head") < 2) {
      ASSERT_LT(++i, 40) << "no run was begun";
      const auto ids = PersonsOf(i);
      Note(log.AppendDurable(MakeEvent("u", ids)), ids);
    }
    ASSERT_NE(Scalar(path_, "SELECT run_last FROM audit_head"), 0);
    ASSERT_EQ(Scalar(path_, "SELECT count(*) FROM audit_runs"), 0);
  }
  AuditLog log(path_, {.person_run_events = 8, .person_run_chunk = 1, .person_run_background_pairs = 0});
  for (int i = 40; i < 80; ++i) {
    const auto ids = PersonsOf(i);
    Note(log.AppendDurable(MakeEvent("u", ids)), ids);
    ASSERT_TRUE(log.Verify().ok) << "after event " << i << ": " << log.Verify().problem;
  }
  ExpectQueriesMatch(log);
  EXPECT_EQ(Scalar(path_, "SELECT min(first_seq) FROM audit_runs"), 1);
  EXPECT_GE(Scalar(path_, "SELECT count(*) FROM audit_runs"), 2);
}

// A commit of one event appends at most 64 pairs of a run, however large the chunk: the
// run is spread over the commits rather than landing on a few of them.
TEST_F(PersonRuns, EachCommitAppendsAShareOfTheRunInProportionToItsSize) {
  AuditLog log(path_, {.person_run_events = 200, .person_run_chunk = 512});
  std::int64_t inserted = 0, largest_step = 0, runs_seen = 0;
  for (int i = 1; i <= 600; ++i) {
    const auto ids = PersonsOf(i);
    Note(log.AppendDurable(MakeEvent("u", ids)), ids);
    const auto now = Scalar(path_, "SELECT count(*) FROM audit_person_runs");
    largest_step = std::max(largest_step, now - inserted);
    inserted = now;
    runs_seen = Scalar(path_, "SELECT count(*) FROM audit_runs");
  }
  EXPECT_LE(largest_step, 64);
  EXPECT_GT(largest_step, 0);
  EXPECT_GE(runs_seen, 2);  // and the runs are completed all the same
  ExpectQueriesMatch(log);
  EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
}

class PersonRunsTampered : public PersonRuns {
 protected:
  void SetUp() override {
    AuditLog log(path_, kSmallRuns);
    for (int i = 1; i <= 30; ++i) log.AppendDurable(MakeEvent("u", PersonsOf(i)));
    ASSERT_TRUE(log.Verify().ok);
  }
  VerifyResult TamperThenVerify(const std::string& sql, const std::string& problem) {
    return testing::TamperThenVerify(path_, sql, problem);
  }
};

TEST_F(PersonRunsTampered, ARowRemovedFromACompletedRunIsFound) {
  // Hiding an access from person reports without touching the chain.
  const auto r =
      TamperThenVerify("DELETE FROM audit_person_runs WHERE first_seq = 1 AND person_id = 'cis:1'", "person index");
  EXPECT_EQ(r.first_bad_seq, 1);
}

TEST_F(PersonRunsTampered, ARowAddedToARunIsFound) {
  TamperThenVerify("INSERT INTO audit_person_runs VALUES (1, 'cis:9', 2)", "person index");
}

TEST_F(PersonRunsTampered, ARunRemovedFromTheListIsFound) {
  TamperThenVerify("DELETE FROM audit_runs WHERE first_seq = 1", "person index");
}

TEST_F(PersonRunsTampered, RowsForARunNotBeingBuiltAreFound) {
  TamperThenVerify("INSERT INTO audit_person_runs VALUES (1000, 'cis:1', 1000)", "not being built");
}

TEST_F(PersonRuns, AFileFromBeforeTheRunsIsConverted) {
  {
    AuditLog log(path_);  // runs far off: every event stays in the tail
    for (int i = 1; i <= 12; ++i) {
      const auto ids = PersonsOf(i);
      Note(log.AppendDurable(MakeEvent("u", ids)), ids);
    }
  }
  // Put the file back as migration 100 left it: the B-tree person index, no runs.
  Tamper(path_,
         "DROP TABLE audit_runs; DROP TABLE audit_person_runs;"
         "ALTER TABLE audit_head DROP COLUMN indexed_upto; ALTER TABLE audit_head DROP COLUMN run_last;"
         "ALTER TABLE audit_head DROP COLUMN run_inserted;"
         "CREATE INDEX audit_event_persons_by_person ON audit_event_persons(person_id, seq);"
         "DELETE FROM schema_migrations WHERE version = 101;");
  {
    std::set<std::int64_t> got;
    for (const auto& e : QueryAuditTrail(path_, {.person_id = "cis:1"})) got.insert(e.seq);
    EXPECT_EQ(got, expected_["cis:1"]);  // the old file is still queried correctly
  }
  AuditLog log(path_, kSmallRuns);
  EXPECT_EQ(Scalar(path_, "SELECT indexed_upto FROM audit_head"), 12);  // history is run 1
  EXPECT_EQ(Scalar(path_, "SELECT count(*) FROM sqlite_schema WHERE name = 'audit_event_persons_by_person'"), 0);
  for (int i = 13; i <= 30; ++i) {
    const auto ids = PersonsOf(i);
    Note(log.AppendDurable(MakeEvent("u", ids)), ids);
  }
  ExpectQueriesMatch(log);
  EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
}

TEST_F(PersonRuns, TwoWritersOnOneFileKeepOneIndex) {
  AuditLog a(path_, kSmallRuns), b(path_, kSmallRuns);
  for (int i = 1; i <= 50; ++i) {
    const auto ids = PersonsOf(i);
    AuditLog& log = (i / 3) % 2 ? a : b;  // turns of three events each
    Note(log.AppendDurable(MakeEvent("u", ids)), ids);
  }
  ExpectQueriesMatch(a);
  EXPECT_TRUE(b.Verify().ok) << b.Verify().problem;
  EXPECT_GE(Scalar(path_, "SELECT count(*) FROM audit_runs"), 3);
}

}  // namespace
}  // namespace caregate::audit
