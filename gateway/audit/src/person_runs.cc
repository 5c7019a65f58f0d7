#include "person_runs.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "caregate/store/statement.h"

namespace caregate::audit {

using store::Database;
using store::Statement;

namespace {

using Pairs = RunIndexer::Pairs;

// The distinct (key, seq) pairs of events first..last, sorted: what a run holds.
Pairs ReadPairs(Database& db, const RunTables& t, std::int64_t first, std::int64_t last) {
  auto s = db.Prepare(t.source_sql);
  s.Bind(1, first).Bind(2, last);
  Pairs out;
  while (s.Step()) out.emplace_back(s.ColumnText(0), s.ColumnInt64(1));
  return out;
}

// The fewest pairs of a run a commit appends (unless chunk_ is smaller).
constexpr std::int64_t kMinShare = 64;

Pairs SortUnique(Pairs pairs) {
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  return pairs;
}

std::string Range(std::int64_t first, std::int64_t last) {
  return "events " + std::to_string(first) + " to " + std::to_string(last);
}

}  // namespace

const RunTables kPersonRuns{
    .name = "person index",
    .source_sql = "SELECT DISTINCT person_id, seq FROM audit_event_persons WHERE seq BETWEEN ?1 AND ?2 "
                  "ORDER BY person_id, seq",
    .runs_table = "audit_runs",
    .pairs_table = "audit_person_runs",
    .key_column = "person_id",
    .head_columns = "indexed_upto, run_last, run_inserted",
    .report = "a person report would not show every access",
};

const RunTables kUserRuns{
    .name = "user index",
    .source_sql = "SELECT user, seq FROM audit_events WHERE seq BETWEEN ?1 AND ?2 ORDER BY user, seq",
    .runs_table = "audit_user_run_list",
    .pairs_table = "audit_user_runs",
    .key_column = "user",
    .head_columns = "users_indexed_upto, users_run_last, users_run_inserted",
    .report = "a report by user would not show every access",
};

// CROSS JOIN keeps the run list outermost (SQLite does not reorder it): one seek per run.
const char* const kPersonSeqsSql =
    "SELECT r.seq FROM audit_runs AS k CROSS JOIN audit_person_runs AS r "
    "ON r.first_seq = k.first_seq AND r.person_id = ?2 "
    "UNION ALL SELECT seq FROM audit_event_persons "
    "WHERE seq > (SELECT indexed_upto FROM audit_head WHERE id = 1) AND person_id = ?2";

const char* const kUserSeqsSql =
    "SELECT r.seq FROM audit_user_run_list AS k CROSS JOIN audit_user_runs AS r "
    "ON r.first_seq = k.first_seq AND r.user = ?3 "
    "UNION ALL SELECT seq FROM audit_events "
    "WHERE seq > (SELECT users_indexed_upto FROM audit_head WHERE id = 1) AND user = ?3";

bool HasRuns(Database& db, const RunTables& t) { return db.HasTable(t.runs_table) && db.HasTable(t.pairs_table); }

namespace {
std::string InsertPairHead(const RunTables& t) {
  return std::string("INSERT OR IGNORE INTO ") + t.pairs_table + "(first_seq, " + t.key_column + ", seq)";
}
}  // namespace

RunIndexer::RunIndexer(Database& db, const RunTables& tables, std::int64_t run_events, std::int64_t chunk,
                       std::int64_t background_pairs)
    : db_(db),
      tables_(tables),
      run_events_(std::max<std::int64_t>(1, run_events)),
      chunk_(std::max<std::int64_t>(1, chunk)),
      background_pairs_(std::max<std::int64_t>(0, background_pairs)),
      // ?1 is the run's first_seq, shared by every row.
      insert_pair_(db, store::InsertValuesSql(InsertPairHead(tables), "(?1, ?, ?)", 1)),
      insert_pairs_(db, store::InsertValuesSql(InsertPairHead(tables), "(?1, ?, ?)", kPairsPerInsert)),
      insert_run_(db, std::string("INSERT INTO ") + tables.runs_table + "(first_seq, last_seq) VALUES (?, ?)") {}

RunIndexer::~RunIndexer() {
  if (preparing_.valid()) preparing_.wait();
}

void RunIndexer::Prepare(std::int64_t first, std::int64_t last, std::optional<Pairs> pairs) {
  preparing_first_ = first;
  preparing_last_ = last;
  const std::int64_t size = pairs ? static_cast<std::int64_t>(pairs->size()) : last - first + 1;
  if (size <= background_pairs_) {  // small: here and now (through the writer's connection)
    std::promise<Prepared> now;
    now.set_value(Prepared{first, last, pairs ? SortUnique(std::move(*pairs)) : ReadPairs(db_, tables_, first, last)});
    preparing_ = now.get_future();
    return;
  }
  preparing_ = std::async(std::launch::async, [first, last, path = db_.path(), &tables = tables_, pairs = std::move(pairs)]() mutable {
    pthread_setname_np(pthread_self(), "caregate-runs");
    Prepared out{first, last, {}};
    if (pairs) {
      out.pairs = SortUnique(std::move(*pairs));
    } else {  // the events are committed: a connection of its own reads them
      Database own(path, store::OpenOptions{.create = false});
      out.pairs = ReadPairs(own, tables, first, last);
    }
    return out;
  });
}

void RunIndexer::PrepareFrom(std::int64_t first, std::int64_t last) {
  if (noted_first_ <= first && noted_last_ >= last) {  // all written by us: from memory
    const auto from = std::find_if(noted_.begin(), noted_.end(), [first](const auto& p) { return p.second >= first; });
    const auto to = std::find_if(from, noted_.end(), [last](const auto& p) { return p.second > last; });
    Pairs pairs(std::make_move_iterator(from), std::make_move_iterator(to));
    noted_.erase(noted_.begin(), to);
    noted_first_ = last + 1;
    Prepare(first, last, std::move(pairs));
  } else {
    Prepare(first, last, std::nullopt);
  }
}

bool RunIndexer::Take(std::int64_t first, std::int64_t last, bool wait) {
  if (!preparing_.valid()) return false;
  if (!wait && preparing_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
  try {
    Prepared p = preparing_.get();  // leaves preparing_ empty
    if (p.first != first || p.last != last) return false;
    cached_ = std::move(p.pairs);
    cached_first_ = first;
    cached_last_ = last;
    return true;
  } catch (const std::exception& e) {  // tried again by a later batch
    std::fprintf(stderr, "caregate audit: preparing the %s of %s failed: %s\n", tables_.name,
                 Range(first, last).c_str(), e.what());
    return false;
  }
}

bool RunIndexer::Obtain(std::int64_t first, std::int64_t last, bool any_last, bool wait) {
  // Already here (taken by a batch whose commit then failed).
  if (cached_last_ != 0 && cached_first_ == first && (any_last ? cached_last_ <= last : cached_last_ == last))
    return true;
  if (preparing_.valid()) {
    const bool fits = preparing_first_ == first && (any_last ? preparing_last_ <= last : preparing_last_ == last);
    if (fits) return Take(first, preparing_last_, wait);
    // Prepared for other events (another writer moved the index on): no use any more.
    if (!wait && preparing_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
    preparing_.wait();
    preparing_ = {};
  }
  if (last < first) return false;
  PrepareFrom(first, last);
  return Take(first, last, wait || preparing_.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
}

void RunIndexer::Step(std::int64_t first_seq, std::int64_t head_seq, RunState& state) {
  const std::int64_t first = state.indexed_upto + 1;
  // Past two runs' worth of unindexed events a run being prepared is waited for, which
  // bounds the tail a query by person (or user) scans.
  const bool behind = head_seq - state.indexed_upto >= 2 * run_events_;
  if (state.run_last == 0) {
    if (head_seq - state.indexed_upto < run_events_) return;
    // A run is due: the one prepared, if it has arrived, else one of the committed events.
    if (!Obtain(first, first_seq - 1, /*any_last=*/true, behind)) return;
    state.run_last = cached_last_;
    state.run_inserted = 0;
  } else if (cached_first_ != first || cached_last_ != state.run_last) {
    // A run begun by another writer, or before a restart: its pairs come from the table.
    if (!Obtain(first, state.run_last, /*any_last=*/false, behind)) return;
  }
  const Pairs& pairs = cached_;
  // At most chunk_ pairs, and not many more than the batch's own events: every commit
  // carries a share in proportion to its size (512 pairs in a commit of 26 events made
  // one commit in twenty three times as slow, and its callers wait for it), and the run
  // still goes in about four times as fast as events arrive.
  const std::int64_t share = std::min(chunk_, std::max<std::int64_t>(kMinShare, 4 * (head_seq - first_seq + 1)));
  const auto begin = static_cast<std::size_t>(std::min<std::int64_t>(state.run_inserted, static_cast<std::int64_t>(pairs.size())));
  const auto end = static_cast<std::size_t>(std::min<std::int64_t>(static_cast<std::int64_t>(begin) + share,
                                                                    static_cast<std::int64_t>(pairs.size())));
  // The pairs stay in cached_ until the run is complete: bound without a copy, and the
  // bindings kept between statements (each binds all its parameters again). Rows go in
  // kPairsPerInsert to a statement: one statement's overhead (cursor, halt, reset) for
  // many rows, each still one B-tree insert.
  store::InsertRows(insert_pairs_, insert_pair_, kPairsPerInsert, end - begin,
                    [&](store::Statement& s, int slot, std::size_t row) {
                      const auto& [key, seq] = pairs[begin + row];
                      if (slot == 0) s.Bind(1, first);  // ?1: the run, shared by the rows
                      s.BindTextNoCopy(2 + 2 * slot, key).Bind(3 + 2 * slot, seq);
                    });
  state.run_inserted = static_cast<std::int64_t>(end);
  if (end == pairs.size()) {
    insert_run_.Reset();
    insert_run_.Bind(1, first).Bind(2, state.run_last).Run();
    state.indexed_upto = state.run_last;
    state.run_last = 0;
    state.run_inserted = 0;
    // Kept until the commit is known to have succeeded: should it fail, the next batch
    // appends the same run again.
  }
}

void RunIndexer::Committed(std::int64_t first_seq, std::int64_t head_seq, Pairs&& batch,
                           const RunState& state) {
  if (noted_last_ + 1 != first_seq) {  // another writer's events in between: start afresh
    noted_.clear();
    noted_first_ = first_seq;
  }
  if (noted_.empty()) {
    noted_ = std::move(batch);
  } else {
    noted_.insert(noted_.end(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
  }
  noted_last_ = head_seq;
  // Events in a run (complete or being appended) are no longer needed here.
  const std::int64_t done = std::max(state.indexed_upto, state.run_last);
  if (done >= noted_first_) {
    const auto keep = std::find_if(noted_.begin(), noted_.end(), [done](const auto& p) { return p.second > done; });
    noted_.erase(noted_.begin(), keep);
    noted_first_ = done + 1;
  }
  if (state.run_last == 0 && cached_last_ != 0 && cached_last_ <= state.indexed_upto) {  // a run completed
    cached_.clear();
    cached_first_ = cached_last_ = 0;
  }
  // The next run, as soon as it is due: prepared while the next batches are written.
  if (state.run_last == 0 && head_seq - state.indexed_upto >= run_events_ && !preparing_.valid())
    PrepareFrom(state.indexed_upto + 1, head_seq);
}

std::optional<std::pair<std::int64_t, std::string>> VerifyRuns(Database& db, const RunTables& t) {
  const std::string name = t.name;
  std::int64_t indexed_upto = 0, run_last = 0, run_inserted = 0;
  {
    auto h = db.Prepare(std::string("SELECT ") + t.head_columns + " FROM audit_head WHERE id = 1");
    if (!h.Step()) return std::nullopt;  // the chain check reports a missing head
    indexed_upto = h.ColumnInt64(0);
    run_last = h.ColumnInt64(1);
    run_inserted = h.ColumnInt64(2);
  }
  std::int64_t expected_first = 1;
  auto runs = db.Prepare(std::string("SELECT first_seq, last_seq FROM ") + t.runs_table + " ORDER BY first_seq");
  auto stored = db.Prepare(std::string("SELECT ") + t.key_column + ", seq FROM " + t.pairs_table +
                           " WHERE first_seq = ? ORDER BY " + t.key_column + ", seq");
  while (runs.Step()) {
    const std::int64_t first = runs.ColumnInt64(0), last = runs.ColumnInt64(1);
    if (first != expected_first || last < first)
      return std::make_pair(first, "the " + name + "'s runs do not follow on from each other at event " +
                                       std::to_string(first) + " (expected a run from " +
                                       std::to_string(expected_first) + "): the index was edited");
    const Pairs want = ReadPairs(db, t, first, last);
    stored.Reset();
    stored.Bind(1, first);
    std::size_t i = 0;
    bool same = true;
    while (stored.Step()) {
      if (i >= want.size() || want[i].first != stored.ColumnTextView(0) || want[i].second != stored.ColumnInt64(1)) {
        same = false;
        break;
      }
      ++i;
    }
    stored.Reset();
    if (!same || i != want.size())
      return std::make_pair(first, "the " + name + " of " + Range(first, last) +
                                       " does not match the events: the index was edited (" + t.report + ")");
    expected_first = last + 1;
  }
  if (expected_first - 1 != indexed_upto)
    return std::make_pair(expected_first, "the head says events up to " + std::to_string(indexed_upto) +
                                              " are indexed, but the " + name + "'s runs end at " +
                                              std::to_string(expected_first - 1) + ": the index was edited");
  // Rows past the completed runs belong to the run being appended, and only so many.
  auto extra = db.Prepare(std::string("SELECT first_seq, count(*) FROM ") + t.pairs_table +
                          " WHERE first_seq > ? GROUP BY first_seq");
  extra.Bind(1, indexed_upto);
  while (extra.Step()) {
    const std::int64_t first = extra.ColumnInt64(0), n = extra.ColumnInt64(1);
    if (run_last == 0 || first != indexed_upto + 1 || n != run_inserted)
      return std::make_pair(first, "the " + name + " holds " + std::to_string(n) + " entries for a run from event " +
                                       std::to_string(first) + " that is not being built: the index was edited");
  }
  return std::nullopt;
}

}  // namespace caregate::audit
