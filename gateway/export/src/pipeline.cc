#include "pipeline.h"

#include <openssl/evp.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "caregate/core/line_reader.h"
#include "caregate/core/text.h"
#include "caregate/export/warehouse.h"
#include "caregate/format/json.h"
#include "caregate/format/sinks.h"
#include "caregate/mapping/values.h"
#include "extract_reader.h"

namespace caregate::exporter {
namespace {

bool IsBlank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

// A first guess at the CIS id of a line, for the delta's lookup: the string value of
// `key` wherever it appears (no escapes), else "". A wrong guess only means no match.
std::string ScanStringMember(std::string_view line, std::string_view key) {
  std::string needle = "\"" + std::string(key) + "\"";
  std::size_t p = line.find(needle);
  if (p == std::string_view::npos) return {};
  p += needle.size();
  while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
  if (p >= line.size() || line[p] != ':') return {};
  ++p;
  while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
  if (p >= line.size() || line[p] != '"') return {};
  std::size_t end = line.find('"', ++p);
  if (end == std::string_view::npos) return {};
  std::string_view v = Trim(line.substr(p, end - p));
  if (v.empty() || v.size() > 256 || v.find('\\') != std::string_view::npos || !IsValidUtf8(v)) return {};
  return std::string(v);
}


}  // namespace

TopLevel ScanTopLevelMember(std::string_view line, std::string_view key, std::string_view* value) {
  const std::size_t n = line.size();
  int depth = 0;
  auto skip_space = [&](std::size_t i) {
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    return i;
  };
  // The end of the string opening at line[i] (the closing quote), or npos; *escaped
  // says whether it holds a backslash.
  auto string_end = [&](std::size_t i, bool* escaped) {
    *escaped = false;
    for (std::size_t j = i + 1; j < n; ++j) {
      if (line[j] == '\\') {
        *escaped = true;
        ++j;
      } else if (line[j] == '"') {
        return j;
      }
    }
    return std::string_view::npos;
  };
  for (std::size_t i = 0; i < n;) {
    const char c = line[i];
    if (c == '"') {
      bool escaped = false;
      const std::size_t end = string_end(i, &escaped);
      if (end == std::string_view::npos) return TopLevel::kOther;
      const std::string_view s = line.substr(i + 1, end - i - 1);
      i = end + 1;
      if (depth != 1) continue;
      const std::size_t colon = skip_space(i);
      if (colon >= n || line[colon] != ':') continue;  // a value, not a key
      if (escaped) return TopLevel::kOther;             // a key this scan cannot read
      if (s != key) continue;
      const std::size_t v = skip_space(colon + 1);
      if (line.substr(v, 4) == "null") return TopLevel::kNull;
      if (v >= n || line[v] != '"') return TopLevel::kOther;
      const std::size_t vend = string_end(v, &escaped);
      if (vend == std::string_view::npos || escaped) return TopLevel::kOther;
      *value = line.substr(v + 1, vend - v - 1);
      return TopLevel::kString;
    }
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    ++i;
  }
  return TopLevel::kAbsent;
}

namespace {

// A person id from a line that is not well-formed JSON (or the head of one too long to
// keep): the string value of the top-level member `key` when a plain scan can read it
// (no escapes; trimmed, at most 256 bytes, valid UTF-8), else "". A member of the same
// name nested deeper (an event's, a note's) is not the person's.
std::string ScanTopLevelString(std::string_view line, std::string_view key) {
  std::string_view raw;
  if (ScanTopLevelMember(line, key, &raw) != TopLevel::kString) return {};
  const std::string_view v = Trim(raw);
  if (v.empty() || v.size() > 256 || !IsValidUtf8(v)) return {};
  return std::string(v);
}

// The id a reject line names: cis: first, then s1:, then nhs: (as written). An NHS
// number that fails its checks names nobody (the record's error may say just that).
template <typename Get>
std::string PersonId(Get get) {
  if (auto v = get("LA_Person_Unique_Identifier"); !v.empty()) return "cis:" + v;
  if (auto v = get("SystmOne_Identifier"); !v.empty()) return "s1:" + v;
  if (auto v = get("NHS_Number"); !v.empty() && mapping::CheckNhsNumber(v).empty()) return "nhs:" + v;
  return {};
}

// The delta key of a record and the person key the outputs carry.
std::string PersonKey(const model::CareRecord& r) {
  if (!r.person.cis_id.empty()) return "cis:" + r.person.cis_id;
  if (!r.person.s1_id.empty()) return "s1:" + r.person.s1_id;
  return "nhs:" + r.person.nhs_number;
}

const EVP_MD* Sha256Md() {
  // Fetched once: OpenSSL 3 would otherwise look the algorithm up on every digest.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (!md) throw FatalError(Problem::kInternal, "OpenSSL: SHA-256 is not available");
  return md;
}

}  // namespace

// Notes the top-level members a reject line names the person by, so a record refused by
// the mapping rules is named exactly as its own (valid) JSON says, escapes decoded. Only
// a refused record's line is parsed (a second time) into it.
class IdNotingSink : public TreeSink {
 public:
  static constexpr std::string_view kKeys[3] = {"LA_Person_Unique_Identifier", "SystmOne_Identifier", "NHS_Number"};
  void Reset() {
    depth_ = 0;
    for (auto& v : ids_) v.clear();
  }
  // The member's trimmed string value; "" if absent, not a string, or over 256 bytes.
  std::string Get(std::string_view key) const {
    for (std::size_t i = 0; i < 3; ++i)
      if (kKeys[i] == key) return ids_[i];
    return {};
  }
  void Open(std::string_view) override { ++depth_; }
  void Close() override { --depth_; }
  void OpenArray(std::string_view) override { ++depth_; }
  void CloseArray() override { --depth_; }
  void Value(std::string_view name, std::string_view value, NodeKind kind) override {
    if (depth_ == 1 && kind == NodeKind::kString)
      for (std::size_t i = 0; i < 3; ++i)
        if (kKeys[i] == name) {
          std::string_view v = Trim(value);
          if (v.size() <= 256) ids_[i].assign(v);
        }
  }

 private:
  int depth_ = 0;
  std::string ids_[3];
};

void Batch::Reset(std::size_t tables) {
  input.clear();
  lines.clear();
  ClearResults(tables);
}

void Batch::ClearResults(std::size_t tables) {
  records.clear();
  keys.clear();
  s1.clear();
  rejects.clear();
  key_end.clear();
  s1_end.clear();
  reject_end.clear();
  csv.resize(tables);
  for (auto& c : csv) c.clear();
  csv_end.clear();
}

RecordProcessor::RecordProcessor(const engine::Engine& engine, const std::string& mapping_version,
                                 std::uint64_t hash_seed, const std::string& state_db, IdentityLookup links)
    : engine_(engine), hasher_(hash_seed, mapping_version), reader_(engine.plan(), "cis"),
      ids_(std::make_unique<IdNotingSink>()), links_(std::move(links)) {
  sha_ = EVP_MD_CTX_new();
  if (!sha_) throw FatalError(Problem::kInternal, "OpenSSL: cannot allocate a digest context");
  if (!state_db.empty()) state_ = std::make_unique<StateReader>(state_db);
}

RecordProcessor::~RecordProcessor() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(sha_)); }

void RecordProcessor::Process(Batch& batch) {
  for (const auto& ref : batch.lines) ProcessLine(batch, ref);
}

void RecordProcessor::Reject(Batch& batch, RecordOut& rec, std::string_view person_id, const FieldErrors& errors) {
  rec.rejected = true;
  std::string& o = batch.rejects;
  o += "{\"line\":";
  o += std::to_string(rec.line);
  o += ",\"person_id\":";
  if (person_id.empty()) {
    o += "null";
  } else {
    o += '"';
    AppendJsonEscaped(o, person_id);
    o += '"';
  }
  o += ",\"errors\":[";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i) o += ',';
    o += "{\"path\":\"";
    AppendJsonEscaped(o, errors[i].path);
    o += "\",\"problem\":\"";
    AppendJsonEscaped(o, errors[i].problem);
    o += "\"}";
  }
  o += "]}\n";
}

// On a delta night with links to fill in: the line hash the full way would give this
// line (below), found without parsing it. A line with its own SystmOne id keeps the
// plain line hash; one without gets LineLinked with the id the store links now, looked up
// with the ids the mapping would read (the CIS id, and the top-level NHS_Number as it
// stands: a valid record's is 10 plain digits, used as they are). False when the scan
// cannot vouch for those ids; the line then goes the full way. A line identical to a
// stored one maps to the same ids as it did, so its hash matches the stored one exactly
// when the same id (or none) is filled in as then.
bool RecordProcessor::LinkedLineHash(std::string_view text, std::string_view cis_id, ContentHash& line_hash) {
  std::string_view s1, nhs;
  switch (ScanTopLevelMember(text, "SystmOne_Identifier", &s1)) {
    case TopLevel::kString:
      if (!Trim(s1).empty()) return true;  // its own id: nothing is filled in, the plain hash stands
      break;
    case TopLevel::kAbsent:
    case TopLevel::kNull: break;
    case TopLevel::kOther: return false;
  }
  switch (ScanTopLevelMember(text, "NHS_Number", &nhs)) {
    case TopLevel::kString: break;
    case TopLevel::kAbsent:
    case TopLevel::kNull: nhs = {}; break;
    case TopLevel::kOther: return false;
  }
  line_hash = hasher_.LineLinked(text, links_(cis_id, nhs));
  return true;
}

// Content hash (record_hash.h): over the mapping tables' version and the record's
// warehouse rows, table by table. The rows hold every canonical field (they are generated
// from the registry) plus the unmapped source data, and the SystmOne fragment is a
// function of the canonical record and the tables, so equal hashes mean the run would
// write exactly the same bytes for this person as the run that stored the hash.
void RecordProcessor::ProcessLine(Batch& batch, const Batch::LineRef& ref) {
  std::string_view text(batch.input.data() + ref.offset, ref.length);
  if (!ref.too_long && IsBlank(text)) return;  // blank lines are not records
  const std::size_t tables = batch.csv.size();
  RecordOut& rec = batch.records.emplace_back();
  rec.line = ref.number;
  rec.text_offset = ref.offset;
  rec.text_length = ref.length;
  auto close = [&] {
    batch.key_end.push_back(static_cast<std::uint32_t>(batch.keys.size()));
    batch.s1_end.push_back(static_cast<std::uint32_t>(batch.s1.size()));
    batch.reject_end.push_back(static_cast<std::uint32_t>(batch.rejects.size()));
    for (std::size_t t = 0; t < tables; ++t) batch.csv_end.push_back(static_cast<std::uint32_t>(batch.csv[t].size()));
  };
  if (ref.too_long) {  // `text` is the line's head only: enough to name the person
    Reject(batch, rec, PersonId([&](std::string_view k) { return ScanTopLevelString(text, k); }),
           {FieldError{"", LineReader::TooLongProblem(format::JsonLimits{}.max_bytes)}});
    close();
    return;
  }
  auto* ctx = static_cast<EVP_MD_CTX*>(sha_);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  auto key_hash = [&](std::string_view key) {
    // Delta key: the first 8 bytes of SHA-256(person key), big-endian.
    EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr);
    EVP_DigestUpdate(ctx, key.data(), key.size());
    EVP_DigestFinal_ex(ctx, md, &len);
    std::uint64_t k = 0;
    for (int i = 0; i < 8; ++i) k = (k << 8) | md[i];
    return static_cast<std::int64_t>(k);
  };
  // Line hash: the tables' version and the line's bytes. Equal line hashes mean the
  // same bytes through the same tables, hence the same record, valid as before.
  rec.line_hash = hasher_.Line(text);
  std::string scanned_key;  // and its hash, reused below when the mapped key is the same
  std::int64_t scanned_k = 0;
  if (state_) {
    // Which stored line to compare with: the CIS id read without a parser. A wrong or
    // missing id only means no match, and the line is processed in full.
    if (std::string id = ScanStringMember(text, "LA_Person_Unique_Identifier"); !id.empty()) {
      scanned_key = "cis:" + id;
      scanned_k = key_hash(scanned_key);
      if (links_ && !LinkedLineHash(text, id, rec.line_hash)) {
        // The line's ids cannot be read without parsing it: processed in full.
      } else if (state_->LineUnchanged(scanned_k, rec.line_hash)) {
        rec.line_unchanged = true;
        rec.key = scanned_k;
        batch.keys += scanned_key;
        close();
        return;
      }
    }
  }
  // The CIS adapter's parser (format::ParseJsonEvents) feeding the mapping reader: the
  // record is validated and mapped as it is parsed, without a tree.
  reader_.Begin(/*with_lineage=*/false);
  if (std::optional<FieldError> error = format::ParseJsonEvents(text, reader_)) {
    Reject(batch, rec, PersonId([&](std::string_view k) { return ScanTopLevelString(text, k); }), {*error});
    close();
    return;
  }
  Expected<const model::CareRecord*> mapped = reader_.FinishInPlace();
  if (!mapped) {
    // Well-formed JSON (it parsed above), so this parse succeeds too.
    IdNotingSink& ids = *ids_;
    ids.Reset();
    format::ParseJsonEvents(text, ids);
    Reject(batch, rec, PersonId([&](std::string_view k) { return ids.Get(k); }), mapped.errors());
    close();
    return;
  }
  const model::CareRecord* record = mapped.value();
  std::string key = PersonKey(*record);  // the record's own ids, whatever is filled in below
  if (links_ && record->person.s1_id.empty()) {
    std::string s1 = links_(record->person.cis_id, record->person.nhs_number);
    rec.line_hash = hasher_.LineLinked(text, s1);
    if (!s1.empty()) {
      rec.linked = true;
      linked_ = *record;
      linked_.person.s1_id = std::move(s1);
      record = &linked_;
    }
  }
  const model::CareRecord& r = *record;
  rec.key = !scanned_key.empty() && key == scanned_key ? scanned_k : key_hash(key);
  std::size_t csv_begin[16];
  for (std::size_t t = 0; t < tables && t < 16; ++t) csv_begin[t] = batch.csv[t].size();
  AppendWarehouseRows(r, key, batch.csv);
  hasher_.Begin();
  for (std::size_t t = 0; t < tables; ++t)
    hasher_.Part(batch.csv[t].view().substr(csv_begin[t]));
  rec.hash = hasher_.Finish();
  batch.keys += key;
  rec.withheld = r.consent_withheld();
  if (!rec.withheld) {
    // One compact ClientIntegrationResponse per line inside the batch root.
    s1_sink_.Rebind(batch.s1);
    s1_sink_.Open(engine_.plan().Profile("systmone")->root_name);
    // The file goes to health, the other organisation: a sensitive record goes without
    // its address, phone numbers and email (spec 8; the warehouse, the council's own,
    // keeps them). A copy: the record belongs to the reader.
    const model::CareRecord* shown = &r;
    if (r.is_sensitive()) {
      redacted_ = r;
      model::RedactContactDetails(redacted_);
      shown = &redacted_;
    }
    engine_.plan().WriteTo("systmone", *shown, s1_sink_);
    s1_sink_.Close();
    batch.s1 += '\n';
  }
  close();
}

bool FillBatch(ExtractReader& reader, Batch& b, std::size_t max_lines, std::size_t max_bytes) {
  ExtractReader::Line line;
  bool more = true;
  while (b.lines.size() < max_lines && b.input.size() < max_bytes) {
    if (!reader.Next(line)) {
      more = false;
      break;
    }
    Batch::LineRef ref;
    ref.offset = static_cast<std::uint32_t>(b.input.size());
    ref.length = static_cast<std::uint32_t>(line.text.size());
    ref.number = line.number;
    ref.too_long = line.too_long;
    b.input.append(line.text);
    b.lines.push_back(ref);
  }
  b.input_consumed = reader.consumed();
  return more;
}

void RunPipeline(const engine::Engine& engine, const std::string& mapping_version, ExtractReader& reader,
                 const PipelineOptions& options, const std::function<void(const Batch&)>& consume) {
  const std::size_t tables = WarehouseTables().size();
  if (tables > 16) throw FatalError(Problem::kInternal, "export: more than 16 warehouse tables");
  std::mutex m;
  std::condition_variable cv;  // one condition for every state change: few threads, simple
  std::vector<std::unique_ptr<Batch>> pool_storage;
  std::vector<Batch*> free_batches;
  for (std::size_t i = 0; i < options.pool; ++i) {
    pool_storage.push_back(std::make_unique<Batch>());
    pool_storage.back()->Reset(tables);
    free_batches.push_back(pool_storage.back().get());
  }
  std::deque<Batch*> todo;
  std::map<std::uint64_t, Batch*> done;
  bool reader_done = false, stop = false;
  std::uint64_t total = 0;
  std::exception_ptr error;

  auto fail = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(m);
    if (!error) error = e;
    stop = true;
    cv.notify_all();
  };

  std::thread reader_thread([&] {
    try {
      std::uint64_t seq = 0;
      bool more = true;
      while (more) {
        Batch* b;
        {
          std::unique_lock<std::mutex> lock(m);
          cv.wait(lock, [&] { return stop || !free_batches.empty(); });
          if (stop) return;
          b = free_batches.back();
          free_batches.pop_back();
        }
        b->Reset(tables);
        b->seq = seq;
        more = FillBatch(reader, *b, options.batch_lines, options.batch_bytes);
        std::lock_guard<std::mutex> lock(m);
        if (b->lines.empty()) {
          free_batches.push_back(b);
        } else {
          todo.push_back(b);
          ++seq;
        }
        if (!more) {
          reader_done = true;
          total = seq;
        }
        cv.notify_all();
      }
    } catch (...) {
      fail(std::current_exception());
    }
  });

  std::vector<std::thread> workers;
  for (int w = 0; w < options.workers; ++w) {
    workers.emplace_back([&] {
      try {
        RecordProcessor proc(engine, mapping_version, options.hash_seed, options.state_db,
                             options.make_links ? options.make_links() : IdentityLookup{});
        for (;;) {
          Batch* b;
          {
            std::unique_lock<std::mutex> lock(m);
            cv.wait(lock, [&] { return stop || !todo.empty() || reader_done; });
            if (stop || todo.empty()) return;
            b = todo.front();
            todo.pop_front();
          }
          proc.Process(*b);
          std::lock_guard<std::mutex> lock(m);
          done.emplace(b->seq, b);
          cv.notify_all();
        }
      } catch (...) {
        fail(std::current_exception());
      }
    });
  }

  auto join = [&] {
    reader_thread.join();
    for (auto& t : workers) t.join();
  };
  try {
    for (std::uint64_t next = 0;; ++next) {
      Batch* b;
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return stop || done.count(next) || (reader_done && next == total); });
        if (stop) break;
        if (reader_done && next == total && !done.count(next)) break;
        b = done[next];
        done.erase(next);
      }
      consume(*b);
      std::lock_guard<std::mutex> lock(m);
      free_batches.push_back(b);
      cv.notify_all();
    }
  } catch (...) {
    fail(std::current_exception());
  }
  {
    std::lock_guard<std::mutex> lock(m);
    stop = true;
    cv.notify_all();
  }
  join();
  if (error) std::rethrow_exception(error);
}

}  // namespace caregate::exporter
