// Tampering with the file directly, as someone with write access to it would, and
// checking that Verify names the first bad event.
#include <gtest/gtest.h>

#include <string>

#include "audit_test_support.h"
#include "caregate/audit/audit_log.h"

namespace caregate::audit {
namespace {

using testing::MakeEvent;
using testing::Tamper;
using testing::TempDir;

constexpr int kEvents = 6;

class AuditChain : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditLog log(path_);
    for (int i = 1; i <= kEvents; ++i)
      log.AppendDurable(MakeEvent("user" + std::to_string(i), {"nhs:99120038" + std::to_string(80 + i), "cis:" + std::to_string(i)}));
    events_ = log.Query({});
    ASSERT_EQ(events_.size(), static_cast<std::size_t>(kEvents));
  }

  std::string Hash(int seq) const { return events_[static_cast<std::size_t>(seq - 1)].hash; }

  // The SQL to insert an event row exactly as the log would have written it.
  static std::string InsertSql(const AuditEvent& e) {
    std::string sql =
        "INSERT INTO audit_events(seq, time_utc, user, role, organisation, action, view, outcome, "
        "request_id, detail, prev_hash, hash) VALUES (" +
        std::to_string(e.seq) + ", '" + e.time_utc + "', '" + e.user + "', '" + e.role + "', '" +
        e.organisation + "', '" + e.action + "', '" + e.view + "', '" + e.outcome + "', '" +
        e.request_id + "', '" + e.detail + "', '" + e.prev_hash + "', '" + e.hash + "');";
    for (std::size_t i = 0; i < e.person_ids.size(); ++i)
      sql += "INSERT INTO audit_event_persons(seq, pos, person_id) VALUES (" + std::to_string(e.seq) +
             ", " + std::to_string(i) + ", '" + e.person_ids[i] + "');";
    return sql;
  }

  // A forged event that hashes correctly onto event `after`.
  AuditEvent Forge(std::int64_t seq, int after) const {
    AuditEvent e = MakeEvent("intruder", {"nhs:9912003888"}, "200", events_[0].time_utc);
    e.seq = seq;
    e.prev_hash = Hash(after);
    e.hash = ComputeAuditHash(e);
    return e;
  }

  TempDir dir_;
  std::string path_ = dir_.file("audit.db");
  std::vector<AuditEvent> events_;
};

TEST_F(AuditChain, UntouchedChainVerifies) {
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, kEvents);
  EXPECT_EQ(r.first_bad_seq, 0);
  EXPECT_EQ(r.head_seq, kEvents);
  EXPECT_EQ(r.head_hash, Hash(kEvents));
  EXPECT_EQ(events_[0].prev_hash, kGenesisHash);
  for (int i = 1; i < kEvents; ++i) EXPECT_EQ(events_[static_cast<std::size_t>(i)].prev_hash, Hash(i));
}

TEST_F(AuditChain, DetectsEditedEvent) {
  Tamper(path_, "UPDATE audit_events SET outcome = '200' , detail = 'nothing to see' WHERE seq = 3");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 3);
  EXPECT_EQ(r.count, 2);
  EXPECT_NE(r.problem.find("altered"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsEditedTimeEvenByOneMillisecond) {
  std::string t = events_[1].time_utc;
  t[22] = t[22] == '0' ? '1' : '0';
  Tamper(path_, "UPDATE audit_events SET time_utc = '" + t + "' WHERE seq = 2");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 2);
}

TEST_F(AuditChain, DetectsEditedEventWithRecomputedHash) {
  // Editing the event and fixing its own hash still breaks the link to the next event.
  AuditEvent e = events_[2];
  e.user = "someone-else";
  e.hash = ComputeAuditHash(e);
  Tamper(path_, "UPDATE audit_events SET user = '" + e.user + "', hash = '" + e.hash + "' WHERE seq = 3");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 4);
  EXPECT_NE(r.problem.find("does not follow on"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsPersonIdEditedAddedOrRemoved) {
  Tamper(path_, "UPDATE audit_event_persons SET person_id = 'nhs:0000000000' WHERE seq = 2 AND pos = 0");
  EXPECT_EQ(VerifyAuditTrail(path_).first_bad_seq, 2);

  TempDir other;
  const std::string p2 = other.file("b.db");
  {
    AuditLog log(p2);
    for (int i = 0; i < 4; ++i) log.AppendDurable(MakeEvent("u", {"nhs:1", "cis:1"}));
  }
  Tamper(p2, "DELETE FROM audit_event_persons WHERE seq = 3 AND pos = 1");
  EXPECT_EQ(VerifyAuditTrail(p2).first_bad_seq, 3);
  Tamper(p2, "INSERT INTO audit_event_persons VALUES (3, 1, 'cis:1'), (2, 5, 'cis:2')");
  EXPECT_EQ(VerifyAuditTrail(p2).first_bad_seq, 2);
}

TEST_F(AuditChain, DetectsInsertedRowAtTheEnd) {
  // Even a correctly hashed event appended behind the log's back: the head disagrees.
  Tamper(path_, InsertSql(Forge(kEvents + 1, kEvents)));
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, kEvents + 1);
  EXPECT_EQ(r.count, kEvents + 1);
  EXPECT_NE(r.problem.find("inserted"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsInsertedRowWithMadeUpHash) {
  AuditEvent e = Forge(kEvents + 1, kEvents);
  e.hash = std::string(64, 'a');
  Tamper(path_, InsertSql(e) + "UPDATE audit_head SET seq = seq + 1, hash = '" + e.hash + "';");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, kEvents + 1);
  EXPECT_NE(r.problem.find("altered"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsInsertedRowInTheMiddle) {
  // Make room after event 2 by renumbering the rest, slip in a correctly hashed event 3
  // and move the head: the renumbered old event 3 (now 4) no longer fits.
  Tamper(path_,
         "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 2;"
         "UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000;"
         "UPDATE audit_event_persons SET seq = seq + 1000 WHERE seq > 2;"
         "UPDATE audit_event_persons SET seq = seq - 999 WHERE seq > 1000;"
         "UPDATE audit_head SET seq = seq + 1;" +
             InsertSql(Forge(3, 2)));
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 4);
  EXPECT_EQ(r.count, 3);
}

TEST_F(AuditChain, DetectsDeletedMiddleRow) {
  Tamper(path_, "DELETE FROM audit_events WHERE seq = 3; DELETE FROM audit_event_persons WHERE seq = 3");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 3);
  EXPECT_EQ(r.count, 2);
  EXPECT_NE(r.problem.find("missing"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsDeletedMiddleRowLeavingItsPersonIds) {
  Tamper(path_, "DELETE FROM audit_events WHERE seq = 4");
  EXPECT_EQ(VerifyAuditTrail(path_).first_bad_seq, 4);
}

TEST_F(AuditChain, DetectsDeletedFirstRow) {
  Tamper(path_, "DELETE FROM audit_events WHERE seq = 1; DELETE FROM audit_event_persons WHERE seq = 1");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 1);
}

TEST_F(AuditChain, DetectsDeletedLastRow) {
  Tamper(path_, "DELETE FROM audit_events WHERE seq = " + std::to_string(kEvents) +
                    "; DELETE FROM audit_event_persons WHERE seq = " + std::to_string(kEvents));
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, kEvents);
  EXPECT_EQ(r.count, kEvents - 1);
  EXPECT_NE(r.problem.find("removed"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsDeletedLastRowWhenTheHeadSeqIsWoundBack) {
  Tamper(path_, "DELETE FROM audit_events WHERE seq = " + std::to_string(kEvents) +
                    "; DELETE FROM audit_event_persons WHERE seq = " + std::to_string(kEvents) +
                    "; UPDATE audit_head SET seq = seq - 1");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, kEvents - 1);
  EXPECT_NE(r.problem.find("head hash"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsMissingHead) {
  Tamper(path_, "DELETE FROM audit_head");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("head"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, DetectsDroppedTables) {
  Tamper(path_, "DROP TABLE audit_events");
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("no audit trail"), std::string::npos) << r.problem;
}

TEST_F(AuditChain, WholeChainRewriteIsOnlyExposedByAnExternallyAnchoredHead) {
  // The documented limit: whoever can write the whole file can rebuild a consistent
  // chain. The head hash printed by verify, kept elsewhere, is what then disagrees.
  const std::string anchored = VerifyAuditTrail(path_).head_hash;
  std::string sql = "DELETE FROM audit_events; DELETE FROM audit_event_persons;";
  std::string prev(kGenesisHash);
  for (AuditEvent e : events_) {
    if (e.seq == 2) e.outcome = "403 consent-withheld";
    e.prev_hash = prev;
    e.hash = ComputeAuditHash(e);
    prev = e.hash;
    sql += InsertSql(e);
  }
  sql += "UPDATE audit_head SET hash = '" + prev + "';";
  Tamper(path_, sql);
  const VerifyResult r = VerifyAuditTrail(path_);
  EXPECT_TRUE(r.ok);
  EXPECT_NE(r.head_hash, anchored);
}

TEST(AuditVerify, EmptyTrailVerifies) {
  TempDir dir;
  { AuditLog log(dir.file("a.db")); }
  const VerifyResult r = VerifyAuditTrail(dir.file("a.db"));
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.head_seq, 0);
  EXPECT_EQ(r.head_hash, kGenesisHash);
}

TEST(AuditVerify, MissingFileIsFatalAndNotCreated) {
  TempDir dir;
  EXPECT_THROW(VerifyAuditTrail(dir.file("none.db")), FatalError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("none.db")));
}

}  // namespace
}  // namespace caregate::audit
