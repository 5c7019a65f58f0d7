// Fuzz target: ParseJson must never crash, and whatever it accepts must survive
// WriteJson (compact and pretty) and re-parse to the same tree.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "caregate/format/json.h"
#include "fuzz_util.h"

using caregate::fuzz::Check;
using caregate::fuzz::CheckSame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = caregate::format::ParseJson(text);
  if (!parsed.ok()) {
    Check(!parsed.errors().empty() && !parsed.errors().front().problem.empty(), "error without a message");
    return 0;
  }
  caregate::fuzz::CheckUtf8(*parsed);
  // Output may exceed the input limits (pretty printing adds bytes).
  caregate::format::JsonLimits relaxed;
  relaxed.max_bytes = 64u << 20;

  std::string compact = caregate::format::WriteJson(*parsed);
  Check(compact.find('\n') == std::string::npos, "compact JSON spans lines (breaks NDJSON)", compact);
  auto again = caregate::format::ParseJson(compact, relaxed);
  Check(again.ok(), "compact output does not re-parse", compact + "\n" + (again.ok() ? "" : caregate::FormatErrors(again.errors())));
  CheckSame(*parsed, *again, "compact round trip changed the tree", compact);
  Check(caregate::format::WriteJson(*again) == compact, "compact output is not stable", compact);

  std::string pretty = caregate::format::WriteJson(*parsed, true);
  auto pretty_again = caregate::format::ParseJson(pretty, relaxed);
  Check(pretty_again.ok(), "pretty output does not re-parse", pretty);
  CheckSame(*parsed, *pretty_again, "pretty round trip changed the tree", pretty);
  return 0;
}
