#include "caregate/engine/engine.h"

#include "caregate/core/text.h"

#include "caregate/model/canonical_json.h"

namespace caregate::engine {

Expected<std::shared_ptr<const Engine>> Engine::TryLoad(const std::string& mappings_dir) {
  auto e = std::make_shared<Engine>();
  adapters::RegisterBuiltinAdapters(e->registry_);
  std::string dir = mappings_dir.empty() ? mapping::DefaultMappingsDir() : mappings_dir;
  auto plan = mapping::MappingPlan::Compile(dir, e->registry_.profiles());
  if (!plan) return plan.errors();
  e->plan_ = plan.value();
  return std::shared_ptr<const Engine>(std::move(e));
}

std::shared_ptr<const Engine> Engine::Load(const std::string& mappings_dir) {
  auto engine = TryLoad(mappings_dir);
  if (!engine) {
    std::string msg = "mapping tables refused:";
    // One line a problem: a line end quoted from a table cell must not start another.
    for (const auto& err : engine.errors()) msg += "\n  " + OneLine(err.path + ": " + err.problem);
    throw FatalError(Problem::kMappingTables, msg);
  }
  return engine.value();
}

const adapters::Adapter& Engine::adapter(std::string_view system) const {
  const adapters::Adapter* a = registry_.Find(system);
  if (!a) throw FatalError(Problem::kUsage, "unknown system '" + std::string(system) + "'");
  return *a;
}

Expected<model::CareRecord> Engine::Read(std::string_view system, std::string_view bytes, bool with_lineage,
                                         std::vector<std::string>* readable_ids) const {
  const adapters::Adapter& a = adapter(system);
  if (a.profile().path_style == mapping::PathStyle::kJsonPointer) {
    // Mapped as it is parsed: no tree (the same result as the tree path, see RecordReader).
    // The reader goes back to the pool on the way out, after the result is built in
    // place (both returns below are prvalues: the record is not moved again).
    struct Lease {
      const Engine& engine;
      std::string_view system;
      std::unique_ptr<mapping::RecordReader> reader;
      ~Lease() {
        try {
          engine.ReturnReader(system, std::move(reader));
        } catch (...) {  // out of memory for the pool's slot: the reader is merely dropped
        }
      }
    } lease{*this, system, TakeReader(system)};
    lease.reader->Begin(with_lineage);
    FieldErrors errors = a.ParseEvents(bytes, *lease.reader);
    if (!errors.empty()) return Expected<model::CareRecord>(std::move(errors));
    auto record = lease.reader->Finish();
    if (!record && readable_ids) *readable_ids = lease.reader->ReadableIds();
    return record;
  }
  auto tree = a.Parse(bytes);
  if (!tree) return tree.errors();
  return plan_->Read(system, tree.value(), with_lineage, readable_ids);
}

std::unique_ptr<mapping::RecordReader> Engine::TakeReader(std::string_view system) const {
  {
    std::lock_guard<std::mutex> lock(readers_.m);
    for (auto it = readers_.free.rbegin(); it != readers_.free.rend(); ++it)
      if (it->first == system) {
        std::unique_ptr<mapping::RecordReader> r = std::move(it->second);
        readers_.free.erase(std::next(it).base());
        return r;
      }
  }
  return std::make_unique<mapping::RecordReader>(*plan_, system);
}

void Engine::ReturnReader(std::string_view system, std::unique_ptr<mapping::RecordReader> reader) const {
  std::lock_guard<std::mutex> lock(readers_.m);
  if (readers_.free.size() < 64) readers_.free.emplace_back(std::string(system), std::move(reader));
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
