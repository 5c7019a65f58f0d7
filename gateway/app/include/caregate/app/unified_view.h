#pragma once
// One person's unified record, computed at read time from the stored source records
// (docs/lookups.md): the caller's consent and sensitivity rules first, then the record of
// the view's system with what it lacks filled from the other system's record.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "caregate/identity/person_store.h"
#include "caregate/model/care_record.h"

namespace caregate::app {

// The system whose records an organisation owns: health -> systmone, council -> cis;
// "" for the gateway operator (caregate), which owns no records.
std::string_view OwnSystemOf(std::string_view organisation);

struct UnifiedView {
  model::CareRecord record;  // merged; lineage of the values actually used
  std::string primary;       // system whose values come first
  std::vector<std::string> systems;                              // records used
  std::vector<std::pair<std::string, std::string>> field_sources;  // canonical field -> system
  std::vector<std::string> person_ids;  // the person's ids this caller may see
  bool consent_withheld_other = false;  // the other organisation's record was left out
  bool redacted_other = false;          // its address/phones/email were removed (sensitive)
};

struct ViewRequest {
  std::string_view organisation;  // caller's
  std::string_view view;          // systmone | cis | canonical
  bool unrestricted = false;      // IG lineage: no consent/sensitivity filtering (values are never shown)
};

// nullopt when nothing is left to show: every record belongs to another organisation and
// withholds consent.
std::optional<UnifiedView> BuildUnifiedView(const identity::PersonSnapshot& person, const ViewRequest& request);

// Removes address, phone numbers and email, and all unmapped source data, which may hold
// any of them under a key no rule knows (a sensitive record seen by another organisation).
void RedactForOtherOrganisation(model::CareRecord& record);

}  // namespace caregate::app
