#include "caregate/format/sinks.h"

#include <algorithm>
#include <cstring>

#include "caregate/core/swar.h"
#include "caregate/core/text.h"

namespace caregate::format {

namespace {
char* Put(char* p, std::string_view s) {
  swar::CopyBytes(p, s.data(), s.size());
  return p + s.size();
}
}  // namespace

char* XmlTextSink::Indent(char* p, std::size_t depth) const {
  if (!pretty_) return p;  // compact: not even a call to memset for nothing
  const std::size_t width = IndentWidth(depth);
  std::memset(p, ' ', width);
  return p + width;
}

// Room needed by CloseStartTag: ">\n".
constexpr std::size_t kStartTagEnd = 2;

char* XmlTextSink::CloseStartTag(char* p) {
  if (!stack_.empty() && stack_.back().start_open) {
    *p++ = '>';
    if (pretty_) *p++ = '\n';
    stack_.back().start_open = false;
  }
  return p;
}

void XmlTextSink::Open(std::string_view name) {
  std::string_view element = name.empty() && !arrays_.empty() ? arrays_.back() : name;
  char* p = Room(kStartTagEnd + IndentWidth(stack_.size()) + 1 + element.size());
  p = CloseStartTag(p);
  p = Indent(p, stack_.size());
  *p++ = '<';
  Done(Put(p, element));
  stack_.push_back({element, true});
}

void XmlTextSink::Close() {
  Level l = stack_.back();
  stack_.pop_back();
  char* p = Room(IndentWidth(stack_.size()) + 4 + l.name.size());
  if (l.start_open) {
    *p++ = '/';
    *p++ = '>';
  } else {
    p = Indent(p, stack_.size());
    *p++ = '<';
    *p++ = '/';
    p = Put(p, l.name);
    *p++ = '>';
  }
  if (pretty_) *p++ = '\n';
  Done(p);
  if (stack_.empty()) Flush();  // the record is complete
}

void XmlTextSink::OpenArray(std::string_view name) { arrays_.push_back(name); }
void XmlTextSink::CloseArray() { arrays_.pop_back(); }

void XmlTextSink::Value(std::string_view name, std::string_view value, NodeKind kind) {
  if (kind == NodeKind::kNull) return;
  if (!name.empty() && name[0] == '@') {
    name.remove_prefix(1);
    char* p = Room(name.size() + 4 + kXmlEscapedMax * value.size());
    *p++ = ' ';
    p = Put(p, name);
    *p++ = '=';
    *p++ = '"';
    p = WriteXmlEscapedText(p, value, true);
    *p++ = '"';
    Done(p);
    return;
  }
  if (name.empty() && !arrays_.empty()) name = arrays_.back();
  char* p = Room(kStartTagEnd + IndentWidth(stack_.size()) + 2 * name.size() + 6 + kXmlEscapedMax * value.size());
  p = CloseStartTag(p);
  p = Indent(p, stack_.size());
  *p++ = '<';
  p = Put(p, name);
  if (value.empty()) {
    *p++ = '/';
    *p++ = '>';
  } else {
    *p++ = '>';
    p = WriteXmlEscapedText(p, value, false);
    *p++ = '<';
    *p++ = '/';
    p = Put(p, name);
    *p++ = '>';
  }
  if (pretty_) *p++ = '\n';
  Done(p);
  if (stack_.empty()) Flush();  // a value outside any element: complete at once
}

void JsonTextSink::Member(std::string_view name) {
  if (stack_.empty()) return;
  auto& [is_array, first] = stack_.back();
  if (!first) out_ += ',';
  first = false;
  if (!is_array) {
    out_ += '"';
    AppendJsonEscaped(out_, name);
    out_ += "\":";
  }
}

void JsonTextSink::Open(std::string_view name) {
  Member(name);
  out_ += '{';
  stack_.push_back({false, true});
}

void JsonTextSink::Close() {
  out_ += '}';
  stack_.pop_back();
}

void JsonTextSink::OpenArray(std::string_view name) {
  Member(name);
  out_ += '[';
  stack_.push_back({true, true});
}

void JsonTextSink::CloseArray() {
  out_ += ']';
  stack_.pop_back();
}

void JsonTextSink::Value(std::string_view name, std::string_view value, NodeKind kind) {
  Member(name);
  switch (kind) {
    case NodeKind::kNull: out_ += "null"; break;
    case NodeKind::kBool:
    case NodeKind::kNumber: out_ += value; break;
    default:
      out_ += '"';
      AppendJsonEscaped(out_, value);
      out_ += '"';
  }
}

}  // namespace caregate::format
