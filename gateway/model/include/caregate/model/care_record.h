#pragma once
// The canonical care record: one person as either system sees them, with the
// provenance of every mapped field. Every scalar is held as text in its canonical
// form (dates YYYY-MM-DD, codes from mappings/codesets, booleans "true"/"false",
// numbers as decimal text); an empty string means "not recorded".
#include <string>
#include <string_view>
#include <vector>

namespace caregate::model {

struct Address {
  std::string house_name, house_number, road, locality;  // SystmOne's structure
  std::string line_1, line_2, line_3;                    // CIS's lines (spec 4.3)
  std::string town, county, postcode;
};

struct Person {
  std::string nhs_number, s1_id, cis_id, la_code;
  std::string title, given_name, middle_names, family_name;
  std::string birth_date, death_date, gender, ethnicity, marital_status;
  std::string language, english_speaker, interpreter_required;
  Address address;
  std::string phone_home, phone_work, phone_mobile, phone_alternate, email, sms_consent;
  std::string gp_user, gp_practice, care_start_date, registration_type, record_state;
  std::string client_type, primary_support_reason, accommodation_status, has_unpaid_carer;
  std::string consent;    // yes | no | not_asked
  std::string sensitive;  // true | false
  std::string last_updated;
};

// A care episode: a CIS event (request, assessment, service, review) or a SystmOne referral.
struct Episode {
  std::string kind;  // request | assessment | service | review
  std::string reference, start_date, end_date, outcome;
  std::string route_of_access, referral_service_type, urgency, reason, discharge_date, discharge_reason;
  std::string assessment_type, eligible_needs;
  std::string service_type, service_component, delivery_mechanism, planned_units_per_week, unit_cost,
      cost_frequency;
  std::string review_reason;
};

struct Goal {
  std::string reference, description, set_date, achieved_date, status;
};

struct CarePlan {
  std::string reference, aim, start_date, end_date;
  std::vector<Goal> goals;
};

struct Visit {
  std::string reference, date_time, status, staff_role, duration_minutes;
};

struct ClinicalCode {
  std::string code, scheme, term;
};

struct Medication {
  std::string type, drug_name, drug_product_id, drug_scheme, dose, quantity, start_date, end_date, end_reason;
};

struct Attachment {
  std::string file_name, file_size, document_uid, comments;
};

// A dated entry in the record: a SystmOne clinical event or a CIS case note.
struct Entry {
  std::string reference, date_time, done_at, author, author_role, user_name, text;
  std::vector<ClinicalCode> codes;
  std::vector<Medication> medications;
  std::vector<Attachment> attachments;
};

struct Task {
  std::string reference, date_time, type, status, content;
};

struct Envelope {
  std::string request_uid, function, function_version, response_uid, device_id;
};

// Where one canonical value came from and by which rule (IG lineage).
struct Provenance {
  std::string field;        // canonical path, e.g. "episodes[0].reference"
  std::string source_path;  // XPath or JSON Pointer in the source document
  std::string rule;         // mapping rule id, e.g. "S1-021"
  bool lossy = false;       // this value was mapped lossily
};

// Source data that no rule maps: kept, reported, never silently dropped.
struct UnmappedItem {
  std::string source_path;
  std::string value;
};

struct CareRecord {
  std::string source_system;     // "systmone" | "cis"
  std::string source_record_id;  // the source system's own id for the person
  Envelope envelope;
  Person person;
  std::vector<Episode> episodes;
  std::vector<CarePlan> care_plans;
  std::vector<Visit> visits;
  std::vector<Entry> entries;
  std::vector<Task> tasks;
  std::vector<UnmappedItem> unmapped;
  std::vector<Provenance> lineage;

  bool consent_withheld() const { return person.consent == "no"; }
  bool is_sensitive() const { return person.sensitive == "true"; }
  // Prefixed person ids known for this record: "nhs:...", "s1:...", "cis:...".
  std::vector<std::string> person_ids() const;
};

// Spec 8: "a sensitive record shows no address, phone or email to the other
// organisation". Clears the address, every phone number and the email, and their
// lineage. (What else a view must hide, such as unmapped source data, is the caller's.)
void RedactContactDetails(CareRecord& record);

}  // namespace caregate::model
