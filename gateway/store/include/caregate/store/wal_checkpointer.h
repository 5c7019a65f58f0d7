#pragma once
// Moves WAL checkpoints off a busy writer's path.
//
// SQLite checkpoints in the connection whose commit pushed the WAL past 1,000 frames: that
// commit then also copies the frames into the database file and fsyncs it, which stalls
// whoever waits for the commit (the audit writer's callers, for a lookup every one). A
// WalCheckpointer does the bulk of that work on a thread of its own with its own
// connection: it replaces the writer connection's automatic checkpoint with a hook that
// wakes the thread, which copies the WAL back with PASSIVE checkpoints (they never block
// the writer or readers).
//
// The WAL only starts again from its beginning when the writer begins a transaction with
// every frame already copied back; under a steady stream of commits a checkpoint on
// another thread never sees that moment, and the WAL would grow without end. So once the
// thread has caught up, the writer's next commit copies the few frames written since
// (inside its hook, as SQLite's own checkpoint would, but a handful of frames rather than
// a thousand), and its next transaction restarts the WAL. Durability is unchanged: a
// commit is durable once its WAL frames are synced, as before.
//
// A writer whose callers wait for its commits (the audit trail) can instead run that tail
// itself between transactions, once it has released the callers of the commit that found
// the thread caught up (Tail::kByOwner, RunTailIfDue): the ~1-2 ms of the tail (it syncs
// the database file) then delays no commit's callers, only the start of the next batch.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "caregate/store/database.h"

namespace caregate::store {

class WalCheckpointer {
 public:
  // Opens its own connection to `writer`'s file and takes over `writer`'s automatic
  // checkpoints: once a commit leaves at least `frames` frames in the WAL, the thread runs
  // a checkpoint. `writer` must outlive this object (or be closed first: see Stop).
  enum class Tail {
    kInHook,   // the writer's commit hook copies the last frames (any writer)
    kByOwner,  // the owner calls RunTailIfDue between transactions
  };
  explicit WalCheckpointer(Database& writer, int frames = 1000, Tail tail = Tail::kInHook);
  ~WalCheckpointer();  // Stop()
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Hands checkpoints back to `writer` (its automatic checkpoint as it was before), runs a
  // last one and joins the thread. Idempotent. Call it (or destroy this) while no other
  // thread uses `writer`: the connection is not thread-safe.
  void Stop();

  // With Tail::kByOwner, on the writer's thread, outside any transaction: once the thread
  // has caught up, copies the frames written since (so that the writer's next transaction
  // restarts the WAL). Returns whether it did. Cheap when nothing is due.
  // `others_waiting`: the owner has work queued that the tail (~1 ms: it syncs the
  // database file) would delay. The tail then waits for a call without, or for
  // kMaxTailDeferral calls at most (the WAL grows meanwhile; it starts again after the tail).
  bool RunTailIfDue(bool others_waiting = false);
  static constexpr int kMaxTailDeferral = 32;
  // Whether RunTailIfDue has work to do (Tail::kByOwner): an owner can skip finding out
  // whether others are waiting when it has not.
  bool TailDue() const { return tail_ == Tail::kByOwner && tail_due_.load(std::memory_order_acquire); }

  struct Stats {
    std::int64_t checkpoints = 0;       // checkpoints run by the thread
    std::int64_t frames_copied = 0;     // WAL frames they copied into the database
    std::int64_t tail_checkpoints = 0;  // small ones run by the writer's hook after them
    std::int64_t failures = 0;          // checkpoints that returned an error (retried next time)
    std::int64_t largest_wal_frames = 0;  // the most frames a commit left in the WAL
  };
  Stats stats() const;

 private:
  static int Hook(void* self, struct sqlite3* db, const char* schema, int frames);
  void Loop();
  int CheckpointOnce();
  static constexpr int kBusy = -2;        // CheckpointOnce: the lock was held
  static constexpr int kBusyRetries = 50;  // per round, 2 ms apart

  Database& writer_;
  Database own_;
  const int frames_;
  const Tail tail_;
  int writer_autocheckpoint_ = 1000;  // the writer's own setting, restored by Stop
  std::mutex mu_;
  std::condition_variable cv_;
  bool due_ = false;       // guarded by mu_
  bool busy_ = false;      // guarded by mu_: the thread is checkpointing
  std::atomic<bool> tail_due_{false};  // the thread caught up: the writer copies the rest
  int tail_deferred_ = 0;              // owner's thread: RunTailIfDue calls put off
  bool stopping_ = false;  // guarded by mu_
  std::atomic<std::int64_t> checkpoints_{0}, tail_checkpoints_{0}, frames_copied_{0}, failures_{0}, largest_{0};
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace caregate::store
