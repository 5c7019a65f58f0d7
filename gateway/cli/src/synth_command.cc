#include <cstdio>
#include <memory>

#include "caregate/cli/cli.h"
#include "caregate/synth/synth.h"

namespace caregate::cli {

Command AddSynthCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand("synth", "Write deterministic synthetic records (CIS NDJSON or a SystmOne batch)");
  auto o = std::make_shared<synth::SynthOptions>();
  auto out = std::make_shared<std::string>();
  app->add_option("--records", o->records, "How many records")->required()->transform(WholeNumber());
  app->add_option("--seed", o->seed, "Seed (same seed, same bytes)")->transform(WholeNumber());
  app->add_option("--format", o->format, "cis | systmone")->required()->check(CLI::IsMember({"cis", "systmone"}));
  app->add_option("--invalid-every", o->invalid_every, "Make every Nth record invalid (for testing rejects)")
      ->transform(WholeNumber());
  app->add_option("--out", *out, "Write to this file instead of stdout");
  return {app, [o, out, &mappings_dir]() -> int {
            auto engine = engine::Engine::Load(mappings_dir);
            std::unique_ptr<FILE, int (*)(FILE*)> f(out->empty() ? stdout : std::fopen(out->c_str(), "wb"),
                                                   out->empty() ? [](FILE*) { return 0; } : &std::fclose);
            if (!f) {
              Error(*out, "cannot open for writing");
              return kExitFailure;
            }
            synth::WriteSynth(*engine, *o, f.get());
            if (std::ferror(f.get())) {
              Error(out->empty() ? "stdout" : *out, "write failed");
              return kExitFailure;
            }
            return kExitOk;
          }};
}

}  // namespace caregate::cli
