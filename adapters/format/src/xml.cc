#include "caregate/format/xml.h"
#include "caregate/format/sinks.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include "caregate/core/swar.h"
#include "caregate/core/text.h"

namespace caregate::format {
namespace {

// Never NOENT, DTDLOAD, DTDATTR, DTDVALID, HUGE or XINCLUDE. NONET is belt and braces:
// no loader is ever reached because a DOCTYPE stops the parse. CDATA sections arrive
// through their own callback (no NOCDATA) because the push parser needs a fix-up there.
constexpr int kParseOptions = XML_PARSE_NONET;
constexpr std::size_t kChunkSize = 64 * 1024;
std::atomic<std::size_t> g_chunk_size{kChunkSize};  // see SetChunkSizeForTesting
constexpr int kHardDepth = 256;
constexpr int kLinearAttributeScan = 16;  // libxml2's own default (xmlParserMaxDepth)

// "prefix:local", for a prefix that was never declared.
std::string QualifiedName(const xmlChar* prefix, const xmlChar* local) {
  std::string name = reinterpret_cast<const char*>(prefix);
  name += ':';
  name += reinterpret_cast<const char*>(local);
  return name;
}

// A name outside the document's namespace: "{uri}local" (James Clark's notation), "{}local"
// for no namespace. '{' cannot start an XML name, so it never equals one of ours.
std::string ExpandedName(const xmlChar* uri, const xmlChar* local) {
  std::string name = "{";
  if (uri != nullptr) name += reinterpret_cast<const char*>(uri);
  name += '}';
  name += reinterpret_cast<const char*>(local);
  return name;
}

void InitLibxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

const char* C(const xmlChar* s) { return reinterpret_cast<const char*>(s); }

std::string CleanMessage(const char* msg) {
  std::string out;
  if (msg == nullptr) return out;
  for (const char* p = msg; *p; ++p) out += (*p == '\n' || *p == '\r') ? ' ' : *p;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool AllSpace(const std::string& s) {
  for (char c : s)
    if (!IsXmlSpace(c)) return false;
  return true;
}

bool IsUtf8Name(const xmlChar* enc) {
  return enc == nullptr || xmlStrcasecmp(enc, BAD_CAST "UTF-8") == 0 || xmlStrcasecmp(enc, BAD_CAST "UTF8") == 0;
}

// Builds SourceNodes straight from libxml2's SAX2 events.
//
// Document mode (ParseXml): the root element is the only record; any error stops.
// Stream mode: records are the root's children when the root is the batch element,
// else the root; a record that breaks a limit becomes an error item and its content is
// skipped; a fatal (well-formedness) error stops.
class SaxBuilder {
 public:
  SaxBuilder(const XmlLimits& limits, bool stream) : limits_(limits), stream_(stream) {}

  static const xmlSAXHandler& Handler() {
    static const xmlSAXHandler handler = [] {
      xmlSAXHandler h;
      std::memset(&h, 0, sizeof h);
      h.initialized = XML_SAX2_MAGIC;
      h.internalSubset = &OnInternalSubset;
      h.startDocument = &OnStartDocument;
      h.startElementNs = &OnStartElement;
      h.endElementNs = &OnEndElement;
      h.characters = &OnCharacters;
      h.ignorableWhitespace = &OnCharacters;
      h.cdataBlock = &OnCdata;
      h.serror = &OnError;
      // Everything else (entity/DTD declarations, entity resolution, comments, PIs,
      // references, old-style error printers) stays null.
      return h;
    }();
    return handler;
  }

  void Attach(xmlParserCtxtPtr ctxt) {
    ctxt_ = ctxt;
    ctxt->_private = this;
  }

  // --- state -------------------------------------------------------------------
  bool fatal() const { return fatal_.has_value(); }
  const FieldError& fatal_error() const { return *fatal_; }
  bool root_seen() const { return root_seen_; }
  const std::string& root_name() const { return root_name_; }
  bool batch() const { return batch_; }
  std::deque<Expected<SourceNode>>& ready() { return ready_; }

  // Folds libxml2's verdict in after a parse call: a document libxml2 found not
  // well-formed is fatal even when no message was captured.
  void CheckWellFormed() {
    if (fatal_) return;
    if (parse_error_) {
      fatal_ = std::move(parse_error_);
      parse_error_.reset();
    } else if (ctxt_ != nullptr && !ctxt_->wellFormed) {
      fatal_ = FieldError{CurrentPath(), "not well-formed XML"};
    }
  }

  void Fatal(std::string problem, int line = -1) {
    if (fatal_) return;
    fatal_ = FieldError{CurrentPath(), WithLine(std::move(problem), line)};
    xmlStopParser(ctxt_);
  }

 private:
  struct Frame {
    SourceNode node;
    std::string text;
    bool has_elements = false;
    std::size_t attrs = 0;
  };

  // After the first error nothing more is built, even where libxml2 carries on (errors
  // it does not treat as fatal), so no record containing or following it is yielded.
  bool halted() const { return fatal_.has_value() || parse_error_.has_value(); }

  static SaxBuilder& From(void* ctx) {
    auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
    return *static_cast<SaxBuilder*>(ctxt->_private);
  }

  int Line() const { return ctxt_ && ctxt_->input ? ctxt_->input->line : 0; }

  std::string WithLine(std::string problem, int line) const {
    if (line < 0) line = Line();
    if (line > 0) problem += " at line " + std::to_string(line);
    return problem;
  }

  std::size_t Consumed() const {
    long n = xmlByteConsumed(ctxt_);
    return n < 0 ? 0 : static_cast<std::size_t>(n);
  }

  // XPath of the element being parsed: "/Batch/Record[3]/Response/Identity".
  std::string CurrentPath() const {
    std::string p;
    if (batch_) {
      p += '/';
      p += root_name_;
    }
    for (std::size_t i = 0; i < depth_; ++i) {
      p += '/';
      p += frames_[i].node.name;
      if (i == 0 && batch_) p += "[" + std::to_string(record_position_) + "]";
    }
    if (depth_ == 0 && poisoned_ && batch_) p += "/" + record_name_ + "[" + std::to_string(record_position_) + "]";
    return p;
  }

  // A limit broken inside a record: in stream mode the record becomes an error item
  // and its content is skipped; in document mode the parse stops.
  // `child`: the element that broke the limit when it is not open yet.
  void RecordFail(std::string problem, std::string_view child = {}) {
    std::string path = CurrentPath();
    if (!child.empty()) {
      path += '/';
      path += child;
    }
    if (!stream_) {
      if (fatal_) return;
      fatal_ = FieldError{std::move(path), WithLine(std::move(problem), -1)};
      xmlStopParser(ctxt_);
      return;
    }
    record_error_ = FieldError{std::move(path), WithLine(std::move(problem), -1)};
    poisoned_ = true;
    depth_ = 0;
  }

  bool TooBig() const { return stream_ && Consumed() - boundary_ > limits_.max_bytes; }
  std::string SizeProblem() const {
    return std::string(batch_ ? "record" : "document") + " larger than " + std::to_string(limits_.max_bytes) +
           " bytes";
  }
  // ParseXml checks the whole document up front; the stream checks as it goes.
  bool CheckSize() {
    if (!TooBig()) return true;
    RecordFail(SizeProblem());
    return false;
  }

  Frame& Push() {
    if (depth_ == frames_.size()) frames_.emplace_back();
    Frame& f = frames_[depth_++];
    f.node.name.clear();
    f.node.value.clear();
    f.node.children.clear();
    f.node.kind = NodeKind::kObject;
    f.node.line = 0;
    f.text.clear();
    f.has_elements = false;
    f.attrs = 0;
    return f;
  }

  static void Finish(Frame& f) {
    SourceNode& n = f.node;
    if (!f.has_elements && f.attrs == 0) {
      n.kind = NodeKind::kString;
      n.value = std::move(f.text);
    } else if (!f.has_elements) {
      if (!f.text.empty()) n.add("#text", NodeKind::kString, std::move(f.text));
    } else if (!AllSpace(f.text)) {
      SourceNode t{"#text", std::move(f.text), NodeKind::kString, n.line, {}};
      n.children.insert(n.children.begin() + static_cast<std::ptrdiff_t>(f.attrs), std::move(t));
    }
    f.text = std::string();
  }

  // --- SAX callbacks -----------------------------------------------------------
  static void OnInternalSubset(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
    From(ctx).Fatal("DTD not allowed: the document has a DOCTYPE declaration");
  }

  static void OnStartDocument(void* ctx) {
    SaxBuilder& b = From(ctx);
    xmlParserCtxtPtr c = b.ctxt_;
    const bool converting = c->input && c->input->buf && c->input->buf->encoder;
    const xmlChar* declared = c->encoding ? c->encoding : (c->input ? c->input->encoding : nullptr);
    if (converting || !IsUtf8Name(declared)) {
      std::string what = declared ? C(declared)
                                  : (converting && c->input->buf->encoder->name ? c->input->buf->encoder->name
                                                                                : "another encoding");
      b.Fatal("only UTF-8 is accepted, but the document is encoded as " + what);
    }
  }

  static void OnStartElement(void* ctx, const xmlChar* localname, const xmlChar* prefix, const xmlChar* uri, int,
                             const xmlChar**, int nb_attributes, int, const xmlChar** attributes) {
    SaxBuilder& b = From(ctx);
    b.cdata_cr_ = false;
    if (b.halted()) return;
    ++b.doc_depth_;
    if (!b.root_seen_) {
      b.root_seen_ = true;
      b.root_name_ = C(localname);
      b.root_uri_ = uri ? std::optional<std::string>(C(uri)) : std::nullopt;
      b.batch_ = b.stream_ && b.root_name_ == kXmlBatchRoot;
      b.record_level_ = b.batch_ ? 2 : 1;
      if (b.batch_) {
        b.boundary_ = b.Consumed();
        return;
      }
    }
    if (b.doc_depth_ < b.record_level_) return;
    if (b.doc_depth_ == b.record_level_) {  // a new record
      b.poisoned_ = false;
      if (b.batch_) {
        b.record_name_ = C(localname);
        b.record_position_ = ++b.record_counts_[b.record_name_];
      }
    }
    if (b.doc_depth_ > kHardDepth && b.doc_depth_ - b.record_level_ + 1 > b.limits_.max_depth) {
      // libxml2's pull parser stops at 256 levels, its push parser does not; past this
      // point even skipping costs memory in libxml2's own stacks, so give up.
      b.Fatal("elements nested deeper than " + std::to_string(kHardDepth) +
              " levels; the rest of the document is not read");
      return;
    }
    if (b.poisoned_) return;
    if (b.doc_depth_ - b.record_level_ + 1 > b.limits_.max_depth) {
      b.RecordFail("elements nested deeper than " + std::to_string(b.limits_.max_depth) + " levels", C(localname));
      return;
    }
    if (!b.CheckSize()) return;
    // "a:b:c" parses as prefix "a", local name "b:c" (libxml2 only warns); such a
    // name cannot be written back as it was read, so refuse it.
    if (std::strchr(C(localname), ':') != nullptr) {
      b.RecordFail("element name '" + std::string(C(localname)) + "' is not a valid qualified name");
      return;
    }
    if (b.depth_ > 0) b.frames_[b.depth_ - 1].has_elements = true;
    Frame& f = b.Push();
    // Names in the document's own namespace (the root's, usually none) are read as local
    // names. One from another vocabulary is kept under its expanded name, "{uri}local"
    // ("{}local" for no namespace in a document that has one), which no rule of ours
    // can match: <x:NHSNumber xmlns:x="urn:other"> is unmapped source data, never our
    // NHS number, and does not make the record invalid (spec 1).
    // A prefix never declared has no namespace at all (libxml2 only warns): such a name
    // keeps its prefix ("x:NHSNumber"), which no rule of ours matches either, below the
    // root (whose name says what the document is).
    if (prefix != nullptr && uri == nullptr && b.doc_depth_ > 1) f.node.name = QualifiedName(prefix, localname);
    else if (b.InDocumentNamespace(uri)) f.node.name = C(localname);
    else f.node.name = ExpandedName(uri, localname);
    f.node.line = static_cast<std::uint32_t>(b.Line());
    if (nb_attributes > 0) {
      f.node.children.reserve(static_cast<std::size_t>(nb_attributes) + 4);
      if (nb_attributes > kLinearAttributeScan) b.attr_names_.clear();
      for (int i = 0; i < nb_attributes; ++i) {
        const xmlChar** a = attributes + 5 * i;
        if (std::strchr(C(a[0]), ':') != nullptr) {
          b.RecordFail("attribute name '" + std::string(C(a[0])) + "' is not a valid qualified name");
          return;
        }
        // Unprefixed attributes are in no namespace, and are ours; a prefixed one in
        // another namespace keeps its expanded name, as elements do.
        auto foreign = [&](const xmlChar** at) { return at[2] != nullptr && !b.InDocumentNamespace(at[2]); };
        auto undeclared = [&](const xmlChar** at) { return at[1] != nullptr && at[2] == nullptr; };
        const bool is_foreign = foreign(a);
        const bool is_undeclared = undeclared(a);
        // Local names come from the parser's dictionary, so equal names are equal
        // pointers; libxml2 has already refused equal qualified names (and two equal
        // expanded names).
        bool clash = false;
        if (is_foreign || is_undeclared) {
          // an expanded or prefixed name cannot clash with a local one
        } else if (nb_attributes <= kLinearAttributeScan) {
          for (int k = 0; k < i && !clash; ++k)
            clash = attributes[5 * k] == a[0] && !foreign(attributes + 5 * k) && !undeclared(attributes + 5 * k);
        } else {
          clash = !b.attr_names_.insert(a[0]).second;
        }
        if (clash) {
          b.RecordFail("attribute '" + std::string(C(a[0])) +
                       "' appears twice on one element (namespace prefixes are not kept)");
          return;
        }
        std::string name = "@";
        if (is_foreign) name += ExpandedName(a[2], a[0]);
        else if (is_undeclared) name += QualifiedName(a[1], a[0]);
        else name += C(a[0]);
        // Without entity substitution libxml2 hands '&' in attribute values over as
        // the character reference "&#38;" (every '&' left in the value starts one).
        std::string_view raw(C(a[3]), static_cast<std::size_t>(a[4] - a[3]));
        std::string value;
        if (raw.find('&') == std::string_view::npos) {
          value.assign(raw);
        } else {
          value.reserve(raw.size());
          for (std::size_t k = 0; k < raw.size(); ++k) {
            value += raw[k];
            if (raw[k] == '&' && raw.substr(k, 5) == "&#38;") k += 4;
          }
        }
        SourceNode& attr = f.node.add(std::move(name), NodeKind::kString, std::move(value));
        attr.line = f.node.line;
      }
      f.attrs = f.node.children.size();
    }
  }

  static void OnEndElement(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
    SaxBuilder& b = From(ctx);
    b.cdata_cr_ = false;
    if (b.halted() || b.doc_depth_ == 0) return;
    const int level = b.doc_depth_--;
    if (level < b.record_level_) return;  // the batch root
    if (b.poisoned_) {
      if (level == b.record_level_) {
        b.ready_.emplace_back(std::move(*b.record_error_));
        b.record_error_.reset();
        b.poisoned_ = false;
        b.boundary_ = b.Consumed();
      }
      return;
    }
    if (b.depth_ == 0) return;
    Frame& f = b.frames_[b.depth_ - 1];
    Finish(f);
    if (b.depth_ == 1) {
      if (b.TooBig()) {  // the record's last stretch
        b.ready_.emplace_back(FieldError{b.CurrentPath(), b.WithLine(b.SizeProblem(), -1)});
      } else {
        b.ready_.emplace_back(std::move(f.node));
      }
      b.boundary_ = b.Consumed();
    } else {
      b.frames_[b.depth_ - 2].node.children.push_back(std::move(f.node));
    }
    --b.depth_;
  }

  static void OnCharacters(void* ctx, const xmlChar* ch, int len) {
    SaxBuilder& b = From(ctx);
    b.cdata_cr_ = false;
    if (b.halted() || b.poisoned_ || b.depth_ == 0) return;
    if (!b.CheckSize()) return;
    b.frames_[b.depth_ - 1].text.append(C(ch), static_cast<std::size_t>(len));
  }

  // libxml2 2.9's push parser hands CDATA over without line-end normalisation (the
  // pull parser normalises), so CR LF and lone CR become LF here, also when a CR LF
  // pair is split between two calls. Found by fuzzing the stream against ParseXml.
  static void OnCdata(void* ctx, const xmlChar* ch, int len) {
    SaxBuilder& b = From(ctx);
    if (b.halted() || b.poisoned_ || b.depth_ == 0) return;
    if (!b.CheckSize()) return;
    std::string& text = b.frames_[b.depth_ - 1].text;
    std::string_view in(C(ch), static_cast<std::size_t>(len));
    if (in.find('\r') == std::string_view::npos && !(b.cdata_cr_ && !in.empty() && in[0] == '\n')) {
      text.append(in);
      b.cdata_cr_ = false;
      return;
    }
    for (char c : in) {
      if (c == '\r') {
        text += '\n';
        b.cdata_cr_ = true;
        continue;
      }
      if (!(c == '\n' && b.cdata_cr_)) text += c;
      b.cdata_cr_ = false;
    }
  }

  static void OnError(void* ctx, xmlErrorPtr err) {
    if (err == nullptr || err->level < XML_ERR_ERROR || err->domain == XML_FROM_NAMESPACE) return;
    SaxBuilder& b = From(ctx);
    if (b.fatal_ || b.parse_error_) return;
    std::string msg = CleanMessage(err->message);
    std::string problem;
    if (msg.rfind("Input is not proper UTF-8", 0) == 0)
      problem = "text is not valid UTF-8";
    else if (err->code == XML_ERR_INVALID_ENCODING || err->code == XML_ERR_UNSUPPORTED_ENCODING ||
             err->code == XML_ERR_UNKNOWN_ENCODING)
      problem = "only UTF-8 is accepted";
    else
      problem = "not well-formed XML";
    if (err->line > 0) problem += " at line " + std::to_string(err->line);
    if (!msg.empty()) problem += ": " + msg;
    b.parse_error_ = FieldError{b.CurrentPath(), std::move(problem)};
  }

  const XmlLimits limits_;
  const bool stream_;
  xmlParserCtxtPtr ctxt_ = nullptr;

  std::vector<Frame> frames_;  // open elements of the current record; reused
  std::size_t depth_ = 0;      // frames_ in use
  int doc_depth_ = 0;          // open elements in the document
  int record_level_ = 1;       // doc_depth_ of a record element
  bool root_seen_ = false;
  std::optional<std::string> root_uri_;  // the document's namespace (the root element's)

  bool InDocumentNamespace(const xmlChar* uri) const {
    if (uri == nullptr) return !root_uri_.has_value();
    return root_uri_.has_value() && *root_uri_ == C(uri);
  }
  bool batch_ = false;
  std::string root_name_;
  std::string record_name_;
  int record_position_ = 0;
  std::unordered_map<std::string, int> record_counts_;
  std::unordered_set<const xmlChar*> attr_names_;  // for elements with many attributes
  bool poisoned_ = false;
  bool cdata_cr_ = false;  // the last CDATA piece ended in CR
  std::optional<FieldError> record_error_;
  std::size_t boundary_ = 0;  // byte offset where the current record's stretch began

  std::deque<Expected<SourceNode>> ready_;
  std::optional<FieldError> parse_error_;  // first libxml2 error
  std::optional<FieldError> fatal_;
};

struct CtxtDeleter {
  void operator()(xmlParserCtxtPtr c) const {
    if (c != nullptr) {
      if (c->myDoc != nullptr) xmlFreeDoc(c->myDoc);
      xmlFreeParserCtxt(c);
    }
  }
};
using CtxtPtr = std::unique_ptr<xmlParserCtxt, CtxtDeleter>;

// Byte-order marks and NULs in the first bytes mean UTF-16/UTF-32: say so plainly
// instead of reporting a NUL byte.
std::optional<FieldError> SniffEncoding(std::string_view head) {
  auto starts = [&](std::string_view p) { return head.substr(0, p.size()) == p; };
  if (starts("\xFF\xFE") || starts("\xFE\xFF"))
    return FieldError{"", "only UTF-8 is accepted, but the document starts with a UTF-16 byte order mark"};
  if (head.substr(0, 4).find('\0') != std::string_view::npos)
    return FieldError{"", "only UTF-8 is accepted, but the document looks like UTF-16 or UTF-32"};
  return std::nullopt;
}

// A light lexer run over the raw bytes before libxml2 sees them, to refuse start tags
// with too many attributes: libxml2 2.9 checks attribute uniqueness pairwise, so one
// 4 MB start tag costs minutes of CPU. Exact for well-formed documents without a
// DOCTYPE (which is refused anyway); on malformed input it may lose step, which only
// changes which error is reported. Incremental: chunks may split any construct.
class AttributeCounter {
 public:
  explicit AttributeCounter(int max_attributes) : max_(max_attributes) {}

  // False when a start tag has more than max_attributes attributes.
  bool Feed(std::string_view data) {
    for (std::size_t i = 0; i < data.size(); ++i) {
      const char c = data[i];
      switch (state_) {
        case State::kText: {
          const void* lt = std::memchr(data.data() + i, '<', data.size() - i);
          if (lt == nullptr) return true;
          i = static_cast<std::size_t>(static_cast<const char*>(lt) - data.data());
          state_ = State::kOpen;
          break;
        }
        case State::kOpen:
          if (c == '!') {
            state_ = State::kBang;
            matched_ = 0;
          } else if (c == '?') {
            Until("?>");
          } else if (c == '/') {
            state_ = State::kEndTag;
          } else if (c == '>') {
            state_ = State::kText;
          } else {
            state_ = State::kTag;
            quote_ = 0;
            attributes_ = 0;
          }
          break;
        case State::kBang: {  // after "<!": a comment, a CDATA section or a declaration
          constexpr std::string_view kComment = "--", kCdata = "[CDATA[";
          const bool comment = matched_ < kComment.size() && kComment[matched_] == c;
          const bool cdata = matched_ < kCdata.size() && kCdata[matched_] == c;
          ++matched_;
          if (comment && matched_ == kComment.size()) Until("-->");
          else if (cdata && matched_ == kCdata.size()) Until("]]>");
          else if (!comment && !cdata) {
            state_ = State::kDeclaration;
            quote_ = 0;
            --i;  // look at this byte again as part of the declaration
          }
          break;
        }
        case State::kUntil:
          if (c == end_[matched_]) {
            if (++matched_ == end_.size()) state_ = State::kText;
          } else {
            // Restart the match; the terminators have no self-overlap beyond a
            // repeated first character ("--->", "]]]>", "??>").
            matched_ = (c == end_[0]) ? (matched_ > 0 && end_[0] == end_[1] ? matched_ : 1) : 0;
          }
          break;
        case State::kEndTag:
          if (c == '>') state_ = State::kText;
          break;
        case State::kTag:
        case State::kDeclaration:
          if (quote_ != 0) {
            if (c == quote_) quote_ = 0;
          } else if (c == '"' || c == '\'') {
            quote_ = c;
          } else if (c == '>') {
            state_ = State::kText;
          } else if (c == '=' && state_ == State::kTag && ++attributes_ > max_) {
            return false;
          }
          break;
      }
    }
    return true;
  }

 private:
  enum class State { kText, kOpen, kBang, kUntil, kEndTag, kTag, kDeclaration };
  void Until(std::string_view end) {
    state_ = State::kUntil;
    end_ = end;
    matched_ = 0;
  }

  const int max_;
  State state_ = State::kText;
  std::string_view end_;
  std::size_t matched_ = 0;
  char quote_ = 0;
  int attributes_ = 0;
};

std::string TooManyAttributes(int max) {
  return "not accepted: an element has more than " + std::to_string(max) + " attributes";
}

FieldError NulByte(std::size_t offset) {
  return FieldError{"", "not well-formed XML: NUL byte at offset " + std::to_string(offset)};
}

// --- writing ---------------------------------------------------------------------

// Characters XML 1.0 cannot carry at all (C0 controls other than TAB/LF/CR, and
// U+FFFE/U+FFFF) are written as U+FFFD so the output is always well-formed.
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Bytes the loop below may have to replace (a superset for 0xEF, which only starts a
// replacement): most values have none and are appended in one piece.
template <bool kAttribute>
constexpr std::array<bool, 256> EscapeTable() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = true;
  if (!kAttribute) t['\n'] = t['\t'] = false;
  t['&'] = t['<'] = t['>'] = t[0xEF] = true;
  if (kAttribute) t['"'] = true;
  return t;
}

template <bool kAttribute>
char* WriteEscaped(char* out, std::string_view s) {
  static constexpr std::array<bool, 256> kSpecial = EscapeTable<kAttribute>();
  auto put = [&out](std::string_view bytes) {
    swar::CopyBytes(out, bytes.data(), bytes.size());
    out += bytes.size();
  };
  std::size_t run = 0;  // start of the pending run of plain bytes
  // Words of 8 plain bytes are passed whole; a word that may hold a special byte is
  // looked at byte by byte (the loop below runs to the end of that word, then skips again).
  std::size_t word_end = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i >= word_end) {
      while (i + 8 <= s.size() && !swar::AnyXmlSpecial<kAttribute>(swar::Load(s.data() + i))) i += 8;
      if (i >= s.size()) break;
      word_end = i + 8;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (!kSpecial[c]) continue;
    std::string_view rep;
    switch (c) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '\r': rep = "&#13;"; break;
      case '"': if (kAttribute) rep = "&quot;"; break;
      case '\n': if (kAttribute) rep = "&#10;"; break;
      case '\t': if (kAttribute) rep = "&#9;"; break;
      case 0xEF:  // U+FFFE / U+FFFF are EF BF BE / EF BF BF
        if (i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
            (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xBE) {
          put(s.substr(run, i - run));
          put(kReplacement);
          i += 2;
          run = i + 1;
        }
        continue;
      default:
        if (c < 0x20) rep = kReplacement;
    }
    if (rep.empty()) continue;
    put(s.substr(run, i - run));
    put(rep);
    run = i + 1;
  }
  put(s.substr(run));
  return out;
}

template <bool kAttribute>
void AppendEscaped(std::string& out, std::string_view s) {
  static constexpr std::array<bool, 256> kSpecial = EscapeTable<kAttribute>();
  std::size_t first = 0;
  while (first + 8 <= s.size() && !swar::AnyXmlSpecial<kAttribute>(swar::Load(s.data() + first))) first += 8;
  while (first < s.size() && !kSpecial[static_cast<unsigned char>(s[first])]) ++first;
  if (first == s.size()) {  // the common case: nothing to replace
    out.append(s);
    return;
  }
  const std::size_t at = out.size();
  out.resize(at + kXmlEscapedMax * s.size());
  char* end = WriteEscaped<kAttribute>(out.data() + at, s);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

bool IsAttribute(const SourceNode& c) { return !c.name.empty() && c.name[0] == '@'; }
bool IsText(const SourceNode& c) { return c.name == "#text"; }

bool WritesElement(const SourceNode& c) {
  if (c.kind == NodeKind::kNull) return false;
  if (c.kind == NodeKind::kArray) {
    for (const auto& item : c.children)
      if (WritesElement(item)) return true;
    return false;
  }
  return true;
}

void Indent(std::string& out, int level, bool pretty) {
  if (pretty) out.append(static_cast<std::size_t>(level) * 2, ' ');
}

// An expanded name ("{uri}local", see ExpandedName) is written with a prefix bound on the
// element itself: `p`, and `a1`, `a2`... for its attributes; "{}local" as `local` with
// `xmlns=""`. Other names are written as they are.
constexpr std::string_view kXmlNamespace = "http://www.w3.org/XML/1998/namespace";

struct XmlName {
  std::string_view uri, local;
  bool expanded = false;
};
XmlName SplitName(std::string_view name) {
  if (name.empty() || name[0] != '{') return {{}, name, false};
  // A namespace name may hold '}', a local name (an NCName) may not: the last one ends it.
  const std::size_t close = name.rfind('}');
  if (close == std::string_view::npos) return {{}, name, false};
  return {name.substr(1, close - 1), name.substr(close + 1), true};
}

// The prefix an expanded name is written with: `xml` for the XML namespace, which is bound
// in every document and may be bound to nothing else (so it is never declared), none for
// no namespace, else `bound`, which the writer declares.
std::string_view PrefixOf(const XmlName& n, std::string_view bound) {
  if (!n.expanded || n.uri.empty()) return {};
  return n.uri == kXmlNamespace ? std::string_view("xml") : bound;
}

void AppendTagName(std::string& out, const XmlName& n) {
  if (const std::string_view prefix = PrefixOf(n, "p"); !prefix.empty()) {
    out += prefix;
    out += ':';
  }
  out += n.local;
}

void AppendNamespaceDeclaration(std::string& out, const XmlName& n) {
  if (!n.expanded || n.uri == kXmlNamespace) return;
  out += n.uri.empty() ? " xmlns=\"" : " xmlns:p=\"";
  AppendEscaped<true>(out, n.uri);
  out += '"';
}

void AppendElement(std::string& out, std::string_view raw_name, const SourceNode& node, int level, bool pretty) {
  const XmlName name = SplitName(raw_name);
  switch (node.kind) {
    case NodeKind::kNull: return;
    case NodeKind::kArray:
      for (const auto& item : node.children) AppendElement(out, raw_name, item, level, pretty);
      return;
    case NodeKind::kObject: break;
    default:  // scalars
      Indent(out, level, pretty);
      out += '<';
      AppendTagName(out, name);
      AppendNamespaceDeclaration(out, name);
      if (node.value.empty()) {
        out += "/>";
      } else {
        out += '>';
        AppendEscaped<false>(out, node.value);
        out += "</";
        AppendTagName(out, name);
        out += '>';
      }
      if (pretty) out += '\n';
      return;
  }
  Indent(out, level, pretty);
  out += '<';
  AppendTagName(out, name);
  AppendNamespaceDeclaration(out, name);
  bool has_elements = false, has_text = false;
  int attribute_prefixes = 0;
  for (const auto& c : node.children) {
    if (IsAttribute(c)) {
      if (c.kind == NodeKind::kNull || !c.is_scalar()) continue;
      out += ' ';
      const XmlName attr = SplitName(std::string_view(c.name).substr(1));
      if (attr.expanded) {
        const std::string bound = "a" + std::to_string(attribute_prefixes + 1);
        const std::string_view prefix = PrefixOf(attr, bound);
        if (prefix == bound) {  // declared just before its use
          ++attribute_prefixes;
          out += "xmlns:" + bound + "=\"";
          AppendEscaped<true>(out, attr.uri);
          out += "\" ";
        }
        if (!prefix.empty()) {
          out += prefix;
          out += ':';
        }
      }
      out += attr.local;
      out += "=\"";
      AppendEscaped<true>(out, c.value);
      out += '"';
    } else if (IsText(c)) {
      has_text = has_text || (c.is_scalar() && c.kind != NodeKind::kNull && !c.value.empty());
    } else {
      has_elements = has_elements || WritesElement(c);
    }
  }
  if (!has_elements && !has_text) {
    out += "/>";
    if (pretty) out += '\n';
    return;
  }
  out += '>';
  const bool nested_pretty = pretty && !has_text;  // mixed content is written compactly
  if (nested_pretty) out += '\n';
  for (const auto& c : node.children) {
    if (IsAttribute(c)) continue;
    if (IsText(c)) {
      if (c.is_scalar() && c.kind != NodeKind::kNull) AppendEscaped<false>(out, c.value);
      continue;
    }
    AppendElement(out, c.name, c, level + 1, nested_pretty);
  }
  if (nested_pretty) Indent(out, level, true);
  out += "</";
  AppendTagName(out, name);
  out += '>';
  if (pretty) out += '\n';
}

}  // namespace

// --- ParseXml ----------------------------------------------------------------------

Expected<SourceNode> ParseXml(std::string_view text, const XmlLimits& limits) {
  if (text.size() > limits.max_bytes || text.size() > static_cast<std::size_t>(INT_MAX))
    return FieldError{"", "XML document is " + std::to_string(text.size()) + " bytes, larger than the limit of " +
                              std::to_string(limits.max_bytes) + " bytes"};
  if (auto bad = SniffEncoding(text)) return *bad;
  if (const void* nul = std::memchr(text.data(), 0, text.size()))
    return NulByte(static_cast<std::size_t>(static_cast<const char*>(nul) - text.data()));
  if (AttributeCounter counter(limits.max_attributes); !counter.Feed(text))
    return FieldError{"", TooManyAttributes(limits.max_attributes)};
  std::size_t first = 0;
  while (first < text.size() && IsXmlSpace(text[first])) ++first;
  if (first == text.size()) return FieldError{"", "empty input: expected an XML document"};
  InitLibxml();
  CtxtPtr ctxt(xmlCreateMemoryParserCtxt(text.data(), static_cast<int>(text.size())));
  if (!ctxt || ctxt->sax == nullptr) return FieldError{"", "cannot create an XML parser (out of memory?)"};
  xmlCtxtUseOptions(ctxt.get(), kParseOptions);
  *ctxt->sax = SaxBuilder::Handler();
  ctxt->userData = ctxt.get();
  SaxBuilder builder(limits, /*stream=*/false);
  builder.Attach(ctxt.get());
  xmlParseDocument(ctxt.get());
  builder.CheckWellFormed();
  if (builder.fatal()) return builder.fatal_error();
  if (builder.ready().empty()) return FieldError{"", "not well-formed XML: no root element"};
  return std::move(builder.ready().front());
}

// --- XmlStreamReader -----------------------------------------------------------------

struct XmlStreamReader::Impl {
  explicit Impl(const XmlLimits& xml_limits)
      : limits(xml_limits), counter(xml_limits.max_attributes), builder(xml_limits, /*stream=*/true) {}
  ~Impl() {
    if (file != nullptr) std::fclose(file);
  }

  // Reads the next chunk of input; returns the number of bytes (0 at the end).
  std::size_t Read(char* buf, std::size_t cap) {
    if (file != nullptr) {
      std::size_t n = std::fread(buf, 1, cap, file);
      if (n == 0 && std::ferror(file)) read_error = true;
      return n;
    }
    std::size_t n = std::min(cap, memory.size() - memory_pos);
    std::memcpy(buf, memory.data() + memory_pos, n);
    memory_pos += n;
    return n;
  }

  // Creates the parser context, feeding it the first bytes for encoding detection.
  bool Start() {
    InitLibxml();
    std::size_t n = Read(buffer.data(), 4);
    if (auto bad = SniffEncoding(std::string_view(buffer.data(), n))) {
      start_error = *bad;
      return false;
    }
    if (std::memchr(buffer.data(), 0, n) != nullptr) {
      start_error = NulByte(static_cast<std::size_t>(
          static_cast<const char*>(std::memchr(buffer.data(), 0, n)) - buffer.data()));
      return false;
    }
    counter.Feed(std::string_view(buffer.data(), n));  // 4 bytes cannot overflow it
    fed = n;
    xmlSAXHandler sax = SaxBuilder::Handler();
    ctxt.reset(xmlCreatePushParserCtxt(&sax, nullptr, buffer.data(), static_cast<int>(n), name.c_str()));
    if (!ctxt) {
      start_error = FieldError{"", "cannot create an XML parser (out of memory?)"};
      return false;
    }
    xmlCtxtUseOptions(ctxt.get(), kParseOptions);
    ctxt->userData = ctxt.get();
    builder.Attach(ctxt.get());
    if (n == 0) Feed();  // empty input: let libxml2 report it
    return true;
  }

  // Feeds one chunk (or the end of input) to the parser.
  void Feed() {
    if (finished) return;
    std::size_t n = Read(buffer.data(), chunk);
    if (read_error) {
      builder.Fatal("cannot read " + name + ": " + std::strerror(errno));
      finished = true;
      return;
    }
    if (const void* nul = std::memchr(buffer.data(), 0, n)) {
      builder.Fatal(NulByte(fed + static_cast<std::size_t>(static_cast<const char*>(nul) - buffer.data())).problem);
      finished = true;
      return;
    }
    if (!counter.Feed(std::string_view(buffer.data(), n))) {
      builder.Fatal(TooManyAttributes(limits.max_attributes));
      finished = true;
      return;
    }
    fed += n;
    xmlParseChunk(ctxt.get(), buffer.data(), static_cast<int>(n), n == 0 ? 1 : 0);
    builder.CheckWellFormed();
    if (n == 0 || builder.fatal()) finished = true;
    if (n == 0 && !builder.fatal() && !builder.root_seen()) builder.Fatal("not well-formed XML: no root element");
  }

  const XmlLimits limits;
  AttributeCounter counter;
  std::string name;  // file path, or "memory"
  std::FILE* file = nullptr;
  std::string memory;
  std::size_t memory_pos = 0;
  std::vector<char> buffer = std::vector<char>(kChunkSize);
  std::size_t chunk = g_chunk_size.load();
  std::size_t fed = 0;
  bool read_error = false;
  std::optional<FieldError> start_error;

  SaxBuilder builder;
  CtxtPtr ctxt;
  bool finished = false;
  bool error_reported = false;
  std::size_t yielded = 0;
};

namespace {
Expected<std::unique_ptr<XmlStreamReader::Impl>> Prime(std::unique_ptr<XmlStreamReader::Impl> impl) {
  if (!impl->Start()) return *impl->start_error;
  while (!impl->builder.root_seen() && !impl->finished) impl->Feed();
  // A read error is the input's failure, not bad XML: Next reports it (read_failed).
  if (impl->builder.fatal() && !impl->builder.root_seen() && !impl->read_error) return impl->builder.fatal_error();
  return impl;
}
}  // namespace

XmlStreamReader::XmlStreamReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
XmlStreamReader::~XmlStreamReader() = default;

Expected<std::unique_ptr<XmlStreamReader>> XmlStreamReader::OpenFile(const std::string& path,
                                                                     const XmlLimits& limits) {
  auto impl = std::make_unique<Impl>(limits);
  impl->name = path == "-" ? "stdin" : path;
  if (path == "-") {  // standard input, streamed like a file
    const int fd = ::dup(0);
    impl->file = fd < 0 ? nullptr : ::fdopen(fd, "rb");
    if (impl->file == nullptr && fd >= 0) ::close(fd);
  } else {
    impl->file = std::fopen(path.c_str(), "rb");
  }
  if (impl->file == nullptr) return FieldError{"", "cannot open " + impl->name + ": " + std::strerror(errno)};
  auto primed = Prime(std::move(impl));
  if (!primed) return primed.errors();
  return std::unique_ptr<XmlStreamReader>(new XmlStreamReader(std::move(primed.value())));
}

Expected<std::unique_ptr<XmlStreamReader>> XmlStreamReader::OpenMemory(std::string_view text,
                                                                       const XmlLimits& limits) {
  auto impl = std::make_unique<Impl>(limits);
  impl->name = "memory";
  impl->memory.assign(text);
  auto primed = Prime(std::move(impl));
  if (!primed) return primed.errors();
  return std::unique_ptr<XmlStreamReader>(new XmlStreamReader(std::move(primed.value())));
}

const std::string& XmlStreamReader::root_name() const { return impl_->builder.root_name(); }
bool XmlStreamReader::is_batch() const { return impl_->builder.batch(); }
std::size_t XmlStreamReader::records_yielded() const { return impl_->yielded; }
bool XmlStreamReader::read_failed() const { return impl_->read_error; }
void XmlStreamReader::SetChunkSizeForTesting(std::size_t bytes) {
  g_chunk_size.store(bytes == 0 ? kChunkSize : std::min(bytes, kChunkSize));
}

bool XmlStreamReader::Next(Expected<SourceNode>& out) {
  auto& ready = impl_->builder.ready();
  while (ready.empty() && !impl_->finished) impl_->Feed();
  if (!ready.empty()) {
    out = std::move(ready.front());
    ready.pop_front();
    ++impl_->yielded;
    return true;
  }
  if (impl_->builder.fatal() && !impl_->error_reported) {
    impl_->error_reported = true;
    out = impl_->builder.fatal_error();
    return true;
  }
  return false;
}

// --- writing -------------------------------------------------------------------------

void AppendXmlEscapedText(std::string& out, std::string_view s, bool attribute) {
  if (attribute) AppendEscaped<true>(out, s);
  else AppendEscaped<false>(out, s);
}

char* WriteXmlEscapedText(char* out, std::string_view s, bool attribute) {
  return attribute ? WriteEscaped<true>(out, s) : WriteEscaped<false>(out, s);
}

void AppendXml(std::string& out, const SourceNode& element, int indent_level, bool pretty) {
  AppendElement(out, element.name, element, indent_level, pretty);
}

std::string WriteXmlDocument(const SourceNode& root, bool pretty) {
  std::string out;
  out.reserve(4096);
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  AppendElement(out, root.name, root, 0, pretty);
  if (out.back() != '\n') out += '\n';
  return out;
}

}  // namespace caregate::format
