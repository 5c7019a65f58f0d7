#include "caregate/format/compare.h"

#include <string_view>

namespace caregate::format {
namespace {

const char* KindName(NodeKind k) {
  switch (k) {
    case NodeKind::kObject: return "object";
    case NodeKind::kArray: return "array";
    case NodeKind::kString: return "string";
    case NodeKind::kNumber: return "number";
    case NodeKind::kBool: return "bool";
    case NodeKind::kNull: return "null";
  }
  return "?";
}

bool Diff(const SourceNode& a, const SourceNode& b, std::string& path, std::string& out) {
  auto fail = [&](std::string what) {
    out = (path.empty() ? std::string("/") : path) + ": " + std::move(what);
    return false;
  };
  if (a.name != b.name) return fail("name \"" + a.name + "\" vs \"" + b.name + "\"");
  if (a.kind != b.kind) return fail(std::string("kind ") + KindName(a.kind) + " vs " + KindName(b.kind));
  if (a.value != b.value) return fail("value \"" + a.value + "\" vs \"" + b.value + "\"");
  if (a.children.size() != b.children.size())
    return fail(std::to_string(a.children.size()) + " children vs " + std::to_string(b.children.size()));
  for (std::size_t i = 0; i < a.children.size(); ++i) {
    const std::size_t mark = path.size();
    path += '/';
    path += a.children[i].name;
    path += '[' + std::to_string(i) + ']';
    if (!Diff(a.children[i], b.children[i], path, out)) return false;
    path.resize(mark);
  }
  return true;
}

}  // namespace

std::string FirstDifference(const SourceNode& a, const SourceNode& b) {
  std::string path, out;
  Diff(a, b, path, out);
  return out;
}

}  // namespace caregate::format
