// model::Reset (field_registry.h): a record emptied for reuse holds nothing of before.
#include "caregate/model/field_registry.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace caregate::model {
namespace {

// Reset clears the record-level strings through the registry and every other member by
// name. These sizes fail when a member is added to CareRecord, Person or Envelope
// without a registry entry or a line in Reset.
TEST(ModelReset, EveryMemberIsAccountedFor) {
  const auto record_fields = FieldsOf(Entity::kRecord);
  EXPECT_EQ(record_fields.size() * sizeof(std::string), sizeof(Person) + sizeof(Envelope))
      << "Person and Envelope hold strings only, each one a registry field";
  EXPECT_EQ(sizeof(CareRecord), 2 * sizeof(std::string) + sizeof(Envelope) + sizeof(Person) +
                                    7 * sizeof(std::vector<Episode>))
      << "a member was added to CareRecord: clear it in model::Reset";
  // ...and the registry's accessors reach each of those strings once.
  CareRecord r;
  std::set<const std::string*> seen;
  for (const FieldDef* f : record_fields) {
    const std::string* s = &f->get(&r);
    EXPECT_TRUE(seen.insert(s).second) << f->name;
    const auto* p = reinterpret_cast<const char*>(s);
    const bool in_person = p >= reinterpret_cast<const char*>(&r.person) &&
                           p < reinterpret_cast<const char*>(&r.person) + sizeof(Person);
    const bool in_envelope = p >= reinterpret_cast<const char*>(&r.envelope) &&
                             p < reinterpret_cast<const char*>(&r.envelope) + sizeof(Envelope);
    EXPECT_TRUE(in_person || in_envelope) << f->name;
  }
}

// FieldDef::At (the offset measured once) reaches the same string as get(), on entities
// other than the one the offsets were measured on.
TEST(FieldRegistry, AtIsGet) {
  EntityInstances others;  // not the instances the offsets were measured on
  for (const FieldDef& f : AllFields()) {
    void* e = others.Of(f.owner);
    ASSERT_NE(e, nullptr) << f.name;
    EXPECT_EQ(&f.At(e), &f.get(e)) << f.name;
    f.At(e) = std::string(f.name);  // and writing through it is seen by get()
    EXPECT_EQ(f.get(e), f.name);
  }
}

TEST(ModelReset, LeavesNothingOfTheRecordAndKeepsItsStorage) {
  CareRecord r;
  const std::string long_value(200, 'v');
  for (const FieldDef* f : FieldsOf(Entity::kRecord)) f->get(&r) = long_value;
  r.source_system = "cis";
  r.source_record_id = "LCC-1";
  r.episodes.emplace_back().reference = "E1";
  r.care_plans.emplace_back().goals.emplace_back().description = "walk";
  r.visits.emplace_back().reference = "V1";
  r.entries.emplace_back().text = "note";
  r.tasks.emplace_back().content = "call";
  r.unmapped.push_back({"/X", "y"});
  r.lineage.push_back({"person.family_name", "/Surname", "CIS-1", false});
  const std::size_t episodes_capacity = r.episodes.capacity();

  Reset(r);

  for (const FieldDef* f : FieldsOf(Entity::kRecord)) {
    EXPECT_TRUE(f->get(&r).empty()) << f->name;
    EXPECT_GE(f->get(&r).capacity(), long_value.size()) << f->name << ": storage kept";
  }
  EXPECT_TRUE(r.source_system.empty());
  EXPECT_TRUE(r.source_record_id.empty());
  EXPECT_TRUE(r.episodes.empty());
  EXPECT_TRUE(r.care_plans.empty());
  EXPECT_TRUE(r.visits.empty());
  EXPECT_TRUE(r.entries.empty());
  EXPECT_TRUE(r.tasks.empty());
  EXPECT_TRUE(r.unmapped.empty());
  EXPECT_TRUE(r.lineage.empty());
  EXPECT_EQ(r.episodes.capacity(), episodes_capacity);
}

}  // namespace
}  // namespace caregate::model
