#include <cstdio>
#include <future>
#include <memory>

#include "caregate/app/app.h"
#include "caregate/audit/audit_log.h"
#include "caregate/cli/cli.h"
#include "caregate/engine/engine.h"
#include "caregate/identity/person_store.h"

namespace caregate::cli {

namespace {

// Records per store transaction. Each transaction is durable (one fsync) and its audit
// events are durable before the next starts, so a kill loses at most the open chunk,
// which nothing has acknowledged yet.
constexpr std::size_t kChunk = 256;

}  // namespace

Command AddIngestCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand("ingest", "Store records from a source system (single records, batches or NDJSON)");
  struct Opts {
    std::string from, db, out;
    std::vector<std::string> files;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--from", o->from, "Source system")->required()->check(CLI::IsMember({"systmone", "cis"}));
  app->add_option("--db", o->db, "Database (default: $CAREGATE_DB, else ./caregate.db)");
  app->add_option("--out", o->out, "Write the summary line to this file instead of stdout");
  app->add_option("files", o->files, "Input files")->required();
  return {app, [o, &mappings_dir]() -> int {
            auto engine = engine::Engine::Load(mappings_dir);
            const std::string db = o->db.empty() ? app::DefaultDatabasePath() : o->db;
            identity::PersonStore store(db);
            audit::AuditLog audit(db);
            const std::string user = CliUser();
            std::size_t stored = 0, created = 0, updated = 0, rejected = 0, not_read = 0;
            // A chunk: the records to store, and the audit events of the chunk's records in
            // input order, a stored record's event (its outcome known once stored) or a
            // refused record's (its ids completed from the store once the records before
            // it are in, so a person stored earlier in the same chunk is named too).
            std::vector<model::CareRecord> chunk;
            struct Refusal {
              std::size_t records_before;  // stored records of the chunk that come before it
              audit::AuditEvent event;
            };
            std::vector<Refusal> refusals;
            auto event = [&](std::string outcome) {
              audit::AuditEvent e = CommandEvent(user, "ingest");
              e.view = o->from;
              e.outcome = std::move(outcome);
              return e;
            };
            auto flush = [&] {
              if (chunk.empty() && refusals.empty()) return;
              auto outcomes = chunk.empty() ? std::vector<identity::IngestOutcome>{} : store.IngestMany(chunk);
              std::vector<std::future<std::int64_t>> pending;
              std::size_t next_refusal = 0;
              auto refusals_before = [&](std::size_t records) {
                for (; next_refusal < refusals.size() && refusals[next_refusal].records_before <= records;
                     ++next_refusal) {
                  audit::AuditEvent& e = refusals[next_refusal].event;
                  e.person_ids = store.WithKnownIds(e.person_ids);
                  pending.push_back(audit.Append(std::move(e)));
                }
              };
              for (std::size_t i = 0; i < outcomes.size(); ++i) {
                refusals_before(i);
                const auto& out = outcomes[i];
                ++stored;
                (out.created ? created : updated) += 1;
                audit::AuditEvent e = event(out.created ? "201" : "200");
                e.person_ids = out.person_ids;
                e.detail = "caregate ingest (command line)";
                pending.push_back(audit.Append(std::move(e)));
              }
              refusals_before(outcomes.size());
              for (auto& f : pending) f.get();
              chunk.clear();
              refusals.clear();
            };
            const auto& adapter = engine->adapter(o->from);
            for (const auto& file : o->files) {
              // A file that cannot be opened is named and skipped; the others are still
              // stored, and the run exits 1 at the end (docs/decisions.md).
              if (!InputReadable(file)) {
                ++not_read;
                continue;
              }
              auto stream = adapter.OpenFile(file);
              if (!stream) {
                for (const auto& e : stream.errors()) Error(file, e.path.empty() ? e.problem : e.path + ": " + e.problem);
                ++rejected;
                continue;
              }
              adapters::StreamRecord rec;
              while (stream.value()->Next(rec)) {
                if (rec.read_failed) {  // the records before it are stored; the file counts as not read
                  for (const auto& e : rec.tree.errors()) Error(file, e.problem);
                  ++not_read;
                  break;
                }
                std::vector<std::string> ids;  // a refused record's, for its audit event
                auto cr = rec.tree.ok() ? engine->Read(o->from, rec.tree.value(), true, &ids)
                                        : Expected<model::CareRecord>(rec.tree.errors());
                if (!cr) {
                  ++rejected;
                  const std::string where = RecordPlace(file, rec.index, rec.line);
                  for (const auto& e : cr.errors()) Error(where, FormatError(e));
                  // Refused as over HTTP (docs/lookups.md, "Audit"): an event naming the
                  // person by the ids that were readable, in its place among the chunk's.
                  audit::AuditEvent e = event("422 invalid-record");
                  e.person_ids = std::move(ids);
                  e.detail = "caregate ingest (command line): " + where + ": " + FormatErrors(cr.errors());
                  refusals.push_back({chunk.size(), std::move(e)});
                  if (refusals.size() >= kChunk) flush();
                  continue;
                }
                chunk.push_back(std::move(cr.value()));
                if (chunk.size() >= kChunk) flush();
              }
            }
            flush();
            audit.Close();
            std::string summary = "stored " + std::to_string(stored) + " (new " + std::to_string(created) +
                                  ", updated " + std::to_string(updated) + "), rejected " + std::to_string(rejected);
            if (not_read > 0)
              summary += "; " + std::to_string(not_read) + " of " + std::to_string(o->files.size()) + " files not read";
            summary += '\n';
            if (!WriteOutput(o->out, summary)) return kExitFailure;  // the records are stored; the summary is lost
            if (not_read > 0) return kExitFailure;  // outweighs rejected records: 65 would hide it
            return rejected > 0 ? kExitDataErr : kExitOk;
          }};
}

}  // namespace caregate::cli
