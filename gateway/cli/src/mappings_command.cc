#include <cstdio>

#include "caregate/cli/cli.h"
#include "caregate/mapping/report.h"
#include "caregate/engine/engine.h"

namespace caregate::cli {

bool WriteOutput(const std::string& path, const std::string& data);

Command AddMappingsCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand("mappings", "Check or report the mapping tables");
  struct Opts {
    std::string action, format = "json", out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("action", o->action, "check | report")->required()->check(CLI::IsMember({"check", "report"}));
  app->add_option("--format", o->format, "json | html")->check(CLI::IsMember({"json", "html"}));
  app->add_option("--out", o->out, "Write the report to this file");
  return {app, [o, &mappings_dir]() -> int {
            std::shared_ptr<const engine::Engine> engine;
            try {
              engine = engine::Engine::Load(mappings_dir);
            } catch (const FatalError& e) {
              if (o->action != "check") throw;
              // One line per problem, each naming file and line.
              std::string msg = e.what();
              size_t start = msg.find('\n');
              while (start != std::string::npos) {
                size_t end = msg.find('\n', start + 1);
                std::string line = msg.substr(start + 3, end == std::string::npos ? std::string::npos : end - start - 3);
                Error("", line);
                start = end;
              }
              return kExitDataErr;
            }
            const auto& plan = engine->plan();
            if (o->action == "check") {
              size_t rules = 0;
              std::string per;
              for (const auto& sys : plan.systems()) {
                rules += plan.Rules(sys).size();
                per += (per.empty() ? "" : ", ") + sys + " " + std::to_string(plan.Rules(sys).size());
              }
              std::string msg = "mapping tables OK: " + std::to_string(rules) + " rules (" + per + "), " +
                                std::to_string(plan.code_sets().size()) + " code sets, version " + plan.version() +
                                " (" + plan.dir() + ")\n";
              return WriteOutput(o->out, msg) ? kExitOk : kExitFailure;
            }
            std::string report = o->format == "html" ? mapping::RenderMappingsHtml(plan) : mapping::RenderMappingsJson(plan);
            return WriteOutput(o->out, report) ? kExitOk : kExitFailure;
          }};
}

}  // namespace caregate::cli
