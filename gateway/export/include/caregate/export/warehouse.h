#pragma once
// The warehouse tables: the canonical record flattened into related CSV tables, derived
// from the canonical field registry (model::AllFields / AllCollections) so they always
// match the model. One table for the record itself (persons), one per collection
// (episodes, care_plans, goals, ...), and one for unmapped source data. Every row
// starts with the person key; rows of a collection item carry its 1-based position
// within each enclosing collection. docs/warehouse.md is generated from the same
// description (WarehouseMarkdown) and checked by a test, so it cannot drift.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/text_buffer.h"
#include "caregate/mapping/mapping_plan.h"
#include "caregate/model/care_record.h"
#include "caregate/model/field_registry.h"

namespace caregate::exporter {

struct WarehouseColumn {
  enum class Kind { kPersonKey, kPosition, kField, kUnmappedPath, kUnmappedValue };
  std::string name;
  Kind kind = Kind::kField;
  const model::FieldDef* field = nullptr;            // kField
  const model::CollectionDef* collection = nullptr;  // kPosition: the collection counted
};

struct WarehouseTable {
  std::string name;  // "persons"; the file is warehouse/<name>.csv
  model::Entity entity = model::Entity::kRecord;
  bool unmapped = false;  // the unmapped-source-data table (not a registry entity)
  // Collections from the record down to this table's entity (empty for persons).
  std::vector<const model::CollectionDef*> chain;
  std::vector<WarehouseColumn> columns;
  std::string header;  // the CSV header line, CRLF-terminated
  std::string file() const { return name + ".csv"; }
};

// All tables, in a fixed order (persons first, then the registry's collections in
// declaration order, then unmapped).
const std::vector<WarehouseTable>& WarehouseTables();

// Appends the record's rows to out[t] for every table t (out.size() == tables).
// Fields are written as held in the canonical record (RFC 4180 quoting, CRLF).
void AppendWarehouseRows(const model::CareRecord& record, std::string_view person_key,
                         std::vector<TextBuffer>& out);

// docs/warehouse.md: every table and column, with its canonical field, its source in
// each system's mapping table and the rule's purpose.
std::string WarehouseMarkdown(const mapping::MappingPlan& plan);

}  // namespace caregate::exporter
