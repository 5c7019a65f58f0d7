#pragma once
// Text sinks: a record's structure events (core/tree_sink.h) written straight to XML or
// JSON text, escaped exactly as the tree writers escape.
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/tree_sink.h"

namespace caregate::format {

// XML element text / attribute value escaping shared with the tree writer (xml.cc).
void AppendXmlEscapedText(std::string& out, std::string_view s, bool attribute);

// Writes the record element `root` (opened by the first Open) with two-space indentation
// starting at `level`; each element on its own line.
class XmlTextSink : public TreeSink {
 public:
  XmlTextSink(std::string& out, int level) : out_(out), base_(level) {}
  void Open(std::string_view name) override;
  void Close() override;
  void OpenArray(std::string_view name) override;
  void CloseArray() override;
  void Value(std::string_view name, std::string_view value, NodeKind kind) override;

 private:
  void CloseStartTag();
  void Indent();
  struct Level {
    std::string_view name;
    bool start_open;    // "<name attr..." written, '>' not yet
    bool has_children;
  };
  std::string& out_;
  int base_;
  std::vector<Level> stack_;
  std::vector<std::string_view> arrays_;  // names of open arrays (XML repeats them)
};

// Compact JSON (one line).
class JsonTextSink : public TreeSink {
 public:
  explicit JsonTextSink(std::string& out) : out_(out) {}
  void Open(std::string_view name) override;
  void Close() override;
  void OpenArray(std::string_view name) override;
  void CloseArray() override;
  void Value(std::string_view name, std::string_view value, NodeKind kind) override;

 private:
  void Member(std::string_view name);
  std::string& out_;
  std::vector<std::pair<bool, bool>> stack_;  // (is_array, first)
};

}  // namespace caregate::format
