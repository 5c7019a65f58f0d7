#pragma once
// `caregate export`: the nightly CIS extract (NDJSON) in; a SystmOne import file,
// warehouse tables, rejects and a manifest out (spec section 7; docs/export.md).
//
// Outputs are a deterministic function of the extract, the run date, the mapping
// tables and the delta state before the run. Every data file is written under a
// temporary name, fsynced and renamed; the delta state and the run's completion are
// committed together; manifest.json is written last. A run killed at any moment and
// started again with the same arguments ends with the same bytes; a completed run
// started again changes nothing.
#include <cstdint>
#include <cstdio>
#include <string>

#include "caregate/engine/engine.h"

namespace caregate::exporter {

struct ExportOptions {
  std::string input;     // --in: the NDJSON extract
  std::string out_dir;   // --out
  std::string db_path;   // --db; empty: DefaultDatabasePath()
  std::string run_date;  // --run-date YYYY-MM-DD; empty: today's local date
  bool full = false;     // --full: export every valid record, changed or not
  int workers = 0;       // parse/map threads; 0: one per core
  std::string user;      // who ran the export, for its audit event; empty: "caregate-export"
  bool progress = false;            // draw a progress line on `progress_stream`
  std::FILE* progress_stream = stderr;
};

struct ExportCounts {
  std::uint64_t read = 0;       // non-blank lines
  std::uint64_t exported = 0;   // in systmone-import.xml (and the warehouse)
  std::uint64_t unchanged = 0;  // same content as at the last completed run: in no output
  std::uint64_t rejected = 0;   // in rejects.ndjson
  std::uint64_t withheld = 0;   // Consent_To_Share = No: warehouse only
};

struct ExportResult {
  enum class Outcome {
    kCompleted,         // this invocation ran the export
    kAlreadyCompleted,  // the same run had completed before: nothing was touched
    kManifestRestored,  // it had completed, but manifest.json was missing: restored from the database
  };
  Outcome outcome = Outcome::kCompleted;
  ExportCounts counts;
  std::string run_date, input_sha256, out_dir, db_path, finished_at;
  double seconds = 0;
  // The run date of the completed run this one was compared with, when that run's
  // extract was byte for byte this one and its files were in the same --out: a new night
  // with nothing changed, or a retry of that night under another run date, whose empty
  // delta has just replaced its files (docs/export.md, "Defaults"). Empty otherwise.
  std::string same_extract_as;
};

// The warning `caregate export` prints for `same_extract_as`; "" when there is none.
std::string SameExtractWarning(const ExportResult& result);

// Throws FatalError: kUsage for bad arguments, kIoFailure for an unreadable extract,
// a full disk or a database failure, kMappingTables from the engine. On a throw the
// delta state and the previous run's files are as they were.
ExportResult RunExport(const engine::Engine& engine, const ExportOptions& options);

// $CAREGATE_DB when set, else "caregate.db" in the current directory.
std::string DefaultDatabasePath();

// The one-line summary printed at the end of every run.
std::string SummaryLine(const ExportResult& result);

// Test hooks (environment), for the kill -9 tests only:
//   CAREGATE_EXPORT_TEST_KILL_AFTER=N   SIGKILL itself after N records were consumed
//   CAREGATE_EXPORT_TEST_KILL_AT=finished|published|committed
//                                       SIGKILL itself at that step of the commit sequence

}  // namespace caregate::exporter
