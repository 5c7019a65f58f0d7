#include "caregate/identity/person_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <ctime>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <sqlite3.h>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"
#include "caregate/model/canonical_json.h"
#include "caregate/store/database.h"
#include "caregate/store/transaction.h"

namespace caregate::identity {

namespace {

using store::Database;
using store::Statement;
using store::Transaction;

constexpr store::Migration kMigrations[] = {
    {300,
     "CREATE TABLE persons(person_key INTEGER PRIMARY KEY, created_at TEXT NOT NULL);"
     "CREATE TABLE person_ids(id TEXT PRIMARY KEY, person_key INTEGER NOT NULL REFERENCES persons(person_key))"
     " WITHOUT ROWID;"
     "CREATE INDEX person_ids_by_person ON person_ids(person_key);"
     "CREATE TABLE source_records(person_key INTEGER NOT NULL REFERENCES persons(person_key),"
     " system TEXT NOT NULL, source_id TEXT NOT NULL, canonical_json TEXT NOT NULL,"
     " content_hash TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY(person_key, system)) WITHOUT ROWID;"
     "CREATE TABLE demographic_keys(person_key INTEGER NOT NULL REFERENCES persons(person_key),"
     " system TEXT NOT NULL, match_key TEXT NOT NULL, PRIMARY KEY(person_key, system));"
     "CREATE INDEX demographic_keys_by_key ON demographic_keys(match_key);"
     "CREATE TABLE link_proposals(id INTEGER PRIMARY KEY, person_a INTEGER NOT NULL, person_b INTEGER NOT NULL,"
     " match_key TEXT NOT NULL, status TEXT NOT NULL CHECK(status IN ('pending','accepted','rejected')),"
     " created_at TEXT NOT NULL, decided_by TEXT, decided_at TEXT);"
     "CREATE INDEX link_proposals_by_status ON link_proposals(status);"},
    // A counter bumped by every change to what a PersonSnapshot is read from, in the
    // same transaction, by triggers (so whoever writes, in whatever process, bumps it).
    // Find() checks it to keep its cache across commits that touch other tables only:
    // PRAGMA data_version alone changes with every audit event committed to the file.
    {301,
     "CREATE TABLE snapshot_version(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);"
     "INSERT INTO snapshot_version(id, n) VALUES (1, 0);"
     "CREATE TRIGGER person_ids_ins AFTER INSERT ON person_ids"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "CREATE TRIGGER person_ids_upd AFTER UPDATE ON person_ids"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "CREATE TRIGGER person_ids_del AFTER DELETE ON person_ids"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "CREATE TRIGGER source_records_ins AFTER INSERT ON source_records"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "CREATE TRIGGER source_records_upd AFTER UPDATE ON source_records"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "CREATE TRIGGER source_records_del AFTER DELETE ON source_records"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"},
    // A record's lineage (8.9 KB of a typical 11.6 KB) moves to a column of its own, the
    // row's last, so that reading canonical_json no longer walks the lineage's overflow
    // pages. content_hash stays the hash of the whole canonical JSON, as before.
    {302,
     "ALTER TABLE source_records ADD COLUMN lineage_json TEXT NOT NULL DEFAULT '[]';"
     "UPDATE source_records SET lineage_json = coalesce(json_extract(canonical_json, '$.lineage'), '[]'),"
     " canonical_json = json_remove(canonical_json, '$.lineage');"},
    // source_records becomes a rowid table with a UNIQUE(person_key, system) index. As a
    // WITHOUT ROWID table its rows were the B-tree keys themselves, and a key that spills
    // onto overflow pages is read whole to be compared: finding one person's record read
    // several neighbours' complete rows (record and lineage, ~12 KB each, through their
    // overflow chains). Now the search compares small index keys and reads only the row
    // found, and only up to the columns asked for (the large ones are last).
    {303,
     "CREATE TABLE source_records_303(record_id INTEGER PRIMARY KEY,"
     " person_key INTEGER NOT NULL REFERENCES persons(person_key), system TEXT NOT NULL,"
     " source_id TEXT NOT NULL, content_hash TEXT NOT NULL, updated_at TEXT NOT NULL,"
     " canonical_json TEXT NOT NULL, lineage_json TEXT NOT NULL DEFAULT '[]', UNIQUE(person_key, system));"
     "INSERT INTO source_records_303(person_key, system, source_id, content_hash, updated_at, canonical_json,"
     " lineage_json) SELECT person_key, system, source_id, content_hash, updated_at, canonical_json, lineage_json"
     " FROM source_records ORDER BY person_key, system;"
     "DROP TABLE source_records;"
     "ALTER TABLE source_records_303 RENAME TO source_records;"
     "CREATE TRIGGER source_records_ins AFTER INSERT ON source_records"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "CREATE TRIGGER source_records_upd AFTER UPDATE ON source_records"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "CREATE TRIGGER source_records_del AFTER DELETE ON source_records"
     " BEGIN UPDATE snapshot_version SET n = n + 1 WHERE id = 1; END;"
     "UPDATE snapshot_version SET n = n + 1 WHERE id = 1;"},
    // The warm start (PersonStore::Warm) takes persons by their latest update: read in
    // that order from an index, a start costs in proportion to the persons warmed, not
    // to the whole store (a scan of source_records reads every record's leaf pages).
    {304, "CREATE INDEX source_records_by_update ON source_records(updated_at, person_key);"},
    // Session 18: surnames are compared with their diacritics folded (Brontë as BRONTE,
    // Łukasik as LUKASIK) instead of losing every non-ASCII letter (BRONT): the stored
    // keys are computed again from the stored records, with the same code
    // (caregate_demographic_key, registered by Init). Pending proposals stay as they are.
    {305,
     "WITH k AS (SELECT person_key, system, caregate_demographic_key("
     " json_extract(canonical_json, '$.record.person.family_name'),"
     " json_extract(canonical_json, '$.record.person.birth_date'),"
     " json_extract(canonical_json, '$.record.person.address.postcode'),"
     " json_extract(canonical_json, '$.record.person.gender')) AS key FROM source_records)"
     " INSERT INTO demographic_keys(person_key, system, match_key) SELECT person_key, system, key FROM k"
     " WHERE key <> '' AND true"
     " ON CONFLICT(person_key, system) DO UPDATE SET match_key = excluded.match_key;"},
    // Session 19: a re-sent record is found by its system and stored id, also a record
    // without an id of its own (stored under its NHS number or cross-reference), whose
    // stored id another person may hold in the id index.
    {306, "CREATE INDEX source_records_by_source ON source_records(system, source_id);"},
};

// The canonical JSON of a record, split into the record without its lineage and the
// lineage array. The lineage is the document's last member, and `,"lineage":[` can only
// occur as that member (inside strings the quotes would be escaped).
constexpr std::string_view kLineageMember = ",\"lineage\":";
std::pair<std::string, std::string> SplitLineage(const std::string& full) {
  const auto at = full.find(std::string(kLineageMember) + "[");
  if (at == std::string::npos || full.empty() || full.back() != '}')
    throw FatalError(Problem::kInternal, "canonical JSON without a lineage member");
  return {full.substr(0, at) + "}", full.substr(at + kLineageMember.size(), full.size() - 1 - at - kLineageMember.size())};
}
std::string JoinLineage(std::string_view record, std::string_view lineage) {
  std::string full(record.substr(0, record.empty() ? 0 : record.size() - 1));
  full += kLineageMember;
  full += lineage;
  full += '}';
  return full;
}

std::string NowUtc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string NhsOf(const std::vector<std::string>& ids) {
  for (const auto& id : ids)
    if (id.starts_with("nhs:")) return id;
  return {};
}

// The single integer a statement returns.
std::int64_t ReadInt(Statement& s) {
  s.Reset();
  if (!s.Step()) throw FatalError(Problem::kInternal, "expected one row");
  const std::int64_t v = s.ColumnInt64(0);
  s.Reset();
  return v;
}

}  // namespace

namespace {

// U+00C0..U+017F (Latin-1 Supplement letters, Latin Extended-A) as the upper-case ASCII
// letters a surname is compared by: the base letter without its diacritics, a ligature
// or special letter spelt out (ß SS, Æ AE, Œ OE, Þ TH, Ĳ IJ, Ŋ NG; Ø O, Ł L, Đ D, Ħ H);
// "" for the two signs in the range (× ÷).
constexpr const char* kLatinFold[] = {
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",  // U+00C0
    "D", "N", "O", "O", "O", "O", "O", "", "O", "U", "U", "U", "U", "Y", "TH", "SS",  // U+00D0
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",  // U+00E0
    "D", "N", "O", "O", "O", "O", "O", "", "O", "U", "U", "U", "U", "Y", "TH", "Y",  // U+00F0
    "A", "A", "A", "A", "A", "A", "C", "C", "C", "C", "C", "C", "C", "C", "D", "D",  // U+0100
    "D", "D", "E", "E", "E", "E", "E", "E", "E", "E", "E", "E", "G", "G", "G", "G",  // U+0110
    "G", "G", "G", "G", "H", "H", "H", "H", "I", "I", "I", "I", "I", "I", "I", "I",  // U+0120
    "I", "I", "IJ", "IJ", "J", "J", "K", "K", "K", "L", "L", "L", "L", "L", "L", "L",  // U+0130
    "L", "L", "L", "N", "N", "N", "N", "N", "N", "N", "NG", "NG", "O", "O", "O", "O",  // U+0140
    "O", "O", "OE", "OE", "R", "R", "R", "R", "R", "R", "S", "S", "S", "S", "S", "S",  // U+0150
    "S", "S", "T", "T", "T", "T", "T", "T", "U", "U", "U", "U", "U", "U", "U", "U",  // U+0160
    "U", "U", "U", "U", "W", "W", "Y", "Y", "Y", "Z", "Z", "Z", "Z", "Z", "Z", "S",  // U+0170
};
static_assert(sizeof kLatinFold / sizeof kLatinFold[0] == 0x180 - 0xC0);

// Whether a code point outside ASCII and the table above is punctuation, a symbol, a
// space or a combining mark (dropped, as ASCII non-letters are) rather than a letter of
// another script (kept as it is, so that two Cyrillic or Greek surnames still compare).
bool DroppedNonAscii(char32_t cp) {
  return (cp >= 0x80 && cp <= 0xBF) ||     // Latin-1 punctuation, symbols, no-break space
         (cp >= 0x2B0 && cp <= 0x36F) ||   // modifier letters (ʼ), combining diacritics
         (cp >= 0x2000 && cp <= 0x206F) || // general punctuation (’ ‐ – —), spaces
         cp == 0x3000 || cp == 0xFEFF;
}

}  // namespace

std::string FoldSurname(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (std::isalpha(c)) out += static_cast<char>(std::toupper(c));
      ++i;
      continue;
    }
    // Valid UTF-8 (the adapters check every record); a stray byte is skipped.
    const std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len == 1 || i + len > s.size()) {
      ++i;
      continue;
    }
    char32_t cp = c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    if (cp >= 0xC0 && cp < 0x180) {
      out += kLatinFold[cp - 0xC0];
    } else if (!DroppedNonAscii(cp)) {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string DemographicMatchKey(const model::Person& p) {
  const std::string surname = FoldSurname(p.family_name);
  std::string postcode;
  for (unsigned char c : p.address.postcode)
    if (!std::isspace(c)) postcode += static_cast<char>(std::toupper(c));
  if (surname.empty() || p.birth_date.empty() || postcode.empty() || p.gender.empty()) return {};
  return surname + "|" + p.birth_date + "|" + postcode + "|" + p.gender;
}

std::string OwnId(const model::CareRecord& r) {
  if (r.source_system == "systmone" && !r.person.s1_id.empty()) return "s1:" + r.person.s1_id;
  if (r.source_system == "cis" && !r.person.cis_id.empty()) return "cis:" + r.person.cis_id;
  if (!r.person.nhs_number.empty()) return "nhs:" + r.person.nhs_number;
  auto ids = r.person_ids();
  return ids.empty() ? std::string() : ids.front();
}

struct PersonStore::Impl {
  std::string path;
  PersonStoreOptions options;
  // Writer.
  std::mutex write_mutex;
  Database wdb;
  std::atomic<std::uint64_t> local_writes{0};  // commits through wdb, bumped after each
  // Reader + cache.
  mutable std::mutex read_mutex;
  mutable Database rdb;
  mutable Statement data_version, snapshot_version, find_key, ids_of, records_of, records_with_lineage_of;
  mutable std::int64_t seen_data_version = -1, seen_snapshot_version = -1;
  // When the file was last asked for changes, and the local write count then.
  mutable std::chrono::steady_clock::time_point checked_at;
  mutable std::uint64_t checked_local_writes = 0;
  // [0]: snapshots without lineage, [1]: with.
  mutable std::unordered_map<std::string, std::shared_ptr<const PersonSnapshot>> cache[2];

  Impl(std::string p, PersonStoreOptions o)
      : path(std::move(p)),
        options(o),
        wdb(Init(path)),
        rdb(path),
        data_version(rdb, "PRAGMA data_version"),
        snapshot_version(rdb, "SELECT n FROM snapshot_version WHERE id = 1"),
        find_key(rdb, "SELECT person_key FROM person_ids WHERE id = ?"),
        ids_of(rdb, "SELECT id FROM person_ids WHERE person_key = ? ORDER BY id"),
        records_of(rdb, "SELECT system, canonical_json, updated_at FROM source_records WHERE person_key = ?"),
        records_with_lineage_of(rdb,
                                "SELECT system, canonical_json, updated_at, lineage_json FROM source_records "
                                "WHERE person_key = ?") {}

  // Under read_mutex. data_version changes whenever another connection commits to the
  // file (the audit trail does so for every lookup); only then is the snapshot counter
  // read, and only when that has moved is the cache stale. A write landing between the
  // two reads is seen at the next check, as it would be had it landed just after this one.
  void CheckForChanges() const {
    const std::int64_t dv = ReadInt(data_version);
    if (dv != seen_data_version) {
      seen_data_version = dv;
      const std::int64_t sv = ReadInt(snapshot_version);
      if (sv != seen_snapshot_version) {
        for (auto& c : cache) c.clear();
        seen_snapshot_version = sv;
      }
    }
  }

  static Database Init(const std::string& path) {
    Database db(path);
    // For migration 305, which recomputes the stored match keys with the code that
    // computes new ones.
    if (sqlite3_create_function_v2(db.handle(), "caregate_demographic_key", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                   nullptr, &SqlDemographicKey, nullptr, nullptr, nullptr) != SQLITE_OK)
      throw FatalError(Problem::kInternal, path + ": cannot register caregate_demographic_key");
    db.Migrate("identity", kMigrations);
    return db;
  }
  // caregate_demographic_key(family_name, birth_date, postcode, gender): DemographicMatchKey.
  static void SqlDemographicKey(sqlite3_context* ctx, int, sqlite3_value** argv) {
    auto text = [&](int i) {
      const unsigned char* t = sqlite3_value_text(argv[i]);
      return t ? std::string(reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_value_bytes(argv[i])))
               : std::string();
    };
    model::Person p;
    p.family_name = text(0);
    p.birth_date = text(1);
    p.address.postcode = text(2);
    p.gender = text(3);
    const std::string key = DemographicMatchKey(p);
    sqlite3_result_text(ctx, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  }

  // ---- reads (writer connection, inside a transaction) ----
  std::optional<std::int64_t> KeyOf(Database& db, std::string_view id) {
    Statement s(db, "SELECT person_key FROM person_ids WHERE id = ?");
    s.Bind(1, id);
    if (!s.Step()) return std::nullopt;
    return s.ColumnInt64(0);
  }
  std::vector<std::string> IdsOf(Database& db, std::int64_t key) {
    Statement s(db, "SELECT id FROM person_ids WHERE person_key = ? ORDER BY id");
    s.Bind(1, key);
    std::vector<std::string> out;
    while (s.Step()) out.push_back(s.ColumnText(0));
    return out;
  }
  std::set<std::string> SystemsOf(Database& db, std::int64_t key) {
    Statement s(db, "SELECT system FROM source_records WHERE person_key = ?");
    s.Bind(1, key);
    std::set<std::string> out;
    while (s.Step()) out.insert(s.ColumnText(0));
    return out;
  }
  std::int64_t NewPerson(Database& db, const std::string& now) {
    Statement s(db, "INSERT INTO persons(created_at) VALUES(?)");
    s.Bind(1, now).Run();
    return db.LastInsertRowId();
  }
  void AddId(Database& db, std::int64_t key, std::string_view id) {
    Statement s(db, "INSERT OR IGNORE INTO person_ids(id, person_key) VALUES(?, ?)");
    s.Bind(1, id).Bind(2, key).Run();
  }
  bool PairProposed(Database& db, std::int64_t a, std::int64_t b) {
    Statement s(db,
                "SELECT 1 FROM link_proposals WHERE (person_a = ?1 AND person_b = ?2) OR (person_a = ?2 AND person_b = ?1)");
    s.Bind(1, a).Bind(2, b);
    return s.Step();
  }
  std::int64_t Propose(Database& db, std::int64_t a, std::int64_t b, const std::string& key, const std::string& now) {
    Statement s(db,
                "INSERT INTO link_proposals(person_a, person_b, match_key, status, created_at) VALUES(?,?,?,'pending',?)");
    s.Bind(1, a).Bind(2, b).Bind(3, key).Bind(4, now).Run();
    return db.LastInsertRowId();
  }
  // Moves everything of `from` to `to`. The caller has checked the systems do not overlap.
  void Merge(Database& db, std::int64_t to, std::int64_t from) {
    for (const char* sql : {"UPDATE person_ids SET person_key = ?1 WHERE person_key = ?2",
                            "UPDATE source_records SET person_key = ?1 WHERE person_key = ?2",
                            "UPDATE demographic_keys SET person_key = ?1 WHERE person_key = ?2",
                            "UPDATE link_proposals SET person_a = ?1 WHERE person_a = ?2",
                            "UPDATE link_proposals SET person_b = ?1 WHERE person_b = ?2",
                            "DELETE FROM persons WHERE person_key = ?2"}) {
      Statement s(db, sql);
      s.Bind(1, to).Bind(2, from).Run();
    }
  }
  // A pending proposal pairing a person with itself (its two sides merged since) is moot.
  void DropMootProposals(Database& db, std::int64_t key) {
    Statement s(db, "DELETE FROM link_proposals WHERE person_a = ?1 AND person_b = ?1 AND status = 'pending'");
    s.Bind(1, key).Run();
  }
  bool NhsConflict(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    const std::string na = NhsOf(a), nb = NhsOf(b);
    return !na.empty() && !nb.empty() && na != nb;
  }

  // The ids a stored record carries in its own fields: its system and own id, and the
  // person fields that name somebody (NHS number, SystmOne id, CIS id). Read from the
  // stored canonical JSON, so they are the record's ids now, not the index's history.
  struct RecordIds {
    std::string system, source_id, nhs, s1, cis;
  };
  std::vector<RecordIds> RecordsOf(Database& db, std::int64_t key) {
    Statement s(db,
                "SELECT system, source_id, coalesce(json_extract(canonical_json, '$.record.person.nhs_number'), ''),"
                " coalesce(json_extract(canonical_json, '$.record.person.s1_id'), ''),"
                " coalesce(json_extract(canonical_json, '$.record.person.cis_id'), '') FROM source_records"
                " WHERE person_key = ?");
    s.Bind(1, key);
    std::vector<RecordIds> out;
    while (s.Step()) out.push_back({s.ColumnText(0), s.ColumnText(1), s.ColumnText(2), s.ColumnText(3), s.ColumnText(4)});
    return out;
  }
  // Two records name different people when their NHS numbers differ; or, unless both
  // carry the same NHS number (spec 5's evidence, which a stale cross-reference does not
  // undo), when the SystmOne or CIS ids both carry differ (a record's own id, or its
  // cross-reference to the other system).
  static bool Disagree(const RecordIds& a, const RecordIds& b) {
    const auto differ = [](const std::string& x, const std::string& y) { return !x.empty() && !y.empty() && x != y; };
    if (differ(a.nhs, b.nhs)) return true;
    if (!a.nhs.empty() && a.nhs == b.nhs) return false;
    return differ(a.s1, b.s1) || differ(a.cis, b.cis);
  }

  // Whether one of `records` carries `id` now: an NHS number, a SystmOne or CIS id (own or
  // cross-reference), or the stored id of a record that has no id of its own.
  static bool Carries(const std::vector<RecordIds>& records, std::string_view id) {
    const auto value = [&](std::string_view prefix) { return id.substr(prefix.size()); };
    for (const auto& t : records) {
      if (t.source_id == id) return true;
      if (id.starts_with("nhs:") && t.nhs == value("nhs:")) return true;
      if (id.starts_with("s1:") && t.s1 == value("s1:")) return true;
      if (id.starts_with("cis:") && t.cis == value("cis:")) return true;
    }
    return false;
  }
  // A stored record with an id of its own system (s1: or cis:), not one stored under an
  // NHS number or a cross-reference for want of one.
  static bool HasOwnId(const RecordIds& t) {
    return t.source_id.starts_with(t.system == "systmone" ? "s1:" : "cis:");
  }

  // Spec 5: records from the two systems are linked when they carry the same valid NHS
  // number; nothing else merges on its own. A record joins a person only when that person
  // holds no other record of the record's own system (two council records, or two
  // SystmOne patients, are two persons until an IG officer says otherwise) and no record
  // that disagrees with it (a different NHS number, or a cross-reference naming somebody
  // else). A record re-sent with such a change leaves the person it was linked with.
  // Whatever is not joined is raised as a link proposal for review.
  IngestOutcome IngestOne(Database& db, const model::CareRecord& r, const std::string& now) {
    IngestOutcome out;
    const std::string own = OwnId(r);  // also the stored source_id
    const std::vector<std::string> ids = r.person_ids();
    const std::string nhs = NhsOf(ids);
    const RecordIds mine{r.source_system, own, r.person.nhs_number, r.person.s1_id, r.person.cis_id};
    std::map<std::int64_t, std::vector<RecordIds>> records;  // read once per person
    const auto records_of = [&](std::int64_t k) -> const std::vector<RecordIds>& {
      auto it = records.find(k);
      if (it == records.end()) it = records.emplace(k, RecordsOf(db, k)).first;
      return it->second;
    };
    // An id reaches a person only when one of the person's records carries it now; an id
    // only the index remembers (an NHS number since corrected, a cross-reference since
    // withdrawn) is history, and goes to the person of the record carrying it now.
    std::map<std::string, std::int64_t> resolved;  // id -> person
    std::vector<std::string> stale;
    std::set<std::int64_t> keys;
    for (const auto& id : ids)
      if (auto k = KeyOf(db, id)) {
        if (Carries(records_of(*k), id)) {
          resolved[id] = *k;
          keys.insert(*k);
        } else {
          stale.push_back(id);
        }
      }
    // The person can take this record: it holds no other record of the record's system
    // with an id of its own (one stored without, that this record does not contradict, is
    // this record before it had one), and no record that disagrees with it.
    const auto can_join = [&](std::int64_t k) {
      for (const auto& t : records_of(k)) {
        if (t.system == r.source_system) {
          if (t.source_id == own) continue;  // this very record, about to be replaced
          if (HasOwnId(t) || Disagree(mine, t)) return false;
          continue;
        }
        if (Disagree(mine, t)) return false;
      }
      return true;
    };
    // The person already holding this very record (the same system and stored id): a re-send.
    std::int64_t self = 0;
    {
      Statement f(db, "SELECT person_key FROM source_records WHERE system = ? AND source_id = ? LIMIT 1");
      f.Bind(1, r.source_system).Bind(2, own);
      if (f.Step()) self = f.ColumnInt64(0);
    }

    std::int64_t target = 0;
    std::vector<std::int64_t> propose_with;
    if (self != 0 && can_join(self)) {
      target = self;
    } else if (self != 0) {
      // Re-sent with an NHS number or a cross-reference that the other system's record of
      // the person contradicts: the link's evidence is gone, so the record leaves.
      for (const char* sql : {"DELETE FROM source_records WHERE person_key = ? AND system = ?",
                              "DELETE FROM demographic_keys WHERE person_key = ? AND system = ?"}) {
        Statement d(db, sql);
        d.Bind(1, self).Bind(2, r.source_system).Run();
      }
      records.erase(self);
      propose_with.push_back(self);
      // Ids that only the record's old version carried no longer reach the person it
      // left (an NHS number its other record does not carry): they follow the record.
      for (auto it = resolved.begin(); it != resolved.end();) {
        if (it->second == self && !Carries(records_of(self), it->first)) {
          stale.push_back(it->first);
          it = resolved.erase(it);
        } else {
          ++it;
        }
      }
      keys.clear();
      for (const auto& [id, k] : resolved) keys.insert(k);
    }
    if (target == 0) {
      // Prefer the person of the record's own id (a cross-reference another record made),
      // then the NHS number's, then any other reached, as long as it can take the record.
      std::vector<std::int64_t> order;
      if (auto it = resolved.find(own); it != resolved.end()) order.push_back(it->second);
      if (auto it = resolved.find(nhs); !nhs.empty() && it != resolved.end()) order.push_back(it->second);
      order.insert(order.end(), keys.begin(), keys.end());
      for (std::int64_t k : order)
        if (k != self && can_join(k)) {
          target = k;
          break;
        }
      if (target == 0) target = NewPerson(db, now);
    }
    const std::int64_t nhs_key = !nhs.empty() && resolved.count(nhs) ? resolved[nhs] : 0;
    for (std::int64_t k : keys) {
      if (k == target || k == self) continue;
      // Only the person holding the record's own NHS number is the same person, and only
      // when it can take the record, holds nothing of the record's system, and no record
      // of it disagrees with the target's others (the target's record of this system is
      // the one being replaced: the incoming record stands for it, checked by can_join).
      bool same = nhs_key == k && can_join(k);
      for (const auto& b : records_of(k)) same = same && b.system != r.source_system;
      for (const auto& a : records_of(target)) {
        if (a.system == r.source_system) continue;
        for (const auto& b : records_of(k)) same = same && a.system != b.system && !Disagree(a, b);
      }
      if (same) {
        Merge(db, target, k);
        DropMootProposals(db, target);
        out.merged = true;
      } else {
        propose_with.push_back(k);
      }
    }
    // The record's own id names it: it moves to the record's person when another person
    // held it (a cross-reference claim, or the person the record has just left); so does
    // an id only history gave another person.
    if (auto it = resolved.find(own); HasOwnId(mine) && it != resolved.end() && it->second != target)
      stale.push_back(own);
    for (const auto& id : stale) {
      Statement m(db, "UPDATE person_ids SET person_key = ? WHERE id = ?");
      m.Bind(1, target).Bind(2, id).Run();
      resolved[id] = target;
    }
    // Ids this record carries that no other person holds become the person's.
    for (const auto& id : ids)
      if (!resolved.count(id) || resolved[id] == target) AddId(db, target, id);

    // The source record itself.
    const std::string json = model::ToCanonicalJson(r);
    const std::string hash = Sha256Hex(json);
    {
      Statement s(db, "SELECT content_hash FROM source_records WHERE person_key = ? AND system = ?");
      s.Bind(1, target).Bind(2, r.source_system);
      if (s.Step()) {
        out.unchanged = s.ColumnText(0) == hash;
      } else {
        out.created = self == 0;  // a record that left its person was stored before
      }
    }
    if (!out.unchanged) {
      const auto [record_json, lineage_json] = SplitLineage(json);
      Statement s(db,
                  "INSERT INTO source_records(person_key, system, source_id, canonical_json, content_hash, updated_at,"
                  " lineage_json) VALUES(?,?,?,?,?,?,?) ON CONFLICT(person_key, system) DO UPDATE SET"
                  " source_id = excluded.source_id, canonical_json = excluded.canonical_json,"
                  " content_hash = excluded.content_hash, updated_at = excluded.updated_at,"
                  " lineage_json = excluded.lineage_json");
      s.Bind(1, target).Bind(2, r.source_system).Bind(3, own).Bind(4, record_json).Bind(5, hash).Bind(6, now);
      s.Bind(7, lineage_json).Run();
    }
    const std::string match_key = DemographicMatchKey(r.person);
    {
      Statement d(db, "DELETE FROM demographic_keys WHERE person_key = ? AND system = ?");
      d.Bind(1, target).Bind(2, r.source_system).Run();
      if (!match_key.empty()) {
        Statement s(db, "INSERT INTO demographic_keys(person_key, system, match_key) VALUES(?,?,?)");
        s.Bind(1, target).Bind(2, r.source_system).Bind(3, match_key).Run();
      }
    }
    // A new person without a linking id: look for the same person in the other system.
    std::vector<std::int64_t> demographic;  // proposed on the match key alone
    if (keys.empty() && self == 0 && !match_key.empty()) {
      Statement s(db, "SELECT DISTINCT person_key FROM demographic_keys WHERE match_key = ? AND system <> ?"
                      " AND person_key <> ?");
      s.Bind(1, match_key).Bind(2, r.source_system).Bind(3, target);
      while (s.Step()) demographic.push_back(s.ColumnInt64(0));
    }
    const auto target_ids = IdsOf(db, target);
    for (std::int64_t k : demographic)
      if (!NhsConflict(target_ids, IdsOf(db, k))) propose_with.push_back(k);  // not across NHS numbers
    for (std::int64_t k : propose_with) {
      if (k == target || PairProposed(db, k, target)) continue;
      out.proposals.push_back(Propose(db, k, target, match_key, now));
    }
    out.person_key = target;
    out.person_ids = IdsOf(db, target);
    return out;
  }

  // A person's rows as stored, read under read_mutex inside one read snapshot; decoding
  // them (the costly part) is done by Decode without the lock, so that the I/O threads
  // decode different people at once.
  struct Stored {
    std::int64_t key = 0;
    std::vector<std::string> ids;
    struct Record {
      std::string system, canonical_json, updated_at;
    };
    std::vector<Record> records;
  };
  Stored Read(std::int64_t key, bool with_lineage) const {
    Statement& records_of = with_lineage ? records_with_lineage_of : this->records_of;
    Stored out;
    out.key = key;
    ids_of.Reset();
    ids_of.Bind(1, key);
    while (ids_of.Step()) out.ids.push_back(ids_of.ColumnText(0));
    ids_of.Reset();
    records_of.Reset();
    records_of.Bind(1, key);
    while (records_of.Step())
      out.records.push_back({records_of.ColumnText(0),
                             with_lineage ? JoinLineage(records_of.ColumnTextView(1), records_of.ColumnTextView(3))
                                          : records_of.ColumnText(1),
                             records_of.ColumnText(2)});
    records_of.Reset();
    return out;
  }
  std::shared_ptr<const PersonSnapshot> Decode(Stored&& stored) const {
    auto snap = std::make_shared<PersonSnapshot>();
    snap->person_key = stored.key;
    snap->ids = std::move(stored.ids);
    for (auto& r : stored.records) {
      auto rec = model::FromCanonicalJson(r.canonical_json);
      if (!rec) throw FatalError(Problem::kInternal, path + ": a stored record does not parse: " + FormatErrors(rec.errors()));
      auto ptr = std::make_shared<const model::CareRecord>(std::move(rec.value()));
      if (r.system == "systmone") {
        snap->systmone = ptr;
        snap->systmone_updated_at = std::move(r.updated_at);
      } else if (r.system == "cis") {
        snap->cis = ptr;
        snap->cis_updated_at = std::move(r.updated_at);
      }
    }
    return snap;
  }

  LinkProposal ReadProposal(Statement& s) {
    LinkProposal p;
    p.id = s.ColumnInt64(0);
    p.person_a = s.ColumnInt64(1);
    p.person_b = s.ColumnInt64(2);
    p.match_key = s.ColumnText(3);
    p.status = s.ColumnText(4);
    p.created_at = s.ColumnText(5);
    p.decided_by = s.ColumnText(6);
    p.decided_at = s.ColumnText(7);
    return p;
  }
};

PersonStore::PersonStore(std::string db_path, PersonStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(db_path), options)) {}
PersonStore::~PersonStore() = default;
const std::string& PersonStore::path() const { return impl_->path; }

IngestOutcome PersonStore::Ingest(const model::CareRecord& record) {
  return IngestMany(std::span<const model::CareRecord>(&record, 1)).front();
}

std::vector<IngestOutcome> PersonStore::IngestMany(std::span<const model::CareRecord> records) {
  std::lock_guard lock(impl_->write_mutex);
  const std::string now = NowUtc();
  std::vector<IngestOutcome> out;
  out.reserve(records.size());
  Transaction tx(impl_->wdb);
  for (const auto& r : records) out.push_back(impl_->IngestOne(impl_->wdb, r, now));
  tx.Commit();
  impl_->local_writes.fetch_add(1, std::memory_order_release);
  return out;
}

std::shared_ptr<const void> SnapshotMemo::Get(std::string_view a, std::string_view b) const {
  std::lock_guard lock(mutex_);
  for (const Entry& e : entries_)
    if (e.a == a && e.b == b) return e.value;
  return nullptr;
}

std::shared_ptr<const void> SnapshotMemo::Put(std::string_view a, std::string_view b,
                                              std::shared_ptr<const void> value) const {
  std::lock_guard lock(mutex_);
  for (const Entry& e : entries_)
    if (e.a == a && e.b == b) return e.value;
  if (entries_.size() >= kMaxEntries) entries_.erase(entries_.begin());
  entries_.push_back({std::string(a), std::string(b), value});
  return value;
}

std::size_t SnapshotMemo::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::vector<std::string> PersonStore::WithKnownIds(const std::vector<std::string>& given) const {
  std::vector<std::string> ids;
  auto add = [&ids](const std::string& id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (const auto& id : given) {
    if (auto person = Find(id))
      for (const auto& known : person->ids) add(known);
    add(id);
  }
  return ids;
}

std::shared_ptr<const PersonSnapshot> PersonStore::Find(std::string_view person_id, bool with_lineage) const {
  auto& d = *impl_;
  std::string id(person_id);
  Impl::Stored stored;
  std::int64_t read_at_version = 0;
  {
    std::lock_guard lock(d.read_mutex);
    const auto now = std::chrono::steady_clock::now();
    const std::uint64_t writes = d.local_writes.load(std::memory_order_acquire);
    if (writes != d.checked_local_writes || now - d.checked_at >= d.options.recheck_interval) {
      d.CheckForChanges();
      d.checked_at = now;
      d.checked_local_writes = writes;
    }
    auto& cache = d.cache[with_lineage ? 1 : 0];
    if (cache.size() > 200'000) cache.clear();
    if (auto it = cache.find(id); it != cache.end()) return it->second;
    // The key and the rows in one read snapshot, checked for changes first (so that what
    // is cached below is current even when the check above was not due).
    Transaction tx(d.rdb, Transaction::Mode::kDeferred);
    if (d.options.recheck_interval.count() > 0) d.CheckForChanges();
    d.find_key.Reset();
    d.find_key.Bind(1, id);
    if (!d.find_key.Step()) {
      d.find_key.Reset();
      return nullptr;
    }
    const std::int64_t key = d.find_key.ColumnInt64(0);
    d.find_key.Reset();
    stored = d.Read(key, with_lineage);
    tx.Commit();
    read_at_version = d.seen_snapshot_version;
  }
  auto snap = d.Decode(std::move(stored));
  std::lock_guard lock(d.read_mutex);
  // Cached only if nothing it was read from has changed since (else the next call reads
  // it again); another thread may have cached the same person meanwhile.
  if (d.seen_snapshot_version == read_at_version) {
    auto [it, inserted] = d.cache[with_lineage ? 1 : 0].emplace(std::move(id), snap);
    if (!inserted) return it->second;
  }
  return snap;
}

std::size_t PersonStore::Warm(std::size_t max_persons, unsigned threads, const WarmCallback& each) const {
  constexpr std::size_t kChunk = 2048;  // persons read, decoded and cached at a time
  auto& d = *impl_;
  threads = std::max(1u, threads);
  // Which persons: the latest updated first, each once, by the index on (updated_at,
  // person_key) (migration 304): about as many index entries read as persons warmed.
  std::vector<std::int64_t> keys;
  {
    std::lock_guard lock(d.read_mutex);
    Statement s(d.rdb, "SELECT person_key FROM source_records ORDER BY updated_at DESC, person_key DESC");
    std::unordered_set<std::int64_t> seen;
    while (keys.size() < max_persons && s.Step())
      if (seen.insert(s.ColumnInt64(0)).second) keys.push_back(s.ColumnInt64(0));
  }
  std::size_t cached = 0;
  for (std::size_t from = 0; from < keys.size(); from += kChunk) {
    const std::size_t to = std::min(keys.size(), from + kChunk);
    std::vector<Impl::Stored> stored;
    std::int64_t version = 0;
    {
      std::lock_guard lock(d.read_mutex);
      Transaction tx(d.rdb, Transaction::Mode::kDeferred);
      d.CheckForChanges();
      for (std::size_t i = from; i < to; ++i) stored.push_back(d.Read(keys[i], /*with_lineage=*/false));
      tx.Commit();
      version = d.seen_snapshot_version;
    }
    // Decoded (and handed to `each`) on `threads` threads, each taking every n-th person.
    std::vector<std::shared_ptr<const PersonSnapshot>> snaps(stored.size());
    auto work = [&](unsigned first) {
      for (std::size_t i = first; i < stored.size(); i += threads) {
        snaps[i] = d.Decode(std::move(stored[i]));
        if (each) each(snaps[i]);
      }
    };
    std::vector<std::future<void>> helpers;
    for (unsigned t = 1; t < threads; ++t) helpers.push_back(std::async(std::launch::async, work, t));
    work(0);
    for (auto& h : helpers) h.get();  // rethrows a helper's exception
    std::lock_guard lock(d.read_mutex);
    d.CheckForChanges();
    if (d.seen_snapshot_version != version) continue;  // something changed: Find() reads it
    for (const auto& snap : snaps)
      for (const auto& id : snap->ids) d.cache[0].emplace(id, snap);  // a newer entry stays
    cached += snaps.size();
  }
  return cached;
}

std::vector<LinkProposal> PersonStore::Proposals(std::string_view status) const {
  std::lock_guard lock(impl_->write_mutex);
  auto& db = impl_->wdb;
  Statement s(db, "SELECT id, person_a, person_b, match_key, status, created_at, decided_by, decided_at"
                  " FROM link_proposals WHERE ?1 = '' OR status = ?1 ORDER BY id");
  s.Bind(1, status);
  std::vector<LinkProposal> out;
  while (s.Step()) out.push_back(impl_->ReadProposal(s));
  for (auto& p : out) {
    p.ids_a = impl_->IdsOf(db, p.person_a);
    p.ids_b = impl_->IdsOf(db, p.person_b);
  }
  return out;
}

std::optional<LinkProposal> PersonStore::Proposal(std::int64_t id) const {
  std::lock_guard lock(impl_->write_mutex);
  auto& db = impl_->wdb;
  Statement s(db, "SELECT id, person_a, person_b, match_key, status, created_at, decided_by, decided_at"
                  " FROM link_proposals WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  LinkProposal p = impl_->ReadProposal(s);
  p.ids_a = impl_->IdsOf(db, p.person_a);
  p.ids_b = impl_->IdsOf(db, p.person_b);
  return p;
}

DecideResult PersonStore::Decide(std::int64_t id, bool accept, std::string_view user) {
  DecideResult result;
  {
    std::lock_guard lock(impl_->write_mutex);
    auto& db = impl_->wdb;
    Transaction tx(db);
    Statement s(db, "SELECT id, person_a, person_b, match_key, status, created_at, decided_by, decided_at"
                    " FROM link_proposals WHERE id = ?");
    s.Bind(1, id);
    if (!s.Step()) return {DecideStatus::kNotFound, "no such link proposal", std::nullopt};
    LinkProposal p = impl_->ReadProposal(s);
    s.Reset();
    if (p.status != "pending")
      return {DecideStatus::kAlreadyDecided, "the proposal was already " + p.status, std::nullopt};
    if (accept && p.person_a != p.person_b) {
      auto a = impl_->SystemsOf(db, p.person_a), b = impl_->SystemsOf(db, p.person_b);
      for (const auto& sys : a)
        if (b.count(sys))
          return {DecideStatus::kConflict, "both persons hold a record from " + sys + "; they cannot be one person",
                  std::nullopt};
      // Judged by the records as they are now (the id index also keeps ids of the past):
      // a link the records contradict would come apart at the next re-send of either.
      for (const auto& ra : impl_->RecordsOf(db, p.person_a))
        for (const auto& rb : impl_->RecordsOf(db, p.person_b)) {
          if (!ra.nhs.empty() && !rb.nhs.empty() && ra.nhs != rb.nhs)
            return {DecideStatus::kConflict, "the two persons have different NHS numbers", std::nullopt};
          if (Impl::Disagree(ra, rb))
            return {DecideStatus::kConflict,
                    "the two persons' records name different people (their SystmOne or CIS ids differ); correct the "
                    "cross-reference at its source",
                    std::nullopt};
        }
      impl_->Merge(db, p.person_a, p.person_b);
    }
    Statement u(db, "UPDATE link_proposals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?");
    u.Bind(1, accept ? "accepted" : "rejected").Bind(2, user).Bind(3, NowUtc()).Bind(4, id).Run();
    if (accept) impl_->DropMootProposals(db, p.person_a);  // other proposals of the two, now one
    tx.Commit();
    impl_->local_writes.fetch_add(1, std::memory_order_release);
  }
  result.proposal = Proposal(id);
  return result;
}

std::int64_t PersonStore::SourceRecordCount() const {
  std::lock_guard lock(impl_->read_mutex);
  Statement s(impl_->rdb, "SELECT count(*) FROM source_records");
  s.Step();
  return s.ColumnInt64(0);
}

std::int64_t PersonStore::PersonCount() const {
  std::lock_guard lock(impl_->read_mutex);
  Statement s(impl_->rdb, "SELECT count(*) FROM persons");
  s.Step();
  return s.ColumnInt64(0);
}

}  // namespace caregate::identity
