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
// The same into a raw buffer with room for kXmlEscapedMax bytes per input byte; returns
// the end of what was written.
inline constexpr std::size_t kXmlEscapedMax = 6;  // '"' in an attribute: &quot;
char* WriteXmlEscapedText(char* out, std::string_view s, bool attribute);

// Writes the record element (opened by the first Open) as XML text, appended to `out`.
// Pretty: two-space indentation starting at `level`, each element on its own line.
// Compact: no whitespace between elements at all (the export's one record per line).
// Each event is written with one bounds check into `out`'s spare room rather than a
// string append per piece. Whenever no element is open (after the root's Close) `out`
// holds exactly the text written, and the caller may read it and append to it; while
// an element is open it holds spare room beyond the text and must be left alone.
class XmlTextSink : public TreeSink {
 public:
  XmlTextSink(std::string& out, int level, bool pretty = true)
      : out_(out), len_(out.size()), base_(level), pretty_(pretty) {}
  ~XmlTextSink() override {
    if (!stack_.empty()) out_.resize(len_);  // a record left open: drop the spare room only
  }
  XmlTextSink(const XmlTextSink&) = delete;
  XmlTextSink& operator=(const XmlTextSink&) = delete;
  void Open(std::string_view name) override;
  void Close() override;
  void OpenArray(std::string_view name) override;
  void CloseArray() override;
  void Value(std::string_view name, std::string_view value, NodeKind kind) override;

 private:
  char* Room(std::size_t n);  // where to write, with at least n bytes of room
  void Done(char* end) { len_ = static_cast<std::size_t>(end - out_.data()); }
  char* CloseStartTag(char* p);
  char* Indent(char* p, std::size_t depth) const;
  std::size_t IndentWidth(std::size_t depth) const { return pretty_ ? 2 * (static_cast<std::size_t>(base_) + depth) : 0; }
  struct Level {
    std::string_view name;
    bool start_open;  // "<name attr..." written, '>' not yet
  };
  std::string& out_;
  std::size_t len_;  // bytes of out_ written; beyond them, room not yet written
  int base_;
  bool pretty_;
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
