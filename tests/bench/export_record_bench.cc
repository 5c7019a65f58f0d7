// The export's per-record work on one worker thread (gateway/export/src/pipeline.cc):
// parse, validate, map, warehouse rows, content hash and the compact SystmOne fragment,
// over batches of real extract lines. This is ~70% of `caregate export`'s CPU (issue 4),
// so it is the figure to watch when changing any of those stages.
//
//   export_record_bench [--benchmark_...]            512 synthetic records (seed 1)
//   CAREGATE_EXTRACT=x.ndjson export_record_bench     the first 4,096 lines of an extract
//   export_record_bench --batches N                   N batches straight, untimed: a fixed
//     amount of work for `perf stat` (cycles and instructions per record)
//
// items/s = records/s of one worker (threads:1), of two workers side by side, each with
// its own batches and RecordProcessor (threads:2: how the per-record work scales on this
// machine's two cores when nothing else runs).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <fstream>
#include <string>
#include <vector>

#include "caregate/engine/engine.h"
#include "caregate/export/warehouse.h"
#include "caregate/synth/synth.h"
#include "pipeline.h"

using namespace caregate;

namespace {

const engine::Engine& TheEngine() {
  static auto e = engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  return *e;
}

std::vector<std::string> Lines() {
  std::vector<std::string> lines;
  if (const char* path = std::getenv("CAREGATE_EXTRACT")) {
    std::ifstream in(path);
    for (std::string l; lines.size() < 4096 && std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  synth::Generator gen(1, "cis");
  for (std::uint64_t i = 0; i < 512; ++i) {
    std::string out;
    TheEngine().Render(out, gen.Make(i), "cis", false);
    lines.push_back(std::move(out));
  }
  return lines;
}

// Batches of 256 lines, as the pipeline cuts them.
std::vector<exporter::Batch> Batches(const std::vector<std::string>& lines) {
  std::vector<exporter::Batch> batches;
  const std::size_t tables = exporter::WarehouseTables().size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i % 256 == 0) {
      batches.emplace_back();
      batches.back().Reset(tables);
    }
    exporter::Batch& b = batches.back();
    exporter::Batch::LineRef ref;
    ref.offset = static_cast<std::uint32_t>(b.input.size());
    ref.length = static_cast<std::uint32_t>(lines[i].size());
    ref.number = i + 1;
    b.input += lines[i];
    b.lines.push_back(ref);
  }
  return batches;
}

// Clears a batch's outputs, keeps its input, and processes it again.
void ProcessAgain(exporter::RecordProcessor& proc, exporter::Batch& b) {
  b.ClearResults(exporter::WarehouseTables().size());
  proc.Process(b);
}

void BM_ExportWorker(benchmark::State& state) {
  auto batches = Batches(Lines());
  exporter::RecordProcessor proc(TheEngine(), TheEngine().plan().version(), 42);
  std::size_t i = 0, records = 0, bytes = 0;
  for (auto _ : state) {
    exporter::Batch& b = batches[i++ % batches.size()];
    ProcessAgain(proc, b);
    records += b.records.size();
    bytes += b.input.size();
    benchmark::DoNotOptimize(b.s1.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_ExportWorker)->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--batches") {
    auto batches = Batches(Lines());
    exporter::RecordProcessor proc(TheEngine(), TheEngine().plan().version(), 42);
    const std::size_t n = std::stoul(argv[2]);
    std::size_t records = 0;
    for (std::size_t i = 0; i < n; ++i) {
      exporter::Batch& b = batches[i % batches.size()];
      ProcessAgain(proc, b);
      records += b.records.size();
    }
    std::printf("%zu records\n", records);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
