#pragma once
// The record store and identity index (docs/lookups.md).
//
// One row per (person, source system): the latest canonical record that system sent,
// with its lineage. A record is never stored translated, so a value mapped lossily from
// the other system can never be written over a system's own value. Person ids ("nhs:",
// "s1:", "cis:") resolve to a person; records join a person through any id they carry,
// and two persons merge only when a valid NHS number says they are one. A demographic
// match (surname, birth date, postcode, gender) only raises a link proposal for an IG
// officer to accept or reject.
//
// Thread-safe: writes are serialised on one connection, reads go through a second
// connection and an in-memory snapshot cache that is dropped whenever the stored records
// change (own writes or another process's, detected with PRAGMA data_version and a
// counter bumped by triggers; see PersonStoreOptions for how often that is asked).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/model/care_record.h"

namespace caregate::identity {

// The surname as a demographic match compares it (spec 5, "normalised surname"): ASCII
// letters upper-cased, Latin letters with diacritics folded to their base letters (Brontë
// BRONTE, Strauß STRAUSS, Łukasik LUKASIK), letters of other scripts kept as they are,
// everything else (apostrophes ' and ’, hyphens, spaces, digits) dropped.
std::string FoldSurname(std::string_view surname);

// FoldSurname(surname) | birth date | postcode upper-cased without spaces | gender; ""
// when any part is missing (no match is attempted then).
std::string DemographicMatchKey(const model::Person& person);

// The person id a record's own system gives it ("s1:..." / "cis:..."), else its NHS id.
std::string OwnId(const model::CareRecord& record);

struct IngestOutcome {
  bool created = false;                 // no record from this system was held for the person
  bool unchanged = false;               // same content as the stored record
  std::int64_t person_key = 0;
  std::vector<std::string> person_ids;  // every id of the person afterwards, sorted
  std::vector<std::int64_t> proposals;  // link proposals raised by this record
  bool merged = false;                  // two persons were merged on an NHS number
};

// Values derived from one snapshot and a small key (the app's rendered views, keyed by
// organisation and view), kept with the snapshot: computed once, and gone with it when the
// stored records change. Thread-safe. A copy starts empty. At most kMaxEntries are kept
// (a new key past that replaces the oldest).
class SnapshotMemo {
 public:
  static constexpr std::size_t kMaxEntries = 8;
  SnapshotMemo() = default;
  SnapshotMemo(const SnapshotMemo&) {}
  SnapshotMemo& operator=(const SnapshotMemo&) { return *this; }
  std::shared_ptr<const void> Get(std::string_view a, std::string_view b) const;
  // Keeps `value` for (a, b), or returns the value another thread kept first.
  std::shared_ptr<const void> Put(std::string_view a, std::string_view b, std::shared_ptr<const void> value) const;
  std::size_t size() const;

 private:
  struct Entry {
    std::string a, b;
    std::shared_ptr<const void> value;
  };
  mutable std::mutex mutex_;
  mutable std::vector<Entry> entries_;
};

struct PersonSnapshot {
  std::int64_t person_key = 0;
  std::vector<std::string> ids;  // sorted
  std::shared_ptr<const model::CareRecord> systmone, cis;  // null when absent; lineage as asked of Find
  std::string systmone_updated_at, cis_updated_at;
  const model::CareRecord* record(std::string_view system) const {
    return system == "systmone" ? systmone.get() : system == "cis" ? cis.get() : nullptr;
  }
  // What callers derive from this snapshot (must not hold the snapshot itself).
  SnapshotMemo memo;
};

struct LinkProposal {
  std::int64_t id = 0;
  std::int64_t person_a = 0, person_b = 0;
  std::vector<std::string> ids_a, ids_b;  // current ids of each side
  std::string match_key, status, created_at, decided_by, decided_at;
};

enum class DecideStatus { kOk, kNotFound, kAlreadyDecided, kConflict };
struct DecideResult {
  DecideStatus status = DecideStatus::kOk;
  std::string detail;
  std::optional<LinkProposal> proposal;  // after the decision
};

struct PersonStoreOptions {
  // How long a cached person is served without asking the file whether another
  // connection or process changed the stored records. 0: asked on every Find (a read
  // transaction each time). Writes through this store are seen by the next Find whatever
  // the value, and an id not in the cache is always read from the file, so a person
  // stored by another process is found at once; only another process's change to a
  // person already cached waits up to this long. No transaction is held in between, so
  // WAL checkpoints are never held back.
  std::chrono::milliseconds recheck_interval{0};
};

class PersonStore {
 public:
  // Opens (creating) the database and applies the identity migrations. Throws FatalError.
  explicit PersonStore(std::string db_path, PersonStoreOptions options = {});
  ~PersonStore();
  PersonStore(const PersonStore&) = delete;
  PersonStore& operator=(const PersonStore&) = delete;

  // Stores one valid record (read with lineage) in one durable transaction.
  IngestOutcome Ingest(const model::CareRecord& record);
  // Several records in one transaction (bulk loads); outcomes in order.
  std::vector<IngestOutcome> IngestMany(std::span<const model::CareRecord> records);

  // The person an id resolves to, or null. Cached; never stale with respect to writes
  // through this store, nor to the file beyond options' recheck_interval.
  // The records come without their lineage unless `with_lineage` (the canonical view and
  // the lineage route need it; the SystmOne and CIS views do not): lineage is most of a
  // stored record, and is stored apart so that a lookup does not read it.
  std::shared_ptr<const PersonSnapshot> Find(std::string_view person_id, bool with_lineage = false) const;
  // For a refusal's audit event: each of `ids`, preceded by every id the store knows that
  // person by (so an IG officer asking about the person by any of their ids finds it; an
  // id nobody has is named as it was given). No id twice.
  std::vector<std::string> WithKnownIds(const std::vector<std::string>& ids) const;

  // Reads up to `max_persons` persons, the most recently updated first, into the cache
  // that Find() serves from (without lineage), so that the first lookup of each after a
  // start does not pay for reading and decoding it. Decodes on `threads` threads, a
  // chunk of persons at a time (memory stays bounded); `each`, when given, is called on
  // those threads with every snapshot cached (for the caller's own warm-up). Persons
  // changed meanwhile are left for Find() to read. Returns how many were cached.
  using WarmCallback = std::function<void(const std::shared_ptr<const PersonSnapshot>&)>;
  std::size_t Warm(std::size_t max_persons, unsigned threads = 1, const WarmCallback& each = {}) const;

  // Proposals with that status ("pending", "accepted", "rejected"; "" for all), by id.
  std::vector<LinkProposal> Proposals(std::string_view status = "pending") const;
  std::optional<LinkProposal> Proposal(std::int64_t id) const;
  // accept: merges the two persons (409-style kConflict when both hold a record from the
  // same system); reject: records the decision. Either way by `user`, now.
  DecideResult Decide(std::int64_t id, bool accept, std::string_view user);

  std::int64_t SourceRecordCount() const;
  std::int64_t PersonCount() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace caregate::identity
