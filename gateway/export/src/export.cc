#include "caregate/export/export.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "caregate/audit/audit_event.h"
#include "caregate/core/hash.h"
#include "caregate/core/text.h"
#include "caregate/export/warehouse.h"
#include "caregate/format/json.h"
#include "caregate/mapping/values.h"
#include "caregate/store/database.h"
#include "delta_state.h"
#include "extract_reader.h"
#include "output_file.h"
#include "pipeline.h"

namespace caregate::exporter {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kS1File = "systmone-import.xml";
constexpr const char* kRejectsFile = "rejects.ndjson";
constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kWarehouseDir = "warehouse";

std::string UtcNow() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

std::string LocalToday() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

void KillPoint(const char* point) {
  const char* at = std::getenv("CAREGATE_EXPORT_TEST_KILL_AT");
  if (at && std::strcmp(at, point) == 0) std::raise(SIGKILL);
}

// Serialises exports sharing a database: two at once would race on the delta state
// (and on the partial files when they share --out too). An advisory lock on a file
// beside the database; the kernel drops it when the process dies, however it dies.
class RunLock {
 public:
  explicit RunLock(const std::string& db_path) {
    std::string path = db_path + "-export.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw FatalError(Problem::kIoFailure, path + ": cannot create the export lock: " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw FatalError(Problem::kIoFailure, db_path + ": another caregate export is running on this database");
    }
  }
  ~RunLock() { ::close(fd_); }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

void MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw FatalError(Problem::kIoFailure, dir + ": cannot create the output directory" +
                                              (ec ? ": " + ec.message() : std::string()));
}

std::string ReadWholeFile(const std::string& path, bool& exists) {
  std::ifstream in(path, std::ios::binary);
  exists = static_cast<bool>(in);
  if (!exists) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void RemoveStalePartials(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() > 9 && name[0] == '.' && name.ends_with(".partial")) fs::remove(e.path(), ec);
  }
}

struct OutputEntry {
  std::string file;  // relative to the output directory
  std::uint64_t bytes = 0;
  std::string sha256;
};

void JsonString(std::string& o, std::string_view s) {
  o += '"';
  AppendJsonEscaped(o, s);
  o += '"';
}

std::string BuildManifest(const ExportOptions& options, const std::string& run_date, const std::string& input_sha,
                          std::uint64_t input_bytes, const std::string& mapping_version,
                          const std::optional<RunRecord>& base, const ExportCounts& c,
                          const std::vector<OutputEntry>& outputs, const std::string& started_at,
                          const std::string& finished_at) {
  std::string o = "{\n  \"format\": \"caregate-export-manifest/1\",\n  \"run_date\": ";
  JsonString(o, run_date);
  o += ",\n  \"full\": ";
  o += options.full ? "true" : "false";
  o += ",\n  \"input\": {\"file\": ";
  JsonString(o, options.input);
  o += ", \"bytes\": " + std::to_string(input_bytes) + ", \"sha256\": ";
  JsonString(o, input_sha);
  o += "},\n  \"mapping_tables_version\": ";
  JsonString(o, mapping_version);
  o += ",\n  \"delta_base\": ";
  if (base) {
    o += "{\"run_date\": ";
    JsonString(o, base->run_date);
    o += ", \"input_sha256\": ";
    JsonString(o, base->input_sha256);
    o += "}";
  } else {
    o += "null";
  }
  o += ",\n  \"counts\": {\"read\": " + std::to_string(c.read) + ", \"exported\": " + std::to_string(c.exported) +
       ", \"unchanged\": " + std::to_string(c.unchanged) + ", \"rejected\": " + std::to_string(c.rejected) +
       ", \"withheld\": " + std::to_string(c.withheld) + "},\n  \"outputs\": [";
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    o += i ? ",\n    " : "\n    ";
    o += "{\"file\": ";
    JsonString(o, outputs[i].file);
    o += ", \"bytes\": " + std::to_string(outputs[i].bytes) + ", \"sha256\": ";
    JsonString(o, outputs[i].sha256);
    o += "}";
  }
  o += "\n  ],\n  \"started_at\": ";
  JsonString(o, started_at);
  o += ",\n  \"finished_at\": ";
  JsonString(o, finished_at);
  o += "\n}\n";
  return o;
}

// The outputs a stored manifest lists: (file, sha256).
std::vector<OutputEntry> ManifestOutputs(const std::string& manifest) {
  std::vector<OutputEntry> out;
  auto doc = format::ParseJson(manifest);
  if (!doc) return out;
  const SourceNode* outputs = doc->child("outputs");
  if (!outputs) return out;
  for (const auto& item : outputs->children) {
    const SourceNode* f = item.child("file");
    const SourceNode* h = item.child("sha256");
    if (f && h) out.push_back({f->value, 0, h->value});
  }
  return out;
}

std::string Thousands(std::uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

class Progress {
 public:
  Progress(const ExportOptions& o, std::uint64_t total_bytes)
      : on_(o.progress), out_(o.progress_stream), total_(total_bytes), start_(Clock::now()), last_(start_) {}
  void Update(const ExportCounts& c, std::uint64_t consumed) {
    if (!on_) return;
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(c.read) / secs : 0;
    std::string line = "\r\033[Kcaregate export: " + Thousands(c.read) + " records, " +
                       Thousands(static_cast<std::uint64_t>(rate)) + "/s | exported " + Thousands(c.exported) +
                       ", unchanged " + Thousands(c.unchanged) + ", rejected " + Thousands(c.rejected) +
                       ", withheld " + Thousands(c.withheld);
    if (total_ > 0 && consumed > 0) {
      double frac = static_cast<double>(consumed) / static_cast<double>(total_);
      long eta = static_cast<long>(secs / frac - secs + 0.5);
      line += " | " + std::to_string(static_cast<int>(frac * 100)) + "%, ETA " + std::to_string(eta / 60) + ":" +
              (eta % 60 < 10 ? "0" : "") + std::to_string(eta % 60);
    }
    std::fputs(line.c_str(), out_);
    std::fflush(out_);
    drawn_ = true;
  }
  void Clear() {
    if (drawn_) {
      std::fputs("\r\033[K", out_);
      std::fflush(out_);
    }
    drawn_ = false;
  }

 private:
  bool on_;
  std::FILE* out_;
  std::uint64_t total_;
  Clock::time_point start_, last_;
  bool drawn_ = false;
};

// A run that completed before: leave everything as it is, except a manifest.json that
// the kill took before it could be written (the database keeps a copy).
ExportResult FinishCompleted(const RunRecord& run, const std::string& out_abs, const std::string& db_path,
                             Clock::time_point t0) {
  ExportResult result;
  result.outcome = ExportResult::Outcome::kAlreadyCompleted;
  result.counts = {run.read, run.exported, run.unchanged, run.rejected, run.withheld};
  result.run_date = run.run_date;
  result.input_sha256 = run.input_sha256;
  result.out_dir = run.out_dir;
  result.db_path = db_path;
  result.finished_at = run.finished_at;
  if (run.out_dir != out_abs)
    throw FatalError(Problem::kIoFailure,
                     "this extract (sha256 " + run.input_sha256.substr(0, 12) + "...) was already exported for run "
                     "date " + run.run_date + " into " + run.out_dir + " (completed " + run.finished_at +
                     "); nothing to do: export again with --full to write everything into " + out_abs);
  std::string manifest_path = (fs::path(out_abs) / kManifestFile).string();
  bool exists = false;
  std::string current = ReadWholeFile(manifest_path, exists);
  if (!exists || current != run.manifest) {
    for (const auto& o : ManifestOutputs(run.manifest)) {
      std::string path = (fs::path(out_abs) / o.file).string();
      std::error_code ec;
      if (!fs::exists(path, ec) || Sha256File(path) != o.sha256)
        throw FatalError(Problem::kIoFailure,
                         path + ": run " + run.run_date + " completed at " + run.finished_at +
                             ", but this output is missing or altered and cannot be rebuilt (the delta state has "
                             "moved on); export again with --full");
    }
    WriteFileAtomically(manifest_path, run.manifest);
    result.outcome = ExportResult::Outcome::kManifestRestored;
  }
  RemoveStalePartials(out_abs);
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

// The run in the audit trail (docs/export.md, "The audit trail"): who ran it, what went
// to SystmOne, and the manifest's SHA-256, which ties the event to the exact files. No
// person ids: the run's own files list the people (warehouse/persons.csv).
// `linked`: records written with a SystmOne id filled in from the store (an IG officer
// can see how many went out so).
audit::AuditEvent RunAuditEvent(const ExportOptions& options, const RunRecord& run, std::uint64_t linked) {
  audit::AuditEvent e;
  e.user = options.user.empty() ? "caregate-export" : options.user;
  e.role = "service";
  e.organisation = "caregate";
  e.action = "export";
  e.view = "systmone";
  e.outcome = "completed";
  e.detail = "caregate export, run date " + run.run_date + (run.full ? " (--full)" : "") + ": read " +
             std::to_string(run.read) + ", exported " + std::to_string(run.exported) + ", unchanged " +
             std::to_string(run.unchanged) + ", rejected " + std::to_string(run.rejected) + ", withheld " +
             std::to_string(run.withheld) + "; SystmOne ids filled in from the store " + std::to_string(linked) +
             "; input SHA-256 " + run.input_sha256 + "; manifest SHA-256 " +
             Sha256Hex(run.manifest) + "; outputs in " + run.out_dir;
  return e;
}

}  // namespace

std::string DefaultDatabasePath() {
  if (const char* env = std::getenv("CAREGATE_DB"); env && *env) return env;
  return "caregate.db";
}

std::string SummaryLine(const ExportResult& r) {
  const auto& c = r.counts;
  std::string counts = "read " + std::to_string(c.read) + ", exported " + std::to_string(c.exported) +
                       ", unchanged " + std::to_string(c.unchanged) + ", rejected " + std::to_string(c.rejected) +
                       ", withheld " + std::to_string(c.withheld);
  switch (r.outcome) {
    case ExportResult::Outcome::kAlreadyCompleted:
      return "caregate export: run " + r.run_date + " already completed at " + r.finished_at +
             "; nothing changed (" + counts + "; outputs in " + r.out_dir + ")";
    case ExportResult::Outcome::kManifestRestored:
      return "caregate export: run " + r.run_date + " already completed at " + r.finished_at +
             "; manifest.json restored from " + r.db_path + " (" + counts + "; outputs in " + r.out_dir + ")";
    case ExportResult::Outcome::kCompleted: break;
  }
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f s, %s records/s", r.seconds,
                Thousands(static_cast<std::uint64_t>(r.seconds > 0 ? static_cast<double>(c.read) / r.seconds : 0))
                    .c_str());
  return "caregate export: run " + r.run_date + " completed: " + counts + " in " + rate + "; outputs in " +
         r.out_dir + ", state in " + r.db_path;
}

ExportResult RunExport(const engine::Engine& engine, const ExportOptions& options) {
  const auto t0 = Clock::now();
  const std::string started_at = UtcNow();
  if (options.input.empty()) throw FatalError(Problem::kUsage, "--in EXTRACT.ndjson is required");
  if (options.out_dir.empty()) throw FatalError(Problem::kUsage, "--out DIR is required");
  const std::string run_date = options.run_date.empty() ? LocalToday() : options.run_date;
  if (auto e = mapping::CheckDate(run_date); !e.empty())
    throw FatalError(Problem::kUsage, "--run-date " + run_date + ": " + e);
  const std::string db_path = options.db_path.empty() ? DefaultDatabasePath() : options.db_path;

  // The extract first: an unreadable input stops the run before anything is touched.
  ExtractReader reader(options.input, format::JsonLimits{}.max_bytes);
  MakeDirs(options.out_dir);
  std::error_code ec;
  const std::string out_abs = fs::weakly_canonical(fs::absolute(options.out_dir), ec).string();
  const std::string warehouse_dir = (fs::path(out_abs) / kWarehouseDir).string();

  RunLock lock(db_path);
  std::unique_ptr<DeltaState> state;
  try {
    state = std::make_unique<DeltaState>(db_path);
  } catch (const store::DatabaseError& e) {
    throw FatalError(Problem::kIoFailure, e.what());
  }
  const std::string& mapping_version = engine.plan().version();

  // The same run, completed before? (Hashing the extract costs a pass over it, so only
  // when a completed run matches on everything cheaper first.) A pipe can be read only
  // once: it is checked after the run has read it (below).
  if (reader.regular_file()) {
    auto candidates = state->Candidates(run_date, options.full, mapping_version, reader.size());
    if (!candidates.empty()) {
      std::string sha = Sha256File(options.input);
      for (const auto& c : candidates)
        if (c.input_sha256 == sha) return FinishCompleted(c, out_abs, db_path, t0);
    }
  }

  // A new run. It will record itself in the audit trail as it completes (docs/export.md,
  // "The audit trail"): a trail that cannot take the event stops the run before it
  // writes anything, rather than after it has published the night's files.
  if (std::string problem = state->AuditHeadProblem(); !problem.empty())
    throw FatalError(Problem::kIoFailure, db_path + ": the audit trail is damaged: " + problem +
                                              "; the export records each run there, so it stops before writing "
                                              "anything (caregate audit verify --db " + db_path + " tells more)");
  MakeDirs(warehouse_dir);
  RemoveStalePartials(out_abs);
  RemoveStalePartials(warehouse_dir);
  std::optional<RunRecord> base = options.full ? std::nullopt : state->LastCompleted();
  state->BeginRun();
  const auto& tables = WarehouseTables();
  OutputFile s1((fs::path(out_abs) / kS1File).string());
  std::vector<std::unique_ptr<OutputFile>> csv;
  for (const auto& t : tables) {
    csv.push_back(std::make_unique<OutputFile>((fs::path(warehouse_dir) / t.file()).string()));
    csv.back()->Append(t.header);
  }
  OutputFile rejects((fs::path(out_abs) / kRejectsFile).string());
  const adapters::Adapter& s1_adapter = engine.adapter("systmone");
  s1.Append(s1_adapter.BatchBegin());

  ExportCounts counts;
  std::uint64_t linked = 0;  // written with a SystmOne id from the store's links
  Progress progress(options, reader.size());
  std::uint64_t kill_after = 0;
  if (const char* k = std::getenv("CAREGATE_EXPORT_TEST_KILL_AFTER")) kill_after = std::strtoull(k, nullptr, 10);

  PipelineOptions popt;
  popt.workers = options.workers > 0 ? options.workers
                                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Batches in flight (about 1.5 MB each at 256 lines): enough that the workers keep
  // going while the writer waits on writeback or flushes the delta state's staged rows
  // (tens of milliseconds at times). With 3 per worker, the 1M-record run left the two
  // cores idle for ~5.2 core-seconds; with 8, ~2.7 (2 runs each), for 18 MiB more peak RSS.
  popt.pool = static_cast<std::size_t>(popt.workers) * 8 + 2;
  // Workers may recognise unchanged lines only when there is a previous state to match.
  if (base) popt.state_db = db_path;
  popt.hash_seed = state->hash_seed();
  // Spec 5: a record without a SystmOne id gets the one the store links to it.
  // Each worker looks the links up on a connection of its own (LinkReader).
  if (state->links_known())
    popt.make_links = [st = state.get(), db_path]() -> IdentityLookup {
      auto links = std::make_shared<LinkReader>(db_path, *st);
      return [links](std::string_view cis_id, std::string_view nhs_number) {
        return links->LinkedSystmOneId(cis_id, nhs_number);
      };
    };

  // Each output receives the records' slices of a batch buffer; consecutive ones (most
  // of a batch, on a first night) are handed over as one piece, which the file writes
  // without copying it into its own buffer first. Flushed at the end of every batch,
  // before the batch's buffers are reused.
  class SliceRun {
   public:
    explicit SliceRun(OutputFile& f) : f_(&f) {}
    void Add(std::string_view s) {
      if (s.empty()) return;
      if (s.data() == end_) {
        end_ += s.size();
        return;
      }
      Flush();
      begin_ = s.data();
      end_ = s.data() + s.size();
    }
    void Flush() {
      if (begin_ != end_) f_->Append(std::string_view(begin_, static_cast<std::size_t>(end_ - begin_)));
      begin_ = end_ = nullptr;
    }

   private:
    OutputFile* f_;
    const char* begin_ = nullptr;
    const char* end_ = nullptr;
  };
  SliceRun s1_run(s1), rejects_run(rejects);
  std::vector<SliceRun> csv_runs;
  for (auto& f : csv) csv_runs.emplace_back(*f);
  auto flush_runs = [&] {
    s1_run.Flush();
    rejects_run.Flush();
    for (auto& r : csv_runs) r.Flush();
  };

  // One record, in input order: the delta decides, the outputs receive its slices.
  const std::size_t n = tables.size();
  auto handle = [&](const Batch& b, std::size_t i) {
    const RecordOut& r = b.records[i];
    if (r.rejected) {
      ++counts.rejected;
      rejects_run.Add(b.Slice(b.rejects, b.reject_end, i));
      return;
    }
    DeltaState::Seen seen = state->Lookup(r.key, r.hash, r.line_hash);
    if (seen.found && seen.same_content && !options.full) {
      ++counts.unchanged;
      // Remember tonight's line, so tomorrow an identical one needs no parsing.
      if (!seen.same_line) state->Stage(r.key, b.Slice(b.keys, b.key_end, i), r.hash, r.line_hash);
      return;
    }
    if (!(seen.found && seen.same_content && seen.same_line))
      state->Stage(r.key, b.Slice(b.keys, b.key_end, i), r.hash, r.line_hash);
    for (std::size_t t = 0; t < n; ++t) csv_runs[t].Add(b.Slice(b.csv[t].view(), b.csv_end, i, n, t));
    if (r.linked) ++linked;
    if (r.withheld) {
      ++counts.withheld;
    } else {
      ++counts.exported;
      s1_run.Add(b.Slice(b.s1.view(), b.s1_end, i));
    }
  };
  // A line the worker found identical to the stored one, for a person this run has
  // already met: the comparison must be with what was staged, so it is processed in full.
  RecordProcessor full_processor(engine, mapping_version, state->hash_seed(), {},
                                 popt.make_links ? popt.make_links() : IdentityLookup{});
  Batch scratch;
  auto reprocess = [&](const Batch& b, const RecordOut& r) {
    // The scratch record's slices are never joined to a slice of another buffer (two
    // allocations may happen to be adjacent in memory): flushed before and after.
    flush_runs();
    scratch.Reset(n);
    scratch.input.assign(b.input, r.text_offset, r.text_length);
    scratch.lines.push_back({0, r.text_length, r.line, false});
    full_processor.ProcessLine(scratch, scratch.lines[0]);
    handle(scratch, 0);
    flush_runs();
  };
  try {
    RunPipeline(engine, mapping_version, reader, popt, [&](const Batch& b) {
      for (std::size_t i = 0; i < b.records.size(); ++i) {
        const RecordOut& r = b.records[i];
        ++counts.read;
        if (kill_after && counts.read > kill_after) std::raise(SIGKILL);
        if (r.line_unchanged) {
          if (state->Staged(r.key)) reprocess(b, r);
          else ++counts.unchanged;
          continue;
        }
        handle(b, i);
      }
      flush_runs();
      progress.Update(counts, b.input_consumed);
    });
  } catch (const store::DatabaseError& e) {
    progress.Clear();
    throw FatalError(Problem::kIoFailure, e.what());
  } catch (...) {
    progress.Clear();
    throw;
  }
  progress.Clear();
  s1.Append(s1_adapter.BatchEnd());
  const std::string input_sha = reader.Sha256Hex();

  // A piped extract that a completed run already exported: now that it has been read
  // and hashed, this run's files are dropped unpublished and nothing is committed, so the
  // rerun changes nothing (rather than publishing an empty delta over the night's files).
  if (!reader.regular_file()) {
    for (const auto& c : state->Candidates(run_date, options.full, mapping_version, reader.consumed()))
      if (c.input_sha256 == input_sha) {
        s1.Discard();
        for (auto& f : csv) f->Discard();
        rejects.Discard();
        state.reset();  // the staged rows and the read snapshot go with it
        return FinishCompleted(c, out_abs, db_path, t0);
      }
  }

  // Durable under temporary names first.
  std::vector<OutputFile*> files;
  files.push_back(&s1);
  for (auto& f : csv) files.push_back(f.get());
  files.push_back(&rejects);
  for (OutputFile* f : files) f->Finish();
  KillPoint("finished");

  // Publish: the old manifest goes first, so no manifest ever lists files it did not
  // describe; then every data file is renamed into place.
  const std::string manifest_path = (fs::path(out_abs) / kManifestFile).string();
  if (::unlink(manifest_path.c_str()) != 0 && errno != ENOENT)
    throw FatalError(Problem::kIoFailure, manifest_path + ": cannot remove the previous manifest: " +
                                              std::strerror(errno));
  SyncDirectory(out_abs);
  for (OutputFile* f : files) f->Publish();
  SyncDirectory(warehouse_dir);
  SyncDirectory(out_abs);
  KillPoint("published");

  std::vector<OutputEntry> entries;
  for (OutputFile* f : files)
    entries.push_back({fs::relative(f->final_path(), out_abs).generic_string(), f->bytes(), f->sha256()});
  const std::string finished_at = UtcNow();
  std::string manifest = BuildManifest(options, run_date, input_sha, reader.consumed(), mapping_version, base,
                                       counts, entries, started_at, finished_at);
  RunRecord run;
  run.run_date = run_date;
  run.input_sha256 = input_sha;
  run.input_bytes = reader.consumed();
  run.full = options.full;
  run.mapping_version = mapping_version;
  run.out_dir = out_abs;
  run.started_at = started_at;
  run.finished_at = finished_at;
  run.manifest = manifest;
  run.read = counts.read;
  run.exported = counts.exported;
  run.unchanged = counts.unchanged;
  run.rejected = counts.rejected;
  run.withheld = counts.withheld;
  try {
    state->Complete(run, RunAuditEvent(options, run, linked));
  } catch (const store::DatabaseError& e) {
    throw FatalError(Problem::kIoFailure, e.what());
  }
  KillPoint("committed");
  WriteFileAtomically(manifest_path, manifest);

  ExportResult result;
  result.counts = counts;
  result.run_date = run_date;
  result.input_sha256 = input_sha;
  result.out_dir = out_abs;
  result.db_path = db_path;
  result.finished_at = finished_at;
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (base && base->input_sha256 == input_sha && base->mapping_version == mapping_version &&
      base->run_date != run_date && base->out_dir == out_abs)
    result.same_extract_as = base->run_date;
  return result;
}

std::string SameExtractWarning(const ExportResult& r) {
  if (r.same_extract_as.empty()) return {};
  return "caregate export: warning: the extract is byte for byte run " + r.same_extract_as +
         "'s, so run " + r.run_date + " found nothing changed and its files replace that run's in " + r.out_dir +
         "; if this was a retry of " + r.same_extract_as + " and SystmOne had not taken its files, send everything "
         "again with --full (a nightly job passes --run-date, so that a retry repeats its night: docs/export.md, "
         "\"Defaults\")";
}

}  // namespace caregate::exporter
