#pragma once
// The tamper-evident, durable audit trail.
//
// AuditLog owns its own SQLite connection and one writer thread. Callers on any thread
// hand it events; the writer takes every event queued at that moment, chains and inserts
// them in one transaction and commits (one fsync), and only then completes their futures.
// Concurrent requests therefore share one fsync (group commit), and an event whose
// future has a value is on disk. If the commit fails every future of that batch gets the
// exception, and the caller must fail its request (500) rather than answer unaudited.
//
// Several AuditLogs (in one process or several) may append to the same file: each batch
// re-reads the chain head inside its write transaction.
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caregate/audit/audit_event.h"
#include "caregate/core/error.h"

namespace caregate::store {
class Database;
}  // namespace caregate::store

namespace caregate::audit {

struct AuditQuery {
  std::string person_id{};  // exact match on any of the event's ids; "" for all
  std::string user{};       // exact match; "" for all
  std::string from{};       // inclusive, RFC 3339 or YYYY-MM-DD; "" for no bound
  std::string to{};         // inclusive at the precision written; "" for no bound
  std::int64_t after_seq = 0;           // only events with seq > after_seq (paging)
  std::optional<std::int64_t> limit{};    // at most this many, in seq order
};

// What is wrong with a query, as field errors ("from", "to", "limit"); empty when valid.
// Servers and the CLI check this first and answer 400 / exit 2 themselves.
FieldErrors CheckAuditQuery(const AuditQuery& q);

struct VerifyResult {
  bool ok = false;
  std::int64_t count = 0;          // events checked (all of them when ok)
  std::int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;             // what is wrong, in plain words; "" when ok
  // The head as recorded. Anyone able to write the whole file can rewrite the whole
  // chain and the head with it; anchoring this pair outside the database (a ticket, a
  // printed report, a second system) is what exposes such a rewrite.
  std::int64_t head_seq = 0;
  std::string head_hash;
};

// Opens an existing database and walks the chain in seq order. Throws FatalError when
// the file cannot be opened; a damaged chain is a result, not an exception.
VerifyResult VerifyAuditTrail(const std::string& db_path);
// Events matching `q` in seq order. Throws FatalError(kUsage) for a query that
// CheckAuditQuery rejects, FatalError(kIoFailure) when the file cannot be read.
std::vector<AuditEvent> QueryAuditTrail(const std::string& db_path, const AuditQuery& q);
// The events about a person known by several ids (`person_ids`, q.person_id aside): `query`
// run once for each id, merged by seq, each event once, at most q.limit of them in seq
// order (each id's first q.limit after q.after_seq hold the union's). With one id or
// none, `query` runs q as it is.
std::vector<AuditEvent> QueryAnyOf(const AuditQuery& q, const std::vector<std::string>& person_ids,
                                   const std::function<std::vector<AuditEvent>(const AuditQuery&)>& query);

// For a caller that records its own change and the change's audit event in one write
// transaction, so that both commit or neither does (the nightly export records each
// completed run this way, docs/export.md). PrepareAuditTables applies the audit
// migrations, outside any transaction. AppendInTransaction needs `db` inside a write
// transaction (store::Transaction, kImmediate): it chains the event after the head it
// reads there, inserts it and moves the head. It sets e.seq, prev_hash and hash, and
// time_utc when empty (normalised otherwise), and returns the seq. Throws
// FatalError(kInternal) outside a transaction or for a time_utc that is not RFC 3339,
// FatalError(kIoFailure) naming the damage when CheckAuditHead finds any (a missing head
// among it), and store::DatabaseError when SQLite fails (the caller's transaction then
// rolls back). The person and user indexes take the event in
// as they do events another process wrote: by the tail scan at first, then in a run once
// an AuditLog has gathered enough events past the indexed part.
void PrepareAuditTables(store::Database& db);
std::int64_t AppendInTransaction(store::Database& db, AuditEvent& e);
// What is wrong with the chain's head record, in plain words, or "" when it names the
// last event (its seq and hash): a new event can be chained after it. Two indexed reads:
// cheap enough to check before work that could not be undone (the export checks it
// before it writes anything). Not a verify: `caregate audit verify` checks every event.
std::string CheckAuditHead(store::Database& db);

struct AuditLogOptions {
  // The person index is appended in sorted runs (docs/audit.md): a run starts once this
  // many events are not yet indexed, and is appended at most this many entries per group
  // commit (and at most max(64, 4 x the commit's events), so no commit carries much more
  // than its own share).
  std::int64_t person_run_events = 32768;
  std::int64_t person_run_chunk = 512;
  // A run of more (person id, seq) pairs than this is sorted, or read back from the
  // table, on a thread of its own while the writer goes on committing; smaller ones are
  // prepared by the writer itself.
  std::int64_t person_run_background_pairs = 4096;
  // The user index is kept in runs the same way (migration 103): a run starts once this
  // many events are not yet indexed (a user query scans at most about two runs' worth of
  // events past the index, whole rows of audit_events, hence smaller runs than persons').
  std::int64_t user_index_events = 8192;
};

class AuditLog {
 public:
  // Opens (creating if need be) the database, applies the audit migrations and starts
  // the writer. Throws FatalError(kIoFailure) when the file cannot be opened.
  explicit AuditLog(std::string db_path, AuditLogOptions options = {});
  ~AuditLog();  // Close()
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues the event; the future yields its seq once its transaction has committed, or
  // throws FatalError(kIoFailure) if it failed, FatalError(kUnavailable) after Close(),
  // FatalError(kInternal) for a time_utc that is not RFC 3339. seq, prev_hash and hash
  // are assigned by the log; an empty time_utc becomes now.
  std::future<std::int64_t> Append(AuditEvent e);
  // Append and wait: returns the seq once the event is durable; throws as above.
  std::int64_t AppendDurable(AuditEvent e);
  // Append without waiting: `done` is called exactly once, with the seq and a null error
  // once the event's transaction has committed, or with seq 0 and the error (as above).
  // It runs on the writer thread after the commit (or, when the event cannot be queued,
  // on the caller's thread before Append returns), so it must be quick and not block:
  // hand the result to another thread (e.g. post it to an I/O context) and return. If
  // it throws, the exception is logged and dropped.
  using Callback = std::function<void(std::int64_t seq, std::exception_ptr error)>;
  void Append(AuditEvent e, Callback done);

  // Writes everything already queued, then stops the writer. Idempotent.
  void Close();

  // Read through a separate connection; safe to call while appends are running.
  std::vector<AuditEvent> Query(const AuditQuery& q) const;
  VerifyResult Verify() const;

  struct Stats {
    std::int64_t events = 0;          // committed
    std::int64_t commits = 0;         // transactions committed
    std::int64_t failed_commits = 0;
    std::int64_t largest_batch = 0;
    std::int64_t insert_us = 0;       // writer time chaining and inserting (committed batches)
    std::int64_t commit_us = 0;       // writer time in COMMIT, i.e. mostly fsync
    std::int64_t wal_tails = 0;       // WAL tail checkpoints the writer ran between batches
    std::int64_t wal_tails_forced = 0;  // of those, run with events waiting (deferred too long)
  };
  Stats stats() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace caregate::audit
