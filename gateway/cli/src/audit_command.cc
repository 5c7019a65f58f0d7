#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "caregate/app/app.h"
#include "caregate/audit/audit_log.h"
#include "caregate/audit/report.h"
#include "caregate/cli/cli.h"
#include "caregate/store/database.h"
#include "caregate/store/statement.h"

namespace caregate::cli {

namespace {
// Every id the gateway's store knows the person of `id` by (the identity index, read
// read-only), `id` first; just `id` when the database holds no identity index.
std::vector<std::string> KnownIds(const std::string& db_path, const std::string& id) {
  std::vector<std::string> ids{id};
  store::Database db(db_path, store::OpenOptions{.create = false, .read_only = true});
  store::Statement has(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'person_ids'");
  if (!has.Step()) return ids;
  store::Statement s(db, "SELECT id FROM person_ids WHERE person_key = (SELECT person_key FROM person_ids WHERE id = ?)"
                         " ORDER BY id");
  s.BindText(1, id);
  while (s.Step())
    if (s.ColumnText(0) != id) ids.push_back(s.ColumnText(0));
  return ids;
}
}  // namespace

// `audit verify` exits 0 when the chain is intact and 1 (spec 6: other failure) when it
// is damaged, printing where; `audit report` prints a JSON or HTML report. Both write to
// --out FILE instead of stdout when given (spec 6).
Command AddAuditCommand(CLI::App& root, std::string& /*mappings_dir*/) {
  auto* app = root.add_subcommand("audit", "Check and report on the audit trail");
  app->require_subcommand(1);
  struct Opts {
    std::string db, person, format = "json", from, to, user, out;
  };
  auto o = std::make_shared<Opts>();
  auto* verify = app->add_subcommand("verify", "Check the hash chain: exit 0 intact, 1 tampered (says where)");
  verify->add_option("--db", o->db, "Database (default: $CAREGATE_DB, else ./caregate.db)");
  verify->add_option("--out", o->out, "Write the result to this file instead of stdout");
  auto* report = app->add_subcommand("report", "Who saw what, when, in which role and with what outcome");
  report->add_option("--db", o->db, "Database (default: $CAREGATE_DB, else ./caregate.db)");
  report->add_option("--person", o->person, "Only events about this person id (nhs:, s1:, cis:)");
  report->add_option("--user", o->user, "Only events by this user");
  report->add_option("--from", o->from, "From (RFC 3339 or YYYY-MM-DD, inclusive)");
  report->add_option("--to", o->to, "To (inclusive)");
  report->add_option("--format", o->format, "json | html")->check(CLI::IsMember({"json", "html"}));
  report->add_option("--out", o->out, "Write the report to this file instead of stdout");
  return {app, [o, verify]() -> int {
            const std::string db = o->db.empty() ? app::DefaultDatabasePath() : o->db;
            if (!std::filesystem::exists(db)) {
              Error(db, "no such database");
              return kExitFailure;
            }
            if (verify->parsed()) {
              auto r = audit::VerifyAuditTrail(db);
              if (!WriteOutput(o->out, audit::RenderVerifyResultJson(r) + "\n")) return kExitFailure;
              if (!r.ok) {
                Error(db, r.first_bad_seq > 0 ? "audit trail damaged at event " + std::to_string(r.first_bad_seq) +
                                                    ": " + r.problem
                                              : r.problem);  // no trail at all, or no head: no event to name
                return kExitFailure;
              }
              return kExitOk;
            }
            audit::AuditQuery q;
            q.person_id = o->person;
            q.user = o->user;
            q.from = o->from;
            q.to = o->to;
            if (auto errors = audit::CheckAuditQuery(q); !errors.empty()) {
              for (const auto& e : errors) Error("--" + e.path, e.problem);
              return kExitUsage;
            }
            // A person asked for by one id is known by all of theirs in the gateway's
            // store (when the database is one): events that named them only by another
            // id (a read before two records were linked) are theirs too.
            auto events = audit::QueryAnyOf(
                q, q.person_id.empty() ? std::vector<std::string>{} : KnownIds(db, q.person_id),
                [&](const audit::AuditQuery& one) { return audit::QueryAuditTrail(db, one); });
            const std::string out = o->format == "html" ? audit::RenderAuditReportHtml(events, o->person)
                                                        : audit::RenderAuditReportJson(events, o->person) + "\n";
            return WriteOutput(o->out, out) ? kExitOk : kExitFailure;
          }};
}

}  // namespace caregate::cli
