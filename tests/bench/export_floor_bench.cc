// The export's fixed costs (issue 4): the work any implementation of spec section 7 does
// on a night's extract however fast its own mapping is, each measured alone on one
// thread, at its fastest, with nothing of caregate's pipeline around it:
//
//   BM_FloorReadAndHashInput    read(2) the extract in 1 MiB chunks and SHA-256 it
//                               (the manifest's input hash)
//   BM_FloorParseJson           parse every line with RapidJSON, UTF-8 validated, into a
//                               handler that does nothing (the lines already in memory)
//   BM_FloorWriteAndHashOutputs write a caregate run's output files again, 1 MiB per
//                               O_DIRECT write(2), SHA-256 each (the manifest's output
//                               hashes) and fsync each (the outputs already in memory)
//   BM_FloorDeltaState          one row per record (key, 16-byte content hash) into a
//                               fresh SQLite table in one transaction, WAL,
//                               synchronous=FULL, committed (text keys in order: cheaper
//                               than the export's own table, keyed by hashes, so still a
//                               lower bound)
//
// Every benchmark runs once (Iterations(1)) and counts process CPU time, so the four CPU
// times add up to a lower bound of the core-seconds the export needs before validating,
// mapping or rendering anything. tests/bench/export_bench.sh sets it beside the budget
// that the 6x target leaves on two cores.
//
//   CAREGATE_EXTRACT=extract.ndjson CAREGATE_OUTPUTS=DIR export_floor_bench
//
// DIR is the --out of a `caregate export` of that extract (its systmone-import.xml,
// rejects.ndjson and warehouse/*.csv are written again). The scratch files go beside
// DIR, in DIR.floor, and are removed.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <rapidjson/reader.h>

#include "caregate/core/hash.h"

namespace fs = std::filesystem;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') throw std::runtime_error(std::string("set ") + name);
  return v;
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Extract {
  std::string path;
  std::size_t bytes = 0;
  std::vector<std::string> lines;
};

const Extract& TheExtract() {
  static const Extract e = [] {
    Extract x;
    x.path = Env("CAREGATE_EXTRACT");
    std::ifstream in(x.path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + x.path);
    for (std::string l; std::getline(in, l);) {
      x.bytes += l.size() + 1;
      if (!l.empty()) x.lines.push_back(std::move(l));
    }
    return x;
  }();
  return e;
}

struct Output {
  std::string name;
  std::string bytes;
};

const std::vector<Output>& TheOutputs() {
  static const std::vector<Output> outs = [] {
    const fs::path dir = Env("CAREGATE_OUTPUTS");
    std::vector<Output> v;
    for (const char* f : {"systmone-import.xml", "rejects.ndjson"}) v.push_back({f, Slurp(dir / f)});
    for (const auto& entry : fs::directory_iterator(dir / "warehouse"))
      v.push_back({"warehouse-" + entry.path().filename().string(), Slurp(entry.path())});
    return v;
  }();
  return outs;
}

fs::path Scratch() {
  fs::path p = Env("CAREGATE_OUTPUTS");
  p += ".floor";
  fs::create_directories(p);
  return p;
}

void SetRecords(benchmark::State& state, std::size_t records, std::size_t bytes) {
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["records"] = static_cast<double>(records);
}

void BM_FloorReadAndHashInput(benchmark::State& state) {
  const std::string& path = TheExtract().path;
  std::vector<char> buf(1 << 20);
  std::size_t total = 0;
  for (auto _ : state) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    caregate::Sha256 sha;
    total = 0;
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) {
      sha.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      total += static_cast<std::size_t>(n);
    }
    ::close(fd);
    benchmark::DoNotOptimize(sha.hex_digest());
  }
  SetRecords(state, TheExtract().lines.size(), total);
}

void BM_FloorParseJson(benchmark::State& state) {
  const auto& lines = TheExtract().lines;
  std::string buf;
  std::size_t failed = 0;
  for (auto _ : state) {
    failed = 0;
    for (const std::string& line : lines) {
      buf.assign(line);  // in situ parsing writes into the line, as the export's does
      rapidjson::InsituStringStream stream(buf.data());
      rapidjson::BaseReaderHandler<> nothing;
      rapidjson::Reader reader;
      constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseValidateEncodingFlag |
                                  rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;
      if (reader.Parse<kFlags>(stream, nothing).IsError()) ++failed;
    }
  }
  SetRecords(state, lines.size(), TheExtract().bytes);
  state.counters["malformed"] = static_cast<double>(failed);
}

// Written as the export writes (output_file.cc): O_DIRECT, from 1 MiB aligned blocks,
// the short tail through the page cache. Written through the cache, the same bytes cost
// this machine ~2.5 s of CPU, almost all of it the kernel's (new page-cache pages).
void BM_FloorWriteAndHashOutputs(benchmark::State& state) {
  const auto& outs = TheOutputs();
  const fs::path dir = Scratch();
  constexpr std::size_t kBlock = 1 << 20;
  char* block = static_cast<char*>(std::aligned_alloc(4096, kBlock));
  std::size_t total = 0;
  for (auto _ : state) {
    total = 0;
    for (const Output& o : outs) {
      const std::string path = (dir / o.name).string();
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
      if (fd < 0 && errno == EINVAL)  // a file system without direct I/O (tmpfs): the cache, as the export
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) throw std::runtime_error("cannot create " + path);
      caregate::Sha256 sha;
      std::size_t at = 0;
      for (; o.bytes.size() - at >= kBlock; at += kBlock) {
        std::memcpy(block, o.bytes.data() + at, kBlock);
        sha.update(std::string_view(block, kBlock));
        if (::write(fd, block, kBlock) != static_cast<ssize_t>(kBlock)) throw std::runtime_error("cannot write " + path);
      }
      if (at < o.bytes.size()) {
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0)
          throw std::runtime_error("cannot leave direct I/O on " + path);
        const std::size_t n = o.bytes.size() - at;
        sha.update(std::string_view(o.bytes.data() + at, n));
        if (::write(fd, o.bytes.data() + at, n) != static_cast<ssize_t>(n)) throw std::runtime_error("cannot write " + path);
      }
      if (::fsync(fd) != 0) throw std::runtime_error("cannot fsync " + path);
      ::close(fd);
      benchmark::DoNotOptimize(sha.hex_digest());
      total += o.bytes.size();
    }
    state.PauseTiming();
    fs::remove_all(dir);
    fs::create_directories(dir);
    state.ResumeTiming();
  }
  std::free(block);
  fs::remove_all(dir);
  SetRecords(state, TheExtract().lines.size(), total);
}

void Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error(std::string(sql) + ": " + msg);
  }
}

void BM_FloorDeltaState(benchmark::State& state) {
  const std::size_t records = TheExtract().lines.size();
  const fs::path dir = Scratch();
  const std::string path = (dir / "delta.db").string();
  for (auto _ : state) {
    state.PauseTiming();
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
    state.ResumeTiming();
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
             "CREATE TABLE state(person_key TEXT PRIMARY KEY, content_hash BLOB NOT NULL) WITHOUT ROWID;"
             "BEGIN");
    sqlite3_stmt* insert = nullptr;
    if (sqlite3_prepare_v2(db, "INSERT INTO state VALUES(?1, ?2)", -1, &insert, nullptr) != SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
    char key[32];
    unsigned char hash[16] = {};
    for (std::size_t i = 0; i < records; ++i) {
      const int n = std::snprintf(key, sizeof key, "LCC-%zu", 1000000 + i);  // the extract's ids, in order
      for (int b = 0; b < 16; ++b) hash[b] = static_cast<unsigned char>((i * 2654435761u) >> (b % 4 * 8));
      sqlite3_bind_text(insert, 1, key, n, SQLITE_STATIC);
      sqlite3_bind_blob(insert, 2, hash, sizeof hash, SQLITE_STATIC);
      if (sqlite3_step(insert) != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
      sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    Exec(db, "COMMIT");
    sqlite3_close(db);
  }
  fs::remove_all(dir);
  SetRecords(state, records, 0);
}

}  // namespace

BENCHMARK(BM_FloorReadAndHashInput)->Iterations(1)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FloorParseJson)->Iterations(1)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FloorWriteAndHashOutputs)->Iterations(1)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FloorDeltaState)->Iterations(1)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
