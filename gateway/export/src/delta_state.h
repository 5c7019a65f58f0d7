#pragma once
// The export's state in the SQLite database: what each person's record looked like (as
// mapped) when it was last written, and the completed runs with a copy of each
// manifest. A run stages its new hashes in a TEMP table, which dies with the process;
// Complete() copies them into the state in the same transaction that records the run,
// so a run killed at any moment leaves the previous state exactly as it was. Staging in
// the main table inside one long transaction would do the same with less work, but it
// would hold SQLite's write lock for the whole run, and the export may share its
// database with a running server (both default to caregate.db), whose audit writes
// would then wait: the write lock is taken only for Complete's copy. The same file holds
// the audit trail (its tables are created here if need be), where Complete records the
// run in its own transaction.
#include <array>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "record_hash.h"

namespace caregate::audit {
struct AuditEvent;
}  // namespace caregate::audit

namespace caregate::store {
class Database;
class Statement;
}  // namespace caregate::store

namespace caregate::exporter {

struct RunRecord {
  std::int64_t seq = 0;
  std::string run_date, input_sha256, mapping_version, out_dir, started_at, finished_at, manifest;
  std::uint64_t input_bytes = 0;
  bool full = false;
  std::uint64_t read = 0, exported = 0, unchanged = 0, rejected = 0, withheld = 0;
};

// A worker's read-only view of the state as it was before the run (its own SQLite
// connection): lets a worker recognise a line that is byte for byte the line the last
// run stored for that person, and skip parsing it at all.
class StateReader {
 public:
  explicit StateReader(const std::string& path);
  ~StateReader();
  // True when the state holds exactly this line hash for the key.
  bool LineUnchanged(std::int64_t key, const ContentHash& line_hash);

 private:
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<store::Statement> find_;
};

class DeltaState;

// A worker's own lookups of the store's links (DeltaState::LinkedSystmOneId), on a
// read-only connection of its own, so that the workers neither wait for each other nor
// for the staging thread. Its read transaction is begun once and kept for the run, and
// used only if its identity tables are those of the run's snapshot (the same
// links_version); otherwise every lookup goes to the run's connection.
class LinkReader {
 public:
  LinkReader(const std::string& path, DeltaState& run);
  ~LinkReader();
  LinkReader(const LinkReader&) = delete;
  LinkReader& operator=(const LinkReader&) = delete;
  std::string LinkedSystmOneId(std::string_view cis_id, std::string_view nhs_number);

 private:
  DeltaState* run_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<store::Statement> find_;
};

class DeltaState {
 public:
  // Staged rows kept in memory before they go to the TEMP table, per buffer (there are
  // two: one filling, one being written by a background thread).
  static constexpr std::size_t kDefaultPendingRows = 32768;

  // Opens (creating if needed) and migrates the database. Throws FatalError(kIoFailure).
  // For tests: small `pending_rows` make rows reach the TEMP table early;
  // `temp_max_pages` > 0 caps the TEMP database, so that staging fails as on a full disk.
  explicit DeltaState(const std::string& path, std::size_t pending_rows = kDefaultPendingRows,
                      std::int64_t temp_max_pages = 0);
  ~DeltaState();

  // Completed runs that could be this one (same run date, flags, tables, input size);
  // the caller compares the input SHA-256. Before a run, or during one (an input whose
  // size is only known once it has been read).
  std::vector<RunRecord> Candidates(std::string_view run_date, bool full, std::string_view mapping_version,
                                    std::uint64_t input_bytes);
  std::optional<RunRecord> LastCompleted();

  // Begins the run: a read snapshot of the state and an empty staging table.
  void BeginRun();
  struct Seen {
    bool found = false;          // the key is in the state (or staged by this run)
    bool same_content = false;   // with this content hash
    bool same_line = false;      // and this line hash
  };
  // Compared with what this run staged for the key, else with the state.
  Seen Lookup(std::int64_t key, const ContentHash& hash, const ContentHash& line_hash);
  // True when this run has staged the key (exact; the Bloom filter makes misses cheap).
  bool Staged(std::int64_t key);
  // Throws store::DatabaseError when an earlier batch of staged rows could not be
  // written (the background write's error surfaces at the next hand-over).
  void Stage(std::int64_t key, std::string_view person_key, const ContentHash& hash, const ContentHash& line_hash);
  // One transaction: the staged hashes into the state, the run as completed, and the
  // run's audit event (its request_id becomes "export-run-<seq>"), so that a run is in
  // the audit trail exactly once, however it was killed. Returns the run's seq. Throws
  // store::DatabaseError (also for a failed background insert of staged rows), or
  // FatalError from the audit trail, leaving the state as it was.
  std::int64_t Complete(RunRecord run, audit::AuditEvent event);

  // Spec 5, "the gateway fills in the other system's id when it knows the link": when
  // this database is also the gateway's store (the default: ingest, serve and export
  // share ./caregate.db), the SystmOne id linked to the person known by `cis_id` or by
  // `nhs_number` (either may be empty). Read in the run's snapshot (BeginRun), so every
  // record of a run sees the same links whatever the server writes meanwhile. "" when
  // no link is known; when the person has ever been known by two SystmOne ids (not the
  // export's to choose); when no stored SystmOne record carries the id (only a council
  // record claimed it); and when the SystmOne record carrying it withholds consent to
  // share (the council must not learn of it: spec 8).
  // Thread-safe: the workers call it.
  std::string LinkedSystmOneId(std::string_view cis_id, std::string_view nhs_number);
  // Whether the store held any SystmOne id when the run began (else the above is "").
  bool links_known() const { return links_known_; }
  // The identity tables' change counter (the identity module's snapshot_version) in the
  // run's snapshot: a LinkReader whose own snapshot shows the same sees the same links.
  std::int64_t links_version() const { return links_version_; }
  // The lookup: the SystmOne ids of the person known as ?1 (cis:...) or ?2 (nhs:...), at
  // most two, each with whether a stored SystmOne record that shares (its consent to
  // share is not "no") carries it. LinkedSystmOneId fills one in only when there is
  // exactly one and it is so carried: an id only a council record ever claimed (the
  // index keeps every id a person was ever known by) is not "the other system's id".
  static constexpr const char* kFindLinkSql =
      "SELECT DISTINCT o.id, EXISTS (SELECT 1 FROM main.source_records AS s WHERE s.person_key = o.person_key AND "
      "s.system = 'systmone' AND s.source_id = o.id AND "
      "coalesce(json_extract(s.canonical_json, '$.record.person.consent'), '') <> 'no') "
      "FROM main.person_ids AS me JOIN main.person_ids AS o ON o.person_key = me.person_key "
      "WHERE me.id IN (?1, ?2) AND o.id >= 's1:' AND o.id < 's1;' ORDER BY o.id LIMIT 2";

  // What is wrong with the audit trail's head (audit::CheckAuditHead), or "": Complete
  // could not record the run there. Checked before a run writes anything.
  std::string AuditHeadProblem();

  const std::string& path() const { return path_; }
  // The key of the line and content hashes (record_hash.h), this database's own.
  std::uint64_t hash_seed() const { return hash_seed_; }

 private:
  std::string path_;
  std::uint64_t hash_seed_ = 0;
  // Keys staged by this run, as a Bloom filter of fixed size (memory stays flat): a key
  // it has never seen skips the staging-table lookup. False positives only cost that
  // lookup, so the answer is always exact.
  std::vector<std::uint64_t> staged_bits_;
  bool MaybeStaged(std::int64_t key) const;
  void MarkStaged(std::int64_t key);
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<store::Statement> find_staged_, find_state_, stage_, find_link_;
  bool links_known_ = false;
  std::int64_t links_version_ = -1;

  // Staged rows not yet in the TEMP table. Keys are hashes, so inserting each row as it
  // comes lands on a random page of a B-tree that outgrows its cache; many thousands at
  // a time, sorted by key, walk the tree in order (memory stays flat: two buffers of at
  // most `pending_rows` rows).
  struct PendingRow {
    std::int64_t key, hash_hi, hash_lo, line_hi, line_lo;
    std::uint32_t person_offset, person_length;  // in person_keys
  };
  struct PendingBuffer {
    std::vector<PendingRow> rows;
    std::string person_keys;
    // key -> its latest row: open addressing over twice as many slots as rows (probes
    // stay short). Slot value 0 is empty, else row index + 1.
    std::vector<std::uint32_t> slots;
    std::size_t keys = 0;  // distinct keys
    void Init(std::size_t capacity);
    void Clear();
    std::size_t Slot(std::int64_t key) const;  // the key's slot, or the empty one where it would go
    const PendingRow* Find(std::int64_t key) const;
    void Add(std::int64_t key, std::string_view person_key, const ContentHash& hash, const ContentHash& line_hash);
  };
  std::size_t pending_rows_;
  // `filling_` takes Stage's rows (caller's thread only). When full it changes places
  // with `writing_`, whose rows a background thread inserts into the TEMP table while
  // the run goes on; until that thread is joined, both threads only read `writing_`.
  PendingBuffer filling_, writing_;
  std::thread writer_;
  std::exception_ptr write_error_;
  // The connection is opened without SQLite's own mutex (one connection per thread), so
  // the background insert and the caller's lookups take turns on it through this.
  std::mutex db_mutex_;
  void HandOver();       // filling_ -> writing_, and starts the background insert
  void JoinWriter();     // waits for the background insert; rethrows its error
  void Insert(const PendingBuffer& buffer);  // into the TEMP table, in key order
  // The key's latest row still in memory (the filling buffer's, else the one being
  // written), or null.
  const PendingRow* FindPending(std::int64_t key) const;
  // The state had no rows when the run began: Lookup need not ask it.
  bool state_empty_ = false;
};

}  // namespace caregate::exporter
