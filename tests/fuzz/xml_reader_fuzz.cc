// Fuzz target: ParseXml and XmlStreamReader must never crash; whatever ParseXml
// accepts must survive WriteXmlDocument (compact and pretty) and re-parse to the same
// tree (but for "{}name", see below), and the streaming reader must yield the same
// records from it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "caregate/format/xml.h"
#include "fuzz_util.h"

using caregate::Expected;
using caregate::SourceNode;
using caregate::fuzz::Check;
using caregate::fuzz::CheckSame;
namespace format = caregate::format;

namespace {

bool HasNoNamespaceName(const SourceNode& n) {
  if (n.name.starts_with("{}") || n.name.starts_with("@{}")) return true;
  for (const auto& c : n.children)
    if (HasNoNamespaceName(c)) return true;
  return false;
}

void CheckStream(std::string_view text, const SourceNode& root, std::size_t chunk) {
  format::XmlStreamReader::SetChunkSizeForTesting(chunk);
  auto reader = format::XmlStreamReader::OpenMemory(text);
  format::XmlStreamReader::SetChunkSizeForTesting(0);
  Check(reader.ok(), "stream reader refuses a document ParseXml accepts",
        reader.ok() ? "" : caregate::FormatErrors(reader.errors()));
  Check((*reader)->root_name() == root.name, "stream root name differs");
  Expected<SourceNode> rec = SourceNode{};
  if (!(*reader)->is_batch()) {
    Check((*reader)->Next(rec), "stream yields nothing for a single record");
    Check(rec.ok(), "stream rejects a record ParseXml accepts", rec.ok() ? "" : caregate::FormatErrors(rec.errors()));
    CheckSame(root, *rec, "stream record differs from ParseXml", std::string(text));
    Check(!(*reader)->Next(rec), "stream yields more than the root");
    return;
  }
  for (const auto& child : root.children) {
    if (child.name == "#text" || (!child.name.empty() && child.name[0] == '@')) continue;
    Check((*reader)->Next(rec), "stream yields fewer records than the batch holds");
    Check(rec.ok(), "stream rejects a record ParseXml accepts", rec.ok() ? "" : caregate::FormatErrors(rec.errors()));
    CheckSame(child, *rec, "stream record differs from ParseXml", std::string(text));
  }
  Check(!(*reader)->Next(rec), "stream yields more records than the batch holds");
}

int MaxAttributes(const SourceNode& n) {
  int here = 0, deepest = 0;
  for (const auto& c : n.children) {
    if (!c.name.empty() && c.name[0] == '@') ++here;
    deepest = std::max(deepest, MaxAttributes(c));
  }
  return std::max(here, deepest);
}

// The raw-byte attribute counter must never refuse a document whose elements are
// within the limit (namespace declarations also count, so skip documents with them).
void CheckAttributeCounter(std::string_view text, const SourceNode& root) {
  if (text.find("xmlns") != std::string_view::npos) return;
  format::XmlLimits tight;
  tight.max_attributes = MaxAttributes(root);
  auto again = format::ParseXml(text, tight);
  Check(again.ok(), "attribute counter refuses a document within its limit",
        again.ok() ? "" : caregate::FormatErrors(again.errors()));
  if (tight.max_attributes > 0) {
    tight.max_attributes -= 1;
    Check(!format::ParseXml(text, tight).ok(), "attribute counter misses an attribute");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = format::ParseXml(text);

  // The streaming reader must cope with anything, in any chunking.
  const std::size_t chunk = size == 0 ? 1 : 1 + data[size - 1] % 97;
  if (!parsed.ok()) {
    Check(!parsed.errors().empty() && !parsed.errors().front().problem.empty(), "error without a message");
    format::XmlStreamReader::SetChunkSizeForTesting(chunk);
    auto reader = format::XmlStreamReader::OpenMemory(text);
    format::XmlStreamReader::SetChunkSizeForTesting(0);
    if (reader.ok()) {
      Expected<SourceNode> rec = SourceNode{};
      int n = 0;
      while ((*reader)->Next(rec)) Check(++n < 1000000, "stream does not end");
    }
    return 0;
  }
  caregate::fuzz::CheckUtf8(*parsed);
  CheckStream(text, *parsed, chunk);
  CheckAttributeCounter(text, *parsed);

  format::XmlLimits relaxed;
  relaxed.max_bytes = 64u << 20;
  // The writer does not keep the document's own namespace, so an element in no
  // namespace inside a namespaced document ("{}name") reads back as one of the
  // document's: such a tree must still write well-formed XML, but not the same tree.
  const bool exact = !HasNoNamespaceName(*parsed);
  for (bool pretty : {false, true}) {
    std::string out = format::WriteXmlDocument(*parsed, pretty);
    auto again = format::ParseXml(out, relaxed);
    Check(again.ok(), "written XML does not re-parse", out + "\n" + (again.ok() ? "" : caregate::FormatErrors(again.errors())));
    if (!exact) continue;
    CheckSame(*parsed, *again, pretty ? "pretty round trip changed the tree" : "compact round trip changed the tree", out);
    Check(format::WriteXmlDocument(*again, pretty) == out, "written XML is not stable", out);
  }
  return 0;
}
