#pragma once
// TreeSink: a record's structure as a stream of events in document order. The mapping
// plan writes through it, so output goes straight to XML or JSON text without building a
// tree first; TreeBuilder collects the same events into a SourceNode when a tree is wanted.
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/source_tree.h"

namespace caregate {

class TreeSink {
 public:
  virtual ~TreeSink() = default;
  // An object / element. Inside an array the name is the array's (XML repeats it).
  virtual void Open(std::string_view name) = 0;
  virtual void Close() = 0;
  // A repeated member: JSON writes an array; XML writes one element per item.
  virtual void OpenArray(std::string_view name) = 0;
  virtual void CloseArray() = 0;
  // A scalar; "@name" is an XML attribute and must come before the element's children.
  virtual void Value(std::string_view name, std::string_view value, NodeKind kind) = 0;
};

// Builds a SourceNode with the same shape the parsers produce.
class TreeBuilder : public TreeSink {
 public:
  explicit TreeBuilder(SourceNode& root) { stack_.push_back(&root); }
  void Open(std::string_view name) override {
    SourceNode* top = stack_.back();
    stack_.push_back(&top->add(top->kind == NodeKind::kArray ? std::string() : std::string(name), NodeKind::kObject));
  }
  void Close() override { stack_.pop_back(); }
  void OpenArray(std::string_view name) override {
    stack_.push_back(&stack_.back()->add(std::string(name), NodeKind::kArray));
  }
  void CloseArray() override { stack_.pop_back(); }
  void Value(std::string_view name, std::string_view value, NodeKind kind) override {
    SourceNode* top = stack_.back();
    top->add(top->kind == NodeKind::kArray ? std::string() : std::string(name), kind, std::string(value));
  }

 private:
  std::vector<SourceNode*> stack_;
};

// Replays a tree as the events a streaming parser would emit for it: objects Open/Close,
// arrays OpenArray/CloseArray (items named ""), scalars Value.
inline void ReplayTree(const SourceNode& node, TreeSink& sink, bool in_array = false) {
  std::string_view name = in_array ? std::string_view() : std::string_view(node.name);
  switch (node.kind) {
    case NodeKind::kObject:
      sink.Open(name);
      for (const auto& c : node.children) ReplayTree(c, sink, false);
      sink.Close();
      break;
    case NodeKind::kArray:
      sink.OpenArray(name);
      for (const auto& c : node.children) ReplayTree(c, sink, true);
      sink.CloseArray();
      break;
    default: sink.Value(name, node.value, node.kind);
  }
}

}  // namespace caregate
