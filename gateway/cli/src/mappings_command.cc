#include <cstdio>

#include "caregate/cli/cli.h"
#include "caregate/core/text.h"
#include "caregate/engine/engine.h"
#include "caregate/mapping/report.h"

namespace caregate::cli {


namespace {

// What `mappings check` found: the loaded tables, or every problem (file:line, problem).
struct CheckResult {
  std::string dir;
  std::shared_ptr<const engine::Engine> engine;  // null when refused
  const mapping::MappingPlan* plan = nullptr;    // the engine's, when loaded
  FieldErrors errors;
};

CheckResult CheckTables(const std::string& mappings_dir) {
  CheckResult r;
  r.dir = mappings_dir.empty() ? mapping::DefaultMappingsDir() : mappings_dir;
  auto engine = engine::Engine::TryLoad(mappings_dir);  // the problems kept apart, not thrown as one
  if (engine) {
    r.engine = engine.value();
    r.plan = &r.engine->plan();
  } else {
    r.errors = engine.errors();
  }
  return r;
}

std::size_t RuleCount(const mapping::MappingPlan& plan) {
  std::size_t rules = 0;
  for (const auto& sys : plan.systems()) rules += plan.Rules(sys).size();
  return rules;
}

// The text line (no --format), as before.
std::string CheckText(const CheckResult& c) {
  const auto& plan = *c.plan;
  std::string per;
  for (const auto& sys : plan.systems())
    per += (per.empty() ? "" : ", ") + sys + " " + std::to_string(plan.Rules(sys).size());
  return "mapping tables OK: " + std::to_string(RuleCount(plan)) + " rules (" + per + "), " +
         std::to_string(plan.code_sets().size()) + " code sets, version " + plan.version() + " (" + plan.dir() + ")\n";
}

// {"ok":true,"dir":D,"version":V,"rules":N,"systems":[{"name":S,"rules":N},...],"code_sets":N,"errors":[]}
// {"ok":false,"dir":D,"errors":[{"source":"FILE:LINE","problem":P},...]}
std::string CheckJson(const CheckResult& c) {
  std::string out = c.plan ? "{\"ok\":true,\"dir\":" : "{\"ok\":false,\"dir\":";
  AppendJsonString(out, c.plan ? c.plan->dir() : c.dir);
  if (c.plan) {
    const auto& plan = *c.plan;
    out += ",\"version\":";
    AppendJsonString(out, plan.version());
    out += ",\"rules\":" + std::to_string(RuleCount(plan)) + ",\"systems\":[";
    bool first = true;
    for (const auto& sys : plan.systems()) {
      if (!first) out += ',';
      first = false;
      out += "{\"name\":";
      AppendJsonString(out, sys);
      out += ",\"rules\":" + std::to_string(plan.Rules(sys).size()) + '}';
    }
    out += "],\"code_sets\":" + std::to_string(plan.code_sets().size());
  }
  out += ",\"errors\":[";
  bool first = true;
  for (const auto& e : c.errors) {
    if (!first) out += ',';
    first = false;
    out += "{\"source\":";
    AppendJsonString(out, e.path);
    out += ",\"problem\":";
    AppendJsonString(out, e.problem);
    out += '}';
  }
  out += "]}\n";
  return out;
}

// A small self-contained page: the verdict, then the rule counts or the problems.
std::string CheckHtml(const CheckResult& c) {
  std::string out = mapping::MappingsPageHead("caregate mapping tables check", ".ok{color:#1b5e20}.refused{color:#b71c1c}");
  if (c.plan) {
    const auto& plan = *c.plan;
    out += "<p class=\"ok\"><strong>OK</strong>: the tables in <code>" + XmlEscaped(plan.dir()) +
           "</code> load and compile.</p>\n<p>Tables version (SHA-256 of every table file): <code>" +
           XmlEscaped(plan.version()) + "</code>.</p>\n<table><tr><th>System</th><th>Rules</th></tr>\n";
    for (const auto& sys : plan.systems())
      out += "<tr><td>" + XmlEscaped(sys) + "</td><td>" + std::to_string(plan.Rules(sys).size()) + "</td></tr>\n";
    out += "<tr><th>Total</th><th>" + std::to_string(RuleCount(plan)) + "</th></tr>\n</table>\n<p>" +
           std::to_string(plan.code_sets().size()) + " code sets.</p>\n";
  } else {
    out += "<p class=\"refused\"><strong>Refused</strong>: the tables in <code>" + XmlEscaped(c.dir) + "</code> have " +
           std::to_string(c.errors.size()) + (c.errors.size() == 1 ? " problem" : " problems") +
           ".</p>\n<table><tr><th>Where</th><th>Problem</th></tr>\n";
    for (const auto& e : c.errors)
      out += "<tr><td><code>" + XmlEscaped(e.path) + "</code></td><td>" + XmlEscaped(e.problem) + "</td></tr>\n";
    out += "</table>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace

Command AddMappingsCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand("mappings", "Check or report the mapping tables");
  struct Opts {
    std::string action, format, out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("action", o->action, "check | report")->required()->check(CLI::IsMember({"check", "report"}));
  app->add_option("--format", o->format, "json | html (report: json by default; check: a text line by default)")
      ->check(CLI::IsMember({"json", "html"}));
  app->add_option("--out", o->out, "Write the report to this file");
  return {app, [o, &mappings_dir]() -> int {
            if (o->action == "check") {
              CheckResult c = CheckTables(mappings_dir);
              // One stderr line per problem, each naming file and line, whatever the format.
              for (const auto& e : c.errors) Error("", e.path.empty() ? e.problem : e.path + ": " + e.problem);
              std::string doc = o->format == "json" ? CheckJson(c)
                                : o->format == "html" ? CheckHtml(c)
                                : c.plan              ? CheckText(c)
                                                      : std::string();
              if (!doc.empty() && !WriteOutput(o->out, doc)) return kExitFailure;
              return c.plan ? kExitOk : kExitDataErr;
            }
            auto engine = engine::Engine::Load(mappings_dir);
            const auto& plan = engine->plan();
            std::string report = o->format == "html" ? mapping::RenderMappingsHtml(plan) : mapping::RenderMappingsJson(plan);
            return WriteOutput(o->out, report) ? kExitOk : kExitFailure;
          }};
}

}  // namespace caregate::cli
