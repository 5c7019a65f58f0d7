#include <cstdio>
#include <filesystem>
#include <memory>

#include "caregate/app/app.h"
#include "caregate/audit/audit_log.h"
#include "caregate/audit/report.h"
#include "caregate/cli/cli.h"

namespace caregate::cli {

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
            auto events = audit::QueryAuditTrail(db, q);
            const std::string out = o->format == "html" ? audit::RenderAuditReportHtml(events, o->person)
                                                        : audit::RenderAuditReportJson(events, o->person) + "\n";
            return WriteOutput(o->out, out) ? kExitOk : kExitFailure;
          }};
}

}  // namespace caregate::cli
