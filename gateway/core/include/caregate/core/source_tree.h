#pragma once
// SourceNode: the format-neutral tree both adapters parse into and serialise from.
// XML: elements are Object nodes, attributes are children named "@Name", text-only
// elements are String nodes. JSON: objects, arrays (children named ""), scalars.
// The mapping engine walks this tree; it never sees libxml2 or RapidJSON types.
#include <cstdint>
#include <string>
#include <vector>

namespace caregate {

enum class NodeKind : std::uint8_t { kObject, kArray, kString, kNumber, kBool, kNull };

struct SourceNode {
  std::string name;   // element name, "@attribute", JSON key, or "" for an array item
  std::string value;  // text of a scalar (numbers as written, bools as "true"/"false")
  NodeKind kind = NodeKind::kObject;
  std::uint32_t line = 0;  // 1-based source line where known, 0 otherwise
  std::vector<SourceNode> children;

  bool is_scalar() const { return kind != NodeKind::kObject && kind != NodeKind::kArray; }
  const SourceNode* child(std::string_view n) const {
    for (const auto& c : children)
      if (c.name == n) return &c;
    return nullptr;
  }
  SourceNode& add(std::string n, NodeKind k, std::string v = {}) {
    children.push_back(SourceNode{std::move(n), std::move(v), k, 0, {}});
    return children.back();
  }
};

}  // namespace caregate
