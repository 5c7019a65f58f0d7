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

}  // namespace caregate
