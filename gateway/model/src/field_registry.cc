#include "caregate/model/field_registry.h"

#include <unordered_map>

#include "caregate/model/care_record.h"

namespace caregate::model {
namespace {

#define CG_RECORD_FIELD(full, local, expr) \
  FieldDef{full, local, Entity::kRecord, [](void* e) -> std::string& { return static_cast<CareRecord*>(e)->expr; }}
#define CG_FIELD(full, type, ent, member) \
  FieldDef{full, #member, Entity::ent, [](void* e) -> std::string& { return static_cast<type*>(e)->member; }}

std::vector<FieldDef> BuildFields() {
  return {
      CG_RECORD_FIELD("envelope.request_uid", "request_uid", envelope.request_uid),
      CG_RECORD_FIELD("envelope.function", "function", envelope.function),
      CG_RECORD_FIELD("envelope.function_version", "function_version", envelope.function_version),
      CG_RECORD_FIELD("envelope.response_uid", "response_uid", envelope.response_uid),
      CG_RECORD_FIELD("envelope.device_id", "device_id", envelope.device_id),
      CG_RECORD_FIELD("person.nhs_number", "nhs_number", person.nhs_number),
      CG_RECORD_FIELD("person.s1_id", "s1_id", person.s1_id),
      CG_RECORD_FIELD("person.cis_id", "cis_id", person.cis_id),
      CG_RECORD_FIELD("person.la_code", "la_code", person.la_code),
      CG_RECORD_FIELD("person.title", "title", person.title),
      CG_RECORD_FIELD("person.given_name", "given_name", person.given_name),
      CG_RECORD_FIELD("person.middle_names", "middle_names", person.middle_names),
      CG_RECORD_FIELD("person.family_name", "family_name", person.family_name),
      CG_RECORD_FIELD("person.birth_date", "birth_date", person.birth_date),
      CG_RECORD_FIELD("person.death_date", "death_date", person.death_date),
      CG_RECORD_FIELD("person.gender", "gender", person.gender),
      CG_RECORD_FIELD("person.ethnicity", "ethnicity", person.ethnicity),
      CG_RECORD_FIELD("person.marital_status", "marital_status", person.marital_status),
      CG_RECORD_FIELD("person.language", "language", person.language),
      CG_RECORD_FIELD("person.english_speaker", "english_speaker", person.english_speaker),
      CG_RECORD_FIELD("person.interpreter_required", "interpreter_required", person.interpreter_required),
      CG_RECORD_FIELD("person.address.house_name", "address.house_name", person.address.house_name),
      CG_RECORD_FIELD("person.address.house_number", "address.house_number", person.address.house_number),
      CG_RECORD_FIELD("person.address.road", "address.road", person.address.road),
      CG_RECORD_FIELD("person.address.locality", "address.locality", person.address.locality),
      CG_RECORD_FIELD("person.address.line_1", "address.line_1", person.address.line_1),
      CG_RECORD_FIELD("person.address.line_2", "address.line_2", person.address.line_2),
      CG_RECORD_FIELD("person.address.line_3", "address.line_3", person.address.line_3),
      CG_RECORD_FIELD("person.address.town", "address.town", person.address.town),
      CG_RECORD_FIELD("person.address.county", "address.county", person.address.county),
      CG_RECORD_FIELD("person.address.postcode", "address.postcode", person.address.postcode),
      CG_RECORD_FIELD("person.phone_home", "phone_home", person.phone_home),
      CG_RECORD_FIELD("person.phone_work", "phone_work", person.phone_work),
      CG_RECORD_FIELD("person.phone_mobile", "phone_mobile", person.phone_mobile),
      CG_RECORD_FIELD("person.phone_alternate", "phone_alternate", person.phone_alternate),
      CG_RECORD_FIELD("person.email", "email", person.email),
      CG_RECORD_FIELD("person.sms_consent", "sms_consent", person.sms_consent),
      CG_RECORD_FIELD("person.gp_user", "gp_user", person.gp_user),
      CG_RECORD_FIELD("person.gp_practice", "gp_practice", person.gp_practice),
      CG_RECORD_FIELD("person.care_start_date", "care_start_date", person.care_start_date),
      CG_RECORD_FIELD("person.registration_type", "registration_type", person.registration_type),
      CG_RECORD_FIELD("person.record_state", "record_state", person.record_state),
      CG_RECORD_FIELD("person.client_type", "client_type", person.client_type),
      CG_RECORD_FIELD("person.primary_support_reason", "primary_support_reason", person.primary_support_reason),
      CG_RECORD_FIELD("person.accommodation_status", "accommodation_status", person.accommodation_status),
      CG_RECORD_FIELD("person.has_unpaid_carer", "has_unpaid_carer", person.has_unpaid_carer),
      CG_RECORD_FIELD("person.consent", "consent", person.consent),
      CG_RECORD_FIELD("person.sensitive", "sensitive", person.sensitive),
      CG_RECORD_FIELD("person.last_updated", "last_updated", person.last_updated),

      CG_FIELD("episodes[].kind", Episode, kEpisode, kind),
      CG_FIELD("episodes[].reference", Episode, kEpisode, reference),
      CG_FIELD("episodes[].start_date", Episode, kEpisode, start_date),
      CG_FIELD("episodes[].end_date", Episode, kEpisode, end_date),
      CG_FIELD("episodes[].outcome", Episode, kEpisode, outcome),
      CG_FIELD("episodes[].route_of_access", Episode, kEpisode, route_of_access),
      CG_FIELD("episodes[].referral_service_type", Episode, kEpisode, referral_service_type),
      CG_FIELD("episodes[].urgency", Episode, kEpisode, urgency),
      CG_FIELD("episodes[].reason", Episode, kEpisode, reason),
      CG_FIELD("episodes[].discharge_date", Episode, kEpisode, discharge_date),
      CG_FIELD("episodes[].discharge_reason", Episode, kEpisode, discharge_reason),
      CG_FIELD("episodes[].assessment_type", Episode, kEpisode, assessment_type),
      CG_FIELD("episodes[].eligible_needs", Episode, kEpisode, eligible_needs),
      CG_FIELD("episodes[].service_type", Episode, kEpisode, service_type),
      CG_FIELD("episodes[].service_component", Episode, kEpisode, service_component),
      CG_FIELD("episodes[].delivery_mechanism", Episode, kEpisode, delivery_mechanism),
      CG_FIELD("episodes[].planned_units_per_week", Episode, kEpisode, planned_units_per_week),
      CG_FIELD("episodes[].unit_cost", Episode, kEpisode, unit_cost),
      CG_FIELD("episodes[].cost_frequency", Episode, kEpisode, cost_frequency),
      CG_FIELD("episodes[].review_reason", Episode, kEpisode, review_reason),

      CG_FIELD("care_plans[].reference", CarePlan, kCarePlan, reference),
      CG_FIELD("care_plans[].aim", CarePlan, kCarePlan, aim),
      CG_FIELD("care_plans[].start_date", CarePlan, kCarePlan, start_date),
      CG_FIELD("care_plans[].end_date", CarePlan, kCarePlan, end_date),
      CG_FIELD("care_plans[].goals[].reference", Goal, kGoal, reference),
      CG_FIELD("care_plans[].goals[].description", Goal, kGoal, description),
      CG_FIELD("care_plans[].goals[].set_date", Goal, kGoal, set_date),
      CG_FIELD("care_plans[].goals[].achieved_date", Goal, kGoal, achieved_date),
      CG_FIELD("care_plans[].goals[].status", Goal, kGoal, status),

      CG_FIELD("visits[].reference", Visit, kVisit, reference),
      CG_FIELD("visits[].date_time", Visit, kVisit, date_time),
      CG_FIELD("visits[].status", Visit, kVisit, status),
      CG_FIELD("visits[].staff_role", Visit, kVisit, staff_role),
      CG_FIELD("visits[].duration_minutes", Visit, kVisit, duration_minutes),

      CG_FIELD("entries[].reference", Entry, kEntry, reference),
      CG_FIELD("entries[].date_time", Entry, kEntry, date_time),
      CG_FIELD("entries[].done_at", Entry, kEntry, done_at),
      CG_FIELD("entries[].author", Entry, kEntry, author),
      CG_FIELD("entries[].author_role", Entry, kEntry, author_role),
      CG_FIELD("entries[].user_name", Entry, kEntry, user_name),
      CG_FIELD("entries[].text", Entry, kEntry, text),
      CG_FIELD("entries[].codes[].code", ClinicalCode, kCode, code),
      CG_FIELD("entries[].codes[].scheme", ClinicalCode, kCode, scheme),
      CG_FIELD("entries[].codes[].term", ClinicalCode, kCode, term),
      CG_FIELD("entries[].medications[].type", Medication, kMedication, type),
      CG_FIELD("entries[].medications[].drug_name", Medication, kMedication, drug_name),
      CG_FIELD("entries[].medications[].drug_product_id", Medication, kMedication, drug_product_id),
      CG_FIELD("entries[].medications[].drug_scheme", Medication, kMedication, drug_scheme),
      CG_FIELD("entries[].medications[].dose", Medication, kMedication, dose),
      CG_FIELD("entries[].medications[].quantity", Medication, kMedication, quantity),
      CG_FIELD("entries[].medications[].start_date", Medication, kMedication, start_date),
      CG_FIELD("entries[].medications[].end_date", Medication, kMedication, end_date),
      CG_FIELD("entries[].medications[].end_reason", Medication, kMedication, end_reason),
      CG_FIELD("entries[].attachments[].file_name", Attachment, kAttachment, file_name),
      CG_FIELD("entries[].attachments[].file_size", Attachment, kAttachment, file_size),
      CG_FIELD("entries[].attachments[].document_uid", Attachment, kAttachment, document_uid),
      CG_FIELD("entries[].attachments[].comments", Attachment, kAttachment, comments),

      CG_FIELD("tasks[].reference", Task, kTask, reference),
      CG_FIELD("tasks[].date_time", Task, kTask, date_time),
      CG_FIELD("tasks[].type", Task, kTask, type),
      CG_FIELD("tasks[].status", Task, kTask, status),
      CG_FIELD("tasks[].content", Task, kTask, content),
  };
}

template <typename Owner, typename Item, std::vector<Item> Owner::*Member>
CollectionDef MakeCollection(std::string_view full, std::string_view local, Entity owner, Entity item) {
  return CollectionDef{
      full, local, owner, item,
      [](void* o) -> std::size_t { return (static_cast<Owner*>(o)->*Member).size(); },
      [](void* o, std::size_t i) -> void* { return &(static_cast<Owner*>(o)->*Member)[i]; },
      [](void* o) -> void* { return &(static_cast<Owner*>(o)->*Member).emplace_back(); }};
}

std::vector<CollectionDef> BuildCollections() {
  return {
      MakeCollection<CareRecord, Episode, &CareRecord::episodes>("episodes[]", "episodes", Entity::kRecord,
                                                                  Entity::kEpisode),
      MakeCollection<CareRecord, CarePlan, &CareRecord::care_plans>("care_plans[]", "care_plans", Entity::kRecord,
                                                                     Entity::kCarePlan),
      MakeCollection<CarePlan, Goal, &CarePlan::goals>("care_plans[].goals[]", "goals", Entity::kCarePlan,
                                                       Entity::kGoal),
      MakeCollection<CareRecord, Visit, &CareRecord::visits>("visits[]", "visits", Entity::kRecord, Entity::kVisit),
      MakeCollection<CareRecord, Entry, &CareRecord::entries>("entries[]", "entries", Entity::kRecord,
                                                               Entity::kEntry),
      MakeCollection<Entry, ClinicalCode, &Entry::codes>("entries[].codes[]", "codes", Entity::kEntry, Entity::kCode),
      MakeCollection<Entry, Medication, &Entry::medications>("entries[].medications[]", "medications",
                                                             Entity::kEntry, Entity::kMedication),
      MakeCollection<Entry, Attachment, &Entry::attachments>("entries[].attachments[]", "attachments",
                                                             Entity::kEntry, Entity::kAttachment),
      MakeCollection<CareRecord, Task, &CareRecord::tasks>("tasks[]", "tasks", Entity::kRecord, Entity::kTask),
  };
}

}  // namespace

void* EntityInstances::Of(Entity e) {
  switch (e) {
    case Entity::kRecord: return &record;
    case Entity::kEpisode: return &episode;
    case Entity::kCarePlan: return &care_plan;
    case Entity::kGoal: return &goal;
    case Entity::kVisit: return &visit;
    case Entity::kEntry: return &entry;
    case Entity::kCode: return &code;
    case Entity::kMedication: return &medication;
    case Entity::kAttachment: return &attachment;
    case Entity::kTask: return &task;
  }
  return nullptr;
}

namespace {
// Each field's offset within its entity, measured on an instance of it (every accessor
// returns a member of the entity it is given).
std::vector<FieldDef> WithOffsets(std::vector<FieldDef> fields) {
  EntityInstances instances;
  for (auto& f : fields) {
    void* e = instances.Of(f.owner);
    f.offset = static_cast<std::size_t>(reinterpret_cast<char*>(&f.get(e)) - static_cast<char*>(e));
  }
  return fields;
}
}  // namespace

const std::vector<FieldDef>& AllFields() {
  static const std::vector<FieldDef> kFields = WithOffsets(BuildFields());
  return kFields;
}

const std::vector<CollectionDef>& AllCollections() {
  static const std::vector<CollectionDef> kCollections = BuildCollections();
  return kCollections;
}

const FieldDef* FindField(std::string_view full_name) {
  static const auto kIndex = [] {
    std::unordered_map<std::string_view, const FieldDef*> m;
    for (const auto& f : AllFields()) m.emplace(f.name, &f);
    return m;
  }();
  auto it = kIndex.find(full_name);
  return it == kIndex.end() ? nullptr : it->second;
}

const CollectionDef* FindCollection(std::string_view full_name) {
  for (const auto& c : AllCollections())
    if (c.name == full_name) return &c;
  return nullptr;
}

std::vector<const FieldDef*> FieldsOf(Entity e) {
  std::vector<const FieldDef*> out;
  for (const auto& f : AllFields())
    if (f.owner == e) out.push_back(&f);
  return out;
}

std::vector<const CollectionDef*> CollectionsOf(Entity e) {
  std::vector<const CollectionDef*> out;
  for (const auto& c : AllCollections())
    if (c.owner == e) out.push_back(&c);
  return out;
}

std::string_view EntityName(Entity e) {
  switch (e) {
    case Entity::kRecord: return "record";
    case Entity::kEpisode: return "episode";
    case Entity::kCarePlan: return "care_plan";
    case Entity::kGoal: return "goal";
    case Entity::kVisit: return "visit";
    case Entity::kEntry: return "entry";
    case Entity::kCode: return "clinical_code";
    case Entity::kMedication: return "medication";
    case Entity::kAttachment: return "attachment";
    case Entity::kTask: return "task";
  }
  return "?";
}

std::vector<std::string> CareRecord::person_ids() const {
  std::vector<std::string> ids;
  if (!person.nhs_number.empty()) ids.push_back("nhs:" + person.nhs_number);
  if (!person.s1_id.empty()) ids.push_back("s1:" + person.s1_id);
  if (!person.cis_id.empty()) ids.push_back("cis:" + person.cis_id);
  return ids;
}

void RedactContactDetails(CareRecord& r) {
  r.person.address = Address{};
  r.person.phone_home.clear();
  r.person.phone_work.clear();
  r.person.phone_mobile.clear();
  r.person.phone_alternate.clear();
  r.person.email.clear();
  std::erase_if(r.lineage, [](const Provenance& p) {
    const std::string_view f = p.field;
    return f.starts_with("person.address.") || f.starts_with("person.phone_") || f == "person.email";
  });
}

void Reset(CareRecord& r) {
  static const std::vector<const FieldDef*> kRecordFields = FieldsOf(Entity::kRecord);  // envelope and person
  for (const FieldDef* f : kRecordFields) f->get(&r).clear();
  r.source_system.clear();
  r.source_record_id.clear();
  r.episodes.clear();
  r.care_plans.clear();
  r.visits.clear();
  r.entries.clear();
  r.tasks.clear();
  r.unmapped.clear();
  r.lineage.clear();
}

}  // namespace caregate::model
