#pragma once
// Engine: the registered adapters plus the compiled mapping plan, loaded once at start
// and shared (read-only, thread-safe) by the CLI, the export job and the server.
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <string_view>

#include "caregate/adapters/adapter.h"
#include "caregate/mapping/mapping_plan.h"
#include "caregate/model/care_record.h"

namespace caregate::engine {

class Engine {
 public:
  // Throws FatalError(kMappingTables) listing every problem (file:line: problem).
  static std::shared_ptr<const Engine> Load(const std::string& mappings_dir = {});
  // The same, with the problems returned one by one (path "file:line") instead of thrown.
  static Expected<std::shared_ptr<const Engine>> TryLoad(const std::string& mappings_dir = {});

  const adapters::AdapterRegistry& registry() const { return registry_; }
  const mapping::MappingPlan& plan() const { return *plan_; }
  const adapters::Adapter& adapter(std::string_view system) const;  // throws FatalError(kUsage)

  // Parse + validate + map one record's bytes.
  // with_lineage: record provenance per field (needed for canonical output, the store
  // and IG lineage; translation to another system can skip it).
  // `readable_ids`: for a refused record, the ids it names in fields that map without a
  // problem (MappingPlan::Read); none when the bytes do not parse. For the refusal's audit
  // event, without parsing the bytes a second time.
  Expected<model::CareRecord> Read(std::string_view system, std::string_view bytes, bool with_lineage = true,
                                   std::vector<std::string>* readable_ids = nullptr) const;
  Expected<model::CareRecord> Read(std::string_view system, const SourceNode& tree, bool with_lineage = true,
                                   std::vector<std::string>* readable_ids = nullptr) const {
    return plan_->Read(system, tree, with_lineage, readable_ids);
  }
  // Render a record for a system ("systmone", "cis") or "canonical".
  void Render(std::string& out, const model::CareRecord& record, std::string_view to, bool in_batch,
              mapping::WriteReport* report = nullptr) const;

 private:
  // Streaming readers kept between calls (their buffers keep their capacity): taken and
  // returned under a lock, so any number of threads can read at once.
  struct ReaderPool {
    std::mutex m;
    std::vector<std::pair<std::string, std::unique_ptr<mapping::RecordReader>>> free;
  };
  std::unique_ptr<mapping::RecordReader> TakeReader(std::string_view system) const;
  void ReturnReader(std::string_view system, std::unique_ptr<mapping::RecordReader> reader) const;

  adapters::AdapterRegistry registry_;
  std::shared_ptr<const mapping::MappingPlan> plan_;
  mutable ReaderPool readers_;
};

}  // namespace caregate::engine
