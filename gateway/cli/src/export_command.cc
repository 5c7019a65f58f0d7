#include <unistd.h>

#include <cstdio>
#include <memory>

#include "caregate/cli/cli.h"
#include "caregate/engine/engine.h"
#include "caregate/export/export.h"
#include "caregate/export/warehouse.h"

namespace caregate::cli {

Command AddExportCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand(
      "export", "Nightly export: a CIS NDJSON extract to a SystmOne import file, warehouse tables, rejects and a "
                "manifest (docs/export.md)");
  auto o = std::make_shared<exporter::ExportOptions>();
  auto describe = std::make_shared<bool>(false);
  app->add_option("--in", o->input, "The CIS extract (NDJSON); - for standard input");
  app->add_option("--out", o->out_dir, "Output directory");
  app->add_option("--db", o->db_path, "Delta state database (default: $CAREGATE_DB, else ./caregate.db)");
  app->add_option("--run-date", o->run_date, "Run date YYYY-MM-DD (default: today)");
  app->add_flag("--full", o->full, "Export every valid record, changed since the last run or not");
  app->add_option("--workers", o->workers, "Parse/map threads (default: one per core)")->transform(WholeNumber(64));
  app->add_flag("--describe-warehouse", *describe,
                "Print the warehouse tables' documentation (docs/warehouse.md) and exit");
  return {app, [o, describe, &mappings_dir]() -> int {
            auto engine = engine::Engine::Load(mappings_dir);
            if (*describe) {
              std::string md = exporter::WarehouseMarkdown(engine->plan());
              return std::fwrite(md.data(), 1, md.size(), stdout) == md.size() && std::fflush(stdout) == 0
                         ? kExitOk
                         : kExitFailure;
            }
            if (o->input.empty() || o->out_dir.empty()) {
              Error("", "usage: caregate export --in EXTRACT.ndjson --out DIR [--db FILE] [--run-date YYYY-MM-DD] "
                        "[--full]");
              return kExitUsage;
            }
            // "-" is standard input, as for translate and ingest (read as /dev/stdin: a pipe
            // is matched against completed runs once read; docs/export.md).
            if (o->input == "-") o->input = "/dev/stdin";
            o->progress = ::isatty(STDERR_FILENO) == 1;
            o->user = CliUser();
            exporter::ExportResult r = exporter::RunExport(*engine, *o);
            if (std::string warning = exporter::SameExtractWarning(r); !warning.empty())
              std::fprintf(stderr, "%s\n", warning.c_str());
            std::string line = exporter::SummaryLine(r) + "\n";
            std::fwrite(line.data(), 1, line.size(), stdout);
            std::fflush(stdout);
            return kExitOk;
          }};
}

}  // namespace caregate::cli
