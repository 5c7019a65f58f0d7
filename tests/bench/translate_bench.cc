// Translation speed beside its floor, in one program (issue 3):
//   floor: RapidJSON merely parsing the CIS JSON / libxml2 merely parsing the S1 XML;
//   full:  parse + validate + map + serialise in the other system's format.
// Inputs are 512 synthetic records (caregate synth, seed 1) cycled; items/s = records/s.
#include <benchmark/benchmark.h>
#include <cstdio>
#include <string_view>
#include <libxml/parser.h>
#include <rapidjson/document.h>

#include "caregate/engine/engine.h"
#include "caregate/format/json.h"
#include "caregate/synth/synth.h"

using namespace caregate;

namespace {

const engine::Engine& TheEngine() {
  static auto e = engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  return *e;
}

const std::vector<std::string>& Records(const std::string& format) {
  static std::map<std::string, std::vector<std::string>> cache;
  auto& v = cache[format];
  if (v.empty()) {
    synth::Generator gen(1, format);
    for (std::uint64_t i = 0; i < 512; ++i) {
      std::string out;
      TheEngine().Render(out, gen.Make(i), format, false);
      v.push_back(std::move(out));
    }
  }
  return v;
}

void SetCounters(benchmark::State& state, const std::vector<std::string>& recs) {
  size_t bytes = 0;
  for (const auto& r : recs) bytes += r.size();
  state.SetItemsProcessed(state.iterations());
  state.counters["avg_record_bytes"] = static_cast<double>(bytes) / static_cast<double>(recs.size());
}

void BM_FloorRapidJsonParseCis(benchmark::State& state) {
  const auto& recs = Records("cis");
  size_t i = 0;
  for (auto _ : state) {
    rapidjson::Document d;
    const auto& r = recs[i++ % recs.size()];
    d.Parse<rapidjson::kParseValidateEncodingFlag>(r.data(), r.size());
    benchmark::DoNotOptimize(d.IsObject());
  }
  SetCounters(state, recs);
}
BENCHMARK(BM_FloorRapidJsonParseCis);

void BM_FloorLibxml2ParseSystmOne(benchmark::State& state) {
  const auto& recs = Records("systmone");
  size_t i = 0;
  for (auto _ : state) {
    const auto& r = recs[i++ % recs.size()];
    xmlDocPtr doc = xmlReadMemory(r.data(), static_cast<int>(r.size()), nullptr, "UTF-8", XML_PARSE_NONET);
    benchmark::DoNotOptimize(doc);
    xmlFreeDoc(doc);
  }
  SetCounters(state, recs);
}
BENCHMARK(BM_FloorLibxml2ParseSystmOne);

// Phases of a CIS -> SystmOne translation, to see where the time goes. The tree phases
// are the SystmOne-style path (and CIS before the streaming reader), kept for comparison.
void BM_PhaseParseCisTree(benchmark::State& state) {
  const auto& recs = Records("cis");
  size_t i = 0;
  for (auto _ : state) {
    auto tree = format::ParseJson(recs[i++ % recs.size()]);
    benchmark::DoNotOptimize(tree.ok());
  }
  SetCounters(state, recs);
}
BENCHMARK(BM_PhaseParseCisTree);

// What CIS input costs now: parsed and mapped in one pass (no tree), lineage off.
void BM_PhaseParseAndMapCisStreaming(benchmark::State& state) {
  const auto& recs = Records("cis");
  mapping::RecordReader reader(TheEngine().plan(), "cis");
  size_t i = 0;
  for (auto _ : state) {
    reader.Begin(false);
    auto error = format::ParseJsonEvents(recs[i++ % recs.size()], reader);
    auto rec = reader.Finish();
    benchmark::DoNotOptimize(error.has_value() || rec.ok());
  }
  SetCounters(state, recs);
}
BENCHMARK(BM_PhaseParseAndMapCisStreaming);

// The parser alone, its events going nowhere: the streaming path's own floor.
void BM_PhaseParseCisEventsOnly(benchmark::State& state) {
  struct Null : TreeSink {
    void Open(std::string_view) override {}
    void Close() override {}
    void OpenArray(std::string_view) override {}
    void CloseArray() override {}
    void Value(std::string_view, std::string_view, NodeKind) override {}
  } sink;
  const auto& recs = Records("cis");
  size_t i = 0;
  for (auto _ : state) {
    auto error = format::ParseJsonEvents(recs[i++ % recs.size()], sink);
    benchmark::DoNotOptimize(error.has_value());
  }
  SetCounters(state, recs);
}
BENCHMARK(BM_PhaseParseCisEventsOnly);

void BM_PhaseMapCisTree(benchmark::State& state) {
  const auto& recs = Records("cis");
  std::vector<SourceNode> trees;
  for (const auto& r : recs) trees.push_back(format::ParseJson(r).value());
  size_t i = 0;
  for (auto _ : state) {
    auto rec = TheEngine().plan().Read("cis", trees[i++ % trees.size()]);
    benchmark::DoNotOptimize(rec.ok());
  }
  SetCounters(state, recs);
}
BENCHMARK(BM_PhaseMapCisTree);

void BM_PhaseWriteSystmOne(benchmark::State& state) {
  const auto& recs = Records("cis");
  std::vector<model::CareRecord> cr;
  for (const auto& r : recs) cr.push_back(TheEngine().Read("cis", r).value());
  size_t i = 0;
  std::string out;
  for (auto _ : state) {
    out.clear();
    TheEngine().Render(out, cr[i++ % cr.size()], "systmone", true);
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, recs);
}
BENCHMARK(BM_PhaseWriteSystmOne);

void Translate(benchmark::State& state, const char* from, const char* to) {
  const auto& recs = Records(from);
  const auto& e = TheEngine();
  size_t i = 0;
  std::string out;
  for (auto _ : state) {
    const auto& r = recs[i++ % recs.size()];
    auto rec = e.Read(from, r, std::string_view(to) == "canonical");
    if (!rec.ok()) {
      state.SkipWithError("synthetic record rejected");
      break;
    }
    out.clear();
    e.Render(out, rec.value(), to, true);
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, recs);
}

void BM_TranslateCisToSystmOne(benchmark::State& state) { Translate(state, "cis", "systmone"); }
BENCHMARK(BM_TranslateCisToSystmOne);
void BM_TranslateSystmOneToCis(benchmark::State& state) { Translate(state, "systmone", "cis"); }
BENCHMARK(BM_TranslateSystmOneToCis);
void BM_TranslateCisToCanonical(benchmark::State& state) { Translate(state, "cis", "canonical"); }
BENCHMARK(BM_TranslateCisToCanonical);

}  // namespace

// `translate_bench --translate-only N [FROM TO]` translates N records (default CIS to
// SystmOne) and exits without timing anything: a fixed amount of work for instruction
// counts that do not depend on the machine's load
// (valgrind --tool=cachegrind, then compare two values of N).
int main(int argc, char** argv) {
  if (argc >= 3 && std::string_view(argv[1]) == "--translate-only") {
    const long n = std::stol(argv[2]);
    const std::string from = argc >= 5 ? argv[3] : "cis", to = argc >= 5 ? argv[4] : "systmone";
    const auto& recs = Records(from);
    std::string out;
    std::size_t bytes = 0;
    for (long i = 0; i < n; ++i) {
      auto rec = TheEngine().Read(from, recs[static_cast<std::size_t>(i) % recs.size()], to == "canonical");
      if (!rec.ok()) return 1;
      out.clear();
      TheEngine().Render(out, rec.value(), to, true);
      bytes += out.size();
    }
    std::printf("%ld records translated %s -> %s, %zu bytes out\n", n, from.c_str(), to.c_str(), bytes);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
