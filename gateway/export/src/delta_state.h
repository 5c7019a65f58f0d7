#pragma once
// The export's state in the SQLite database: what each person's record looked like (as
// mapped) when it was last written, and the completed runs with a copy of each
// manifest. A run stages its new hashes in a TEMP table, which dies with the process;
// Complete() copies them into the state in the same transaction that records the run,
// so a run killed at any moment leaves the previous state exactly as it was. Staging in
// the main table inside one long transaction would do the same with less work, but it
// would hold SQLite's write lock for the whole run, and the export may share its
// database with a running server (both default to caregate.db), whose audit writes
// would then wait: the write lock is taken only for Complete's copy.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "record_hash.h"

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

class DeltaState {
 public:
  // Opens (creating if needed) and migrates the database. Throws FatalError(kIoFailure).
  explicit DeltaState(const std::string& path);
  ~DeltaState();

  // Completed runs that could be this one (same run date, flags, tables, input size);
  // the caller compares the input SHA-256.
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
  void Stage(std::int64_t key, std::string_view person_key, const ContentHash& hash, const ContentHash& line_hash);
  // One transaction: the staged hashes into the state, and the run as completed.
  // Returns the run's seq.
  std::int64_t Complete(RunRecord run);

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
  std::unique_ptr<store::Statement> find_staged_, find_state_, stage_;

  // Staged rows not yet in the TEMP table. Keys are hashes, so inserting each row as it
  // comes lands on a random page of a B-tree that outgrows its cache; a few thousand
  // at a time, sorted by key, walk the tree in order (memory stays flat: at most
  // kPendingRows rows).
  struct PendingRow {
    std::int64_t key, hash_hi, hash_lo, line_hi, line_lo;
    std::uint32_t person_offset, person_length;  // in pending_person_keys_
  };
  static constexpr std::size_t kPendingRows = 8192;
  std::vector<PendingRow> pending_;
  std::string pending_person_keys_;
  // key -> its latest row in pending_: open addressing over kIndexSlots slots (twice
  // kPendingRows, so probes stay short), cleared at every flush. Slot value 0 is empty,
  // else row index + 1.
  static constexpr std::size_t kIndexSlots = 2 * kPendingRows;
  std::vector<std::uint32_t> pending_slots_;
  std::size_t pending_keys_ = 0;  // distinct keys in pending_slots_
  std::size_t Slot(std::int64_t key) const;  // the key's slot, or the empty one where it would go
  const PendingRow* FindPending(std::int64_t key) const;
  void FlushPending();
  // The state had no rows when the run began: Lookup need not ask it.
  bool state_empty_ = false;
};

}  // namespace caregate::exporter
