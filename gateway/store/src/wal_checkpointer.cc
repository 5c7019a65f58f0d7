#include "caregate/store/wal_checkpointer.h"

#include <chrono>

#include <sqlite3.h>

#include <pthread.h>

#include <cstdio>

namespace caregate::store {

WalCheckpointer::WalCheckpointer(Database& writer, int frames, Tail tail)
    : writer_(writer),
      own_(writer.path(), OpenOptions{.create = false}),
      frames_(frames < 1 ? 1 : frames),
      tail_(tail),
      thread_([this] { Loop(); }) {
  {
    auto s = writer_.Prepare("PRAGMA wal_autocheckpoint");
    if (s.Step()) writer_autocheckpoint_ = static_cast<int>(s.ColumnInt64(0));
  }
  // Replaces the automatic checkpoint (itself a WAL hook) on the writer's connection.
  sqlite3_wal_hook(writer_.handle(), &WalCheckpointer::Hook, this);
}

WalCheckpointer::~WalCheckpointer() { Stop(); }

void WalCheckpointer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (writer_.handle()) sqlite3_wal_autocheckpoint(writer_.handle(), writer_autocheckpoint_);
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

// Runs on the writer's thread, inside its COMMIT, after the frames are written.
int WalCheckpointer::Hook(void* self, sqlite3* db, const char*, int frames) {
  auto* c = static_cast<WalCheckpointer*>(self);
  std::int64_t largest = c->largest_.load(std::memory_order_relaxed);
  while (frames > largest && !c->largest_.compare_exchange_weak(largest, frames)) {
  }
  if (c->tail_ == Tail::kInHook && c->tail_due_.exchange(false, std::memory_order_acq_rel)) {
    // The thread has copied all but the last few commits: copy those here, so that the
    // writer's next transaction finds the WAL fully copied back and starts it again.
    int log = 0, copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) == SQLITE_OK)
      c->tail_checkpoints_.fetch_add(1, std::memory_order_relaxed);
    return SQLITE_OK;
  }
  if (frames >= c->frames_) {
    bool wake = false;
    {
      std::lock_guard lock(c->mu_);
      wake = !c->due_ && !c->busy_;
      if (wake) c->due_ = true;
    }
    if (wake) c->cv_.notify_one();
  }
  return SQLITE_OK;
}

bool WalCheckpointer::RunTailIfDue(bool others_waiting) {
  if (tail_ != Tail::kByOwner || !tail_due_.load(std::memory_order_acquire)) return false;
  if (others_waiting && ++tail_deferred_ < kMaxTailDeferral) return false;
  tail_deferred_ = 0;
  if (!tail_due_.exchange(false, std::memory_order_acq_rel)) return false;
  int log = 0, copied = 0;
  if (sqlite3_wal_checkpoint_v2(writer_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) != SQLITE_OK) {
    tail_due_.store(true, std::memory_order_release);  // busy (the thread is checkpointing): next time
    return false;
  }
  tail_checkpoints_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void WalCheckpointer::Loop() {
  pthread_setname_np(pthread_self(), "caregate-ckpt");  // for top -H, perf and gdb
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return due_ || stopping_; });
      if (stopping_) break;
      due_ = false;
      busy_ = true;
    }
    // Copy back until what is left is small (each pass copies what the writer added
    // during the one before), then leave the rest to the writer's next commit.
    int left = 0;
    int busy = 0;  // retries this round
    for (int pass = 0; pass < 4; ++pass) {
      left = CheckpointOnce();
      // SQLITE_BUSY: another connection holds the checkpoint lock for a moment (one that
      // is opening, or checkpointing itself). Try again shortly rather than wait for the
      // next commit's hook, which may never come if the writer has gone quiet.
      while (left == kBusy && busy++ < kBusyRetries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        left = CheckpointOnce();
      }
      if (left < 0 || left <= frames_ / 8) break;
    }
    if (left >= 0) tail_due_.store(true, std::memory_order_release);
    std::lock_guard lock(mu_);
    busy_ = false;
  }
  CheckpointOnce();  // whatever the last commits left
}

// Returns the frames left uncopied (another connection wrote them meanwhile, or a reader
// still needs them), kBusy when another connection held the checkpoint lock, or -1 when
// the checkpoint failed.
int WalCheckpointer::CheckpointOnce() {
  int log = 0, copied = 0;
  const int rc = sqlite3_wal_checkpoint_v2(own_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  if (rc == SQLITE_OK) {
    checkpoints_.fetch_add(1, std::memory_order_relaxed);
    if (copied > 0) frames_copied_.fetch_add(copied, std::memory_order_relaxed);
    return log - copied;
  }
  if ((rc & 0xff) == SQLITE_BUSY) return kBusy;  // another checkpoint, or a connection opening
  failures_.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr, "caregate: WAL checkpoint of %s failed: %s\n", own_.path().c_str(),
               sqlite3_errmsg(own_.handle()));
  return -1;
}

WalCheckpointer::Stats WalCheckpointer::stats() const {
  return Stats{checkpoints_.load(), frames_copied_.load(), tail_checkpoints_.load(), failures_.load(),
               largest_.load()};
}

}  // namespace caregate::store
