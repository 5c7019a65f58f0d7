#pragma once
// The mapping tables as IG officers see them: every rule, transform, direction, lossy
// flag and purpose, every code set, the record rules, and coverage of the canonical model.
#include <string>

#include "caregate/mapping/mapping_plan.h"

namespace caregate::mapping {
std::string RenderMappingsJson(const MappingPlan& plan);
std::string RenderMappingsHtml(const MappingPlan& plan);
}  // namespace caregate::mapping
