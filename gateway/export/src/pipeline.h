#pragma once
// The export's streaming pipeline: a reader thread cuts the extract into batches of
// lines, worker threads parse, validate, map and render each record of a batch into
// byte buffers (SystmOne fragment, warehouse rows, reject line, content hash), and the
// calling thread consumes the batches strictly in input order. A fixed pool of batches
// bounds memory whatever the size of the extract.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/text_buffer.h"
#include "caregate/engine/engine.h"
#include "caregate/format/sinks.h"
#include "caregate/mapping/mapping_plan.h"
#include "delta_state.h"
#include "record_hash.h"

namespace caregate::exporter {

class ExtractReader;

struct RecordOut {
  std::uint64_t line = 0;
  bool rejected = false;
  bool withheld = false;  // Consent_To_Share = No: no SystmOne fragment was rendered
  bool linked = false;    // its SystmOne id was filled in from the store's links
  // The line is byte for byte the one the state holds for this person (same tables):
  // nothing was parsed or rendered; only `key` and `line_hash` are set.
  bool line_unchanged = false;
  std::int64_t key = 0;   // delta key: first 8 bytes of SHA-256(person key)
  ContentHash hash{};     // the record as mapped (see RecordProcessor)
  ContentHash line_hash{};  // the line as read (record_hash.h)
  std::uint32_t text_offset = 0, text_length = 0;  // the line in Batch::input
};

struct Batch {
  struct LineRef {
    std::uint32_t offset = 0, length = 0;
    std::uint64_t number = 0;
    bool too_long = false;
  };
  std::uint64_t seq = 0;
  std::string input;  // the lines' bytes, back to back
  std::vector<LineRef> lines;
  std::uint64_t input_consumed = 0;  // extract bytes consumed up to the end of this batch

  // Results, one per non-blank line, in order. Slices of the byte buffers are found
  // through the *_end arrays: record i owns [end[i-1], end[i]).
  std::vector<RecordOut> records;
  std::string keys, rejects;
  TextBuffer s1;
  std::vector<std::uint32_t> key_end, s1_end, reject_end;
  std::vector<TextBuffer> csv;             // one buffer per warehouse table
  std::vector<std::uint32_t> csv_end;      // records.size() * tables

  std::string_view Slice(std::string_view buf, const std::vector<std::uint32_t>& end, std::size_t i,
                         std::size_t stride = 1, std::size_t col = 0) const {
    std::size_t e = end[i * stride + col];
    std::size_t b = i == 0 ? 0 : end[(i - 1) * stride + col];
    return buf.substr(b, e - b);
  }
  // Empties the batch for the next lines; the buffers keep their storage.
  void Reset(std::size_t tables);
  // Empties the results only, keeping the lines (to process them again).
  void ClearResults(std::size_t tables);
};

class IdNotingSink;  // pipeline.cc

// A top-level member of the JSON object on `line`, as a plain scan sees it (no parser):
// absent, null, a string without escapes (its raw bytes in *value), or anything else
// (another type, escapes, a key written with escapes, text the scan cannot vouch for).
// Strings are skipped whole and depth is counted, so a nested member of the same name is
// never taken for it. For a line that maps, kString and kNull/kAbsent agree with the
// mapped value (fuzzed: export_line_fuzz).
enum class TopLevel { kAbsent, kNull, kString, kOther };
TopLevel ScanTopLevelMember(std::string_view line, std::string_view key, std::string_view* value);

// The SystmOne id the gateway's store links to the person known by this CIS id or NHS
// number, or "" (DeltaState::LinkedSystmOneId has the rules). Called from the workers.
using IdentityLookup = std::function<std::string(std::string_view cis_id, std::string_view nhs_number)>;

// Per-thread record work; see pipeline.cc for what "content hash" covers.
class RecordProcessor {
 public:
  // With a state database path, lines identical to the stored ones are recognised
  // without parsing them (delta runs); without, every line is processed in full.
  // `hash_seed`: the state database's key for the line and content hashes.
  // `links`: when set, a record without a SystmOne id gets the one the store links to
  // it (spec 5), in both outputs, and its line hash says which (LineLinked), so that a
  // line unchanged since a night without the link is not taken as unchanged on sight.
  RecordProcessor(const engine::Engine& engine, const std::string& mapping_version, std::uint64_t hash_seed,
                  const std::string& state_db = {}, IdentityLookup links = {});
  ~RecordProcessor();
  RecordProcessor(const RecordProcessor&) = delete;
  RecordProcessor& operator=(const RecordProcessor&) = delete;
  void Process(Batch& batch);
  void ProcessLine(Batch& batch, const Batch::LineRef& ref);

 private:
  void Reject(Batch& batch, RecordOut& rec, std::string_view person_id, const FieldErrors& errors);
  bool LinkedLineHash(std::string_view text, std::string_view cis_id, ContentHash& line_hash);
  const engine::Engine& engine_;
  RecordHasher hasher_;
  // Maps each record as it is parsed (no tree); reused by every record of this worker.
  mapping::RecordReader reader_;
  // Reads the top-level ids a reject line names, from a refused record's line.
  std::unique_ptr<IdNotingSink> ids_;
  std::unique_ptr<StateReader> state_;
  void* sha_ = nullptr;  // EVP_MD_CTX*
  // Writes the SystmOne fragments; bound to each batch's buffer in turn.
  TextBuffer unbound_;
  format::XmlTextSink s1_sink_{unbound_, 0, /*pretty=*/false};
  // A sensitive record's copy without contact details, for the SystmOne file; reused.
  model::CareRecord redacted_;
  IdentityLookup links_;
  // A record's copy with the SystmOne id the store links to it; reused.
  model::CareRecord linked_;
};

struct PipelineOptions {
  int workers = 1;
  std::string state_db;  // for the workers' StateReader; empty: no shortcut
  std::uint64_t hash_seed = 0;        // DeltaState::hash_seed()
  // Makes each worker's IdentityLookup (its own LinkReader); empty: no links to fill in.
  std::function<IdentityLookup()> make_links;
  std::size_t pool = 6;               // batches in flight, at most
  std::size_t batch_lines = 256;
  std::size_t batch_bytes = 1 << 20;
};

// Appends the reader's next lines to an emptied batch until it holds `max_lines` lines
// or at least `max_bytes` bytes of input; false when the input ended first. (The
// pipeline's reader thread, and the export fuzz target, which cuts its input the same way.)
bool FillBatch(ExtractReader& reader, Batch& b, std::size_t max_lines, std::size_t max_bytes);

// Runs reader and workers; calls `consume` on the calling thread for every batch in
// input order. An exception from any of them stops the others and is rethrown here.
void RunPipeline(const engine::Engine& engine, const std::string& mapping_version, ExtractReader& reader,
                 const PipelineOptions& options, const std::function<void(const Batch&)>& consume);

}  // namespace caregate::exporter
