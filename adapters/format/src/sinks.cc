#include "caregate/format/sinks.h"

#include "caregate/core/text.h"

namespace caregate::format {

void XmlTextSink::Indent() { out_.append(static_cast<size_t>(base_ + static_cast<int>(stack_.size())) * 2, ' '); }

void XmlTextSink::CloseStartTag() {
  if (!stack_.empty() && stack_.back().start_open) {
    out_ += ">\n";
    stack_.back().start_open = false;
  }
}

void XmlTextSink::Open(std::string_view name) {
  std::string_view element = name.empty() && !arrays_.empty() ? arrays_.back() : name;
  CloseStartTag();
  if (!stack_.empty()) stack_.back().has_children = true;
  Indent();
  out_ += '<';
  out_ += element;
  stack_.push_back({element, true, false});
}

void XmlTextSink::Close() {
  Level l = stack_.back();
  stack_.pop_back();
  if (l.start_open) {
    out_ += "/>\n";
    return;
  }
  Indent();
  out_ += "</";
  out_ += l.name;
  out_ += ">\n";
}

void XmlTextSink::OpenArray(std::string_view name) { arrays_.push_back(name); }
void XmlTextSink::CloseArray() { arrays_.pop_back(); }

void XmlTextSink::Value(std::string_view name, std::string_view value, NodeKind kind) {
  if (kind == NodeKind::kNull) return;
  if (!name.empty() && name[0] == '@') {
    out_ += ' ';
    out_ += name.substr(1);
    out_ += "=\"";
    AppendXmlEscapedText(out_, value, true);
    out_ += '"';
    return;
  }
  if (name.empty() && !arrays_.empty()) name = arrays_.back();
  CloseStartTag();
  if (!stack_.empty()) stack_.back().has_children = true;
  Indent();
  out_ += '<';
  out_ += name;
  if (value.empty()) {
    out_ += "/>\n";
    return;
  }
  out_ += '>';
  AppendXmlEscapedText(out_, value, false);
  out_ += "</";
  out_ += name;
  out_ += ">\n";
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
