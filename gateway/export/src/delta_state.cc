#include "delta_state.h"

#include <algorithm>
#include <cstring>

#include "caregate/audit/audit_log.h"
#include "caregate/core/error.h"
#include "caregate/store/database.h"
#include "caregate/store/statement.h"
#include "caregate/store/transaction.h"

namespace caregate::exporter {
namespace {

constexpr std::size_t kBloomBits = std::size_t{1} << 24;  // 2 MiB

// Migrations of the "export" module (versions 200-299, store/migrations.h). A shipped
// migration is never edited, only followed by a new one.
constexpr std::string_view kSchemaV200 = R"sql(
CREATE TABLE export_state (
  key INTEGER PRIMARY KEY,      -- first 8 bytes of SHA-256(person_key), big-endian, signed
  person_key TEXT NOT NULL,     -- cis:..., for people reading the table
  hash_hi INTEGER NOT NULL,     -- content hash (128 bits of SHA-256 over the record as mapped)
  hash_lo INTEGER NOT NULL,
  run_seq INTEGER NOT NULL      -- the run that last wrote this person
);
CREATE TABLE export_runs (
  seq INTEGER PRIMARY KEY,
  run_date TEXT NOT NULL,
  input_sha256 TEXT NOT NULL,
  input_bytes INTEGER NOT NULL,
  full INTEGER NOT NULL,
  mapping_version TEXT NOT NULL,
  out_dir TEXT NOT NULL,
  records_read INTEGER NOT NULL,
  exported INTEGER NOT NULL,
  unchanged INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  withheld INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  manifest TEXT NOT NULL        -- manifest.json exactly as written
);
CREATE INDEX export_runs_by_date ON export_runs(run_date);
)sql";

// Line hash (128 bits of SHA-256 over the tables' version and the extract line the
// stored content came from): lets an identical line skip parsing. Rows stored before it
// hold 0, which no line hash matches, so they take the full path once.
constexpr std::string_view kSchemaV201 = R"sql(
ALTER TABLE export_state ADD COLUMN line_hi INTEGER NOT NULL DEFAULT 0;
ALTER TABLE export_state ADD COLUMN line_lo INTEGER NOT NULL DEFAULT 0;
)sql";

// Line and content hashes become keyed XXH3-128 (record_hash.h) instead of SHA-256
// prefixes; the key is this database's own random seed. Hashes stored before hold
// SHA-256 values, which no new hash equals, so the first run after this migration finds
// every record "changed" once and writes it (as after a change of mapping tables).
constexpr std::string_view kSchemaV202 = R"sql(
CREATE TABLE export_hash_seed (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seed INTEGER NOT NULL         -- key of the line and content hashes; never shown
);
INSERT INTO export_hash_seed(id, seed) VALUES (1, random());
)sql";

std::int64_t Half(const ContentHash& h, int which) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | h[static_cast<std::size_t>(which * 8 + i)];
  return static_cast<std::int64_t>(v);
}

constexpr const char* kRunColumns =
    "seq, run_date, input_sha256, input_bytes, full, mapping_version, out_dir, records_read, exported, "
    "unchanged, rejected, withheld, started_at, finished_at, manifest";

RunRecord ReadRun(store::Statement& q) {
  RunRecord r;
  r.seq = q.ColumnInt64(0);
  r.run_date = q.ColumnText(1);
  r.input_sha256 = q.ColumnText(2);
  r.input_bytes = static_cast<std::uint64_t>(q.ColumnInt64(3));
  r.full = q.ColumnInt64(4) != 0;
  r.mapping_version = q.ColumnText(5);
  r.out_dir = q.ColumnText(6);
  r.read = static_cast<std::uint64_t>(q.ColumnInt64(7));
  r.exported = static_cast<std::uint64_t>(q.ColumnInt64(8));
  r.unchanged = static_cast<std::uint64_t>(q.ColumnInt64(9));
  r.rejected = static_cast<std::uint64_t>(q.ColumnInt64(10));
  r.withheld = static_cast<std::uint64_t>(q.ColumnInt64(11));
  r.started_at = q.ColumnText(12);
  r.finished_at = q.ColumnText(13);
  r.manifest = q.ColumnText(14);
  return r;
}

}  // namespace

DeltaState::DeltaState(const std::string& path, std::size_t pending_rows, std::int64_t temp_max_pages)
    : path_(path), pending_rows_(std::max<std::size_t>(pending_rows, 1)) {
  store::OpenOptions options;
  options.busy_timeout_ms = 60000;  // a nightly job would rather wait for a busy server than fail
  db_ = std::make_unique<store::Database>(path, options);
  db_->Migrate("export", {{200, kSchemaV200}, {201, kSchemaV201}, {202, kSchemaV202}});
  audit::PrepareAuditTables(*db_);
  {
    store::Statement q(*db_, "SELECT seed FROM export_hash_seed WHERE id = 1");
    if (!q.Step()) throw FatalError(Problem::kIoFailure, path + ": the export state has no hash seed");
    hash_seed_ = static_cast<std::uint64_t>(q.ColumnInt64(0));
  }
  // The staging table lives in TEMP: private to this connection, gone when the process
  // is, so a killed run cannot leave half a delta behind.
  db_->Exec(
      "PRAGMA temp_store=FILE;"
      "PRAGMA temp.cache_size=-16384;"
      "CREATE TEMP TABLE IF NOT EXISTS export_staged ("
      " key INTEGER PRIMARY KEY, person_key TEXT NOT NULL, hash_hi INTEGER NOT NULL, hash_lo INTEGER NOT NULL,"
      " line_hi INTEGER NOT NULL, line_lo INTEGER NOT NULL)");
  if (temp_max_pages > 0) db_->Exec("PRAGMA temp.max_page_count=" + std::to_string(temp_max_pages));
}

DeltaState::~DeltaState() {
  if (writer_.joinable()) writer_.join();
  find_staged_.reset();
  find_state_.reset();
  stage_.reset();
  find_link_.reset();
  if (db_ && db_->InTransaction()) {
    try {
      db_->Exec("ROLLBACK");
    } catch (...) {
    }
  }
}

std::vector<RunRecord> DeltaState::Candidates(std::string_view run_date, bool full, std::string_view mapping_version,
                                              std::uint64_t input_bytes) {
  std::lock_guard<std::mutex> lock(db_mutex_);  // also called during a run, beside the staging thread
  store::Statement q(*db_, std::string("SELECT ") + kRunColumns +
                               " FROM export_runs WHERE run_date = ?1 AND full = ?2 AND mapping_version = ?3 AND "
                               "input_bytes = ?4 ORDER BY seq DESC");
  q.Bind(1, run_date).Bind(2, full ? 1 : 0).Bind(3, mapping_version).Bind(4, static_cast<std::int64_t>(input_bytes));
  std::vector<RunRecord> out;
  while (q.Step()) out.push_back(ReadRun(q));
  return out;
}

std::optional<RunRecord> DeltaState::LastCompleted() {
  store::Statement q(*db_, std::string("SELECT ") + kRunColumns + " FROM export_runs ORDER BY seq DESC LIMIT 1");
  if (!q.Step()) return std::nullopt;
  return ReadRun(q);
}

void DeltaState::BeginRun() {
  JoinWriter();
  db_->Exec("DELETE FROM temp.export_staged");
  filling_.Init(pending_rows_);
  writing_.Init(pending_rows_);
  staged_bits_.assign(kBloomBits / 64, 0);
  // One read snapshot of the state for the whole run (and no per-statement transactions).
  db_->Exec("BEGIN DEFERRED");
  find_staged_ = std::make_unique<store::Statement>(
      *db_, "SELECT hash_hi, hash_lo, line_hi, line_lo FROM temp.export_staged WHERE key = ?1");
  find_state_ = std::make_unique<store::Statement>(
      *db_, "SELECT hash_hi, hash_lo, line_hi, line_lo FROM main.export_state WHERE key = ?1");
  stage_ = std::make_unique<store::Statement>(
      *db_,
      "INSERT OR REPLACE INTO temp.export_staged(key, person_key, hash_hi, hash_lo, line_hi, line_lo) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  // Read inside the run's snapshot: main.export_state does not change before Complete.
  store::Statement any(*db_, "SELECT EXISTS (SELECT 1 FROM main.export_state)");
  state_empty_ = any.Step() && any.ColumnInt64(0) == 0;
  // The identity index, when this database is also the gateway's store (the identity
  // module's tables; a database only ever used by the export has none).
  links_known_ = false;
  store::Statement tables(*db_,
                          "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND "
                          "name IN ('person_ids', 'source_records', 'snapshot_version')");
  if (tables.Step() && tables.ColumnInt64(0) == 3) {
    store::Statement s1(*db_, "SELECT EXISTS (SELECT 1 FROM main.person_ids WHERE id >= 's1:' AND id < 's1;')");
    links_known_ = s1.Step() && s1.ColumnInt64(0) != 0;
  }
  if (links_known_) {
    store::Statement v(*db_, "SELECT n FROM main.snapshot_version WHERE id = 1");
    links_version_ = v.Step() ? v.ColumnInt64(0) : -1;
    find_link_ = std::make_unique<store::Statement>(*db_, kFindLinkSql);
  }
}

namespace {
// A worker's own connection to the state database: read-only, never creating it.
std::unique_ptr<store::Database> OpenReadOnly(const std::string& path) {
  store::OpenOptions options;
  options.create = false;
  options.read_only = true;
  return std::make_unique<store::Database>(path, options);
}

// One query, so that a link is found however the person is known (kFindLinkSql).
std::string FindLink(store::Statement& q, std::string_view cis_id, std::string_view nhs_number) {
  if (cis_id.empty() && nhs_number.empty()) return {};
  q.Reset();
  q.Bind(1, cis_id.empty() ? std::string() : "cis:" + std::string(cis_id));
  q.Bind(2, nhs_number.empty() ? std::string() : "nhs:" + std::string(nhs_number));
  std::string first;
  bool shared = false;
  int found = 0;
  while (q.Step()) {
    if (found++ == 0) {
      first = q.ColumnText(0);
      shared = q.ColumnInt64(1) != 0;
    }
  }
  q.Reset();
  // One id, carried by a SystmOne record that shares; "s1:" off. None or two: nothing.
  return found == 1 && shared ? first.substr(3) : std::string();
}
}  // namespace

std::string DeltaState::LinkedSystmOneId(std::string_view cis_id, std::string_view nhs_number) {
  if (!links_known_) return {};
  std::lock_guard<std::mutex> lock(db_mutex_);
  return FindLink(*find_link_, cis_id, nhs_number);
}

LinkReader::LinkReader(const std::string& path, DeltaState& run) : run_(&run), db_(OpenReadOnly(path)) {
  db_->Exec("BEGIN DEFERRED");
  bool same = false;
  {
    store::Statement v(*db_, "SELECT n FROM main.snapshot_version WHERE id = 1");
    same = v.Step() && v.ColumnInt64(0) == run.links_version();
  }
  if (same) {
    find_ = std::make_unique<store::Statement>(*db_, DeltaState::kFindLinkSql);
    return;
  }
  // The identity tables changed since the run's snapshot was taken: this connection
  // cannot see them as the run does, so it asks the run's connection.
  db_->Exec("COMMIT");
  db_.reset();
}

LinkReader::~LinkReader() {
  find_.reset();
  if (db_ && db_->InTransaction()) {
    try {
      db_->Exec("COMMIT");
    } catch (...) {
    }
  }
}

std::string LinkReader::LinkedSystmOneId(std::string_view cis_id, std::string_view nhs_number) {
  if (!find_) return run_->LinkedSystmOneId(cis_id, nhs_number);
  return FindLink(*find_, cis_id, nhs_number);
}

namespace {
// The key is a hash already (of a person key, in the export), but it is mixed once more
// (the splitmix64 finaliser) so that any key set spreads evenly.
std::uint64_t Mix(std::int64_t key) {
  auto z = static_cast<std::uint64_t>(key);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// A blocked Bloom filter: a key's three bits lie in one 64-bit word, so a probe costs
// one memory access instead of three scattered ones. With a million keys in 2^24 bits
// about 1% of the keys never staged still pass (each costs one TEMP-table lookup).
std::uint64_t BloomWord(std::uint64_t h) { return h & (kBloomBits / 64 - 1); }
std::uint64_t BloomMask(std::uint64_t h) {
  return (std::uint64_t{1} << ((h >> 40) & 63)) | (std::uint64_t{1} << ((h >> 46) & 63)) |
         (std::uint64_t{1} << ((h >> 52) & 63));
}
}  // namespace

bool DeltaState::MaybeStaged(std::int64_t key) const {
  const std::uint64_t h = Mix(key), mask = BloomMask(h);
  return (staged_bits_[BloomWord(h)] & mask) == mask;
}

void DeltaState::MarkStaged(std::int64_t key) {
  const std::uint64_t h = Mix(key);
  staged_bits_[BloomWord(h)] |= BloomMask(h);
}

void DeltaState::PendingBuffer::Init(std::size_t capacity) {
  rows.clear();
  rows.reserve(capacity);
  person_keys.clear();
  std::size_t n = 16;
  while (n < 2 * capacity) n *= 2;
  slots.assign(n, 0);
  keys = 0;
}

void DeltaState::PendingBuffer::Clear() {
  rows.clear();
  person_keys.clear();
  std::fill(slots.begin(), slots.end(), 0);
  keys = 0;
}

std::size_t DeltaState::PendingBuffer::Slot(std::int64_t key) const {
  const std::size_t mask = slots.size() - 1;
  std::size_t s = static_cast<std::size_t>(Mix(key) >> 20) & mask;
  while (slots[s] != 0 && rows[slots[s] - 1].key != key) s = (s + 1) & mask;
  return s;
}

const DeltaState::PendingRow* DeltaState::PendingBuffer::Find(std::int64_t key) const {
  const std::uint32_t row = slots[Slot(key)];
  return row == 0 ? nullptr : &rows[row - 1];
}

void DeltaState::PendingBuffer::Add(std::int64_t key, std::string_view person_key, const ContentHash& hash,
                                    const ContentHash& line_hash) {
  const std::size_t slot = Slot(key);
  if (slots[slot] == 0) ++keys;
  slots[slot] = static_cast<std::uint32_t>(rows.size() + 1);
  rows.push_back({key, Half(hash, 0), Half(hash, 1), Half(line_hash, 0), Half(line_hash, 1),
                  static_cast<std::uint32_t>(person_keys.size()), static_cast<std::uint32_t>(person_key.size())});
  person_keys.append(person_key);
}

void DeltaState::Insert(const PendingBuffer& buffer) {
  if (buffer.rows.empty()) return;
  // Only each key's latest row counts (a person twice in the extract).
  std::vector<std::uint32_t> order;
  order.reserve(buffer.keys);
  for (std::uint32_t row : buffer.slots)
    if (row != 0) order.push_back(row - 1);
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return buffer.rows[a].key < buffer.rows[b].key; });
  // The lock is taken per slice, not for the whole batch, so that the caller's lookups
  // (a state lookup per record on a delta night) wait at most one slice.
  constexpr std::size_t kSlice = 256;
  for (std::size_t from = 0; from < order.size(); from += kSlice) {
    std::lock_guard<std::mutex> lock(db_mutex_);
    const std::size_t to = std::min(order.size(), from + kSlice);
    for (std::size_t i = from; i < to; ++i) {
      const PendingRow& r = buffer.rows[order[i]];
      stage_->Reset();
      stage_->Bind(1, r.key)
          .Bind(2, std::string_view(buffer.person_keys).substr(r.person_offset, r.person_length))
          .Bind(3, r.hash_hi)
          .Bind(4, r.hash_lo);
      stage_->Bind(5, r.line_hi).Bind(6, r.line_lo);
      stage_->Run();
    }
  }
}

const DeltaState::PendingRow* DeltaState::FindPending(std::int64_t key) const {
  if (const PendingRow* r = filling_.Find(key)) return r;  // the newer one first
  return writing_.Find(key);
}

void DeltaState::JoinWriter() {
  if (writer_.joinable()) writer_.join();
  if (write_error_) std::rethrow_exception(write_error_);
}

void DeltaState::HandOver() {
  JoinWriter();
  writing_.Clear();
  std::swap(filling_, writing_);
  writer_ = std::thread([this] {
    try {
      Insert(writing_);
    } catch (...) {
      write_error_ = std::current_exception();
    }
  });
}

namespace {
// A stored or staged row (hash halves as stored) against this record's hashes.
DeltaState::Seen Compare(std::int64_t hash_hi, std::int64_t hash_lo, std::int64_t line_hi, std::int64_t line_lo,
                         const ContentHash& hash, const ContentHash& line_hash) {
  DeltaState::Seen seen;
  seen.found = true;
  seen.same_content = hash_hi == Half(hash, 0) && hash_lo == Half(hash, 1);
  seen.same_line = line_hi == Half(line_hash, 0) && line_lo == Half(line_hash, 1);
  return seen;
}
}  // namespace

DeltaState::Seen DeltaState::Lookup(std::int64_t key, const ContentHash& hash, const ContentHash& line_hash) {
  const bool maybe_staged = MaybeStaged(key);
  if (maybe_staged)
    if (const PendingRow* r = FindPending(key))
      return Compare(r->hash_hi, r->hash_lo, r->line_hi, r->line_lo, hash, line_hash);
  if (!maybe_staged && state_empty_) return {};
  std::lock_guard<std::mutex> lock(db_mutex_);
  for (store::Statement* q : {find_staged_.get(), find_state_.get()}) {
    if (q == find_staged_.get() && !maybe_staged) continue;
    if (q == find_state_.get() && state_empty_) continue;
    q->Reset();
    q->Bind(1, key);
    if (q->Step()) {
      Seen seen = Compare(q->ColumnInt64(0), q->ColumnInt64(1), q->ColumnInt64(2), q->ColumnInt64(3), hash, line_hash);
      q->Reset();
      return seen;
    }
  }
  return {};
}

bool DeltaState::Staged(std::int64_t key) {
  if (!MaybeStaged(key)) return false;
  if (FindPending(key)) return true;
  std::lock_guard<std::mutex> lock(db_mutex_);
  find_staged_->Reset();
  find_staged_->Bind(1, key);
  bool found = find_staged_->Step();
  find_staged_->Reset();
  return found;
}

void DeltaState::Stage(std::int64_t key, std::string_view person_key, const ContentHash& hash,
                       const ContentHash& line_hash) {
  filling_.Add(key, person_key, hash, line_hash);
  MarkStaged(key);
  if (filling_.rows.size() >= pending_rows_) HandOver();
}

StateReader::StateReader(const std::string& path) : db_(OpenReadOnly(path)) {
  find_ = std::make_unique<store::Statement>(*db_, "SELECT line_hi, line_lo FROM main.export_state WHERE key = ?1");
}

StateReader::~StateReader() = default;

bool StateReader::LineUnchanged(std::int64_t key, const ContentHash& line_hash) {
  find_->Reset();
  find_->Bind(1, key);
  bool same = find_->Step() && find_->ColumnInt64(0) == Half(line_hash, 0) && find_->ColumnInt64(1) == Half(line_hash, 1);
  find_->Reset();
  return same;
}

std::string DeltaState::AuditHeadProblem() {
  std::lock_guard<std::mutex> lock(db_mutex_);
  return audit::CheckAuditHead(*db_);
}

std::int64_t DeltaState::Complete(RunRecord run, audit::AuditEvent event) {
  if (stage_) {
    JoinWriter();
    Insert(filling_);
    filling_.Clear();
    writing_.Clear();
  }
  find_staged_.reset();
  find_state_.reset();
  stage_.reset();
  find_link_.reset();
  links_known_ = false;
  if (db_->InTransaction()) db_->Exec("COMMIT");  // ends the read snapshot; TEMP rows stay
  store::Transaction tx(*db_);
  store::Statement ins(*db_,
                       "INSERT INTO export_runs(run_date, input_sha256, input_bytes, full, mapping_version, out_dir, "
                       "records_read, exported, unchanged, rejected, withheld, started_at, finished_at, manifest) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
  ins.Bind(1, run.run_date)
      .Bind(2, run.input_sha256)
      .Bind(3, static_cast<std::int64_t>(run.input_bytes))
      .Bind(4, run.full ? 1 : 0)
      .Bind(5, run.mapping_version)
      .Bind(6, run.out_dir)
      .Bind(7, static_cast<std::int64_t>(run.read))
      .Bind(8, static_cast<std::int64_t>(run.exported))
      .Bind(9, static_cast<std::int64_t>(run.unchanged))
      .Bind(10, static_cast<std::int64_t>(run.rejected))
      .Bind(11, static_cast<std::int64_t>(run.withheld))
      .Bind(12, run.started_at)
      .Bind(13, run.finished_at)
      .Bind(14, run.manifest);
  ins.Run();
  std::int64_t seq = db_->LastInsertRowId();
  store::Statement copy(*db_,
                        "INSERT INTO main.export_state(key, person_key, hash_hi, hash_lo, line_hi, line_lo, run_seq) "
                        "SELECT key, person_key, hash_hi, hash_lo, line_hi, line_lo, ?1 FROM temp.export_staged "
                        "WHERE true ON CONFLICT(key) DO UPDATE SET person_key = excluded.person_key, "
                        "hash_hi = excluded.hash_hi, hash_lo = excluded.hash_lo, line_hi = excluded.line_hi, "
                        "line_lo = excluded.line_lo, run_seq = excluded.run_seq");
  copy.Bind(1, seq);
  copy.Run();
  event.request_id = "export-run-" + std::to_string(seq);
  audit::AppendInTransaction(*db_, event);
  tx.Commit();
  // The staging rows are left to die with the connection: deleting them row by row
  // costs more than the whole copy above.
  return seq;
}

}  // namespace caregate::exporter
