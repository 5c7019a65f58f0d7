#pragma once
// Text sinks: a record's structure events (core/tree_sink.h) written straight to XML or
// JSON text, escaped exactly as the tree writers escape.
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/text_buffer.h"
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
// Each event is written with one bounds check into a TextBuffer's room rather than a
// string append per piece.
// - Into a TextBuffer: the text goes straight into it; the caller may append to it
//   between records.
// - Into a std::string: the text collects in the sink's own buffer and is appended to
//   `out` whenever no element is left open (after the root's Close), and by the
//   destructor if a record is left open; the caller may append to `out` between records.
class XmlTextSink : public TreeSink {
 public:
  XmlTextSink(TextBuffer& out, int level, bool pretty = true) : buf_(&out), base_(level), pretty_(pretty) {}
  XmlTextSink(std::string& out, int level, bool pretty = true)
      : buf_(&own_), str_(&out), base_(level), pretty_(pretty) {}
  ~XmlTextSink() override { Flush(); }
  // Between records: the next records go to `out` (what a record left open had written
  // stays where it was). One sink kept for many records keeps its stacks' storage.
  void Rebind(TextBuffer& out) {
    Flush();
    stack_.clear();
    arrays_.clear();
    buf_ = &out;
    str_ = nullptr;
  }
  XmlTextSink(const XmlTextSink&) = delete;
  XmlTextSink& operator=(const XmlTextSink&) = delete;
  void Open(std::string_view name) override;
  void Close() override;
  void OpenArray(std::string_view name) override;
  void CloseArray() override;
  void Value(std::string_view name, std::string_view value, NodeKind kind) override;

 private:
  char* Room(std::size_t n) { return buf_->Room(n); }  // where to write, with at least n bytes of room
  void Done(char* end) { buf_->Done(end); }
  void Flush() {  // std::string mode: hand over what was written
    if (str_ && !own_.empty()) {
      str_->append(own_.view());
      own_.clear();
    }
  }
  char* CloseStartTag(char* p);
  char* Indent(char* p, std::size_t depth) const;
  std::size_t IndentWidth(std::size_t depth) const { return pretty_ ? 2 * (static_cast<std::size_t>(base_) + depth) : 0; }
  struct Level {
    std::string_view name;
    bool start_open;  // "<name attr..." written, '>' not yet
  };
  TextBuffer own_;  // std::string mode: the text not yet handed over
  TextBuffer* buf_;
  std::string* str_ = nullptr;
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
