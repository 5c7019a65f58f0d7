#include "caregate/audit/audit_log.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <pthread.h>

#include "caregate/store/database.h"
#include "caregate/store/statement.h"
#include "caregate/store/transaction.h"
#include "caregate/store/wal_checkpointer.h"
#include "person_runs.h"

namespace caregate::audit {
namespace {

using store::Database;
using store::Statement;
using store::InsertValuesSql;
using store::Transaction;

// Person ids live only in audit_event_persons (one row per id, `pos` keeps their order),
// the data the hash covers, so a row cannot be removed or added without breaking the
// event's hash. (Version 100 indexed it by person too; since 101 the person index is kept
// in sorted runs, person_runs.h, checked against this table by verify.)
// audit_head repeats the last seq and hash; it is updated in the same transaction as the
// events, which is what makes removing the last event(s) detectable.
constexpr std::string_view kSchemaV100 = R"sql(
CREATE TABLE audit_events (
  seq          INTEGER PRIMARY KEY,
  time_utc     TEXT NOT NULL,
  user         TEXT NOT NULL,
  role         TEXT NOT NULL,
  organisation TEXT NOT NULL,
  action       TEXT NOT NULL,
  view         TEXT NOT NULL,
  outcome      TEXT NOT NULL,
  request_id   TEXT NOT NULL,
  detail       TEXT NOT NULL,
  prev_hash    TEXT NOT NULL,
  hash         TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events(time_utc);
CREATE INDEX audit_events_by_user ON audit_events(user, time_utc);
CREATE TABLE audit_event_persons (
  seq       INTEGER NOT NULL,
  pos       INTEGER NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (seq, pos)
) WITHOUT ROWID;
CREATE INDEX audit_event_persons_by_person ON audit_event_persons(person_id, seq);
CREATE TABLE audit_head (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head(id, seq, hash)
  VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
)sql";

// The person index as sorted runs appended in key order (person_runs.h) instead of one
// B-tree row on a random page per event; the events already stored become the first run.
constexpr std::string_view kSchemaV101 = R"sql(
DROP INDEX IF EXISTS audit_event_persons_by_person;
ALTER TABLE audit_head ADD COLUMN indexed_upto INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN run_last INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN run_inserted INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_runs (
  first_seq INTEGER PRIMARY KEY,
  last_seq  INTEGER NOT NULL
);
CREATE TABLE audit_person_runs (
  first_seq INTEGER NOT NULL,
  person_id TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  PRIMARY KEY (first_seq, person_id, seq)
) WITHOUT ROWID;
INSERT INTO audit_person_runs(first_seq, person_id, seq)
  SELECT DISTINCT 1, person_id, seq FROM audit_event_persons ORDER BY 2, 3;
INSERT INTO audit_runs(first_seq, last_seq) SELECT 1, seq FROM audit_head WHERE id = 1 AND seq > 0;
UPDATE audit_head SET indexed_upto = seq WHERE id = 1;
)sql";

// The user index leaves the events table: as an SQL index on (user, time_utc) every event
// wrote a row on its user's page, so a group commit of N users' events rewrote N scattered
// pages (with 64 users, 30% fewer lookups/s than with one). audit_user_seqs is appended by
// the writer every AuditLogOptions::user_index_events events, sorted, in one statement;
// the events after users_indexed_upto are found by scanning that short tail. verify
// checks the index against the events.
constexpr std::string_view kSchemaV102 = R"sql(
DROP INDEX IF EXISTS audit_events_by_user;
ALTER TABLE audit_head ADD COLUMN users_indexed_upto INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_user_seqs (
  user TEXT NOT NULL,
  seq  INTEGER NOT NULL,
  PRIMARY KEY (user, seq)
) WITHOUT ROWID;
INSERT INTO audit_user_seqs(user, seq) SELECT user, seq FROM audit_events ORDER BY user, seq;
UPDATE audit_head SET users_indexed_upto = seq WHERE id = 1;
)sql";

// The user index as sorted runs too (person_runs.h, kUserRuns): a stretch appended in one
// statement dirtied one page per user (64 users: a 4.4 ms commit every 1,024 events,
// the cause of most of the slowest commits); runs keyed (first_seq, user, seq) are
// appended at the B-tree's end, a share per commit. audit_user_seqs becomes run 1.
constexpr std::string_view kSchemaV103 = R"sql(
ALTER TABLE audit_head ADD COLUMN users_run_last INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN users_run_inserted INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_user_run_list (
  first_seq INTEGER PRIMARY KEY,
  last_seq  INTEGER NOT NULL
);
CREATE TABLE audit_user_runs (
  first_seq INTEGER NOT NULL,
  user      TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  PRIMARY KEY (first_seq, user, seq)
) WITHOUT ROWID;
INSERT INTO audit_user_runs(first_seq, user, seq) SELECT 1, user, seq FROM audit_user_seqs ORDER BY user, seq;
INSERT INTO audit_user_run_list(first_seq, last_seq)
  SELECT 1, users_indexed_upto FROM audit_head WHERE id = 1 AND users_indexed_upto > 0;
DROP TABLE audit_user_seqs;
)sql";

void MigrateAudit(Database& db) {
  db.Migrate("audit", {{100, kSchemaV100}, {101, kSchemaV101}, {102, kSchemaV102}, {103, kSchemaV103}});
}

// A file written by a version between migrations 102 and 103 (not yet opened for writing
// since): its user index is the single table audit_user_seqs.
bool HasLegacyUserIndex(Database& db) { return db.HasTable("audit_user_seqs"); }

// The seqs of a user's events (?3) in such a file: the index, then the tail.
constexpr std::string_view kLegacyUserSeqsSql =
    "SELECT seq FROM audit_user_seqs WHERE user = ?3 "
    "UNION ALL SELECT seq FROM audit_events "
    "WHERE seq > (SELECT users_indexed_upto FROM audit_head WHERE id = 1) AND user = ?3";

// The user index against the events: every event up to users_indexed_upto has its row,
// and there are no others. Returns the first event at fault and why.
std::optional<std::pair<std::int64_t, std::string>> VerifyLegacyUserIndex(Database& db) {
  std::int64_t upto = 0;
  {
    auto h = db.Prepare("SELECT users_indexed_upto FROM audit_head WHERE id = 1");
    if (!h.Step()) return std::nullopt;  // the chain check reports a missing head
    upto = h.ColumnInt64(0);
  }
  // The first event at fault by `sql` (?1 = users_indexed_upto), if any.
  auto first_at_fault = [&](const char* sql) -> std::optional<std::int64_t> {
    auto s = db.Prepare(sql);
    s.Bind(1, upto);
    if (!s.Step() || s.ColumnIsNull(0)) return std::nullopt;
    return s.ColumnInt64(0);
  };
  const std::string edited = ": the user index was edited (a report by user would not show every access)";
  if (auto seq = first_at_fault(
          "SELECT min(e.seq) FROM audit_events AS e WHERE e.seq <= ?1 AND NOT EXISTS "
          "(SELECT 1 FROM audit_user_seqs AS u WHERE u.user = e.user AND u.seq = e.seq)"))
    return std::make_pair(*seq, "event " + std::to_string(*seq) + " is missing from the user index" + edited);
  if (auto seq = first_at_fault(
          "SELECT min(u.seq) FROM audit_user_seqs AS u WHERE u.seq > ?1 OR NOT EXISTS "
          "(SELECT 1 FROM audit_events AS e WHERE e.seq = u.seq AND e.user = u.user)"))
    return std::make_pair(*seq, "the user index lists event " + std::to_string(*seq) +
                                    " under a user who did not act in it, or beyond the indexed events" + edited);
  return std::nullopt;
}

constexpr std::string_view kEventColumns =
    "seq, time_utc, user, role, organisation, action, view, outcome, request_id, detail, "
    "prev_hash, hash";

std::string InsertEventHead() { return "INSERT INTO audit_events(" + std::string(kEventColumns) + ")"; }
constexpr std::string_view kEventRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr std::string_view kInsertPerson = "INSERT INTO audit_event_persons(seq, pos, person_id)";

// An event's columns into parameters base+1..base+12. The text is not copied: the event
// must outlive the statement's next step.
Statement& BindEvent(Statement& s, int base, const AuditEvent& e) {
  return s.Bind(base + 1, e.seq)
      .BindTextNoCopy(base + 2, e.time_utc)
      .BindTextNoCopy(base + 3, e.user)
      .BindTextNoCopy(base + 4, e.role)
      .BindTextNoCopy(base + 5, e.organisation)
      .BindTextNoCopy(base + 6, e.action)
      .BindTextNoCopy(base + 7, e.view)
      .BindTextNoCopy(base + 8, e.outcome)
      .BindTextNoCopy(base + 9, e.request_id)
      .BindTextNoCopy(base + 10, e.detail)
      .BindTextNoCopy(base + 11, e.prev_hash)
      .BindTextNoCopy(base + 12, e.hash);
}

AuditEvent ReadEventRow(const Statement& s) {
  AuditEvent e;
  e.seq = s.ColumnInt64(0);
  e.time_utc = s.ColumnText(1);
  e.user = s.ColumnText(2);
  e.role = s.ColumnText(3);
  e.organisation = s.ColumnText(4);
  e.action = s.ColumnText(5);
  e.view = s.ColumnText(6);
  e.outcome = s.ColumnText(7);
  e.request_id = s.ColumnText(8);
  e.detail = s.ColumnText(9);
  e.prev_hash = s.ColumnText(10);
  e.hash = s.ColumnText(11);
  return e;
}

bool HasAuditTables(Database& db) {
  return db.HasTable("audit_events") && db.HasTable("audit_event_persons") && db.HasTable("audit_head");
}

std::string SeqRange(std::int64_t first, std::int64_t last) {
  return first == last ? "event " + std::to_string(first)
                       : "events " + std::to_string(first) + " to " + std::to_string(last);
}

VerifyResult VerifyChain(Database& db) {
  VerifyResult r;
  Transaction snapshot(db, Transaction::Mode::kDeferred);  // events and head as of one moment
  if (!HasAuditTables(db)) {
    r.problem = "the database holds no audit trail (the audit tables are missing)";
    return r;
  }
  bool have_head = false;
  {
    auto head = db.Prepare("SELECT seq, hash FROM audit_head WHERE id = 1");
    if (head.Step()) {
      have_head = true;
      r.head_seq = head.ColumnInt64(0);
      r.head_hash = head.ColumnText(1);
    }
  }
  auto fail = [&r](std::int64_t seq, std::string problem) {
    r.ok = false;
    r.first_bad_seq = seq;
    r.problem = std::move(problem);
    return r;
  };

  auto events = db.Prepare("SELECT " + std::string(kEventColumns) + " FROM audit_events ORDER BY seq");
  auto persons = db.Prepare("SELECT seq, person_id FROM audit_event_persons ORDER BY seq, pos");
  bool person_row = persons.Step();
  std::int64_t expected_seq = 1;
  std::string expected_prev(kGenesisHash);
  while (events.Step()) {
    AuditEvent e = ReadEventRow(events);
    if (e.seq != expected_seq) {
      if (e.seq > expected_seq)
        return fail(expected_seq, SeqRange(expected_seq, e.seq - 1) +
                                      " missing: the chain jumps from " +
                                      std::to_string(expected_seq - 1) + " to " +
                                      std::to_string(e.seq) + " (removed)");
      return fail(e.seq, "event " + std::to_string(e.seq) + " is out of sequence: expected " +
                             std::to_string(expected_seq) + " (inserted)");
    }
    if (person_row && persons.ColumnInt64(0) < e.seq) {
      const auto orphan = persons.ColumnInt64(0);
      return fail(orphan, "a person id is recorded for event " + std::to_string(orphan) +
                              ", which does not exist (inserted or removed)");
    }
    while (person_row && persons.ColumnInt64(0) == e.seq) {
      e.person_ids.push_back(persons.ColumnText(1));
      person_row = persons.Step();
    }
    if (e.prev_hash != expected_prev)
      return fail(e.seq, "event " + std::to_string(e.seq) +
                             " does not follow on from the event before it (its prev_hash is not "
                             "that event's hash): an event was inserted or removed, or edited");
    if (ComputeAuditHash(e) != e.hash)
      return fail(e.seq, "event " + std::to_string(e.seq) +
                             " has been altered: its contents no longer match its hash");
    expected_prev = e.hash;
    ++expected_seq;
    ++r.count;
  }
  const std::int64_t last = expected_seq - 1;
  if (!have_head) return fail(last + 1, "the chain head record is missing");
  if (r.head_seq > last)
    return fail(last + 1, SeqRange(last + 1, r.head_seq) + " missing: the head records " +
                              std::to_string(r.head_seq) + " events but the chain ends at " +
                              std::to_string(last) + " (the last events were removed)");
  if (r.head_seq < last)
    return fail(r.head_seq + 1, SeqRange(r.head_seq + 1, last) +
                                    " were added behind the log's back: the head records only " +
                                    std::to_string(r.head_seq) + " events (inserted)");
  if (r.head_hash != expected_prev)
    return fail(last, "the head hash does not match event " + std::to_string(last) +
                          ": the end of the chain was altered (events removed or replaced)");
  if (person_row) {
    const auto orphan = persons.ColumnInt64(0);
    return fail(orphan, "a person id is recorded for event " + std::to_string(orphan) +
                            ", which does not exist (inserted or removed)");
  }
  if (HasRuns(db, kPersonRuns))
    if (auto bad = VerifyRuns(db, kPersonRuns)) return fail(bad->first, std::move(bad->second));
  if (HasRuns(db, kUserRuns))
    if (auto bad = VerifyRuns(db, kUserRuns)) return fail(bad->first, std::move(bad->second));
  if (HasLegacyUserIndex(db))
    if (auto bad = VerifyLegacyUserIndex(db)) return fail(bad->first, std::move(bad->second));
  r.ok = true;
  return r;
}

std::vector<AuditEvent> RunQuery(Database& db, const AuditQuery& q) {
  if (auto errors = CheckAuditQuery(q); !errors.empty())
    throw FatalError(Problem::kUsage, "audit query: " + FormatErrors(errors));
  if (!HasAuditTables(db)) return {};
  std::string sql = "SELECT " + std::string(kEventColumns) + " FROM audit_events WHERE seq > ?1";
  if (!q.person_id.empty())
    sql += HasRuns(db, kPersonRuns) ? " AND seq IN (" + std::string(kPersonSeqsSql) + ")"
                             : std::string(" AND seq IN (SELECT seq FROM audit_event_persons WHERE person_id = ?2)");
  if (!q.user.empty())
    sql += HasRuns(db, kUserRuns)      ? " AND seq IN (" + std::string(kUserSeqsSql) + ")"
           : HasLegacyUserIndex(db) ? " AND seq IN (" + std::string(kLegacyUserSeqsSql) + ")"
                                    : std::string(" AND user = ?3");
  if (!q.from.empty()) sql += " AND time_utc >= ?4";
  if (!q.to.empty()) sql += " AND time_utc <= ?5";
  sql += " ORDER BY seq LIMIT ?6";

  Transaction snapshot(db, Transaction::Mode::kDeferred);
  auto s = db.Prepare(sql);
  s.Bind(1, q.after_seq);
  if (!q.person_id.empty()) s.Bind(2, q.person_id);
  if (!q.user.empty()) s.Bind(3, q.user);
  if (!q.from.empty()) s.Bind(4, *NormaliseAuditTime(q.from, false));
  if (!q.to.empty()) s.Bind(5, *NormaliseAuditTime(q.to, true));
  s.Bind(6, q.limit.value_or(-1));
  std::vector<AuditEvent> out;
  while (s.Step()) out.push_back(ReadEventRow(s));

  auto persons = db.Prepare("SELECT person_id FROM audit_event_persons WHERE seq = ? ORDER BY pos");
  for (auto& e : out) {
    persons.Reset();
    persons.Bind(1, e.seq);
    while (persons.Step()) e.person_ids.push_back(persons.ColumnText(0));
  }
  return out;
}

using Clock = std::chrono::steady_clock;

// How long the writer waits for a batch to fill up before committing what it has.
constexpr auto kGatherWait = std::chrono::microseconds(200);

std::int64_t Micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

std::exception_ptr MakeError(Problem p, std::string message) {
  return std::make_exception_ptr(FatalError(p, std::move(message)));
}

}  // namespace

void PrepareAuditTables(Database& db) { MigrateAudit(db); }

namespace {

// CheckAuditHead, also handing back the head's seq and hash (what a new event chains after).
std::string HeadProblem(Database& db, std::int64_t& seq, std::string& hash) {
  Statement head(db, "SELECT seq, hash FROM audit_head WHERE id = 1");
  if (!head.Step()) return "the chain head record is missing";
  seq = head.ColumnInt64(0);
  hash = head.ColumnText(1);
  Statement last(db, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1");
  if (!last.Step())
    return seq == 0 && hash == kGenesisHash ? std::string()
                                            : "the head names event " + std::to_string(seq) + " but there are no events";
  const std::int64_t last_seq = last.ColumnInt64(0);
  if (last_seq != seq)
    return "the head names event " + std::to_string(seq) + " but the last event is " + std::to_string(last_seq);
  if (last.ColumnText(1) != hash)
    return "the head's hash is not the hash of event " + std::to_string(seq);
  return {};
}

}  // namespace

std::string CheckAuditHead(Database& db) {
  std::int64_t seq = 0;
  std::string hash;
  return HeadProblem(db, seq, hash);
}

std::int64_t AppendInTransaction(Database& db, AuditEvent& e) {
  if (!db.InTransaction())
    throw FatalError(Problem::kInternal, "audit: AppendInTransaction outside a write transaction");
  if (e.time_utc.empty()) {
    e.time_utc = UtcNowRfc3339();
  } else {
    auto normal = NormaliseAuditTime(e.time_utc);
    if (!normal)
      throw FatalError(Problem::kInternal, "audit: time_utc \"" + e.time_utc + "\" is not an RFC 3339 time");
    e.time_utc = std::move(*normal);
  }
  std::int64_t head_seq = 0;
  if (std::string problem = HeadProblem(db, head_seq, e.prev_hash); !problem.empty())
    throw FatalError(Problem::kIoFailure, db.path() + ": the audit trail is damaged: " + problem +
                                              " (caregate audit verify tells more)");
  e.seq = head_seq + 1;
  e.hash = ComputeAuditHash(e);
  Statement event(db, InsertValuesSql(InsertEventHead(), kEventRow, 1));
  BindEvent(event, 0, e).Run();
  Statement person(db, InsertValuesSql(kInsertPerson, "(?, ?, ?)", 1));
  for (std::size_t pos = 0; pos < e.person_ids.size(); ++pos) {
    person.Reset();
    person.Bind(1, e.seq).Bind(2, static_cast<std::int64_t>(pos)).Bind(3, e.person_ids[pos]).Run();
  }
  Statement move(db, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1");
  move.Bind(1, e.seq).Bind(2, e.hash).Run();
  return e.seq;
}

namespace {
// The problem with a `from`/`to` bound. A '+' written into a URL's query string arrives
// as a space (form encoding), so "…T13:00:00+01:00" reads "…T13:00:00 01:00": when the
// value would be a time with a '+' there, the message says how to write it.
std::string BadBound(const std::string& value, bool end) {
  std::string problem = "not an RFC 3339 time or a YYYY-MM-DD date";
  if (const auto space = value.rfind(' '); space != std::string::npos) {
    std::string plus = value;
    plus[space] = '+';
    if (NormaliseAuditTime(plus, end)) problem += " (a '+' in a query string reads as a space: write it as %2B)";
  }
  return problem;
}
}  // namespace

FieldErrors CheckAuditQuery(const AuditQuery& q) {
  FieldErrors errors;
  if (!q.from.empty() && !NormaliseAuditTime(q.from)) errors.push_back({"from", BadBound(q.from, false)});
  if (!q.to.empty() && !NormaliseAuditTime(q.to, true)) errors.push_back({"to", BadBound(q.to, true)});
  if (q.limit && *q.limit < 0) errors.push_back({"limit", "must not be negative"});
  if (q.after_seq < 0) errors.push_back({"after", "must not be negative"});
  return errors;
}

// Both open the file read-only: checking or reporting on a database writes nothing to it
// (a file that is no caregate database used to be switched to WAL, an empty one given a
// header).
VerifyResult VerifyAuditTrail(const std::string& db_path) {
  Database db(db_path, store::OpenOptions{.create = false, .read_only = true});
  return VerifyChain(db);
}

std::vector<AuditEvent> QueryAuditTrail(const std::string& db_path, const AuditQuery& q) {
  Database db(db_path, store::OpenOptions{.create = false, .read_only = true});
  // A report of nothing would say nobody saw anything; a file without the audit tables is
  // not a caregate database, and says so instead.
  if (!HasAuditTables(db))
    throw FatalError(Problem::kIoFailure,
                     db_path + ": the database holds no audit trail (the audit tables are missing): not a caregate "
                               "database?");
  return RunQuery(db, q);
}

std::vector<AuditEvent> QueryAnyOf(const AuditQuery& q, const std::vector<std::string>& person_ids,
                                   const std::function<std::vector<AuditEvent>(const AuditQuery&)>& query) {
  if (person_ids.size() <= 1) return query(q);
  std::map<std::int64_t, AuditEvent> by_seq;
  for (const auto& id : person_ids) {
    AuditQuery one = q;
    one.person_id = id;
    for (auto& e : query(one)) by_seq.emplace(e.seq, std::move(e));
  }
  std::vector<AuditEvent> events;
  for (auto& [seq, e] : by_seq) {
    if (q.limit && static_cast<std::int64_t>(events.size()) == *q.limit) break;
    events.push_back(std::move(e));
  }
  return events;
}

// What became of one batch: shared by every AppendDurable caller in it, who all wait on
// `state` and are woken by one notify_all (one futex call, not one per caller).
struct BatchOutcome {
  enum : int { kPending = 0, kCommitted = 1, kFailed = 2 };
  std::atomic<int> state{kPending};
  std::int64_t first_seq = 0;  // written before state
  std::exception_ptr error;    // written before state
};

struct AuditLog::Impl {
  struct Pending {
    AuditEvent event;
    Callback done;  // Append(); empty for AppendDurable, which waits on the batch
  };
  struct Ticket {
    std::shared_ptr<BatchOutcome> batch;
    std::int64_t index = 0;  // position in the batch: seq = first_seq + index
  };

  Impl(std::string p, const AuditLogOptions& options)
      : path(std::move(p)),
        writer_db(OpenMigrated(path)),
        insert_event(writer_db, InsertValuesSql(InsertEventHead(), kEventRow, 1)),
        insert_events(writer_db, InsertValuesSql(InsertEventHead(), kEventRow, kEventsPerInsert)),
        insert_person(writer_db, InsertValuesSql(kInsertPerson, "(?, ?, ?)", 1)),
        insert_persons(writer_db, InsertValuesSql(kInsertPerson, "(?, ?, ?)", kPersonsPerInsert)),
        read_head(writer_db,
                  "SELECT seq, hash, indexed_upto, run_last, run_inserted, users_indexed_upto, users_run_last, "
                  "users_run_inserted FROM audit_head WHERE id = 1"),
        write_head(writer_db,
                   "UPDATE audit_head SET seq = ?, hash = ?, indexed_upto = ?, run_last = ?, "
                   "run_inserted = ?, users_indexed_upto = ?, users_run_last = ?, users_run_inserted = ? "
                   "WHERE id = 1"),
        person_runs(writer_db, kPersonRuns, options.person_run_events, options.person_run_chunk,
                    options.person_run_background_pairs),
        user_runs(writer_db, kUserRuns, options.user_index_events, options.person_run_chunk,
                  options.person_run_background_pairs),
        checkpointer(writer_db, 1000, store::WalCheckpointer::Tail::kByOwner),
        writer([this] { WriterLoop(); }) {}

  static Database OpenMigrated(const std::string& path) {
    Database db(path);
    MigrateAudit(db);
    return db;
  }

  void WriterLoop() {
    pthread_setname_np(pthread_self(), "caregate-audit");  // for top -H, perf and gdb
    std::vector<Pending> batch;
    std::size_t last_batch = 1;
    for (;;) {
      auto next = std::make_shared<BatchOutcome>();
      std::shared_ptr<BatchOutcome> outcome;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return !queue.empty() || stopping; });
        if (queue.empty()) return;  // stopping, and everything queued has been written
        // The callers released by the last commit come back one by one as the scheduler
        // lets them; give them a moment to join this batch rather than paying an fsync
        // for the first few alone. Bounded, so a lone caller waits at most kGatherWait.
        if (queue.size() < last_batch && !stopping) {
          gather_target = last_batch;
          cv.wait_for(lock, kGatherWait,
                      [&] { return queue.size() >= last_batch || stopping; });
          gather_target = 0;
        }
        batch.swap(queue);
        outcome = std::exchange(open_batch, std::move(next));
      }
      last_batch = batch.size();
      WriteBatch(batch, *outcome);
      batch.clear();
      // The WAL's last frames, once the checkpointer has caught up: after the batch's
      // callers are released, not inside their commit (store/wal_checkpointer.h). The
      // tail syncs the database file (~1 ms), which events queued for the next batch
      // would wait for: it waits for a moment when none are, for 32 batches at most.
      if (checkpointer.TailDue()) {
        bool waiting = false;
        {
          std::lock_guard lock(mu);
          waiting = !queue.empty();
        }
        if (checkpointer.RunTailIfDue(waiting)) {
          wal_tails.fetch_add(1, std::memory_order_relaxed);
          if (waiting) wal_tails_forced.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }

  // One transaction, one fsync, however many events arrived while the last one ran.
  void WriteBatch(std::vector<Pending>& batch, BatchOutcome& outcome) {
    std::int64_t first_seq = 0;
    const auto batch_start = Clock::now();
    try {
      Transaction tx(writer_db);
      read_head.Reset();
      if (!read_head.Step())
        throw FatalError(Problem::kIoFailure, path + ": the audit chain head record is missing");
      std::int64_t seq = read_head.ColumnInt64(0);
      std::string hash = read_head.ColumnText(1);
      RunState runs{read_head.ColumnInt64(2), read_head.ColumnInt64(3), read_head.ColumnInt64(4)};
      RunState users{read_head.ColumnInt64(5), read_head.ColumnInt64(6), read_head.ColumnInt64(7)};
      read_head.Reset();
      first_seq = seq + 1;
      batch_pairs.clear();
      batch_users.clear();
      for (auto& p : batch) {
        AuditEvent& e = p.event;
        e.seq = ++seq;
        e.prev_hash = std::move(hash);
        e.hash = ComputeAuditHash(e);
        hash = e.hash;
        batch_users.emplace_back(e.user, e.seq);
        for (const auto& id : e.person_ids) batch_pairs.emplace_back(id, e.seq);
      }
      InsertEvents(batch);
      InsertPersons(batch);
      person_runs.Step(first_seq, seq, runs);
      user_runs.Step(first_seq, seq, users);
      write_head.Reset();
      write_head.Bind(1, seq)
          .Bind(2, hash)
          .Bind(3, runs.indexed_upto)
          .Bind(4, runs.run_last)
          .Bind(5, runs.run_inserted)
          .Bind(6, users.indexed_upto)
          .Bind(7, users.run_last)
          .Bind(8, users.run_inserted)
          .Run();
      const auto commit_start = Clock::now();
      tx.Commit();
      const auto commit_end = Clock::now();
      person_runs.Committed(first_seq, seq, std::move(batch_pairs), runs);
      user_runs.Committed(first_seq, seq, std::move(batch_users), users);
      insert_us.fetch_add(Micros(commit_start - batch_start), std::memory_order_relaxed);
      commit_us.fetch_add(Micros(commit_end - commit_start), std::memory_order_relaxed);
    } catch (const std::exception& ex) {
      failed_commits.fetch_add(1, std::memory_order_relaxed);
      outcome.error = MakeError(Problem::kIoFailure, "audit: could not record " +
                                                         std::to_string(batch.size()) +
                                                         " event(s): " + ex.what());
      outcome.state.store(BatchOutcome::kFailed, std::memory_order_release);
      outcome.state.notify_all();
      for (auto& p : batch)
        if (p.done) Call(p.done, 0, outcome.error);
      return;
    }
    // The counters first: whoever a completion releases must see them include this
    // batch (a test waiting for its callbacks read them one batch short).
    events.fetch_add(static_cast<std::int64_t>(batch.size()), std::memory_order_relaxed);
    commits.fetch_add(1, std::memory_order_relaxed);
    std::int64_t size = static_cast<std::int64_t>(batch.size());
    std::int64_t largest = largest_batch.load(std::memory_order_relaxed);
    while (size > largest && !largest_batch.compare_exchange_weak(largest, size)) {
    }
    outcome.first_seq = first_seq;
    outcome.state.store(BatchOutcome::kCommitted, std::memory_order_release);
    outcome.state.notify_all();
    for (auto& p : batch)
      if (p.done) Call(p.done, p.event.seq, nullptr);
  }

  // The batch's rows, kEventsPerInsert (kPersonsPerInsert) to a statement: one
  // statement's overhead (cursor, halt, reset) for many rows. Every parameter is bound
  // again for each statement, so the statements keep their bindings (Rewind), and the
  // text is not copied: the events live in `batch` until the batch is done.

  void InsertEvents(const std::vector<Pending>& batch) {
    store::InsertRows(insert_events, insert_event, kEventsPerInsert, batch.size(),
                      [&](Statement& s, int slot, std::size_t row) { BindEvent(s, 12 * slot, batch[row].event); });
  }

  void InsertPersons(const std::vector<Pending>& batch) {
    person_rows.clear();  // views into `batch`
    for (const auto& p : batch)
      for (std::size_t pos = 0; pos < p.event.person_ids.size(); ++pos)
        person_rows.push_back({p.event.seq, static_cast<std::int64_t>(pos), p.event.person_ids[pos]});
    store::InsertRows(insert_persons, insert_person, kPersonsPerInsert, person_rows.size(),
                      [&](Statement& s, int slot, std::size_t row) {
                        const PersonRow& r = person_rows[row];
                        s.Bind(3 * slot + 1, r.seq).Bind(3 * slot + 2, r.pos).BindTextNoCopy(3 * slot + 3, r.id);
                      });
  }

  // A callback must not take the writer down with it.
  static void Call(const Callback& done, std::int64_t seq, const std::exception_ptr& error) noexcept {
    try {
      done(seq, error);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "caregate audit: an append callback threw: %s\n", ex.what());
    } catch (...) {
      std::fprintf(stderr, "caregate audit: an append callback threw\n");
    }
  }

  // Queues the event; throws FatalError when it cannot be queued, leaving `done` as it
  // was (it is moved from only once the event is queued).
  Ticket Enqueue(AuditEvent e, Callback&& done) {
    if (!e.time_utc.empty()) {
      auto normal = NormaliseAuditTime(e.time_utc);
      if (!normal)
        throw FatalError(Problem::kInternal,
                         "audit: time_utc \"" + e.time_utc + "\" is not an RFC 3339 time");
      e.time_utc = std::move(*normal);
    }
    Ticket ticket;
    bool wake = false;
    {
      std::lock_guard lock(mu);
      if (stopping) throw FatalError(Problem::kUnavailable, "audit: the log is closed");
      // Stamped under the lock so that this log's times never run backwards along the
      // chain (unless the system clock itself is set back). Events another writer
      // appends (an ingest command, an export's run) may interleave with earlier times:
      // reports take the first and last time by value, not by position.
      if (e.time_utc.empty()) e.time_utc = UtcNowRfc3339();
      ticket.batch = open_batch;
      ticket.index = static_cast<std::int64_t>(queue.size());
      queue.push_back(Pending{std::move(e), std::move(done)});
      // Wake the writer for the first event, and when the batch it gathers is full.
      wake = queue.size() == 1 || queue.size() == gather_target;
    }
    if (wake) cv.notify_one();
    return ticket;
  }

  std::future<std::int64_t> Append(AuditEvent e) {
    auto promise = std::make_shared<std::promise<std::int64_t>>();
    auto future = promise->get_future();
    Append(std::move(e), [promise](std::int64_t seq, const std::exception_ptr& error) {
      if (error)
        promise->set_exception(error);
      else
        promise->set_value(seq);
    });
    return future;
  }

  void Append(AuditEvent e, Callback done) {
    try {
      Enqueue(std::move(e), std::move(done));
    } catch (...) {
      Call(done, 0, std::current_exception());
    }
  }

  std::int64_t AppendDurable(AuditEvent e) {
    const Ticket t = Enqueue(std::move(e), nullptr);
    t.batch->state.wait(BatchOutcome::kPending, std::memory_order_acquire);
    if (t.batch->state.load(std::memory_order_acquire) == BatchOutcome::kFailed)
      std::rethrow_exception(t.batch->error);
    return t.batch->first_seq + t.index;
  }

  void Close() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_one();
    std::lock_guard join_lock(join_mu);
    if (writer.joinable()) writer.join();
    checkpointer.Stop();  // once the writer's connection is idle for good
  }

  Database& Reader() const {
    if (!reader_db) reader_db.emplace(path);
    return *reader_db;
  }

  const std::string path;
  Database writer_db;  // used by the writer thread only (and the constructor)
  static constexpr int kEventsPerInsert = 8;
  static constexpr int kPersonsPerInsert = 16;
  Statement insert_event;    // one row
  Statement insert_events;   // kEventsPerInsert rows
  Statement insert_person;   // one row
  Statement insert_persons;  // kPersonsPerInsert rows
  struct PersonRow {
    std::int64_t seq, pos;
    std::string_view id;
  };
  std::vector<PersonRow> person_rows;  // the writer's: a batch's person rows, reused
  Statement read_head;
  Statement write_head;
  RunIndexer person_runs;  // the person index, appended in sorted runs
  RunIndexer user_runs;    // the user index, likewise
  RunIndexer::Pairs batch_pairs;  // writer thread: the batch's (person id, seq)
  RunIndexer::Pairs batch_users;  // writer thread: the batch's (user, seq)

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Pending> queue;  // guarded by mu
  std::shared_ptr<BatchOutcome> open_batch = std::make_shared<BatchOutcome>();  // guarded by mu
  bool stopping = false;       // guarded by mu
  std::size_t gather_target = 0;  // guarded by mu: the writer is waiting for this many

  mutable std::mutex reader_mu;
  mutable std::optional<Database> reader_db;  // guarded by reader_mu

  std::atomic<std::int64_t> events{0}, commits{0}, failed_commits{0}, largest_batch{0};
  std::atomic<std::int64_t> insert_us{0}, commit_us{0}, wal_tails{0}, wal_tails_forced{0};

  // The WAL is copied back into the database by a thread of its own, not inside the
  // commit a batch of callers is waiting for.
  store::WalCheckpointer checkpointer;

  std::mutex join_mu;
  std::thread writer;  // last: starts once everything above is ready
};

AuditLog::AuditLog(std::string db_path, AuditLogOptions options)
    : impl_(std::make_unique<Impl>(std::move(db_path), options)) {}

AuditLog::~AuditLog() { Close(); }

std::future<std::int64_t> AuditLog::Append(AuditEvent e) { return impl_->Append(std::move(e)); }

std::int64_t AuditLog::AppendDurable(AuditEvent e) { return impl_->AppendDurable(std::move(e)); }

void AuditLog::Append(AuditEvent e, Callback done) { impl_->Append(std::move(e), std::move(done)); }

void AuditLog::Close() { impl_->Close(); }

std::vector<AuditEvent> AuditLog::Query(const AuditQuery& q) const {
  std::lock_guard lock(impl_->reader_mu);
  return RunQuery(impl_->Reader(), q);
}

VerifyResult AuditLog::Verify() const {
  std::lock_guard lock(impl_->reader_mu);
  return VerifyChain(impl_->Reader());
}

AuditLog::Stats AuditLog::stats() const {
  return Stats{impl_->events.load(),        impl_->commits.load(),   impl_->failed_commits.load(),
               impl_->largest_batch.load(), impl_->insert_us.load(), impl_->commit_us.load(),
               impl_->wal_tails.load(),   impl_->wal_tails_forced.load()};
}

const std::string& AuditLog::path() const { return impl_->path; }

}  // namespace caregate::audit
