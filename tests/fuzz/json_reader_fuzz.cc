// Fuzz target: ParseJson must never crash, and whatever it accepts must survive
// WriteJson (compact and pretty) and re-parse to the same tree. The event reader
// (ParseJsonEvents) must accept exactly the same inputs, with the same error, and its
// events must rebuild the same tree.
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
  caregate::SourceNode rebuilt;
  caregate::TreeBuilder builder(rebuilt);
  auto event_error = caregate::format::ParseJsonEvents(text, builder);
  Check(event_error.has_value() != parsed.ok(), "the event reader and the tree reader disagree on validity");
  if (event_error)
    Check(event_error->path == parsed.errors().front().path && event_error->problem == parsed.errors().front().problem,
          "the event reader reports a different error", event_error->path + ": " + event_error->problem);
  if (!parsed.ok()) {
    Check(!parsed.errors().empty() && !parsed.errors().front().problem.empty(), "error without a message");
    return 0;
  }
  caregate::fuzz::CheckUtf8(*parsed);
  // The builder's own root receives the document's root object as its one child.
  Check(rebuilt.children.size() == 1, "the event reader did not emit exactly one root object");
  CheckSame(*parsed, rebuilt.children.front(), "the event reader's events build a different tree", std::string(text));

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
