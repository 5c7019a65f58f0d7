#pragma once
// The audit trail's indexes from person id (and, the same way, from user) to events, kept
// as sorted runs (RunIndexer over a RunTables: kPersonRuns, kUserRuns).
//
// A B-tree index on (person_id, seq) puts every new event's row on a random page: with
// a group commit of 30 lookups of 30 different people that is 30 more pages to write and
// sync per commit, which measured as the single largest cost of an audited lookup (it
// halved the throughput). Instead, events are indexed in runs: once `run_events` events
// have gathered past the indexed part, their (person id, seq) pairs are sorted and
// appended, a share in proportion to each commit's size (at most `chunk`) inside the
// following group commits, under the key
// (run's first seq, person id, seq). Appending in key order fills pages one after
// another, so a run of 32,768 events costs a few hundred sequential pages in all.
//
// A person's events are then: a seek per completed run (audit_runs), plus a scan of
// the not-yet-indexed tail of audit_event_persons (at most about two runs' worth: a run
// prepared in the background that has not arrived when the tail reaches two runs is
// waited for).
// The index is derived data: audit_event_persons (covered by the hash chain) stays the
// record, and Verify checks every completed run against it.
//
// Progress lives in audit_head (indexed_upto, run_last, run_inserted), read and written
// by each batch in its own transaction, so several writers (processes) share it safely.
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "caregate/store/database.h"

namespace caregate::audit {

struct RunState {
  std::int64_t indexed_upto = 0;  // events 1..indexed_upto are in completed runs
  std::int64_t run_last = 0;      // the run being appended covers indexed_upto+1..run_last; 0: none
  std::int64_t run_inserted = 0;  // how many of its sorted pairs are appended so far
};

// Where an index kept as runs lives: its tables, its progress columns in audit_head, and
// how the pairs of a stretch of events are read from the record.
struct RunTables {
  const char* name;          // "person index", "user index": in messages
  const char* source_sql;    // distinct (key, seq) of events ?1..?2, sorted: a run's pairs
  const char* runs_table;    // (first_seq PRIMARY KEY, last_seq): the completed runs
  const char* pairs_table;   // (first_seq, <key_column>, seq) PRIMARY KEY, WITHOUT ROWID
  const char* key_column;
  const char* head_columns;  // audit_head's indexed_upto, run_last, run_inserted for it
  const char* report;        // what an edited index would hide
};
extern const RunTables kPersonRuns;  // person id -> events (migration 101)
extern const RunTables kUserRuns;    // user -> events (migration 103)

class RunIndexer {
 public:
  // `background_pairs`: a run of more pairs than this is sorted (or read back) on a thread
  // of its own while the writer goes on committing; smaller ones are sorted inline.
  RunIndexer(store::Database& db, const RunTables& tables, std::int64_t run_events, std::int64_t chunk,
             std::int64_t background_pairs = 4096);
  ~RunIndexer();  // waits for a run being prepared
  RunIndexer(const RunIndexer&) = delete;
  RunIndexer& operator=(const RunIndexer&) = delete;

  using Pairs = std::vector<std::pair<std::string, std::int64_t>>;

  // Inside the writer's transaction, once the batch's events (first_seq..head_seq) are
  // inserted: starts a run when one is prepared, appends the next chunk of the run in
  // progress, completes it. Updates `state` (the caller writes it to audit_head in the
  // same transaction).
  void Step(std::int64_t first_seq, std::int64_t head_seq, RunState& state);

  // After the batch's transaction committed, with its (key, seq) pairs and the state
  // it wrote. The pairs of events not yet in a run are kept, so that a run is sorted in
  // memory rather than read back inside a commit (80 ms for 32,768 events); once enough
  // have gathered, the run is prepared: sorted inline when small, otherwise on a thread
  // of its own (a 32,768-event sort held every caller of the next commit for 20-25 ms),
  // and read back from the table there when another process wrote some of its events.
  void Committed(std::int64_t first_seq, std::int64_t head_seq, Pairs&& batch, const RunState& state);

 private:
  struct Prepared {
    std::int64_t first = 0, last = 0;  // the run's events
    Pairs pairs;                       // distinct, sorted
  };
  // Prepares the run of events first..last (all committed): from `pairs` (every pair of
  // those events, seq order) when given, else from the table.
  void Prepare(std::int64_t first, std::int64_t last, std::optional<Pairs> pairs);
  // Prepares first..last from the pairs noted in memory when they cover it, else from
  // the table.
  void PrepareFrom(std::int64_t first, std::int64_t last);
  // Moves the prepared run into cached_ if it is ready (with `wait`, once it is) and is
  // the run of first..last; drops it otherwise.
  bool Take(std::int64_t first, std::int64_t last, bool wait);
  // Makes cached_ the run from `first` to `last` (to at most `last`, with `any_last`):
  // the one prepared, or one prepared now. False while it is still being prepared.
  bool Obtain(std::int64_t first, std::int64_t last, bool any_last, bool wait);

  store::Database& db_;
  const RunTables& tables_;
  const std::int64_t run_events_;
  const std::int64_t chunk_;
  const std::int64_t background_pairs_;
  static constexpr int kPairsPerInsert = 16;
  store::Statement insert_pair_, insert_pairs_, insert_run_;  // one pair, kPairsPerInsert, a run
  // The run in progress, sorted (key, seq), cached between batches.
  std::int64_t cached_first_ = 0, cached_last_ = 0;
  Pairs cached_;
  // A run being prepared (or prepared and not yet taken): one at a time.
  std::int64_t preparing_first_ = 0, preparing_last_ = 0;
  std::future<Prepared> preparing_;
  // Committed pairs of events noted_first_..noted_last_ (all by this writer), seq order.
  std::int64_t noted_first_ = 1, noted_last_ = 0;
  Pairs noted_;
};

// SQL selecting the seq of every event naming person ?2 (kPersonSeqsSql) or done by user
// ?3 (kUserSeqsSql): completed runs and the tail both. They need the tables of migration
// 101 and 103 respectively; `HasRuns` says whether a file has them.
extern const char* const kPersonSeqsSql;
extern const char* const kUserSeqsSql;
bool HasRuns(store::Database& db, const RunTables& tables);

// Checks every completed run against the record (its source_sql), that the runs cover
// 1..indexed_upto without gap or overlap, and that only the run being appended has rows
// past them. Returns (seq, problem) for the first mismatch.
std::optional<std::pair<std::int64_t, std::string>> VerifyRuns(store::Database& db, const RunTables& tables);

}  // namespace caregate::audit
