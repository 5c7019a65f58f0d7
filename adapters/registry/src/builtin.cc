#include "caregate/adapters/adapter.h"
#include "caregate/adapters/cis/cis_adapter.h"
#include "caregate/adapters/systmone/systmone_adapter.h"

namespace caregate::adapters {

// Every external system caregate speaks, registered here and nowhere else.
void RegisterBuiltinAdapters(AdapterRegistry& registry) {
  registry.Register(MakeSystmOneAdapter());
  registry.Register(MakeCisAdapter());
}

}  // namespace caregate::adapters
