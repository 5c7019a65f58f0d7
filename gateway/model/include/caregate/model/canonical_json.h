#pragma once
// The canonical record's own JSON form (what `translate --to canonical` prints and the
// store keeps). Field names are the registry's; empty values are omitted.
#include <string>
#include <string_view>

#include "caregate/core/error.h"
#include "caregate/model/care_record.h"

namespace caregate::model {

struct CanonicalJsonOptions {
  bool pretty = false;
  bool lineage = true;   // include provenance
  bool unmapped = true;  // include unmapped source data
};

std::string ToCanonicalJson(const CareRecord& record, const CanonicalJsonOptions& options = {});
Expected<CareRecord> FromCanonicalJson(std::string_view json);

}  // namespace caregate::model
