#include "caregate/identity/person_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <mutex>
#include <map>
#include <vector>

#include "caregate/model/canonical_json.h"
#include "caregate/store/database.h"
#include "caregate/store/statement.h"
#include "records.h"

namespace caregate::identity {
namespace {

using caregate::testing::CisJson;
using caregate::testing::PersonFields;
using caregate::testing::ReadOrDie;
using caregate::testing::S1Xml;
using caregate::testing::SpecExample;
using caregate::testing::TempDir;

model::CareRecord Cis(const PersonFields& p) { return ReadOrDie("cis", CisJson(p)); }
model::CareRecord S1(const PersonFields& p) { return ReadOrDie("systmone", S1Xml(p)); }

TEST(DemographicMatchKey, NormalisesSurnameAndPostcode) {
  model::Person p;
  p.family_name = "o'Brien-Smith";
  p.birth_date = "1950-02-03";
  p.address.postcode = "ls12 2ab";
  p.gender = "female";
  EXPECT_EQ(DemographicMatchKey(p), "OBRIENSMITH|1950-02-03|LS122AB|female");
  p.address.postcode.clear();
  EXPECT_EQ(DemographicMatchKey(p), "");
}

TEST(PersonStore, LinksTheTwoSystemsRecordsByNhsNumber) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto a = store.Ingest(ReadOrDie("cis", SpecExample("cis-record.json")));
  auto b = store.Ingest(ReadOrDie("systmone", SpecExample("systmone-record.xml")));
  EXPECT_TRUE(a.created);
  EXPECT_TRUE(b.created);
  EXPECT_EQ(a.person_key, b.person_key);
  EXPECT_EQ(b.person_ids, (std::vector<std::string>{"cis:LCC-0048213", "nhs:9912003888", "s1:700412"}));
  auto snap = store.Find("nhs:9912003888");
  ASSERT_TRUE(snap);
  ASSERT_TRUE(snap->systmone && snap->cis);
  EXPECT_EQ(snap->cis->source_system, "cis");
  EXPECT_EQ(snap->systmone->source_system, "systmone");
  EXPECT_EQ(store.PersonCount(), 1);
  EXPECT_EQ(store.SourceRecordCount(), 2);
}

TEST(PersonStore, LineageIsStoredApartAndReadOnlyWhenAskedFor) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  const auto s1 = ReadOrDie("systmone", SpecExample("systmone-record.xml"));
  ASSERT_FALSE(s1.lineage.empty());
  store.Ingest(s1);
  auto plain = store.Find("s1:700412");
  auto full = store.Find("s1:700412", /*with_lineage=*/true);
  ASSERT_TRUE(plain && full && plain->systmone && full->systmone);
  EXPECT_TRUE(plain->systmone->lineage.empty());
  EXPECT_NE(plain, full);  // two cached snapshots
  EXPECT_EQ(store.Find("s1:700412", true), full);
  // With lineage the stored record is exactly the ingested one, without it the same but
  // for the lineage.
  EXPECT_EQ(model::ToCanonicalJson(*full->systmone), model::ToCanonicalJson(s1));
  EXPECT_EQ(model::ToCanonicalJson(*plain->systmone, {.lineage = false}),
            model::ToCanonicalJson(s1, {.lineage = false}));
  // A lookup reads no lineage: it is not in the column a lookup reads.
  store::Database db(dir.file("db"));
  auto q = db.Prepare("SELECT canonical_json, lineage_json FROM source_records");
  ASSERT_TRUE(q.Step());
  EXPECT_EQ(q.ColumnText(0).find("\"lineage\""), std::string::npos);
  EXPECT_NE(q.ColumnText(1).find("\"rule\""), std::string::npos);
}

TEST(PersonStore, AStoreFromBeforeTheSplitKeepsEveryLineage) {
  TempDir dir;
  const auto s1 = ReadOrDie("systmone", SpecExample("systmone-record.xml"));
  const auto cis = ReadOrDie("cis", SpecExample("cis-record.json"));
  {
    PersonStore store(dir.file("db"));
    store.Ingest(s1);
    store.Ingest(cis);
  }
  {  // Put the rows back as migration 301 left them: the whole canonical JSON in one column.
    store::Database db(dir.file("db"));
    db.Exec("UPDATE source_records SET canonical_json = substr(canonical_json, 1, length(canonical_json) - 1)"
            " || ',\"lineage\":' || lineage_json || '}';"
            "ALTER TABLE source_records DROP COLUMN lineage_json;"
            "DELETE FROM schema_migrations WHERE version = 302;");
  }
  PersonStore store(dir.file("db"));  // migration 302 runs
  auto full = store.Find("nhs:9912003888", true);
  ASSERT_TRUE(full && full->systmone && full->cis);
  EXPECT_EQ(model::ToCanonicalJson(*full->systmone), model::ToCanonicalJson(s1));
  EXPECT_EQ(model::ToCanonicalJson(*full->cis), model::ToCanonicalJson(cis));
  EXPECT_TRUE(store.Find("nhs:9912003888")->systmone->lineage.empty());
  // The same record again is recognised as unchanged (the content hash still covers the
  // whole canonical JSON).
  EXPECT_TRUE(store.Ingest(s1).unchanged);
}

TEST(PersonStore, ALookupSearchesSmallIndexKeysNotWholeRows) {
  // source_records was a WITHOUT ROWID table: its rows were the B-tree's keys, and a key
  // on overflow pages is read whole to be compared, so finding one person's record read
  // neighbours' complete records and lineage. Migration 303 made it a rowid table with a
  // UNIQUE(person_key, system) index.
  TempDir dir;
  PersonStore store(dir.file("db"));
  store::Database db(dir.file("db"));
  auto table = db.Prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'source_records'");
  ASSERT_TRUE(table.Step());
  EXPECT_EQ(table.ColumnText(0).find("WITHOUT ROWID"), std::string::npos) << table.ColumnText(0);
  EXPECT_NE(table.ColumnText(0).find("UNIQUE(person_key, system)"), std::string::npos) << table.ColumnText(0);
  auto plan = db.Prepare(
      "EXPLAIN QUERY PLAN SELECT system, canonical_json, updated_at FROM source_records WHERE person_key = ?");
  ASSERT_TRUE(plan.Step());
  EXPECT_NE(plan.ColumnText(3).find("USING INDEX sqlite_autoindex_source_records_1 (person_key=?)"),
            std::string::npos)
      << plan.ColumnText(3);
}

TEST(PersonStore, AStoreFromBeforeTheRowidTableKeepsEveryRecord) {
  TempDir dir;
  const auto s1 = ReadOrDie("systmone", SpecExample("systmone-record.xml"));
  const auto cis = ReadOrDie("cis", SpecExample("cis-record.json"));
  std::string before;
  {
    PersonStore store(dir.file("db"));
    store.Ingest(s1);
    store.Ingest(cis);
    store.Ingest(Cis(PersonFields{.cis = "C-2", .phone = "1"}));
    before = model::ToCanonicalJson(*store.Find("nhs:9912003888", true)->systmone);
  }
  {  // Put the table back as migrations 300-302 left it.
    store::Database db(dir.file("db"));
    db.Exec(
        "CREATE TABLE old(person_key INTEGER NOT NULL REFERENCES persons(person_key), system TEXT NOT NULL,"
        " source_id TEXT NOT NULL, canonical_json TEXT NOT NULL, content_hash TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, lineage_json TEXT NOT NULL DEFAULT '[]', PRIMARY KEY(person_key, system))"
        " WITHOUT ROWID;"
        "INSERT INTO old SELECT person_key, system, source_id, canonical_json, content_hash, updated_at,"
        " lineage_json FROM source_records;"
        "DROP TABLE source_records;"
        "ALTER TABLE old RENAME TO source_records;"
        "CREATE TRIGGER source_records_upd AFTER UPDATE ON source_records"
        " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
        "DELETE FROM schema_migrations WHERE version = 303;");
  }
  PersonStore store(dir.file("db"));  // migration 303 runs
  EXPECT_EQ(store.SourceRecordCount(), 3);
  auto full = store.Find("nhs:9912003888", true);
  ASSERT_TRUE(full && full->systmone && full->cis);
  EXPECT_EQ(model::ToCanonicalJson(*full->systmone), before);
  EXPECT_EQ(model::ToCanonicalJson(*full->cis), model::ToCanonicalJson(cis));
  ASSERT_TRUE(store.Find("cis:C-2"));
  EXPECT_EQ(store.Find("cis:C-2")->cis->person.phone_home, "1");
  // Same content: unchanged (hash kept); new content: an update in place, no second row.
  EXPECT_TRUE(store.Ingest(s1).unchanged);
  const auto updated = store.Ingest(Cis(PersonFields{.cis = "C-2", .phone = "2"}));
  EXPECT_FALSE(updated.created);
  EXPECT_FALSE(updated.unchanged);
  EXPECT_EQ(store.SourceRecordCount(), 3);
  EXPECT_EQ(store.Find("cis:C-2")->cis->person.phone_home, "2");
  // The triggers came back with the table: a change made by another tool is still seen.
  store::Database other(dir.file("db"));
  other.Exec("UPDATE source_records SET canonical_json = replace(canonical_json, '\"phone_home\":\"2\"',"
             " '\"phone_home\":\"7\"') WHERE source_id LIKE '%C-2'");
  ASSERT_EQ(other.Changes(), 1);
  EXPECT_EQ(store.Find("cis:C-2")->cis->person.phone_home, "7");
}

TEST(PersonStore, SameContentAgainIsAnUpdateWithoutADuplicatePerson) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  PersonFields p{.nhs = "9912003888", .cis = "C1"};
  auto first = store.Ingest(Cis(p));
  auto again = store.Ingest(Cis(p));
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(again.created);
  EXPECT_TRUE(again.unchanged);
  EXPECT_EQ(store.PersonCount(), 1);
  p.phone = "0113 496 0999";
  auto changed = store.Ingest(Cis(p));
  EXPECT_FALSE(changed.created);
  EXPECT_FALSE(changed.unchanged);
  EXPECT_EQ(store.Find("cis:C1")->cis->person.phone_home, "0113 496 0999");
}

// "Normalised surname" (spec 5): one system may keep diacritics the other drops, and
// write an apostrophe as ' or ’. Until session 18 every non-ASCII letter was dropped
// (Brontë BRONT, never matching Bronte; Łukasik UKASIK).
TEST(DemographicMatchKey, FoldsDiacriticsAndDropsPunctuationOfAnyKind) {
  EXPECT_EQ(FoldSurname("Brontë"), FoldSurname("BRONTE"));
  EXPECT_EQ(FoldSurname("O\u2019Brien"), "OBRIEN");  // right single quotation mark
  EXPECT_EQ(FoldSurname("o'brien-smith"), "OBRIENSMITH");
  EXPECT_EQ(FoldSurname("Łukasik"), "LUKASIK");
  EXPECT_EQ(FoldSurname("Strauß"), "STRAUSS");
  EXPECT_EQ(FoldSurname("Ó Súilleabháin"), "OSUILLEABHAIN");
  EXPECT_EQ(FoldSurname("Ærø"), "AERO");
  EXPECT_EQ(FoldSurname("Bronte\u0308"), "BRONTE");  // a combining diaeresis
  EXPECT_EQ(FoldSurname("Smith\u00a0Jones"), "SMITHJONES");  // no-break space
  // Other scripts are kept, not lost: two Cyrillic surnames still compare.
  EXPECT_EQ(FoldSurname("Иванов"), "Иванов");
  EXPECT_NE(FoldSurname("Иванов"), FoldSurname("Петров"));
  EXPECT_EQ(FoldSurname("×÷"), "");
}

TEST(PersonStore, ASurnameWithAndWithoutItsDiacriticsProposesALink) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.s1 = "S-1", .surname = "Brontë"}));
  auto c = store.Ingest(Cis(PersonFields{.cis = "C-1", .surname = "BRONTE"}));
  EXPECT_NE(s.person_key, c.person_key);
  EXPECT_EQ(c.proposals.size(), 1u);
}

// Migration 305 computes the stored keys again, so a record stored before it (key
// "BRONT|...") is found by a record stored after it.
TEST(PersonStore, KeysStoredBeforeTheFoldAreComputedAgainOnOpening) {
  TempDir dir;
  const std::string db = dir.file("db");
  { PersonStore store(db); store.Ingest(S1(PersonFields{.s1 = "S-1", .surname = "Brontë"})); }
  {
    store::Database d(db);
    d.Exec("UPDATE demographic_keys SET match_key = 'BRONT|1950-02-03|LS122AB|female'");
    d.Exec("DELETE FROM schema_migrations WHERE module = 'identity' AND version = 305");
  }
  PersonStore store(db);
  auto c = store.Ingest(Cis(PersonFields{.cis = "C-1", .surname = "Bronte"}));
  EXPECT_EQ(c.proposals.size(), 1u);
  store::Database d(db);
  store::Statement q(d, "SELECT match_key FROM demographic_keys WHERE system = 'systmone'");
  ASSERT_TRUE(q.Step());
  EXPECT_EQ(q.ColumnText(0), "BRONTE|1950-02-03|LS122AB|female");
}

TEST(PersonStore, DemographicMatchOnlyProposesALinkUntilAccepted) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.s1 = "S-1"}));
  auto c = store.Ingest(Cis(PersonFields{.cis = "C-1", .surname = "O BRIEN", .postcode = "ls122ab"}));
  EXPECT_NE(s.person_key, c.person_key);
  ASSERT_EQ(c.proposals.size(), 1u);
  EXPECT_EQ(store.Find("s1:S-1")->cis, nullptr);  // never merged on its own
  auto pending = store.Proposals("pending");
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].ids_a, std::vector<std::string>{"s1:S-1"});
  EXPECT_EQ(pending[0].ids_b, std::vector<std::string>{"cis:C-1"});

  auto r = store.Decide(pending[0].id, true, "ig.officer1");
  ASSERT_EQ(r.status, DecideStatus::kOk) << r.detail;
  EXPECT_EQ(r.proposal->status, "accepted");
  EXPECT_EQ(r.proposal->decided_by, "ig.officer1");
  auto snap = store.Find("cis:C-1");
  ASSERT_TRUE(snap->systmone && snap->cis);
  EXPECT_EQ(snap->ids, (std::vector<std::string>{"cis:C-1", "s1:S-1"}));
  EXPECT_EQ(store.Decide(pending[0].id, false, "x").status, DecideStatus::kAlreadyDecided);
  EXPECT_EQ(store.Decide(999, true, "x").status, DecideStatus::kNotFound);
  EXPECT_TRUE(store.Proposals("pending").empty());
}

TEST(PersonStore, RejectingAProposalKeepsThePersonsApart) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  store.Ingest(S1(PersonFields{.s1 = "S-1"}));
  auto c = store.Ingest(Cis(PersonFields{.cis = "C-1"}));
  ASSERT_EQ(c.proposals.size(), 1u);
  auto r = store.Decide(c.proposals[0], false, "ig.officer1");
  ASSERT_EQ(r.status, DecideStatus::kOk);
  EXPECT_EQ(r.proposal->status, "rejected");
  EXPECT_EQ(store.Find("cis:C-1")->systmone, nullptr);
  // The same record again raises no new proposal.
  EXPECT_TRUE(store.Ingest(Cis(PersonFields{.cis = "C-1", .phone = "1"})).proposals.empty());
  EXPECT_EQ(store.Proposals("").size(), 1u);
}

TEST(PersonStore, NoProposalAcrossDifferentNhsNumbersOrWithinOneSystem) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "S-1"}));
  EXPECT_TRUE(store.Ingest(Cis(PersonFields{.nhs = "9910000075", .cis = "C-1"})).proposals.empty());
  // S-2 (no NHS number) matches the CIS person, never the other SystmOne person.
  auto s2 = store.Ingest(S1(PersonFields{.s1 = "S-2"}));
  ASSERT_EQ(s2.proposals.size(), 1u);
  auto p = store.Proposal(s2.proposals[0]);
  EXPECT_EQ(p->ids_a, (std::vector<std::string>{"cis:C-1", "nhs:9910000075"}));
  EXPECT_EQ(p->ids_b, std::vector<std::string>{"s1:S-2"});
}

TEST(PersonStore, AcceptingTwoRecordsFromOneSystemIsAConflict) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  store.Ingest(S1(PersonFields{.s1 = "S-1"}));
  auto c = store.Ingest(Cis(PersonFields{.cis = "C-1"}));
  // Another SystmOne record joins the CIS person through its cross-reference.
  store.Ingest(S1(PersonFields{.s1 = "S-2", .cis = "C-1"}));
  ASSERT_EQ(c.proposals.size(), 1u);
  auto r = store.Decide(c.proposals[0], true, "ig");
  EXPECT_EQ(r.status, DecideStatus::kConflict);
  EXPECT_EQ(store.Proposals("pending").size(), 1u);  // still pending
}

TEST(PersonStore, CrossReferenceIdJoinsThePerson) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.s1 = "700412"}));
  auto c = store.Ingest(Cis(PersonFields{.s1 = "700412", .cis = "C-9"}));
  EXPECT_EQ(s.person_key, c.person_key);
  EXPECT_EQ(c.person_ids, (std::vector<std::string>{"cis:C-9", "s1:700412"}));
  EXPECT_TRUE(c.proposals.empty());
}

TEST(PersonStore, CrossReferenceWithAnotherNhsNumberIsNotThePerson) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "700412"}));
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9910000075", .s1 = "700412", .cis = "C-9"}));
  EXPECT_NE(s.person_key, c.person_key);
  EXPECT_EQ(c.proposals.size(), 1u);
  EXPECT_EQ(store.Find("s1:700412")->cis, nullptr);
}

// Spec 5 links on one valid NHS number; nothing else merges on its own. A record whose
// own id or cross-reference reaches a person holding another NHS number is not that
// person, and its own id names it from then on (it was merged: a council user asking for
// the CIS record got the health record of another NHS number).
TEST(PersonStore, RecordsWithDifferentNhsNumbersNeverMergeWhateverTheirCrossReferences) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "300", .cis = "C300"}));
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9910000075", .s1 = "300", .cis = "C300", .surname = "Other"}));
  EXPECT_NE(s.person_key, c.person_key);
  EXPECT_FALSE(c.merged);
  EXPECT_EQ(c.proposals.size(), 1u);
  auto by_cis = store.Find("cis:C300");
  ASSERT_TRUE(by_cis && by_cis->cis);
  EXPECT_EQ(by_cis->systmone, nullptr);
  EXPECT_EQ(by_cis->cis->person.nhs_number, "9910000075");
  auto by_s1 = store.Find("s1:300");
  ASSERT_TRUE(by_s1 && by_s1->systmone);
  EXPECT_EQ(by_s1->cis, nullptr);
  EXPECT_EQ(store.Find("nhs:9910000075")->person_key, c.person_key);
  // The same the other way round.
  TempDir dir2;
  PersonStore other(dir2.file("db"));
  auto c2 = other.Ingest(Cis(PersonFields{.nhs = "9910000075", .s1 = "300", .cis = "C300"}));
  auto s2 = other.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "300", .cis = "C300"}));
  EXPECT_NE(c2.person_key, s2.person_key);
  EXPECT_EQ(other.Find("s1:300")->systmone->person.nhs_number, "9912003888");
  EXPECT_EQ(other.Find("s1:300")->cis, nullptr);
  EXPECT_EQ(other.Find("cis:C300")->systmone, nullptr);
}

// A record never replaces another record of its own system: a council record whose
// cross-reference names a linked patient, or a second council record with the same NHS
// number, is a person of its own, proposed for review (it replaced the first record: a
// lookup of the first CIS id showed the second person's record).
TEST(PersonStore, ARecordNeverReplacesAnotherRecordOfItsSystem) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "700"}));
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C700"}));
  ASSERT_EQ(s.person_key, c.person_key);
  auto quinn = store.Ingest(Cis(PersonFields{.s1 = "700", .cis = "C701", .surname = "Quinn", .dob = "1977-01-01"}));
  EXPECT_NE(quinn.person_key, c.person_key);
  EXPECT_TRUE(quinn.created);
  EXPECT_EQ(quinn.proposals.size(), 1u);
  EXPECT_EQ(store.Find("cis:C700")->cis->person.cis_id, "C700");
  EXPECT_EQ(store.Find("cis:C701")->cis->person.cis_id, "C701");
  EXPECT_EQ(store.Find("cis:C701")->systmone, nullptr);
  // A second council record with the same NHS number.
  auto dora = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C702", .surname = "Dee"}));
  EXPECT_NE(dora.person_key, c.person_key);
  EXPECT_EQ(dora.proposals.size(), 1u);
  EXPECT_EQ(store.Find("cis:C700")->cis->person.family_name, "O'Brien");
  EXPECT_EQ(store.Find("cis:C702")->cis->person.family_name, "Dee");
  EXPECT_EQ(store.Find("nhs:9912003888")->person_key, c.person_key);
  // And a second SystmOne patient reached by a council cross-reference.
  auto s2 = store.Ingest(S1(PersonFields{.s1 = "701", .cis = "C700", .surname = "Ray"}));
  EXPECT_NE(s2.person_key, c.person_key);
  EXPECT_EQ(store.Find("s1:700")->systmone->person.s1_id, "700");
  EXPECT_EQ(store.SourceRecordCount(), 5);
  // Accepting such a proposal is refused: both hold a record of one system.
  EXPECT_EQ(store.Decide(dora.proposals[0], true, "ig").status, DecideStatus::kConflict);
}

// A record re-sent with an NHS number, or a cross-reference, that the other system's
// record of its person contradicts leaves that person (the link's evidence is gone); it
// is an update of the record, and a proposal is raised. Records that agree with the new
// number join it (they stayed linked: the SystmOne view showed the other NHS number's
// council record).
TEST(PersonStore, ARecordReSentWithAContradictingNhsNumberOrCrossReferenceLeavesItsPerson) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "100"}));
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C100"}));
  ASSERT_EQ(s.person_key, c.person_key);
  auto again = store.Ingest(S1(PersonFields{.nhs = "9910000075", .s1 = "100"}));
  EXPECT_FALSE(again.created);
  EXPECT_NE(again.person_key, c.person_key);
  EXPECT_EQ(again.proposals.size(), 1u);
  EXPECT_EQ(store.Find("cis:C100")->systmone, nullptr);
  EXPECT_EQ(store.Find("s1:100")->cis, nullptr);
  EXPECT_EQ(store.Find("s1:100")->systmone->person.nhs_number, "9910000075");
  auto c101 = store.Ingest(Cis(PersonFields{.nhs = "9910000075", .cis = "C101"}));
  EXPECT_EQ(c101.person_key, again.person_key);
  EXPECT_EQ(store.Find("cis:C100")->cis->person.cis_id, "C100");
  // An NHS number dropped on re-send keeps the link: nothing contradicts it.
  auto dropped = store.Ingest(S1(PersonFields{.s1 = "100"}));
  EXPECT_EQ(dropped.person_key, again.person_key);
  // Without NHS numbers, a cross-reference corrected at its source.
  auto s1000 = store.Ingest(S1(PersonFields{.s1 = "1000", .surname = "Wright"}));
  auto c1000 = store.Ingest(Cis(PersonFields{.s1 = "1000", .cis = "C1000", .surname = "Wright"}));
  ASSERT_EQ(s1000.person_key, c1000.person_key);
  auto corrected = store.Ingest(Cis(PersonFields{.s1 = "1001", .cis = "C1000", .surname = "Wright"}));
  EXPECT_NE(corrected.person_key, s1000.person_key);
  EXPECT_EQ(store.Find("s1:1000")->cis, nullptr);
  EXPECT_EQ(store.Find("cis:C1000")->systmone, nullptr);
}

// A record without an id of its own system (the adapters accept one) never takes the
// ids of the person it cannot join: the SystmOne id and the NHS number keep naming the
// linked pair, and re-sending their records changes nothing.
TEST(PersonStore, ARecordWithoutItsOwnIdTakesNobodysIds) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "100"}));
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C1"}));
  ASSERT_EQ(s.person_key, c.person_key);
  auto quinn = store.Ingest(Cis(PersonFields{.s1 = "100", .surname = "Quinn"}));
  EXPECT_NE(quinn.person_key, s.person_key);
  auto dup = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .surname = "Dee"}));
  EXPECT_NE(dup.person_key, s.person_key);
  EXPECT_EQ(store.Find("s1:100")->person_key, s.person_key);
  EXPECT_EQ(store.Find("nhs:9912003888")->person_key, s.person_key);
  auto again = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "100"}));
  EXPECT_TRUE(again.unchanged);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.person_key, s.person_key);
  EXPECT_EQ(store.SourceRecordCount(), 4);
}

// An id only the index remembers (an NHS number since corrected, a council id the
// SystmOne record no longer claims) links nobody: it goes to the record carrying it now.
TEST(PersonStore, IdsOnlyTheIndexRemembersLinkNobody) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto first = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "100"}));
  store.Ingest(S1(PersonFields{.nhs = "9910000075", .s1 = "100"}));  // the number corrected
  auto dee = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "200", .surname = "Dee"}));
  EXPECT_NE(dee.person_key, first.person_key);
  EXPECT_EQ(store.Find("nhs:9912003888")->person_key, dee.person_key);
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C1", .surname = "Dee"}));
  EXPECT_EQ(c.person_key, dee.person_key);  // linked on the NHS number both carry now
  // A cross-reference withdrawn: the council record it once named is not linked by it.
  auto s3 = store.Ingest(S1(PersonFields{.nhs = "9434765005", .s1 = "300", .cis = "C3"}));
  store.Ingest(S1(PersonFields{.nhs = "9434765005", .s1 = "300"}));
  auto quinn = store.Ingest(Cis(PersonFields{.cis = "C3", .surname = "Quinn", .dob = "1977-01-01"}));
  EXPECT_NE(quinn.person_key, s3.person_key);
  EXPECT_EQ(store.Find("cis:C3")->systmone, nullptr);
}

// A record that brings the NHS number tying two persons merges them at once (its stored
// earlier version does not count against it), leaves no proposal pairing a person with
// itself, and a re-send changes nothing.
TEST(PersonStore, ACorrectedNhsNumberLinksAtTheFirstSend) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "100"}));
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9910000075", .cis = "C1"}));
  EXPECT_NE(s.person_key, c.person_key);
  auto fixed = store.Ingest(S1(PersonFields{.nhs = "9910000075", .s1 = "100"}));
  EXPECT_TRUE(fixed.merged);
  auto snap = store.Find("cis:C1");
  ASSERT_TRUE(snap->systmone && snap->cis);
  auto again = store.Ingest(S1(PersonFields{.nhs = "9910000075", .s1 = "100"}));
  EXPECT_TRUE(again.unchanged);
  EXPECT_FALSE(again.merged);
  EXPECT_TRUE(again.proposals.empty());
  for (const auto& p : store.Proposals("")) EXPECT_NE(p.person_a, p.person_b) << p.id;
  // A demographic proposal made moot by a later NHS link is gone.
  TempDir dir2;
  PersonStore other(dir2.file("db"));
  other.Ingest(S1(PersonFields{.s1 = "S-1"}));
  auto demo = other.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C-1"}));
  ASSERT_EQ(demo.proposals.size(), 1u);
  EXPECT_TRUE(other.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "S-1"})).merged);
  EXPECT_TRUE(other.Proposals("pending").empty());
}

// A council record stored without a CIS id, then sent with one: an update of the same
// record, not a second council record of the person.
TEST(PersonStore, ARecordThatGainsItsOwnIdIsUpdated) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "100"}));
  auto bare = store.Ingest(Cis(PersonFields{.nhs = "9912003888"}));
  EXPECT_EQ(bare.person_key, s.person_key);
  auto named = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C1"}));
  EXPECT_EQ(named.person_key, s.person_key);
  EXPECT_FALSE(named.created);
  EXPECT_EQ(store.Find("cis:C1")->cis->person.cis_id, "C1");
  EXPECT_EQ(store.SourceRecordCount(), 2);
}

// A record without its own id that cannot join the person holding its NHS number is a
// person of its own once: sent again, it is found by its system and stored id and is
// unchanged (it became one more person, with no ids, at every send).
TEST(PersonStore, ARecordWithoutItsOwnIdIsFoundAgainWhenReSent) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto a = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "A"}));
  auto first = store.Ingest(S1(PersonFields{.nhs = "9912003888", .surname = "Smith"}));
  EXPECT_NE(first.person_key, a.person_key);
  auto again = store.Ingest(S1(PersonFields{.nhs = "9912003888", .surname = "Smith"}));
  EXPECT_EQ(again.person_key, first.person_key);
  EXPECT_TRUE(again.unchanged);
  EXPECT_FALSE(again.created);
  EXPECT_TRUE(again.proposals.empty());
  EXPECT_EQ(store.PersonCount(), 2);
  EXPECT_EQ(store.SourceRecordCount(), 2);
}

// Ids only a leaving record's old version carried follow it: the NHS number names the
// person of the record that carries it, and a council record with that number links
// with it (spec 5). It stayed with the council record left behind, which has none.
TEST(PersonStore, IdsOfALeavingRecordFollowIt) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "A", .cis = "C"}));
  auto c = store.Ingest(Cis(PersonFields{.s1 = "A", .cis = "C"}));
  ASSERT_EQ(s.person_key, c.person_key);
  auto left = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "A", .cis = "D"}));
  EXPECT_NE(left.person_key, c.person_key);
  EXPECT_EQ(store.Find("nhs:9912003888")->person_key, left.person_key);
  EXPECT_EQ(store.Find("cis:C")->systmone, nullptr);
  auto e = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "E", .surname = "Jones"}));
  EXPECT_EQ(e.person_key, left.person_key);
  const auto ids_of_c = store.Find("cis:C")->ids;
  EXPECT_EQ(std::find(ids_of_c.begin(), ids_of_c.end(), "nhs:9912003888"), ids_of_c.end());
}

TEST(PersonStore, NhsNumberMergesPersonsFirstSeenApart) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  auto s = store.Ingest(S1(PersonFields{.s1 = "S-1", .surname = "Alpha"}));
  auto c = store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C-1", .surname = "Beta"}));
  EXPECT_NE(s.person_key, c.person_key);
  auto s2 = store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "S-1", .surname = "Alpha"}));
  EXPECT_TRUE(s2.merged);
  auto snap = store.Find("s1:S-1");
  ASSERT_TRUE(snap->cis && snap->systmone);
  EXPECT_EQ(snap->ids, (std::vector<std::string>{"cis:C-1", "nhs:9912003888", "s1:S-1"}));
  EXPECT_EQ(store.PersonCount(), 1);
}

TEST(PersonStore, StoredRecordsAreNeverTranslatedValues) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  // CIS "White: Roma" is lossy towards SystmOne (C); SystmOne holds its own C.
  store.Ingest(Cis(PersonFields{.nhs = "9912003888", .cis = "C-1", .ethnicity = "White: Roma"}));
  store.Ingest(S1(PersonFields{.nhs = "9912003888", .s1 = "S-1", .ethnicity = "C"}));
  auto snap = store.Find("nhs:9912003888");
  EXPECT_EQ(snap->cis->person.ethnicity, "white_roma");
  EXPECT_NE(snap->systmone->person.ethnicity, "white_roma");
  EXPECT_FALSE(snap->systmone->person.ethnicity.empty());
}

TEST(PersonStore, ReadsSeeWritesFromAnotherConnection) {
  TempDir dir;
  PersonStore reader(dir.file("db"));
  PersonStore writer(dir.file("db"));
  EXPECT_EQ(reader.Find("cis:C-1"), nullptr);
  writer.Ingest(Cis(PersonFields{.cis = "C-1", .phone = "1"}));
  auto first = reader.Find("cis:C-1");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->cis->person.phone_home, "1");
  EXPECT_EQ(reader.Find("cis:C-1"), first);  // cached
  writer.Ingest(Cis(PersonFields{.cis = "C-1", .phone = "2"}));
  EXPECT_EQ(reader.Find("cis:C-1")->cis->person.phone_home, "2");
}

TEST(PersonStore, CacheOutlivesCommitsToOtherTablesOfTheFile) {
  // The audit trail commits to the same file for every lookup; that must not make every
  // lookup decode the person's records again.
  TempDir dir;
  PersonStore store(dir.file("db"));
  store.Ingest(Cis(PersonFields{.cis = "C-1", .phone = "1"}));
  auto first = store.Find("cis:C-1");
  ASSERT_TRUE(first);
  store::Database other(dir.file("db"));
  other.Exec("CREATE TABLE unrelated(x); INSERT INTO unrelated VALUES (1)");
  EXPECT_EQ(store.Find("cis:C-1"), first);
  other.Exec("INSERT INTO unrelated VALUES (2)");
  EXPECT_EQ(store.Find("cis:C-1"), first);
}

TEST(PersonStore, CacheIsDroppedWhenAnyoneChangesTheStoredRecords) {
  // Even a write that bypasses PersonStore (another tool on the file) is seen.
  TempDir dir;
  PersonStore store(dir.file("db"));
  store.Ingest(Cis(PersonFields{.cis = "C-1", .phone = "1"}));
  auto first = store.Find("cis:C-1");
  ASSERT_TRUE(first);
  store::Database other(dir.file("db"));
  other.Exec("UPDATE source_records SET canonical_json = replace(canonical_json, '\"phone_home\":\"1\"',"
             " '\"phone_home\":\"9\"')");
  ASSERT_EQ(other.Changes(), 1);
  auto second = store.Find("cis:C-1");
  ASSERT_TRUE(second);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->cis->person.phone_home, "9");
  other.Exec("DELETE FROM person_ids WHERE id = 'cis:C-1'");
  EXPECT_EQ(store.Find("cis:C-1"), nullptr);
}

// Warm start: the most recently updated persons are read into the cache, under every id
// of theirs, and Find() then serves exactly those snapshots; a later write is still seen.
TEST(PersonStoreWarm, CachesTheMostRecentlyUpdatedPersonsUnderEveryIdAndStaysCurrent) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  for (int i = 1; i <= 5; ++i)
    store.Ingest(Cis(PersonFields{.nhs = i == 3 ? "9912003888" : "", .cis = "C-" + std::to_string(i)}));
  {
    store::Database other(dir.file("db"));  // updated at: C-2 latest, then C-4, C-3, ...
    for (const auto& [id, at] : std::vector<std::pair<std::string, std::string>>{
             {"C-1", "2026-01-01T00:00:01Z"}, {"C-2", "2026-01-05T00:00:00Z"}, {"C-3", "2026-01-03T00:00:00Z"},
             {"C-4", "2026-01-04T00:00:00Z"}, {"C-5", "2026-01-02T00:00:00Z"}})
      other.Exec("UPDATE source_records SET updated_at = '" + at +
                 "' WHERE person_key = (SELECT person_key FROM person_ids WHERE id = 'cis:" + id + "')");
  }
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const PersonSnapshot>> seen;  // by first id
  EXPECT_EQ(store.Warm(3, 2, [&](const std::shared_ptr<const PersonSnapshot>& p) {
              std::lock_guard lock(mu);
              seen[p->ids.front()] = p;
            }),
            3u);
  ASSERT_EQ(seen.size(), 3u);
  ASSERT_TRUE(seen.count("cis:C-2") && seen.count("cis:C-4") && seen.count("cis:C-3"));
  // Served from the cache: the very snapshots warmed, under each of the person's ids.
  EXPECT_EQ(store.Find("cis:C-2"), seen["cis:C-2"]);
  EXPECT_EQ(store.Find("cis:C-3"), seen["cis:C-3"]);
  EXPECT_EQ(store.Find("nhs:9912003888"), seen["cis:C-3"]);
  // Not warmed: read as before.
  auto one = store.Find("cis:C-1");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->cis->person.cis_id, "C-1");
  // A write after the warm-up is seen.
  store.Ingest(Cis(PersonFields{.cis = "C-2", .phone = "0113 000 0002"}));
  auto changed = store.Find("cis:C-2");
  ASSERT_TRUE(changed);
  EXPECT_NE(changed, seen["cis:C-2"]);
  EXPECT_EQ(changed->cis->person.phone_home, "0113 000 0002");
  // More than there are: all of them, once each.
  std::atomic<int> calls{0};
  EXPECT_EQ(store.Warm(100, 1, [&](const auto&) { ++calls; }), 5u);
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(store.Warm(0), 0u);
  // The order comes from an index, newest first, not from a sort of the whole table.
  store::Database db(dir.file("db"));
  auto plan = db.Prepare("EXPLAIN QUERY PLAN SELECT person_key FROM source_records ORDER BY updated_at DESC, "
                         "person_key DESC");
  std::string steps;
  while (plan.Step()) steps += plan.ColumnText(3) + "\n";
  EXPECT_NE(steps.find("COVERING INDEX source_records_by_update"), std::string::npos) << steps;
  EXPECT_EQ(steps.find("TEMP B-TREE"), std::string::npos) << steps;
}

// With recheck_interval a cached person is served without a read transaction until the
// interval is up (the server's setting: asking the file costs a transaction per lookup).
TEST(PersonStoreRecheck, CachedPersonServedUntilTheIntervalButOwnWritesAndNewIdsAtOnce) {
  TempDir dir;
  PersonStore store(dir.file("db"), PersonStoreOptions{.recheck_interval = std::chrono::minutes(10)});
  store.Ingest(Cis(PersonFields{.cis = "C-1", .phone = "1"}));
  const auto first = store.Find("cis:C-1");
  ASSERT_TRUE(first);
  // Another connection's change to a cached person is not asked for yet...
  store::Database other(dir.file("db"));
  other.Exec("UPDATE source_records SET canonical_json = replace(canonical_json, '\"phone_home\":\"1\"',"
             " '\"phone_home\":\"9\"')");
  ASSERT_EQ(other.Changes(), 1);
  EXPECT_EQ(store.Find("cis:C-1"), first);
  // ...but an id not cached is read from the file, at once, and that read notices the
  // change and drops the stale cache...
  PersonStore writer(dir.file("db"));
  writer.Ingest(Cis(PersonFields{.cis = "C-2", .phone = "2"}));
  ASSERT_TRUE(store.Find("cis:C-2"));
  EXPECT_EQ(store.Find("cis:C-2")->cis->person.phone_home, "2");
  EXPECT_EQ(store.Find("cis:C-1")->cis->person.phone_home, "9");
  EXPECT_EQ(store.Find("cis:C-404"), nullptr);
  // ...and a write through this store makes the next lookup ask.
  other.Exec("UPDATE source_records SET canonical_json = replace(canonical_json, '\"phone_home\":\"9\"',"
             " '\"phone_home\":\"8\"') WHERE source_id LIKE '%C-1'");
  ASSERT_EQ(other.Changes(), 1);
  EXPECT_EQ(store.Find("cis:C-1")->cis->person.phone_home, "9");
  store.Ingest(Cis(PersonFields{.cis = "C-3"}));
  EXPECT_EQ(store.Find("cis:C-1")->cis->person.phone_home, "8");
}

TEST(PersonStoreRecheck, AnotherProcesssChangeIsSeenOnceTheIntervalIsUp) {
  TempDir dir;
  constexpr auto kInterval = std::chrono::milliseconds(50);
  PersonStore store(dir.file("db"), PersonStoreOptions{.recheck_interval = kInterval});
  store.Ingest(Cis(PersonFields{.cis = "C-1", .phone = "1"}));
  ASSERT_TRUE(store.Find("cis:C-1"));
  store::Database other(dir.file("db"));
  other.Exec("UPDATE source_records SET canonical_json = replace(canonical_json, '\"phone_home\":\"1\"',"
             " '\"phone_home\":\"5\"')");
  ASSERT_EQ(other.Changes(), 1);
  std::this_thread::sleep_for(2 * kInterval);
  EXPECT_EQ(store.Find("cis:C-1")->cis->person.phone_home, "5");
  other.Exec("DELETE FROM person_ids WHERE id = 'cis:C-1'");
  std::this_thread::sleep_for(2 * kInterval);
  EXPECT_EQ(store.Find("cis:C-1"), nullptr);
}

TEST(PersonStore, ConcurrentLookupsDecodeOutsideTheLockAndStillSeeEveryWrite) {
  // Find decodes a person's records without holding its lock (so I/O threads decode
  // different people at once); a record read before a write lands must not be cached
  // past it.
  TempDir dir;
  PersonStore store(dir.file("db"));
  PersonStore writer(dir.file("db"));
  std::vector<model::CareRecord> records;
  for (int i = 0; i < 40; ++i)
    records.push_back(Cis(PersonFields{.cis = "C-" + std::to_string(i), .phone = "0"}));
  store.IngestMany(records);
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      for (int n = 0; !stop.load(); ++n) {
        const std::string id = "cis:C-" + std::to_string((n * 7 + t) % 40);
        auto p = store.Find(id);
        if (!p || !p->cis || p->cis->person.cis_id != id.substr(4)) wrong.fetch_add(1);
      }
    });
  for (int round = 1; round <= 5; ++round)
    writer.Ingest(Cis(PersonFields{.cis = "C-3", .phone = std::to_string(round)}));
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong.load(), 0);
  // After the readers raced the writes, the cache holds the last write, not an older read.
  EXPECT_EQ(store.Find("cis:C-3")->cis->person.phone_home, "5");
  EXPECT_EQ(store.Find("cis:C-3"), store.Find("cis:C-3"));  // and caches it
}

TEST(PersonStore, BulkIngestIsOneTransaction) {
  TempDir dir;
  PersonStore store(dir.file("db"));
  std::vector<model::CareRecord> records;
  for (int i = 0; i < 50; ++i) records.push_back(Cis(PersonFields{.cis = "C-" + std::to_string(i), .surname = "S" + std::string(1, static_cast<char>('A' + i % 26)) + std::to_string(i)}));
  auto out = store.IngestMany(records);
  ASSERT_EQ(out.size(), 50u);
  EXPECT_EQ(store.SourceRecordCount(), 50);
  EXPECT_TRUE(store.Find("cis:C-49"));
}

}  // namespace
// SnapshotMemo: what callers derive from one snapshot, by a two-part key.
TEST(SnapshotMemoTest, KeepsTheFirstValuePerKeyBoundedAndACopyStartsEmpty) {
  SnapshotMemo memo;
  EXPECT_EQ(memo.Get("health", "systmone"), nullptr);
  auto a = std::make_shared<const int>(1);
  auto b = std::make_shared<const int>(2);
  EXPECT_EQ(memo.Put("health", "systmone", a), a);
  EXPECT_EQ(memo.Put("health", "systmone", b), a);  // another thread was first: its value
  EXPECT_EQ(memo.Get("health", "systmone"), a);
  EXPECT_EQ(memo.Get("health", "cis"), nullptr);
  EXPECT_EQ(memo.Get("council", "systmone"), nullptr);
  EXPECT_EQ(memo.Put("council", "systmone", b), b);
  EXPECT_EQ(memo.Get("council", "systmone"), b);
  // Keys are the two parts, not their concatenation.
  EXPECT_EQ(memo.Get("healths", "ystmone"), nullptr);

  for (int i = 0; i < 20; ++i) memo.Put("org" + std::to_string(i), "v", a);
  EXPECT_EQ(memo.size(), SnapshotMemo::kMaxEntries);
  EXPECT_EQ(memo.Get("health", "systmone"), nullptr);  // the oldest went first
  EXPECT_EQ(memo.Get("org19", "v"), a);

  SnapshotMemo copy = memo;
  EXPECT_EQ(copy.size(), 0u);
  EXPECT_EQ(copy.Get("org19", "v"), nullptr);
}

TEST(SnapshotMemoTest, ConcurrentPutsAgreeOnOneValue) {
  SnapshotMemo memo;
  std::vector<std::shared_ptr<const void>> seen(8);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < seen.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto mine = std::make_shared<const std::size_t>(t);
        auto kept = memo.Put("health", "systmone", mine);
        if (i == 199) seen[t] = kept;
      }
    });
  for (auto& th : threads) th.join();
  for (const auto& v : seen) EXPECT_EQ(v, seen[0]);
  EXPECT_EQ(memo.size(), 1u);
}

}  // namespace caregate::identity
