#pragma once
// CIS-style client records: Client Level Data JSON, NDJSON extracts (spec section 2).
#include <memory>

#include "caregate/adapters/adapter.h"

namespace caregate::adapters {
std::unique_ptr<Adapter> MakeCisAdapter();

}  // namespace caregate::adapters
