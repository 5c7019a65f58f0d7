#pragma once
// SystmOne-style records: TPP client-integration GetPatientRecord XML (spec section 1).
#include <memory>

#include "caregate/adapters/adapter.h"

namespace caregate::adapters {
std::unique_ptr<Adapter> MakeSystmOneAdapter();
}
