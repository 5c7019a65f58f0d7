#pragma once
// The audit trail's index from person id to events, kept as sorted runs.
//
// A B-tree index on (person_id, seq) puts every new event's row on a random page: with
// a group commit of 30 lookups of 30 different people that is 30 more pages to write and
// sync per commit, which measured as the single largest cost of an audited lookup (it
// halved the throughput). Instead, events are indexed in runs: once `run_events` events
// have gathered past the indexed part, their (person id, seq) pairs are sorted and
// appended, `chunk` at a time inside the following group commits, under the key
// (run's first seq, person id, seq). Appending in key order fills pages one after
// another, so a run of 32,768 events costs a few hundred sequential pages in all.
//
// A person's events are then: a seek per completed run (audit_runs), plus a scan of
// the not-yet-indexed tail of audit_event_persons (at most about two runs' worth).
// The index is derived data: audit_event_persons (covered by the hash chain) stays the
// record, and Verify checks every completed run against it.
//
// Progress lives in audit_head (indexed_upto, run_last, run_inserted), read and written
// by each batch in its own transaction, so several writers (processes) share it safely.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "caregate/store/database.h"

namespace caregate::audit {

struct PersonRunState {
  std::int64_t indexed_upto = 0;  // events 1..indexed_upto are in completed runs
  std::int64_t run_last = 0;      // the run being appended covers indexed_upto+1..run_last; 0: none
  std::int64_t run_inserted = 0;  // how many of its sorted pairs are appended so far
};

class PersonRunIndexer {
 public:
  PersonRunIndexer(store::Database& db, std::int64_t run_events, std::int64_t chunk);

  using Pairs = std::vector<std::pair<std::string, std::int64_t>>;

  // Inside the writer's transaction, once the batch's events (first_seq..head_seq, whose
  // (person id, seq) pairs are `batch`) are inserted: starts a run when enough events
  // wait, appends the next chunk of the run in progress, completes it. Updates `state`
  // (the caller writes it to audit_head in the same transaction).
  void Step(std::int64_t first_seq, std::int64_t head_seq, const Pairs& batch, PersonRunState& state);

  // After the batch's transaction committed, with the state it wrote. The pairs of the
  // events not yet in a run are kept, so that starting a run sorts them in memory rather
  // than reading them back inside a commit (a 30 ms stall for 32,768 events); when
  // another process appended events in between, the run is read from the table instead.
  void Committed(std::int64_t first_seq, std::int64_t head_seq, Pairs&& batch, const PersonRunState& state);

 private:
  const Pairs& SortedRun(std::int64_t first, std::int64_t last);

  store::Database& db_;
  const std::int64_t run_events_;
  const std::int64_t chunk_;
  store::Statement insert_pair_, insert_run_;
  // The run in progress, sorted (person id, seq), cached between batches.
  std::int64_t cached_first_ = 0, cached_last_ = 0;
  Pairs cached_;
  // Committed pairs of events noted_first_..noted_last_ (all by this writer), seq order.
  std::int64_t noted_first_ = 1, noted_last_ = 0;
  Pairs noted_;
};

// SQL selecting the seq of every event naming person ?2, completed runs and tail both.
// Needs the tables of migration 101; `HasPersonRuns` says whether a file has them.
extern const char* const kPersonSeqsSql;
bool HasPersonRuns(store::Database& db);

// Checks every completed run against audit_event_persons, and that the runs cover
// 1..indexed_upto without gap or overlap. Returns (seq, problem) for the first mismatch.
std::optional<std::pair<std::int64_t, std::string>> VerifyPersonRuns(store::Database& db);

}  // namespace caregate::audit
