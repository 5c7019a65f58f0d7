#include <cstdio>
#include <fstream>

#include "caregate/cli/cli.h"
#include "caregate/engine/engine.h"

namespace caregate::cli {

// Writes `data` to `path` (or stdout when empty); false on failure.
bool WriteOutput(const std::string& path, const std::string& data) {
  if (path.empty()) {
    return std::fwrite(data.data(), 1, data.size(), stdout) == data.size() && std::fflush(stdout) == 0;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(f.flush());
}

Command AddTranslateCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand("translate", "Translate records between SystmOne, CIS and canonical form");
  struct Opts {
    std::string from, to, input = "-", out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--from", o->from, "Source system")->required()->check(CLI::IsMember({"systmone", "cis"}));
  app->add_option("--to", o->to, "Target")->required()->check(CLI::IsMember({"systmone", "cis", "canonical"}));
  app->add_option("--out", o->out, "Write to this file instead of stdout");
  app->add_option("input", o->input, "Input file, or - for stdin (default)");
  return {app, [o, &mappings_dir]() -> int {
            auto engine = engine::Engine::Load(mappings_dir);
            const auto& from = engine->adapter(o->from);
            std::string name = o->input == "-" ? "stdin" : o->input;
            // A file or standard input ("-"), streamed: a batch is never held whole.
            Expected<std::unique_ptr<adapters::RecordStream>> stream = from.OpenFile(o->input);
            if (!stream) {
              for (const auto& e : stream.errors()) Error(name, e.path.empty() ? e.problem : e.path + ": " + e.problem);
              return kExitDataErr;
            }
            // translate is interactive-sized: records are kept so the output can be a
            // single document or a batch. The streaming path is `caregate export`.
            std::vector<model::CareRecord> good;
            size_t records = 0, invalid = 0;
            adapters::StreamRecord rec;
            while (stream.value()->Next(rec)) {
              ++records;
              Expected<model::CareRecord> cr = rec.tree.ok() ? engine->Read(o->from, rec.tree.value(), o->to == "canonical")
                                                             : Expected<model::CareRecord>(rec.tree.errors());
              if (!cr) {
                ++invalid;
                std::string where = name + ": record " + std::to_string(rec.index);
                if (rec.line) where += " (line " + std::to_string(rec.line) + ")";
                for (const auto& e : cr.errors()) Error(where, (e.path.empty() ? "(record)" : e.path) + ": " + e.problem);
                continue;
              }
              good.push_back(std::move(cr.value()));
            }
            if (records == 0) {
              Error(name, "no records found");
              return kExitDataErr;
            }
            if (records == 1 && invalid == 1) return kExitDataErr;  // nothing on stdout
            bool batch = records > 1;
            std::string out;
            if (batch && o->to != "canonical") out += engine->adapter(o->to).BatchBegin();
            for (const auto& r : good) engine->Render(out, r, o->to, batch);
            if (batch && o->to != "canonical") out += engine->adapter(o->to).BatchEnd();
            if (!WriteOutput(o->out, out)) {
              Error(o->out.empty() ? "stdout" : o->out, "write failed");
              return kExitFailure;
            }
            if (invalid > 0) {
              Error(name, std::to_string(invalid) + " of " + std::to_string(records) + " records rejected");
              return kExitDataErr;
            }
            return kExitOk;
          }};
}

}  // namespace caregate::cli
