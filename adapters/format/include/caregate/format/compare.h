#pragma once
// Content comparison of SourceNode trees (names, kinds, values, child order; `line`
// is ignored), for round-trip checks in tests and fuzz targets.
#include <string>

#include "caregate/core/source_tree.h"

namespace caregate::format {

// "" when `a` and `b` have the same content, else a description of the first
// difference, e.g. "/Response/Identity[1]: value \"1\" vs \"2\"".
std::string FirstDifference(const SourceNode& a, const SourceNode& b);
inline bool SameContent(const SourceNode& a, const SourceNode& b) { return FirstDifference(a, b).empty(); }

}  // namespace caregate::format
