// Fuzz target: ParseJson must never crash, and whatever it accepts must survive
// WriteJson (compact and pretty) and re-parse to the same tree. The event reader
// (ParseJsonEvents) must accept exactly the same inputs, with the same error, and its
// events must rebuild the same tree. And an independent reading: RapidJSON's own DOM
// parser (copying, not in situ; its byte-by-byte string scan and its UTF-8 validation)
// must find the same keys, strings and numbers in whatever ParseJson accepts, so a
// mistake of ParseJson's own string scan cannot hide behind the round trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "caregate/format/json.h"
#include "fuzz_util.h"

namespace {

void CheckSameAsDom(const caregate::SourceNode& n, const rapidjson::Value& v, const std::string& text) {
  using caregate::NodeKind;
  using caregate::fuzz::Check;
  switch (n.kind) {
    case NodeKind::kObject: {
      Check(v.IsObject() && v.MemberCount() == n.children.size(), "RapidJSON's DOM sees another object", text);
      std::size_t i = 0;
      for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m, ++i) {
        Check(std::string_view(m->name.GetString(), m->name.GetStringLength()) == n.children[i].name,
              "RapidJSON's DOM reads a key differently", text);
        CheckSameAsDom(n.children[i], m->value, text);
      }
      return;
    }
    case NodeKind::kArray:
      Check(v.IsArray() && v.Size() == n.children.size(), "RapidJSON's DOM sees another array", text);
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) CheckSameAsDom(n.children[i], v[i], text);
      return;
    case NodeKind::kString:
    case NodeKind::kNumber:  // numbers as strings, exactly as written, in both
      Check(v.IsString() && std::string_view(v.GetString(), v.GetStringLength()) == n.value,
            "RapidJSON's DOM reads a string or number differently", text);
      return;
    case NodeKind::kBool: Check(v.IsBool() && (v.GetBool() ? "true" : "false") == n.value, "bool differs", text); return;
    case NodeKind::kNull: Check(v.IsNull(), "null differs", text); return;
  }
}

}  // namespace

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
  {
    rapidjson::Document dom;
    const std::string copy(text);  // NUL-terminated; an accepted text holds no NUL byte
    dom.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseNumbersAsStringsFlag |
              rapidjson::kParseIterativeFlag>(copy.c_str());
    Check(!dom.HasParseError(), "RapidJSON's DOM refuses what ParseJson accepts", std::string(text));
    CheckSameAsDom(*parsed, dom, std::string(text));
  }
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
