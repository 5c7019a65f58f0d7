#pragma once
// MappingPlan: the mapping tables (mappings/<system>.csv plus mappings/codesets/*.csv)
// compiled once into a plan that reads a system's SourceNode tree into a CareRecord and
// writes a CareRecord back out as that system's tree. An IG officer reads the same CSV
// files the engine runs.
//
// System table columns: rule, canonical, path, transform, direction, lossy, purpose.
//   canonical  a registry field ("person.family_name"), a collection with optional filter
//              ("episodes[kind=request]", "care_plans[]"), or "-" (checked/constant only)
//   path       slash-separated from the record root; "Name[]" repeats; "@Attr" attribute;
//              a collection with an empty path shares its parent's node
//   transform  text | id | nhs_number | date | datetime | bool | number | integer |
//              postcode | lines | code:<set> | const:<value> | group
//   direction  both | in (system -> canonical) | out (canonical -> system)
//   lossy      yes | no: the rule may lose information; required when its code set does
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/error.h"
#include "caregate/core/source_tree.h"
#include "caregate/core/tree_sink.h"
#include "caregate/mapping/code_set.h"
#include "caregate/model/care_record.h"

namespace caregate::mapping {

enum class PathStyle { kXPath, kJsonPointer };

// What the engine needs to know about a system; supplied by its adapter.
// A record keeps at most this many unmapped source items (the rest are not kept: a
// record of a million unknown elements must not take a million items of memory).
inline constexpr std::size_t kMaxUnmappedItems = 1000;

struct SystemProfile {
  std::string name;          // "systmone"; its table is mappings/<name>.csv
  std::string display_name;  // "SystmOne"
  PathStyle path_style = PathStyle::kJsonPointer;
  std::string root_name;     // XML root element ("ClientIntegrationResponse"); "" for JSON
  bool emit_nulls = false;   // write empty values as null (JSON) rather than omit them
  std::string record_id_field;  // canonical field holding this system's own person id
};

enum class Direction { kBoth, kIn, kOut };

struct Rule {
  std::string id;
  std::string canonical;  // as written in the table
  std::string path;
  std::string transform;
  Direction direction = Direction::kBoth;
  bool lossy = false;
  std::string purpose;
  std::string file;
  int line = 0;
  bool is_group = false;
};

// What writing a record left behind: canonical content the target cannot carry, and
// values written lossily.
struct WriteReport {
  std::vector<std::string> not_carried;  // canonical paths with content and no rule
  std::vector<model::Provenance> lossy;  // field, target path, rule
};

class SystemPlan;

class MappingPlan {
 public:
  // Loads and checks every table; on any problem returns all of them, each with file:line.
  static Expected<std::shared_ptr<const MappingPlan>> Compile(const std::string& dir,
                                                              const std::vector<SystemProfile>& systems);
  ~MappingPlan();

  // Source tree -> canonical record, validating every field; all errors are returned.
  // Lineage (provenance per field) costs time; translation to another system skips it.
  // When the record is refused and `readable_ids` is given, it receives the person ids
  // (prefixed, as CareRecord::person_ids) the record carries in fields that map without a
  // problem, for the refusal's audit event: an id whose own field is wrong (an NHS number
  // failing Modulus 11, an id that is not a string) is left out; none for a wrong root.
  Expected<model::CareRecord> Read(std::string_view system, const SourceNode& root, bool with_lineage = true,
                                   std::vector<std::string>* readable_ids = nullptr) const;
  // Canonical record -> the system's tree (root named profile.root_name).
  SourceNode Write(std::string_view system, const model::CareRecord& record, WriteReport* report = nullptr) const;
  // The same, streamed: the contents of the record's root node go to `sink` (the caller
  // opens and closes the root itself). No tree is built.
  void WriteTo(std::string_view system, const model::CareRecord& record, TreeSink& sink,
               WriteReport* report = nullptr) const;

  const SystemProfile* Profile(std::string_view system) const;
  const std::vector<Rule>& Rules(std::string_view system) const;
  const std::map<std::string, std::shared_ptr<const CodeSet>, std::less<>>& code_sets() const { return code_sets_; }
  std::vector<std::string> systems() const;
  // SHA-256 over every table file (names and bytes): the "mapping tables' version".
  const std::string& version() const { return version_; }
  const std::string& dir() const { return dir_; }

 private:
  friend class RecordReader;
  MappingPlan() = default;
  const SystemPlan& Plan(std::string_view system) const;
  std::string dir_, version_;
  std::map<std::string, std::shared_ptr<const CodeSet>, std::less<>> code_sets_;
  std::map<std::string, std::unique_ptr<SystemPlan>, std::less<>> plans_;
};

// Reads one record from a parser's stream of events (TreeSink), mapping each value as it
// arrives instead of walking a tree: the same record, the same errors and the same
// lineage as MappingPlan::Read on the tree the events describe, without building it.
// For systems addressed by JSON Pointer (an XPath index needs the whole sibling list).
// Reusable: Begin before each record, feed the events, then Finish.
class RecordReader : public TreeSink {
 public:
  // Throws FatalError(kInternal) for an XPath system.
  RecordReader(const MappingPlan& plan, std::string_view system);
  ~RecordReader() override;
  void Begin(bool with_lineage);
  Expected<model::CareRecord> Finish();
  // Finish without moving the record out: it stays in the reader, valid until the next
  // Begin, which rebuilds the next record in the same storage (its strings and arrays
  // are not allocated again).
  Expected<const model::CareRecord*> FinishInPlace();
  // After a Finish that refused the record (until the next Begin): the ids it carries in
  // fields that mapped without a problem, as MappingPlan::Read's `readable_ids`.
  std::vector<std::string> ReadableIds() const;

  void Open(std::string_view name) override;
  void Close() override;
  void OpenArray(std::string_view name) override;
  void CloseArray() override;
  void Value(std::string_view name, std::string_view value, NodeKind kind) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The record-level rules the contract defines (spec 3, 4.3, 4.4), listed for reports.
struct RecordRule {
  std::string id;
  std::string description;
};
const std::vector<RecordRule>& RecordRules();

// Locates the shipped tables: $CAREGATE_MAPPINGS, then <exe>/../share/caregate/mappings,
// then the source tree's mappings/ (compiled in).
std::string DefaultMappingsDir();

}  // namespace caregate::mapping
