#pragma once
// The canonical model's schema as data: every canonical field and collection by name,
// with type-erased accessors. Mapping tables name these fields ("person.family_name",
// "episodes[].reference", "care_plans[].goals[].status"); the mapping engine, the
// canonical JSON form and the warehouse tables all walk the same registry.
#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/model/care_record.h"

namespace caregate::model {

enum class Entity { kRecord, kEpisode, kCarePlan, kGoal, kVisit, kEntry, kCode, kMedication, kAttachment, kTask };

struct FieldDef {
  std::string_view name;   // full canonical name, e.g. "episodes[].reference"
  std::string_view local;  // name inside its entity, e.g. "reference"
  Entity owner;
  std::string& (*get)(void* entity);
  // Where get() finds the string inside its entity (set by AllFields): At() is the same
  // access without a call through a pointer, for the per-record loops.
  std::size_t offset = 0;
  std::string& At(void* entity) const {
    return *std::launder(reinterpret_cast<std::string*>(static_cast<char*>(entity) + offset));
  }
};

struct CollectionDef {
  std::string_view name;   // full canonical name, e.g. "care_plans[].goals[]"
  std::string_view local;  // e.g. "goals"
  Entity owner;
  Entity item;
  std::size_t (*size)(void* owner);
  void* (*at)(void* owner, std::size_t i);
  void* (*append)(void* owner);
};

const std::vector<FieldDef>& AllFields();
const std::vector<CollectionDef>& AllCollections();
const FieldDef* FindField(std::string_view full_name);
const CollectionDef* FindCollection(std::string_view full_name);  // with trailing "[]"
// Fields and collections directly owned by an entity, in declaration order.
std::vector<const FieldDef*> FieldsOf(Entity e);
std::vector<const CollectionDef*> CollectionsOf(Entity e);
std::string_view EntityName(Entity e);

// One default-constructed instance of every entity type: the registry measures its
// fields' offsets on them (FieldDef::At), and tests exercise the accessors on them.
struct EntityInstances {
  CareRecord record;
  Episode episode;
  CarePlan care_plan;
  Goal goal;
  Visit visit;
  Entry entry;
  ClinicalCode code;
  Medication medication;
  Attachment attachment;
  Task task;
  void* Of(Entity e);
};

// Empties `r` to what a default-constructed record holds, keeping the storage of its
// record-level strings and of its collections' arrays: a reader that fills one record
// after another then does not allocate them again. (Every member is cleared; the
// model's tests check that no member is missed.)
void Reset(CareRecord& r);

}  // namespace caregate::model
