#pragma once
// The mapping tables as IG officers see them: every rule, transform, direction, lossy
// flag and purpose, every code set, the record rules, and coverage of the canonical model.
#include <string>
#include <string_view>

#include "caregate/mapping/mapping_plan.h"

namespace caregate::mapping {
std::string RenderMappingsJson(const MappingPlan& plan);
std::string RenderMappingsHtml(const MappingPlan& plan);
// The start of the mapping pages (this report, `mappings check --format html`): doctype,
// title, the shared table style plus `extra_css`, and the <h1>. `title` is plain text.
std::string MappingsPageHead(std::string_view title, std::string_view extra_css);
}  // namespace caregate::mapping
