// Appends/s through AuditLog::AppendDurable: every append waits until its transaction
// has committed (WAL, synchronous=FULL, so an fsync), exactly as the server does before
// it answers. With 64 threads group commit shares each fsync among the waiting events.
//
//   build/release/tests/bench/audit_append_bench [--benchmark_min_time=2]
//   CAREGATE_BENCH_DIR=/some/disk ... to measure a different file system than $TMPDIR.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "caregate/audit/audit_log.h"

namespace {

namespace fs = std::filesystem;
using caregate::audit::AuditEvent;
using caregate::audit::AuditLog;

std::unique_ptr<AuditLog> g_log;
fs::path g_dir;

fs::path BenchDir() {
  static int run = 0;
  const char* base = std::getenv("CAREGATE_BENCH_DIR");
  return fs::path(base ? base : fs::temp_directory_path().string()) /
         ("caregate-audit-bench-" + std::to_string(::getpid()) + "-" + std::to_string(run++));
}

AuditEvent TypicalEvent(int thread) {
  AuditEvent e;
  e.user = "user-" + std::to_string(thread);
  e.role = "health";
  e.organisation = "Leeds Community Healthcare";
  e.action = "read";
  e.person_ids = {"nhs:9912003888", "s1:1234567890", "cis:LA-000123"};
  e.view = "systmone";
  e.outcome = "200";
  e.request_id = "5f0c9a1e-7b7d-4a53-9d3e-2f1c0d7a9b11";
  e.detail = "GET /v1/persons/nhs:9912003888?view=systmone";
  return e;
}

void BM_AuditAppendDurable(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_dir = BenchDir();
    fs::create_directories(g_dir);
    g_log = std::make_unique<AuditLog>((g_dir / "audit.db").string());
  }
  AuditEvent event = TypicalEvent(state.thread_index());
  // A different person each time, as in real traffic: the person index is written at
  // random places rather than always on the same page.
  std::int64_t person = 1000000 * (state.thread_index() + 1);
  for (auto _ : state) {
    event.person_ids[0] = "nhs:" + std::to_string(++person);
    benchmark::DoNotOptimize(g_log->AppendDurable(event));
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    const auto stats = g_log->stats();
    g_log.reset();
    state.counters["events_per_commit"] =
        stats.commits ? static_cast<double>(stats.events) / static_cast<double>(stats.commits) : 0;
    state.counters["largest_batch"] = static_cast<double>(stats.largest_batch);
    if (stats.commits) {
      const double commits = static_cast<double>(stats.commits);
      state.counters["insert_us_per_batch"] = static_cast<double>(stats.insert_us) / commits;
      state.counters["commit_us_per_batch"] = static_cast<double>(stats.commit_us) / commits;
    }
    std::error_code ec;
    fs::remove_all(g_dir, ec);
  }
}
BENCHMARK(BM_AuditAppendDurable)->Threads(1)->Threads(64)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
