#pragma once
// JSON <-> SourceNode. Hardened reader (size, depth and string caps, strict UTF-8,
// duplicate keys and trailing data rejected) and a fast writer.
//
// SourceNode conventions (JSON):
//   object -> kObject, children named by key, in document order
//   array  -> kArray, children named ""
//   string -> kString (value = decoded UTF-8 text)
//   number -> kNumber (value = the number exactly as written, e.g. "24.50", "1e3")
//   true/false -> kBool "true"/"false";  null -> kNull
//   line = 1-based line of the value in the input.
// The root node returned by ParseJson is the top-level object, with name "".
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "caregate/core/error.h"
#include "caregate/core/source_tree.h"
#include "caregate/core/tree_sink.h"

namespace caregate::format {

struct JsonLimits {
  std::size_t max_bytes = 1 << 20;        // whole document
  int max_depth = 64;                     // nesting of objects/arrays; the root object is 1
  std::size_t max_string = 256 * 1024;    // bytes of one decoded string or key
};

// Parses one JSON document whose top-level value is an object. On failure returns
// one FieldError: path is the JSON Pointer of where it happened ("" if unknown),
// problem is plain English including the byte offset.
Expected<SourceNode> ParseJson(std::string_view text, const JsonLimits& limits = {});

// The same, into `root`, reusing the nodes (and their strings' capacity) that `root`
// holds from a previous call: a stream of similar records then parses without
// allocating. On success `root` is exactly what ParseJson returns; on failure `root` is
// unspecified (but still safe to reuse) and the error is returned.
std::optional<FieldError> ParseJsonInto(std::string_view text, SourceNode& root, const JsonLimits& limits = {});

// The same reader (same checks, same errors) without a tree: every value goes to `sink`
// in document order as it is parsed: Open/OpenArray(name), Value(name, value, kind),
// Close/CloseArray; array items and the root have the name "". The string_views are
// valid only during the call. After a failure the sink has seen a prefix of the
// document and the error is returned.
std::optional<FieldError> ParseJsonEvents(std::string_view text, TreeSink& sink, const JsonLimits& limits = {});

// Serialises `node` (its value, never its name). Compact output is one line, which
// AppendJson uses for NDJSON; pretty output indents by two spaces. kNumber values are
// written raw, so they must hold valid JSON number text.
std::string WriteJson(const SourceNode& node, bool pretty = false);
void AppendJson(std::string& out, const SourceNode& node);
void AppendJsonPretty(std::string& out, const SourceNode& node, int indent_level = 0);

// "/a/b~1c/0": JSON Pointer segment escaping (~ -> ~0, / -> ~1), appended to `out`.
void AppendJsonPointerSegment(std::string& out, std::string_view segment);

}  // namespace caregate::format
