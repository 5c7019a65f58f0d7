#pragma once
// XML <-> SourceNode, on libxml2's SAX2 parser (no libxml2 tree is ever built).
//
// Hardening: any document with a DOCTYPE is rejected ("DTD not allowed"), which rules
// out external entities (XXE), parameter entities, entity-expansion bombs and external
// DTDs; no network or file access on behalf of a document (XML_PARSE_NONET, no
// DTDLOAD/NOENT/XINCLUDE/HUGE); size and depth caps; only UTF-8 input is accepted
// (a BOM or declaration of any other encoding is an error, so no transcoding ever
// happens); invalid UTF-8 is rejected. libxml2 errors are captured per parser context
// (nothing is printed) and reported as FieldErrors naming the line.
//
// SourceNode conventions (XML):
//   element with neither attributes nor child elements -> kString, value = its text
//     exactly as written (not trimmed); <X/> and <X></X> -> kString ""
//   element with attributes and/or child elements -> kObject whose children are
//     first the attributes, in document order, named "@Name" (kString), then
//     "#text" (kString) if the element has attributes but no child elements and
//     non-empty text, or child elements and text that is not all whitespace
//     (mixed content: all text pieces concatenated), then the child elements
//   whitespace-only text between child elements is ignored
//   names are local names (namespace prefixes dropped; xmlns declarations dropped)
//   comments and processing instructions are ignored; CDATA is text
//   line = line of the element's start tag (attributes: the same line)
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "caregate/core/error.h"
#include "caregate/core/source_tree.h"

namespace caregate::format {

struct XmlLimits {
  // ParseXml: the whole document. XmlStreamReader: one record (the bytes since the
  // previous record ended), or the whole document when it is not a batch.
  std::size_t max_bytes = 4 << 20;
  // Element nesting; the record element (the root for ParseXml) is depth 1.
  int max_depth = 64;
  // Attributes (namespace declarations included) on one element; checked on the raw
  // bytes before libxml2 parses them (its duplicate check is quadratic).
  int max_attributes = 256;
};

inline constexpr std::string_view kXmlBatchRoot = "ClientIntegrationBatch";

// Parses a whole document and returns its root element. On failure returns one
// FieldError: path is the XPath of the element being parsed ("" if none), problem is
// plain English with the line number.
Expected<SourceNode> ParseXml(std::string_view text, const XmlLimits& limits = {});

// Streams a document with flat memory use. When the root element is
// ClientIntegrationBatch, Next yields each child element of the root in order (the
// root's own attributes and text are ignored); otherwise Next yields the root
// element once.
//
// Each call to Next that returns true stores one record or one error in `out`. A
// record that breaks a limit (depth, size) yields an error for that record and the
// stream carries on with the next one; a document that is not well-formed ends the
// stream: the records before the fault are yielded first, then the error naming
// the line. Next returns false when the stream is finished.
class XmlStreamReader {
 public:
  // Errors in the prolog (DOCTYPE, encoding, empty file, a file that cannot be opened)
  // and a malformed root start tag are reported here; a read error is not (read_failed).
  static Expected<std::unique_ptr<XmlStreamReader>> OpenFile(const std::string& path, const XmlLimits& limits = {});
  // Copies `text`, so the caller's buffer need not outlive the reader.
  static Expected<std::unique_ptr<XmlStreamReader>> OpenMemory(std::string_view text, const XmlLimits& limits = {});

  ~XmlStreamReader();
  XmlStreamReader(const XmlStreamReader&) = delete;
  XmlStreamReader& operator=(const XmlStreamReader&) = delete;

  const std::string& root_name() const;  // local name of the root element
  bool is_batch() const;                 // root is ClientIntegrationBatch
  bool Next(Expected<SourceNode>& out);
  std::size_t records_yielded() const;   // records and record errors so far
  // The input could not be read (an I/O error): the fatal error Next reports last says
  // so. OpenFile succeeds in that case, so that callers can tell it from bad XML.
  bool read_failed() const;

  // Test hook: bytes handed to libxml2 per parse step by readers opened afterwards
  // (default 64 KiB; 0 restores it), so tests and fuzzers can exercise records
  // straddling chunk borders. Process-wide; not for production code.
  static void SetChunkSizeForTesting(std::size_t bytes);

  struct Impl;

 private:
  explicit XmlStreamReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Serialisation. kObject -> element: "@x" children become attributes, "#text" text,
// other children child elements; kString/kNumber/kBool -> <n>text</n>, or <n/> when
// empty; kNull children are skipped; a kArray child writes each item as an element
// named after the array (a kArray "Goal" of two objects writes two <Goal> elements).
// `pretty` puts each element on its own line indented by two spaces per level
// (elements with mixed content are written compactly inside).
void AppendXml(std::string& out, const SourceNode& element, int indent_level = 0, bool pretty = false);
// `<?xml version="1.0" encoding="UTF-8"?>\n` then the root element (and a newline).
std::string WriteXmlDocument(const SourceNode& root, bool pretty = false);

// The writer's escaping: & < > and CR always; in attribute values also " LF TAB (so
// they survive attribute-value normalisation); characters XML 1.0 cannot carry (C0
// controls other than TAB/LF/CR, U+FFFE, U+FFFF) become U+FFFD.
void AppendXmlEscapedText(std::string& out, std::string_view s, bool attribute);

}  // namespace caregate::format
