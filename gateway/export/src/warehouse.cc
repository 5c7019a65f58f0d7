#include "caregate/export/warehouse.h"

#include <charconv>
#include <functional>

#include "caregate/core/error.h"
#include "caregate/core/text.h"

namespace caregate::exporter {
namespace {

using model::CollectionDef;
using model::Entity;
using model::FieldDef;

// Column name of a field: record-level names lose "person." and use '_' for '.'
// ("person.address.town" -> "address_town", "envelope.device_id" -> "envelope_device_id");
// collection items use their local name ("reference").
std::string ColumnName(const FieldDef& f) {
  std::string_view n = f.owner == Entity::kRecord ? f.name : f.local;
  if (f.owner == Entity::kRecord && n.starts_with("person.")) n.remove_prefix(7);
  std::string out(n);
  for (char& c : out)
    if (c == '.') c = '_';
  return out;
}

std::string PositionColumn(const CollectionDef& c) { return std::string(model::EntityName(c.item)) + "_no"; }

void FinishHeader(WarehouseTable& t) {
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    if (i) t.header += ',';
    AppendCsvField(t.header, t.columns[i].name);
  }
  t.header += "\r\n";
}

std::vector<WarehouseTable> BuildTables() {
  std::vector<WarehouseTable> tables;
  auto add_fields = [](WarehouseTable& t) {
    for (const FieldDef* f : model::FieldsOf(t.entity))
      t.columns.push_back({ColumnName(*f), WarehouseColumn::Kind::kField, f, nullptr});
  };
  WarehouseTable persons;
  persons.name = "persons";
  persons.columns.push_back({"person_key", WarehouseColumn::Kind::kPersonKey, nullptr, nullptr});
  add_fields(persons);
  tables.push_back(std::move(persons));
  // Each collection, in registry order, with the chain of collections leading to it.
  std::function<void(Entity, std::vector<const CollectionDef*>)> walk = [&](Entity owner,
                                                                          std::vector<const CollectionDef*> chain) {
    for (const CollectionDef* c : model::CollectionsOf(owner)) {
      auto sub = chain;
      sub.push_back(c);
      WarehouseTable t;
      t.name = std::string(c->local);
      t.entity = c->item;
      t.chain = sub;
      t.columns.push_back({"person_key", WarehouseColumn::Kind::kPersonKey, nullptr, nullptr});
      for (const CollectionDef* step : sub)
        t.columns.push_back({PositionColumn(*step), WarehouseColumn::Kind::kPosition, nullptr, step});
      add_fields(t);
      tables.push_back(std::move(t));
      walk(c->item, sub);
    }
  };
  walk(Entity::kRecord, {});
  // Registry order puts nested collections right after their parent; keep the
  // registry's own declaration order instead, so tables read like the model.
  std::vector<WarehouseTable> ordered;
  ordered.push_back(std::move(tables[0]));
  for (const auto& c : model::AllCollections())
    for (auto& t : tables)
      if (!t.chain.empty() && t.chain.back() == &c) ordered.push_back(std::move(t));
  WarehouseTable unmapped;
  unmapped.name = "unmapped";
  unmapped.unmapped = true;
  unmapped.columns.push_back({"person_key", WarehouseColumn::Kind::kPersonKey, nullptr, nullptr});
  unmapped.columns.push_back({"item_no", WarehouseColumn::Kind::kPosition, nullptr, nullptr});
  unmapped.columns.push_back({"source_path", WarehouseColumn::Kind::kUnmappedPath, nullptr, nullptr});
  unmapped.columns.push_back({"value", WarehouseColumn::Kind::kUnmappedValue, nullptr, nullptr});
  ordered.push_back(std::move(unmapped));
  for (auto& t : ordered) FinishHeader(t);
  // Table names become file names and must not collide.
  for (std::size_t i = 0; i < ordered.size(); ++i)
    for (std::size_t j = i + 1; j < ordered.size(); ++j)
      if (ordered[i].name == ordered[j].name)
        throw FatalError(Problem::kInternal, "warehouse: two tables named '" + ordered[i].name + "'");
  return ordered;
}

// A CSV field and the separator before it (unless first), with one bounds check.
inline void PutField(TextBuffer& out, bool first, std::string_view s) {
  char* p = out.Room(CsvFieldMax(s) + 1);
  if (!first) *p++ = ',';
  out.Done(WriteCsvField(p, s));
}

inline void PutNumber(TextBuffer& out, bool first, std::size_t n) {
  char* p = out.Room(24);
  if (!first) *p++ = ',';
  out.Done(std::to_chars(p, p + 22, n).ptr);
}

inline void EndRow(TextBuffer& out) {
  char* p = out.Room(2);
  *p++ = '\r';
  *p++ = '\n';
  out.Done(p);
}

// Appends every row of table `t` reachable from `entity` at chain depth `level`.
void AppendRows(const WarehouseTable& t, std::size_t level, void* entity, std::string_view key,
                std::size_t* positions, TextBuffer& out) {
  if (level == t.chain.size()) {
    bool first = true;
    std::size_t pos = 0;
    for (const auto& col : t.columns) {
      switch (col.kind) {
        case WarehouseColumn::Kind::kPersonKey: PutField(out, first, key); break;
        case WarehouseColumn::Kind::kPosition: PutNumber(out, first, positions[pos++]); break;
        case WarehouseColumn::Kind::kField: PutField(out, first, col.field->At(entity)); break;
        default: PutField(out, first, {}); break;
      }
      first = false;
    }
    EndRow(out);
    return;
  }
  const CollectionDef* c = t.chain[level];
  std::size_t n = c->size(entity);
  for (std::size_t i = 0; i < n; ++i) {
    positions[level] = i + 1;
    AppendRows(t, level + 1, c->at(entity, i), key, positions, out);
  }
}

std::string Code(std::string_view s) { return "`" + std::string(s) + "`"; }

// Markdown table cells may not hold '|' or line breaks.
std::string Cell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string TableIntro(const WarehouseTable& t) {
  if (t.unmapped)
    return "Source data that no mapping rule reads (unknown keys, values kept as written): kept and reported, "
           "never silently dropped. One row per item, in source order.";
  switch (t.entity) {
    case Entity::kRecord:
      return "One row per record written to the warehouse: the person, their identifiers, demographics, "
             "address, contacts, CLD fields and sharing flags (the envelope columns are SystmOne's and stay "
             "empty for CIS extracts).";
    case Entity::kEpisode: return "CIS events (request, assessment, service, review): one row per event.";
    case Entity::kCarePlan:
      return "Care plans. CIS goals are not grouped into plans, so a CIS record with goals has one implicit "
             "plan (its columns empty) holding them.";
    case Entity::kGoal: return "Goals agreed with the person, one row per goal, within their care plan.";
    case Entity::kVisit: return "Visits (SystmOne community unit); empty for CIS extracts.";
    case Entity::kEntry: return "Dated entries: CIS case notes (SystmOne clinical events), one row per note.";
    case Entity::kCode: return "Clinical codes of an entry (SystmOne only); empty for CIS extracts.";
    case Entity::kMedication: return "Medication of an entry (SystmOne only); empty for CIS extracts.";
    case Entity::kAttachment: return "Attachment metadata of an entry (SystmOne only); empty for CIS extracts.";
    case Entity::kTask: return "Non-clinical tasks (SystmOne only); empty for CIS extracts.";
  }
  return {};
}

// Where a canonical field comes from in one system's table: "`path` (transform)".
std::string Source(const mapping::MappingPlan& plan, std::string_view system, const FieldDef& f,
                   std::string* purpose) {
  std::string out;
  for (const auto& r : plan.Rules(system)) {
    if (r.canonical != f.name || r.direction == mapping::Direction::kOut) continue;
    if (!out.empty()) out += "; ";
    out += Code(r.path) + " (" + r.transform + ", rule " + r.id + ")";
    if (purpose && purpose->empty()) *purpose = r.purpose;
  }
  if (!out.empty()) return out;
  // Values the record rules derive rather than read (mapping::RecordRules).
  std::string_view n = f.name;
  if (system == "cis" && (n == "person.address.house_name" || n == "person.address.house_number" ||
                          n == "person.address.road" || n == "person.address.locality"))
    return "derived from `Address/Line_1..3` (rule ADDR-4.3)";
  if (system == "systmone" &&
      (n == "person.address.line_1" || n == "person.address.line_2" || n == "person.address.line_3"))
    return "derived from the structured address (rule ADDR-4.3)";
  return "-";
}

}  // namespace

const std::vector<WarehouseTable>& WarehouseTables() {
  static const std::vector<WarehouseTable> kTables = BuildTables();
  return kTables;
}

void AppendWarehouseRows(const model::CareRecord& record, std::string_view person_key,
                         std::vector<TextBuffer>& out) {
  const auto& tables = WarehouseTables();
  void* root = const_cast<model::CareRecord*>(&record);  // accessors are non-const; nothing is modified
  std::size_t positions[8];
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const WarehouseTable& t = tables[i];
    TextBuffer& o = out[i];
    if (t.unmapped) {
      std::size_t n = 0;
      for (const auto& u : record.unmapped) {
        PutField(o, true, person_key);
        PutNumber(o, false, ++n);
        PutField(o, false, u.source_path);
        PutField(o, false, u.value);
        EndRow(o);
      }
      continue;
    }
    AppendRows(t, 0, root, person_key, positions, o);
  }
}

std::string WarehouseMarkdown(const mapping::MappingPlan& plan) {
  std::string md;
  md += "# Warehouse tables\n\n";
  md += "<!-- Generated from the canonical field registry and the mapping tables by\n"
        "     `caregate export --describe-warehouse > docs/warehouse.md`; the test\n"
        "     ExportWarehouse.DocsPageMatchesRegistry fails when this page is out of date. -->\n\n";
  md += "`caregate export` writes the canonical record of every exported or withheld CIS record into "
        "`warehouse/*.csv` (see [export.md](export.md)). The tables are generated from the canonical model "
        "(`gateway/model`), so a field added to the model appears here and in the CSV files without further "
        "work.\n\n";
  md += "Format: RFC 4180 (comma-separated, fields containing a comma, quote, CR or LF are quoted, quotes "
        "doubled, CRLF line ends), UTF-8 without BOM, one header row; a control character other than TAB, CR "
        "and LF (a NUL, which loaders refuse) is written as U+FFFD. An empty field means \"not recorded\". "
        "Values are in their canonical form: dates `YYYY-MM-DD`, date-times ISO 8601 with offset, codes from "
        "`mappings/codesets/*.csv` (the `code` column), booleans `true`/`false`, numbers as decimal text.\n\n";
  md += "Keys: every row starts with `person_key`, the person's key in the export: `cis:` followed by the "
        "CIS id (`LA_Person_Unique_Identifier`), or `s1:`/`nhs:` when a record has no CIS id. A collection "
        "row also carries its 1-based position within each enclosing collection (`episode_no`, "
        "`care_plan_no` + `goal_no`, ...), in source order, so (`person_key`, positions) is the row's key.\n\n";
  md += "Loading: the files of one run hold only the records written by that run (all of them with "
        "`--full` or on the first run; otherwise the records new or changed since the last completed run). "
        "Load a run by replacing, for each `person_key` in `persons.csv`, every row of that person in every "
        "table.\n\n";
  for (const auto& t : WarehouseTables()) {
    md += "## " + t.file() + "\n\n" + TableIntro(t) + "\n\n";
    md += "| column | canonical field | CIS source | SystmOne source | meaning |\n";
    md += "| --- | --- | --- | --- | --- |\n";
    for (const auto& col : t.columns) {
      md += "| " + Code(col.name) + " | ";
      switch (col.kind) {
        case WarehouseColumn::Kind::kPersonKey:
          md += "- | `LA_Person_Unique_Identifier` (else `SystmOne_Identifier`, `NHS_Number`) | - | "
                "The person's key (`cis:...`); joins this table to `persons.csv` |\n";
          break;
        case WarehouseColumn::Kind::kPosition:
          if (col.collection)
            md += Code(col.collection->name) + " | - | - | Position (1-based) of the " +
                  std::string(model::EntityName(col.collection->item)) + " in `" +
                  std::string(col.collection->local) + "`, in source order |\n";
          else
            md += "- | - | - | Position (1-based) of the item among the record's unmapped data |\n";
          break;
        case WarehouseColumn::Kind::kUnmappedPath:
          md += "- | any key no rule reads | any element no rule reads | JSON Pointer (CIS) or XPath "
                "(SystmOne) of the unmapped value |\n";
          break;
        case WarehouseColumn::Kind::kUnmappedValue:
          md += "- | - | - | The value as written in the source |\n";
          break;
        case WarehouseColumn::Kind::kField: {
          std::string purpose;
          std::string cis = Source(plan, "cis", *col.field, &purpose);
          std::string s1 = Source(plan, "systmone", *col.field, &purpose);
          md += Code(col.field->name) + " | " + Cell(cis) + " | " + Cell(s1) + " | " + Cell(purpose) + " |\n";
          break;
        }
      }
    }
    md += "\n";
  }
  return md;
}

}  // namespace caregate::exporter
