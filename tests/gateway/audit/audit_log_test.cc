#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "audit_test_support.h"
#include "caregate/audit/audit_log.h"
#include "caregate/store/database.h"
#include "caregate/store/transaction.h"

namespace caregate::audit {
namespace {

using testing::MakeEvent;
using testing::Tamper;
using testing::TempDir;

TEST(AuditLog, AppendDurableReturnsConsecutiveSeqsAndChains) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  EXPECT_EQ(log.AppendDurable(MakeEvent("u1", {"nhs:9912003888"})), 1);
  EXPECT_EQ(log.AppendDurable(MakeEvent("u2", {})), 2);
  EXPECT_EQ(log.AppendDurable(MakeEvent("u3", {"s1:1", "cis:2", "nhs:3"})), 3);
  const auto events = log.Query({});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].prev_hash, kGenesisHash);
  EXPECT_EQ(events[1].prev_hash, events[0].hash);
  EXPECT_EQ(events[2].person_ids, (std::vector<std::string>{"s1:1", "cis:2", "nhs:3"}));
  for (const auto& e : events) EXPECT_EQ(e.hash, ComputeAuditHash(e));
  const VerifyResult r = log.Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, 3);
}

// The WAL's tail checkpoint is run by the writer between batches (after releasing the
// callers), not in its commit hook: under a stream of commits it happens, and the WAL
// keeps starting again.
TEST(AuditLog, TheWriterRunsTheWalTailBetweenBatches) {
  TempDir dir;
  AuditLog log(dir.file("audit.db"));
  for (int i = 0; i < 4000 && log.stats().wal_tails == 0; ++i) {
    auto e = MakeEvent("amy.jones", {"cis:1"});
    e.detail = std::string(3000, 'x');  // each commit a few pages: the WAL fills sooner
    log.AppendDurable(std::move(e));
  }
  EXPECT_GT(log.stats().wal_tails, 0);
  EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
}

// A batch's rows go in several to a statement (8 events, 16 person rows) and the rest one
// by one: every event and every person id must arrive, in order, whatever the mix.
TEST(AuditLog, BatchesOfEveryShapeStoreEveryEventAndPersonId) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  std::vector<std::future<std::int64_t>> pending;
  std::vector<AuditEvent> sent;
  for (int i = 0; i < 203; ++i) {
    std::vector<std::string> ids;
    const int n = i == 100 ? 40 : i % 5;  // 0-4 ids, and one event with 40
    for (int k = 0; k < n; ++k) ids.push_back("cis:P" + std::to_string(i) + "-" + std::to_string(k));
    AuditEvent e = MakeEvent("user" + std::to_string(i % 3), ids);
    e.detail = "event " + std::to_string(i);
    sent.push_back(e);
    pending.push_back(log.Append(std::move(e)));  // queued together: a few large batches
  }
  for (auto& f : pending) f.get();
  EXPECT_LT(log.stats().commits, 203);  // some batches held several events
  const auto events = log.Query({});
  ASSERT_EQ(events.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(events[i].detail, sent[i].detail);
    EXPECT_EQ(events[i].person_ids, sent[i].person_ids) << i;
    EXPECT_EQ(events[i].user, sent[i].user) << i;
  }
  // The person index has each of them too.
  for (int i : {1, 4, 99, 100, 202}) {
    const auto found = log.Query({.person_id = "cis:P" + std::to_string(i) + "-0"});
    ASSERT_EQ(found.size(), 1u) << i;
    EXPECT_EQ(found[0].detail, "event " + std::to_string(i));
  }
  EXPECT_EQ(log.Query({.person_id = "cis:P100-39"}).size(), 1u);
  EXPECT_TRUE(log.Verify().ok) << log.Verify().problem;
}

TEST(AuditLog, StoresEveryFieldAsGiven) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  AuditEvent e = MakeEvent("dr.o'neill", {"nhs:9912003888", "cis:LA-1"}, "403 consent-withheld",
                           "2024-05-01T10:15:30.250+01:00");
  e.role = "council";
  e.organisation = "Leeds City Council";
  e.action = "refused";
  e.view = "cis";
  e.request_id = "6f1c";
  e.detail = "Consent_To_Share is No;\nline two: ünïcödé, 'quotes', 1:2\n";
  log.AppendDurable(e);
  const auto events = log.Query({});
  ASSERT_EQ(events.size(), 1u);
  AuditEvent expected = e;
  expected.seq = 1;
  expected.time_utc = "2024-05-01T09:15:30.250Z";  // normalised to UTC
  expected.prev_hash = std::string(kGenesisHash);
  expected.hash = ComputeAuditHash(expected);
  EXPECT_EQ(events[0], expected);
}

TEST(AuditLog, StampsEmptyTimeWithUtcNow) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  const std::string before = UtcNowRfc3339();
  log.AppendDurable(MakeEvent("u", {}));
  const std::string after = UtcNowRfc3339();
  const auto e = log.Query({}).at(0);
  EXPECT_TRUE(testing::IsCanonicalTime(e.time_utc)) << e.time_utc;
  EXPECT_LE(before, e.time_utc);
  EXPECT_LE(e.time_utc, after);
}

TEST(AuditLog, RejectsTimeThatIsNotRfc3339WithoutBreakingTheChain) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  try {
    log.AppendDurable(MakeEvent("u", {}, "200", "01/05/2024 10:00"));
    FAIL();
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kInternal);
  }
  auto future = log.Append(MakeEvent("u", {}, "200", "2024-05-01"));  // a date alone is fine
  EXPECT_EQ(future.get(), 1);
  EXPECT_THROW(log.Append(MakeEvent("u", {}, "200", "10:00")).get(), FatalError);
  EXPECT_EQ(log.AppendDurable(MakeEvent("u", {})), 2);
  EXPECT_TRUE(log.Verify().ok);
}

TEST(AuditLog, ConcurrentAppendsFrom16ThreadsFormOneChainWithoutGaps) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  constexpr int kThreads = 16, kPerThread = 150;
  std::vector<std::vector<std::int64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      // Half the threads wait through futures, half through AppendDurable; both kinds
      // end up in the same batches.
      for (int i = 0; i < kPerThread; ++i) {
        AuditEvent e = MakeEvent("user" + std::to_string(t), {"nhs:" + std::to_string(i)});
        seqs[static_cast<std::size_t>(t)].push_back(t % 2 ? log.Append(std::move(e)).get()
                                                           : log.AppendDurable(std::move(e)));
      }
    });
  for (auto& th : threads) th.join();

  std::set<std::int64_t> all;
  for (const auto& v : seqs) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));  // each thread's events in its order
    all.insert(v.begin(), v.end());
  }
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kPerThread);

  const VerifyResult r = log.Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, kThreads * kPerThread);
  const auto stats = log.stats();
  EXPECT_EQ(stats.events, kThreads * kPerThread);
  EXPECT_EQ(stats.failed_commits, 0);
  EXPECT_GT(stats.largest_batch, 1) << "no group commit happened";
  RecordProperty("commits", std::to_string(stats.commits));
}

// Waits for a number of Append callbacks and keeps what they were given.
class Callbacks {
 public:
  AuditLog::Callback Next(std::string request_id = {}) {
    return [this, id = std::move(request_id)](std::int64_t seq, const std::exception_ptr& error) {
      std::lock_guard lock(mu_);
      results_.push_back({seq, error, id});
      cv_.notify_all();
    };
  }
  struct Result {
    std::int64_t seq;
    std::exception_ptr error;
    std::string request_id;
  };
  std::vector<Result> WaitFor(std::size_t n) {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] { return results_.size() >= n; }));
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Result> results_;
};

TEST(AuditLog, AppendCallbackRunsOnlyOnceTheEventIsCommitted) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  AuditLog log(path);
  std::promise<std::vector<AuditEvent>> seen;
  log.Append(MakeEvent("alice", {"nhs:1"}), [&](std::int64_t seq, const std::exception_ptr& error) {
    EXPECT_FALSE(error);
    // Another connection sees only committed data.
    AuditQuery q;
    q.after_seq = seq - 1;
    q.limit = 1;
    seen.set_value(QueryAuditTrail(path, q));
  });
  const auto events = seen.get_future().get();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seq, 1);
  EXPECT_EQ(events[0].user, "alice");
}

TEST(AuditLog, EverythingQueuedDuringACommitGoesIntoTheNextOne) {
  // The batch grows with the number of waiting appenders: while another connection holds
  // the write lock (as a slow fsync would hold the writer), 200 events queue up; they
  // take at most two commits, however they split between the blocked batch and the next.
  TempDir dir;
  const std::string path = dir.file("a.db");
  AuditLog log(path);
  sqlite3* blocker = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &blocker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  Callbacks callbacks;
  for (int i = 0; i < 200; ++i) log.Append(MakeEvent("u" + std::to_string(i % 7), {"nhs:" + std::to_string(i)}), callbacks.Next());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(log.stats().commits, 0);
  ASSERT_EQ(sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(blocker);
  const auto results = callbacks.WaitFor(200);
  for (const auto& r : results) EXPECT_FALSE(r.error);
  const auto stats = log.stats();
  EXPECT_EQ(stats.events, 200);
  EXPECT_LE(stats.commits, 2);
  EXPECT_GE(stats.largest_batch, 100);
  EXPECT_TRUE(log.Verify().ok);
}

TEST(AuditLog, ConcurrentCallbackAppendersFormOneVerifiableChain) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  constexpr int kThreads = 8, kPerThread = 100;
  Callbacks callbacks;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditEvent e = MakeEvent("user" + std::to_string(t), {"nhs:" + std::to_string(i)});
        e.request_id = std::to_string(t) + "-" + std::to_string(i);
        log.Append(std::move(e), callbacks.Next(std::to_string(t) + "-" + std::to_string(i)));
      }
    });
  for (auto& th : threads) th.join();
  const auto results = callbacks.WaitFor(kThreads * kPerThread);
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kThreads * kPerThread));

  // Every callback got the seq its own event was stored under, and seqs have no gaps.
  std::map<std::int64_t, std::string> by_seq;
  for (const auto& r : results) {
    EXPECT_FALSE(r.error);
    EXPECT_TRUE(by_seq.emplace(r.seq, r.request_id).second) << "seq " << r.seq << " given twice";
  }
  const auto events = log.Query({});
  ASSERT_EQ(events.size(), by_seq.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(events[i].request_id, by_seq[events[i].seq]);
  }
  const VerifyResult r = log.Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, kThreads * kPerThread);
}

TEST(AuditLog, AppendCallbackGetsTheErrorWhenTheLogIsClosed) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  log.Close();
  bool called = false;
  log.Append(MakeEvent("u", {}), [&](std::int64_t seq, const std::exception_ptr& error) {
    called = true;  // at once, on this thread
    EXPECT_EQ(seq, 0);
    ASSERT_TRUE(error);
    try {
      std::rethrow_exception(error);
    } catch (const FatalError& e) {
      EXPECT_EQ(e.problem(), Problem::kUnavailable);
    }
  });
  EXPECT_TRUE(called);
}

TEST(AuditLog, EventsSurviveReopening) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  {
    AuditLog log(path);
    for (int i = 0; i < 5; ++i) log.AppendDurable(MakeEvent("u" + std::to_string(i), {"nhs:1"}));
  }
  {
    AuditLog log(path);
    EXPECT_EQ(log.Query({}).size(), 5u);
    EXPECT_EQ(log.AppendDurable(MakeEvent("later", {"nhs:1"})), 6);
  }
  const VerifyResult r = VerifyAuditTrail(path);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, 6);
  EXPECT_EQ(QueryAuditTrail(path, {}).back().user, "later");
}

TEST(AuditLog, CloseDrainsQueuedAppends) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  std::vector<std::future<std::int64_t>> futures;
  {
    AuditLog log(path);
    for (int i = 0; i < 200; ++i) futures.push_back(log.Append(MakeEvent("u", {"nhs:1"})));
  }  // destructor closes
  std::set<std::int64_t> seqs;
  for (auto& f : futures) seqs.insert(f.get());
  EXPECT_EQ(seqs.size(), 200u);
  EXPECT_EQ(VerifyAuditTrail(path).count, 200);
}

TEST(AuditLog, AppendAfterCloseFails) {
  TempDir dir;
  AuditLog log(dir.file("a.db"));
  log.AppendDurable(MakeEvent("u", {}));
  log.Close();
  log.Close();
  try {
    log.AppendDurable(MakeEvent("u", {}));
    FAIL();
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kUnavailable);
  }
  auto future = log.Append(MakeEvent("u", {}));
  EXPECT_THROW(future.get(), FatalError);
  EXPECT_EQ(log.Query({}).size(), 1u);
}

TEST(AuditLog, FailedCommitFailsTheWaitingAppends) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  AuditLog log(path);
  log.AppendDurable(MakeEvent("u", {"nhs:1"}));
  Tamper(path, "DROP TABLE audit_event_persons");
  try {
    log.AppendDurable(MakeEvent("u", {"nhs:1"}));
    FAIL() << "the append claimed to be durable";
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kIoFailure);
    EXPECT_NE(std::string(e.what()).find("audit_event_persons"), std::string::npos) << e.what();
  }
  auto future = log.Append(MakeEvent("u", {"nhs:1"}));
  EXPECT_THROW(future.get(), FatalError);
  EXPECT_EQ(log.stats().failed_commits, 2);
  EXPECT_EQ(log.stats().events, 1);
}

TEST(AuditLog, TwoLogsOnOneFileKeepOneChain) {
  // E.g. `caregate ingest` running while `caregate serve` has the same database open.
  TempDir dir;
  const std::string path = dir.file("a.db");
  AuditLog a(path), b(path);
  std::thread ta([&] {
    for (int i = 0; i < 50; ++i) a.AppendDurable(MakeEvent("a", {"nhs:1"}));
  });
  std::thread tb([&] {
    for (int i = 0; i < 50; ++i) b.AppendDurable(MakeEvent("b", {"nhs:2"}));
  });
  ta.join();
  tb.join();
  const VerifyResult r = VerifyAuditTrail(path);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, 100);
}

TEST(AuditLog, SharesTheDatabaseWithOtherModules) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  { AuditLog log(path); }
  { AuditLog log(path); }  // migrations are not applied twice
  Tamper(path, "CREATE TABLE persons(id TEXT PRIMARY KEY)");
  AuditLog log(path);
  EXPECT_EQ(log.AppendDurable(MakeEvent("u", {})), 1);
}

// An event recorded in the caller's own transaction (the nightly export's run) commits
// with the caller's change, chains after the log's events and before the next ones, and
// the person and user indexes take it in like an event another process wrote.
TEST(AuditLog, AppendInTransactionJoinsTheChainAndTheIndexes) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  AuditLogOptions small;
  small.person_run_events = 4;  // runs complete within the test, so verify checks them
  small.user_index_events = 4;
  AuditLog log(path, small);
  log.AppendDurable(MakeEvent("u1", {"nhs:1"}));
  log.AppendDurable(MakeEvent("u2", {"nhs:2"}));
  store::Database db(path);
  PrepareAuditTables(db);
  AuditEvent mine = MakeEvent("night-job", {"cis:7", "nhs:2"});
  {
    store::Transaction tx(db);
    db.Exec("CREATE TABLE callers_change(x INTEGER)");
    EXPECT_EQ(AppendInTransaction(db, mine), 3);
    tx.Commit();
  }
  EXPECT_EQ(mine.hash, ComputeAuditHash(mine));
  for (int i = 0; i < 10; ++i) log.AppendDurable(MakeEvent("u3", {"nhs:2"}));
  const VerifyResult r = log.Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, 13);
  const auto events = log.Query({});
  ASSERT_EQ(events.size(), 13u);
  EXPECT_EQ(events[2], mine);
  EXPECT_EQ(events[3].prev_hash, mine.hash);
  AuditQuery by_person;
  by_person.person_id = "cis:7";
  const auto found = log.Query(by_person);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].seq, 3);
  AuditQuery by_user;
  by_user.user = "night-job";
  EXPECT_EQ(log.Query(by_user).size(), 1u);
}

TEST(AuditLog, AppendInTransactionRollsBackWithTheCaller) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  store::Database db(path);
  PrepareAuditTables(db);
  {
    store::Transaction tx(db);
    AuditEvent e = MakeEvent("night-job", {"cis:7"});
    EXPECT_EQ(AppendInTransaction(db, e), 1);
  }  // not committed
  AuditEvent e = MakeEvent("night-job", {"cis:8"});
  {
    store::Transaction tx(db);
    EXPECT_EQ(AppendInTransaction(db, e), 1);  // the same place in the chain
    tx.Commit();
  }
  const VerifyResult r = VerifyAuditTrail(path);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(QueryAuditTrail(path, {}).at(0).person_ids, std::vector<std::string>{"cis:8"});
}

TEST(AuditLog, AppendInTransactionRefusesNoTransactionAndBadTimes) {
  TempDir dir;
  store::Database db(dir.file("a.db"));
  PrepareAuditTables(db);
  AuditEvent e = MakeEvent("night-job", {});
  try {
    AppendInTransaction(db, e);
    FAIL() << "appended outside a transaction";
  } catch (const FatalError& err) {
    EXPECT_EQ(err.problem(), Problem::kInternal);
  }
  store::Transaction tx(db);
  e.time_utc = "yesterday";
  EXPECT_THROW(AppendInTransaction(db, e), FatalError);
  e.time_utc = "2024-05-01T10:00:00+01:00";
  EXPECT_EQ(AppendInTransaction(db, e), 1);
  EXPECT_EQ(e.time_utc, "2024-05-01T09:00:00.000Z");
  tx.Commit();
  EXPECT_TRUE(VerifyAuditTrail(dir.file("a.db")).ok);
}

// The head check a caller makes before work it cannot undo, and AppendInTransaction's own:
// an event added or removed behind the chain's back is named, and nothing is appended.
TEST(AuditLog, CheckAuditHeadNamesADamagedHead) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  store::Database db(path);
  PrepareAuditTables(db);
  EXPECT_EQ(CheckAuditHead(db), "");  // no events yet
  {
    AuditLog log(path);
    log.AppendDurable(MakeEvent("u1", {"nhs:1"}));
    log.AppendDurable(MakeEvent("u2", {"nhs:2"}));
  }
  EXPECT_EQ(CheckAuditHead(db), "");
  Tamper(path, "UPDATE audit_events SET hash = 'x' WHERE seq = 2");
  EXPECT_EQ(CheckAuditHead(db), "the head's hash is not the hash of event 2");
  Tamper(path, "DELETE FROM audit_events WHERE seq = 2");
  EXPECT_EQ(CheckAuditHead(db), "the head names event 2 but the last event is 1");
  store::Transaction tx(db);
  AuditEvent e = MakeEvent("night-job", {});
  try {
    AppendInTransaction(db, e);
    FAIL() << "appended after a damaged head";
  } catch (const FatalError& err) {
    EXPECT_EQ(err.problem(), Problem::kIoFailure);
    EXPECT_NE(std::string(err.what()).find("the audit trail is damaged"), std::string::npos) << err.what();
  }
}

TEST(AuditLog, UnopenableFileIsFatalIoFailure) {
  TempDir dir;
  try {
    AuditLog log(dir.file("no/such/dir/a.db"));
    FAIL();
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kIoFailure);
    EXPECT_NE(std::string(e.what()).find("no/such/dir/a.db"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace caregate::audit
