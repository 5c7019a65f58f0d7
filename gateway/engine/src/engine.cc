#include "caregate/engine/engine.h"

#include "caregate/model/canonical_json.h"

namespace caregate::engine {

std::shared_ptr<const Engine> Engine::Load(const std::string& mappings_dir) {
  auto e = std::make_shared<Engine>();
  adapters::RegisterBuiltinAdapters(e->registry_);
  std::string dir = mappings_dir.empty() ? mapping::DefaultMappingsDir() : mappings_dir;
  auto plan = mapping::MappingPlan::Compile(dir, e->registry_.profiles());
  if (!plan) {
    std::string msg = "mapping tables refused:";
    for (const auto& err : plan.errors()) msg += "\n  " + err.path + ": " + err.problem;
    throw FatalError(Problem::kMappingTables, msg);
  }
  e->plan_ = plan.value();
  return e;
}

const adapters::Adapter& Engine::adapter(std::string_view system) const {
  const adapters::Adapter* a = registry_.Find(system);
  if (!a) throw FatalError(Problem::kUsage, "unknown system '" + std::string(system) + "'");
  return *a;
}

Expected<model::CareRecord> Engine::Read(std::string_view system, std::string_view bytes, bool with_lineage) const {
  const adapters::Adapter& a = adapter(system);
  if (a.profile().path_style == mapping::PathStyle::kJsonPointer) {
    // Mapped as it is parsed: no tree (the same result as the tree path, see RecordReader).
    mapping::RecordReader reader(*plan_, system);
    reader.Begin(with_lineage);
    if (FieldErrors errors = a.ParseEvents(bytes, reader); !errors.empty()) return errors;
    return reader.Finish();
  }
  auto tree = a.Parse(bytes);
  if (!tree) return tree.errors();
  return plan_->Read(system, tree.value(), with_lineage);
}

void Engine::Render(std::string& out, const model::CareRecord& record, std::string_view to, bool in_batch,
                    mapping::WriteReport* report) const {
  if (to == "canonical") {
    model::CanonicalJsonOptions opt;
    opt.pretty = !in_batch;
    out += model::ToCanonicalJson(record, opt);
    out += '\n';
    return;
  }
  adapter(to).AppendStreamed(out, in_batch, [&](TreeSink& sink) { plan_->WriteTo(to, record, sink, report); });
}

}  // namespace caregate::engine
