// DeltaState: what a run stages is found again by Lookup and Staged whether it is still
// in memory or already in the TEMP table, the latest version of a key wins, and Complete
// stores exactly the staged rows.
#include "delta_state.h"  // gateway/export/src (private to the export library)

#include <gtest/gtest.h>

#include <string>

#include "../identity/records.h"
#include "caregate/audit/audit_log.h"
#include "caregate/identity/person_store.h"
#include "caregate/store/database.h"
#include "caregate/store/statement.h"
#include "support/temp_dir.h"

namespace caregate::exporter {
namespace {

using caregate::testing::TempDir;

std::int64_t Key(int i) { return static_cast<std::int64_t>(0x9E3779B97F4A7C15ull * static_cast<unsigned>(i + 1)); }

ContentHash Hash(int i, int version) {
  ContentHash h{};
  for (std::size_t b = 0; b < h.size(); ++b) h[b] = static_cast<unsigned char>((i * 31 + version * 7 + b) & 0xff);
  h[0] = static_cast<unsigned char>(version);
  h[1] = static_cast<unsigned char>(i >> 8);
  h[2] = static_cast<unsigned char>(i);
  return h;
}

RunRecord ARun(std::string date) {
  RunRecord r;
  r.run_date = std::move(date);
  r.input_sha256 = std::string(64, 'a');
  r.mapping_version = "v";
  r.out_dir = "/tmp/out";
  r.started_at = r.finished_at = "2024-05-01T00:00:00Z";
  r.manifest = "{}";
  return r;
}

audit::AuditEvent AnEvent() {
  audit::AuditEvent e;
  e.user = "night-job";
  e.role = "service";
  e.organisation = "caregate";
  e.action = "export";
  e.view = "systmone";
  e.outcome = "completed";
  e.detail = "test run";
  return e;
}

// Many more keys than are kept in memory (1,000 rows per buffer here), so early keys are
// in the TEMP table when they are looked up and staged again, and lookups run while a
// background thread is writing the buffer before.
TEST(DeltaState, StagedKeysAreFoundInMemoryAndInTheTempTableAndTheLatestWins) {
  TempDir dir;
  const std::string db = (dir.path() / "state.db").string();
  constexpr int kKeys = 20000;
  {
    DeltaState state(db, 1000);
    state.BeginRun();
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_FALSE(state.Staged(Key(i)));
      EXPECT_FALSE(state.Lookup(Key(i), Hash(i, 1), Hash(i, 1)).found);
      state.Stage(Key(i), "cis:P" + std::to_string(i), Hash(i, 1), Hash(i, 1));
    }
    for (int i : {0, 1, 5000, 12000, 18500, 18999, 19000, kKeys - 2, kKeys - 1}) {  // written and still pending
      SCOPED_TRACE(i);
      EXPECT_TRUE(state.Staged(Key(i)));
      auto same = state.Lookup(Key(i), Hash(i, 1), Hash(i, 1));
      EXPECT_TRUE(same.found && same.same_content && same.same_line);
      auto other = state.Lookup(Key(i), Hash(i, 2), Hash(i, 1));
      EXPECT_TRUE(other.found && !other.same_content && other.same_line);
    }
    // A second version of some keys (a person twice in one extract), early and late.
    for (int i = 0; i < kKeys; i += 7) state.Stage(Key(i), "cis:P" + std::to_string(i), Hash(i, 2), Hash(i, 3));
    for (int i : {0, 7, 14000, kKeys - 1 - (kKeys - 1) % 7}) {
      SCOPED_TRACE(i);
      auto seen = state.Lookup(Key(i), Hash(i, 2), Hash(i, 3));
      EXPECT_TRUE(seen.found && seen.same_content && seen.same_line);
      EXPECT_FALSE(state.Lookup(Key(i), Hash(i, 1), Hash(i, 1)).same_content);
    }
    state.Complete(ARun("2024-05-01"), AnEvent());
  }
  store::Database d(db);
  auto count = d.Prepare("SELECT count(*), count(DISTINCT key) FROM export_state");
  ASSERT_TRUE(count.Step());
  EXPECT_EQ(count.ColumnInt64(0), kKeys);
  EXPECT_EQ(count.ColumnInt64(1), kKeys);
  // Every row holds its key's latest hashes.
  DeltaState next(db);
  next.BeginRun();
  for (int i = 0; i < kKeys; ++i) {
    const int version = i % 7 == 0 ? 2 : 1;
    auto seen = next.Lookup(Key(i), Hash(i, version), Hash(i, version == 2 ? 3 : 1));
    ASSERT_TRUE(seen.found && seen.same_content && seen.same_line) << i;
    EXPECT_FALSE(next.Staged(Key(i)));
  }
}

// A key staged again while its earlier row is in the buffer being written: the newer
// row wins, in Lookup and in the state Complete stores.
TEST(DeltaState, TheNewerRowWinsWhileTheOlderIsBeingWritten) {
  TempDir dir;
  const std::string db = (dir.path() / "state.db").string();
  constexpr int kRows = 64;
  {
    DeltaState state(db, kRows);
    state.BeginRun();
    for (int round = 1; round <= 3; ++round) {
      state.Stage(Key(0), "cis:P0", Hash(0, round), Hash(0, round));
      // Fill the rest of the buffer: it is handed over with Key(0)'s row in it.
      for (int i = 1; i < kRows; ++i) state.Stage(Key(round * 1000 + i), "cis:P", Hash(i, 1), Hash(i, 1));
      auto seen = state.Lookup(Key(0), Hash(0, round), Hash(0, round));
      EXPECT_TRUE(seen.found && seen.same_content && seen.same_line) << round;
      EXPECT_FALSE(state.Lookup(Key(0), Hash(0, round - 1), Hash(0, round)).same_content) << round;
    }
    state.Stage(Key(0), "cis:P0", Hash(0, 9), Hash(0, 9));  // pending when Complete runs
    state.Complete(ARun("2024-05-01"), AnEvent());
  }
  DeltaState next(db);
  next.BeginRun();
  auto seen = next.Lookup(Key(0), Hash(0, 9), Hash(0, 9));
  EXPECT_TRUE(seen.found && seen.same_content && seen.same_line);
  EXPECT_TRUE(next.Lookup(Key(3001), Hash(1, 1), Hash(1, 1)).same_content);
}

// A background insert that fails (the TEMP database full, as on a full disk) surfaces in
// the caller, at the next hand-over or at Complete, and the state keeps what it had.
TEST(DeltaState, AFailedBackgroundInsertSurfacesAndStoresNothing) {
  TempDir dir;
  const std::string db = (dir.path() / "state.db").string();
  {
    DeltaState first(db);
    first.BeginRun();
    first.Stage(Key(0), "cis:P0", Hash(0, 1), Hash(0, 1));
    first.Complete(ARun("2024-05-01"), AnEvent());
  }
  // 700 rows: the failure is raised by Complete; 20,000: by a later Stage's hand-over.
  for (int rows : {700, 20000}) {
    SCOPED_TRACE(rows);
    DeltaState state(db, 500, 4);  // 4 pages of TEMP: fewer than 500 rows
    state.BeginRun();
    bool in_complete = false, thrown = false;
    try {
      for (int i = 1; i <= rows; ++i) state.Stage(Key(i), "cis:P" + std::to_string(i), Hash(i, 1), Hash(i, 1));
      in_complete = true;
      state.Complete(ARun("2024-05-02"), AnEvent());
    } catch (const store::DatabaseError& e) {
      thrown = true;
      EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(thrown);
    EXPECT_EQ(in_complete, rows == 700);
  }
  store::Database d(db);
  auto count = d.Prepare(
      "SELECT (SELECT count(*) FROM export_state), (SELECT count(*) FROM export_runs), "
      "(SELECT count(*) FROM audit_events)");
  ASSERT_TRUE(count.Step());
  EXPECT_EQ(count.ColumnInt64(0), 1);
  EXPECT_EQ(count.ColumnInt64(1), 1);
  EXPECT_EQ(count.ColumnInt64(2), 1);  // the failed runs left no audit event
}

// Complete records the run in the audit trail in its own transaction: one event per
// completed run, named after the run's seq, in a chain that verifies.
TEST(DeltaState, CompleteRecordsTheRunInTheAuditTrail) {
  TempDir dir;
  const std::string db = (dir.path() / "state.db").string();
  std::int64_t seqs[2] = {};
  for (int night = 0; night < 2; ++night) {
    DeltaState state(db);
    state.BeginRun();
    state.Stage(Key(night), "cis:P", Hash(night, 1), Hash(night, 1));
    seqs[night] = state.Complete(ARun(night == 0 ? "2024-05-01" : "2024-05-02"), AnEvent());
  }
  const auto events = audit::QueryAuditTrail(db, {});
  ASSERT_EQ(events.size(), 2u);
  for (int night = 0; night < 2; ++night) {
    EXPECT_EQ(events[night].request_id, "export-run-" + std::to_string(seqs[night]));
    EXPECT_EQ(events[night].action, "export");
    EXPECT_EQ(events[night].user, "night-job");
  }
  const auto verified = audit::VerifyAuditTrail(db);
  EXPECT_TRUE(verified.ok) << verified.problem;
}

// A run that never completes stores nothing.
TEST(DeltaState, ARunWithoutCompleteLeavesTheStateAsItWas) {
  TempDir dir;
  const std::string db = (dir.path() / "state.db").string();
  {
    DeltaState state(db, 1000);  // rows in the TEMP table, one buffer being written at the end
    state.BeginRun();
    for (int i = 0; i < 10500; ++i) state.Stage(Key(i), "cis:P", Hash(i, 1), Hash(i, 1));
  }
  store::Database d(db);
  auto count = d.Prepare("SELECT count(*) FROM export_state");
  ASSERT_TRUE(count.Step());
  EXPECT_EQ(count.ColumnInt64(0), 0);
}

// The links a run fills in (spec 5) are those of the run's snapshot, whoever asks:
// the run's own connection, a worker's LinkReader opened while the identity tables were
// as the snapshot saw them (its own snapshot, kept), and one opened after they changed
// (it asks the run's connection). A person with two SystmOne ids gets none, and an id
// only a consent-withheld SystmOne record carries is never given.
TEST(DeltaState, LinksAreReadInTheRunsSnapshotWhoeverAsks) {
  using caregate::testing::PersonFields;
  using caregate::testing::ReadOrDie;
  TempDir dir;
  const std::string db = dir.file("store.db");
  {
    identity::PersonStore store(db);
    store.Ingest(ReadOrDie("systmone", caregate::testing::S1Xml(PersonFields{.nhs = "9912003888", .s1 = "700001"})));
    store.Ingest(ReadOrDie("systmone", caregate::testing::S1Xml(
                                           PersonFields{.nhs = "9434765919", .s1 = "700002", .consent = "No"})));
    store.Ingest(ReadOrDie("cis", caregate::testing::CisJson(PersonFields{.nhs = "9434765870", .cis = "C-3"})));
  }
  DeltaState state(db);
  state.BeginRun();
  ASSERT_TRUE(state.links_known());
  LinkReader before(db, state);  // opened while the identity tables are the snapshot's
  EXPECT_EQ(state.LinkedSystmOneId("", "9912003888"), "700001");
  EXPECT_EQ(before.LinkedSystmOneId("C-9", "9912003888"), "700001");  // known by NHS number alone
  EXPECT_EQ(before.LinkedSystmOneId("", "9434765919"), "");           // consent withheld
  EXPECT_EQ(before.LinkedSystmOneId("C-3", ""), "");                   // known, but no SystmOne id
  EXPECT_EQ(before.LinkedSystmOneId("", ""), "");

  // Meanwhile the server links C-3 to a SystmOne record, and gives 9912003888 a second id.
  {
    identity::PersonStore store(db);
    store.Ingest(ReadOrDie("systmone", caregate::testing::S1Xml(PersonFields{.nhs = "9434765870", .s1 = "700003"})));
    store.Ingest(ReadOrDie("cis", caregate::testing::CisJson(
                                      PersonFields{.nhs = "9912003888", .s1 = "700009", .cis = "C-1"})));
  }
  LinkReader after(db, state);  // opened after the change: asks the run's connection
  for (LinkReader* r : {&before, &after}) {
    EXPECT_EQ(r->LinkedSystmOneId("C-3", ""), "");
    EXPECT_EQ(r->LinkedSystmOneId("", "9912003888"), "700001");
  }
  EXPECT_EQ(state.LinkedSystmOneId("C-3", "9434765870"), "");

  // The next run sees the new links: two ids for 9912003888 now, so none is chosen.
  state.Complete(ARun("2024-05-01"), AnEvent());
  state.BeginRun();
  LinkReader next(db, state);
  EXPECT_EQ(next.LinkedSystmOneId("C-3", ""), "700003");
  EXPECT_EQ(next.LinkedSystmOneId("", "9434765870"), "700003");
  EXPECT_EQ(next.LinkedSystmOneId("", "9912003888"), "");
}

// The only id filled in is one a SystmOne record that shares carries, and the person's
// only one: not the id of a patient whose SystmOne record now withholds consent (nor that
// of another SystmOne patient with the same NHS number), not an id only the council's own
// record ever claimed (since withdrawn).
TEST(DeltaState, TheOnlyIdFilledInIsTheOneASharingSystmOneRecordCarries) {
  using caregate::testing::CisJson;
  using caregate::testing::PersonFields;
  using caregate::testing::ReadOrDie;
  using caregate::testing::S1Xml;
  TempDir dir;
  const std::string db = dir.file("store.db");
  {
    identity::PersonStore store(db);
    // SystmOne re-sends the patient with consent withheld; a second SystmOne patient with
    // the same NHS number (a duplicate registration) is a person of its own, never linked.
    store.Ingest(ReadOrDie("systmone", S1Xml(PersonFields{.nhs = "9434765005", .s1 = "800011"})));
    store.Ingest(ReadOrDie("systmone", S1Xml(PersonFields{.nhs = "9434765005", .s1 = "800011", .consent = "No"})));
    store.Ingest(ReadOrDie("systmone", S1Xml(PersonFields{.nhs = "9434765005", .s1 = "800012"})));
    // The council once claimed a SystmOne id, then withdrew it; no SystmOne record has it.
    store.Ingest(ReadOrDie("cis", CisJson(PersonFields{.nhs = "9434765013", .s1 = "800013", .cis = "C-5"})));
    store.Ingest(ReadOrDie("cis", CisJson(PersonFields{.nhs = "9434765013", .cis = "C-5"})));
    // Both systems agree on the id: filled in.
    store.Ingest(ReadOrDie("systmone", S1Xml(PersonFields{.nhs = "9434765021", .s1 = "800014"})));
    store.Ingest(ReadOrDie("cis", CisJson(PersonFields{.nhs = "9434765021", .s1 = "800014", .cis = "C-6"})));
  }
  DeltaState state(db);
  state.BeginRun();
  LinkReader reader(db, state);
  EXPECT_EQ(reader.LinkedSystmOneId("", "9434765005"), "");
  EXPECT_EQ(state.LinkedSystmOneId("", "9434765005"), "");
  EXPECT_EQ(reader.LinkedSystmOneId("C-5", "9434765013"), "");
  EXPECT_EQ(reader.LinkedSystmOneId("C-6", ""), "800014");
  EXPECT_EQ(reader.LinkedSystmOneId("", "9434765021"), "800014");
}

}  // namespace
}  // namespace caregate::exporter
