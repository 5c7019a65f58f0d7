#include "caregate/format/json.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "caregate/core/text.h"
#include "caregate/core/tree_sink.h"

namespace caregate::format {
namespace {

// The input is copied into a buffer followed by kSimdPadding NUL bytes. The copy is
// ours, so it is parsed in situ: strings are decoded in place instead of through
// RapidJSON's stack. The stream is a type of its own so that its string scan (below)
// can rely on the padding.
struct PaddedStream : rapidjson::InsituStringStream {
  explicit PaddedStream(char* src) : rapidjson::InsituStringStream(src) {}
};
using Stream = PaddedStream;
constexpr std::size_t kSimdPadding = 16;

}  // namespace
}  // namespace caregate::format

namespace rapidjson {

// Copied like RapidJSON's own in-situ stream into a local while a number is parsed.
template <>
struct StreamTraits<caregate::format::PaddedStream> {
  enum { copyOptimization = 1 };
};

// Between tokens. The extract's lines are compact JSON, so usually there is no
// whitespace at all: checked inline, byte by byte (RapidJSON's SIMD skip is only for
// its own stream types, and costs a 16-byte load and compare even for no whitespace).
template <>
inline void SkipWhitespace(caregate::format::PaddedStream& is) {
  char* p = is.src_;
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') ++p;
  is.src_ = p;
}

#if defined(__SSE2__)
// The scan for the end of a string's unescaped run, 16 bytes at a time from wherever
// the string starts. RapidJSON's own in-situ scan first walks byte by byte to a 16-byte
// boundary, since it cannot know that reading past the text is safe; most keys and
// values here are shorter than 16 bytes, so that walk was most of its cost. Here every
// read is safe: a load starts at a byte not yet found to be special (a quote, a
// backslash or below 0x20), so at or before the first padding NUL, and ends within the
// padding.
template <>
template <>
inline void GenericReader<UTF8<>, UTF8<>, CrtAllocator>::ScanCopyUnescapedString<caregate::format::PaddedStream,
                                                                                caregate::format::PaddedStream>(
    caregate::format::PaddedStream& is, caregate::format::PaddedStream& os) {
  (void)os;  // the same stream: in situ
  char* p = is.src_;
  char* q = is.dst_;
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1F);
  for (;;) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(s, quote), _mm_cmpeq_epi8(s, backslash)),
                                         _mm_cmpeq_epi8(_mm_max_epu8(s, control), control));  // s <= 0x1F
    const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(special));
    if (mask != 0) {
      const auto n = static_cast<std::size_t>(__builtin_ctz(mask));
      if (p != q) std::memmove(q, p, n);
      p += n;
      q += n;
      break;
    }
    if (p != q) _mm_storeu_si128(reinterpret_cast<__m128i*>(q), s);
    p += 16;
    q += 16;
  }
  is.src_ = p;
  is.dst_ = q;
}
#endif

}  // namespace rapidjson

namespace caregate::format {
namespace {

// Objects with more keys than this get a hash set for duplicate detection; smaller
// ones are scanned linearly (cheaper: a CIS client record has about 35 top-level keys,
// and the scan costs at most 64*63/2 comparisons per object before the set takes over).
constexpr std::size_t kLinearKeyScan = 64;

// What both SAX handlers below check, and how they fail: string limits and UTF-8, an
// error with the JSON Pointer of where it happened (Derived::CurrentPointer) and the
// byte offset.
template <typename Derived>
class HandlerBase {
 public:
  bool failed() const { return !error_.problem.empty(); }
  FieldError& error() { return error_; }

 protected:
  HandlerBase(const JsonLimits& limits, Stream& stream, std::string_view text)
      : limits_(limits), stream_(stream), strings_valid_(DecodesToValidUtf8(text)) {}

  // Every string decoded from `text` is valid UTF-8 when the text is and has no \u
  // escape: a string's raw bytes lie between ASCII quotes (never inside a multi-byte
  // sequence), and the other escapes decode to ASCII. One pass over the line then
  // replaces a check per string. (A "\\u" that is an escaped backslash only costs the
  // per-string checks.)
  static bool DecodesToValidUtf8(std::string_view text) {
    return text.find("\\u") == std::string_view::npos && IsValidUtf8(text);
  }

  static std::string Printable(std::string_view s) {
    std::string out;
    AppendJsonEscaped(out, s.substr(0, 80));
    if (s.size() > 80) out += "...";
    return out;
  }

  bool Unexpected() { return Fail("internal error: unexpected number callback"); }

  bool Fail(std::string problem) {
    error_.path = static_cast<const Derived*>(this)->CurrentPointer();
    error_.problem = std::move(problem) + " at byte " + std::to_string(stream_.Tell());
    return false;
  }

  // RapidJSON's own UTF-8 validation goes byte by byte and turns off its SIMD string
  // scan, and it lets a lone low surrogate escape (\uDC00) through as bytes ED B0 80;
  // so the decoded strings are checked here instead (pure ASCII is skipped 8 bytes at
  // a time).
  bool CheckString(const char* str, std::size_t len, const char* what) {
    if (len > limits_.max_string)
      return Fail(std::string(what) + " longer than " + std::to_string(limits_.max_string) + " bytes");
    if (!strings_valid_ && !IsAscii(str, len) && !IsValidUtf8(std::string_view(str, len)))
      return Fail(std::string(what) + " is not valid UTF-8");
    return true;
  }

  static bool IsAscii(const char* s, std::size_t len) {
    std::size_t i = 0;
    for (; i + 8 <= len; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ULL) return false;
    }
    for (; i < len; ++i)
      if (static_cast<unsigned char>(s[i]) & 0x80) return false;
    return true;
  }

  const JsonLimits& limits_;
  Stream& stream_;
  const bool strings_valid_;  // DecodesToValidUtf8(the whole text)
  FieldError error_;
};

class TreeBuilder : public HandlerBase<TreeBuilder> {
 public:
  TreeBuilder(const JsonLimits& limits, Stream& stream, std::string_view text, SourceNode& root)
      : HandlerBase(limits, stream, text), text_(text), root_(root),
        multiline_(std::memchr(text.data(), '\n', text.size()) != nullptr) {}

  // --- RapidJSON SAX interface -------------------------------------------------
  bool Null() { return Scalar(NodeKind::kNull, nullptr, 0); }
  bool Bool(bool b) { return b ? Scalar(NodeKind::kBool, "true", 4) : Scalar(NodeKind::kBool, "false", 5); }
  // Never called with kParseNumbersAsStringsFlag; present for the concept.
  bool Int(int) { return Unexpected(); }
  bool Uint(unsigned) { return Unexpected(); }
  bool Int64(int64_t) { return Unexpected(); }
  bool Uint64(uint64_t) { return Unexpected(); }
  bool Double(double) { return Unexpected(); }
  bool RawNumber(const char* str, rapidjson::SizeType len, bool) { return Scalar(NodeKind::kNumber, str, len); }
  bool String(const char* str, rapidjson::SizeType len, bool) {
    if (!CheckString(str, len, "string")) return false;
    return Scalar(NodeKind::kString, str, len);
  }
  bool StartObject() { return Open(NodeKind::kObject); }
  bool Key(const char* str, rapidjson::SizeType len, bool) {
    if (!CheckString(str, len, "key")) return false;
    Frame& f = stack_.back();
    std::string_view key(str, len);
    bool dup = false;
    if (f.keys) {
      dup = !f.keys->emplace(key).second;
    } else {
      for (std::size_t i = 0; i < f.used; ++i)
        if (f.node->children[i].name == key) { dup = true; break; }
      if (!dup && f.used >= kLinearKeyScan) {
        f.keys = std::make_unique<std::unordered_set<std::string>>();
        f.keys->reserve(f.used * 2);
        for (std::size_t i = 0; i < f.used; ++i) f.keys->emplace(f.node->children[i].name);
        f.keys->emplace(key);
      }
    }
    pending_key_.assign(str, len);
    has_key_ = true;
    if (dup) return Fail("duplicate key \"" + Printable(key) + "\"");
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool StartArray() { return Open(NodeKind::kArray); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

  // --- results -----------------------------------------------------------------
  SourceNode& root() { return root_; }
  bool done() const { return started_ && stack_.empty(); }

  // JSON Pointer of the value being parsed (the open containers plus a pending key).
  std::string CurrentPointer() const {
    std::string p;
    for (std::size_t i = 1; i < stack_.size(); ++i) {
      const SourceNode* parent = stack_[i - 1].node;
      p += '/';
      if (parent->kind == NodeKind::kArray)
        p += std::to_string(stack_[i - 1].used - 1);
      else
        AppendJsonPointerSegment(p, stack_[i].node->name);
    }
    if (!stack_.empty()) {
      const SourceNode* top = stack_.back().node;
      if (top->kind == NodeKind::kObject && has_key_) {
        p += '/';
        AppendJsonPointerSegment(p, pending_key_);
      } else if (top->kind == NodeKind::kArray) {
        p += '/';
        p += std::to_string(stack_.back().used);
      }
    }
    return p;
  }

 private:
  struct Frame {
    SourceNode* node;
    std::size_t used;  // children of `node` filled so far (the rest are left over from the last parse)
    std::unique_ptr<std::unordered_set<std::string>> keys;
  };

  std::uint32_t LineHere() {
    if (!multiline_) return 1;
    std::size_t pos = std::min(stream_.Tell(), text_.size());
    if (pos > line_pos_) {
      line_ += static_cast<std::uint32_t>(std::count(text_.begin() + static_cast<std::ptrdiff_t>(line_pos_),
                                                     text_.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
      line_pos_ = pos;
    }
    return line_;
  }

  // Makes the node for the next value: the root, an array item or an object member.
  SourceNode* NewNode(NodeKind kind) {
    if (!started_) {
      started_ = true;
      if (kind != NodeKind::kObject) {
        Fail("top-level value must be a JSON object");
        return nullptr;
      }
      root_.kind = kind;
      root_.line = LineHere();
      root_.name.clear();
      root_.value.clear();
      return &root_;
    }
    if (stack_.empty()) {  // cannot happen: RapidJSON stops after the root
      Fail("unexpected value after the top-level object");
      return nullptr;
    }
    Frame& f = stack_.back();
    SourceNode& parent = *f.node;
    // Reuse the node left at this position by the previous parse: its strings and
    // vectors keep their capacity, so a run of similar records allocates nothing.
    SourceNode& n = f.used < parent.children.size() ? parent.children[f.used] : parent.children.emplace_back();
    ++f.used;
    n.kind = kind;
    n.line = LineHere();
    if (parent.kind == NodeKind::kObject) {
      n.name.swap(pending_key_);
      pending_key_.clear();
      has_key_ = false;
    } else {
      n.name.clear();
    }
    n.value.clear();
    if (kind != NodeKind::kObject && kind != NodeKind::kArray) n.children.clear();
    return &n;
  }

  bool Scalar(NodeKind kind, const char* str, std::size_t len) {
    SourceNode* n = NewNode(kind);
    if (n == nullptr) return false;
    if (len) n->value.assign(str, len);  // NewNode cleared it
    return true;
  }

  bool Open(NodeKind kind) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth)
      return Fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    SourceNode* n = NewNode(kind);
    if (n == nullptr) return false;
    stack_.push_back(Frame{n, 0, nullptr});
    return true;
  }

  bool Close() {
    Frame& f = stack_.back();
    if (f.used < f.node->children.size())
      f.node->children.erase(f.node->children.begin() + static_cast<std::ptrdiff_t>(f.used), f.node->children.end());
    stack_.pop_back();
    return true;
  }

  std::string_view text_;
  SourceNode& root_;
  bool multiline_;
  std::vector<Frame> stack_;
  std::string pending_key_;
  bool has_key_ = false;
  bool started_ = false;
  std::size_t line_pos_ = 0;
  std::uint32_t line_ = 1;
};

// The same checks as TreeBuilder, but every value goes straight to a TreeSink: no tree.
// Keys and strings are decoded in place in the caller's padded buffer, so the
// string_views handed to the sink (and kept here for duplicate detection) stay valid
// until the parse returns.
class EventForwarder : public HandlerBase<EventForwarder> {
 public:
  // Its stacks, kept between parses by the caller so that a record does not allocate
  // them again (the keys of one object grow a vector to ~64 entries).
  struct Frame {
    bool array;
    std::size_t used;       // items of an array so far
    std::string_view name;  // the member name this container was opened under
    std::unique_ptr<std::unordered_set<std::string_view>> key_set;
    std::uint64_t key_filter[4] = {0, 0, 0, 0};  // 256 bits
  };
  struct Scratch {
    std::vector<Frame> stack;
    std::vector<std::vector<std::string_view>> keys;  // per depth
  };

  EventForwarder(const JsonLimits& limits, Stream& stream, std::string_view text, TreeSink& sink, Scratch& scratch)
      : HandlerBase(limits, stream, text), sink_(sink), stack_(scratch.stack), keys_(scratch.keys) {
    stack_.clear();
  }

  bool Null() { return Scalar(NodeKind::kNull, {}); }
  bool Bool(bool b) { return Scalar(NodeKind::kBool, b ? std::string_view("true") : std::string_view("false")); }
  bool Int(int) { return Unexpected(); }
  bool Uint(unsigned) { return Unexpected(); }
  bool Int64(int64_t) { return Unexpected(); }
  bool Uint64(uint64_t) { return Unexpected(); }
  bool Double(double) { return Unexpected(); }
  bool RawNumber(const char* str, rapidjson::SizeType len, bool) { return Scalar(NodeKind::kNumber, {str, len}); }
  bool String(const char* str, rapidjson::SizeType len, bool) {
    if (!CheckString(str, len, "string")) return false;
    return Scalar(NodeKind::kString, {str, len});
  }
  bool Key(const char* str, rapidjson::SizeType len, bool) {
    if (!CheckString(str, len, "key")) return false;
    Frame& f = stack_.back();
    std::string_view key(str, len);
    bool dup = false;
    std::vector<std::string_view>& keys = keys_[stack_.size() - 1];
    if (f.key_set) {
      dup = !f.key_set->insert(key).second;
    } else {
      // A 256-bit filter of the keys seen so far: a key whose bit is clear cannot be a
      // duplicate, so the scan below runs only on a filter hit (on CIS records, a 64-bit
      // filter was hit by about one key in seven).
      const std::size_t b = KeyBits(key);
      const std::uint64_t bit = std::uint64_t{1} << (b & 63);
      std::uint64_t& word = f.key_filter[(b >> 6) & 3];
      if (word & bit) {
        for (std::string_view k : keys)
          if (k == key) { dup = true; break; }
      }
      word |= bit;
      if (!dup && keys.size() >= kLinearKeyScan) {
        f.key_set = std::make_unique<std::unordered_set<std::string_view>>(keys.begin(), keys.end());
        f.key_set->insert(key);
      }
    }
    keys.push_back(key);
    key_ = key;
    has_key_ = true;
    if (dup) return Fail("duplicate key \"" + Printable(key) + "\"");
    return true;
  }
  bool StartObject() { return Open(false); }
  bool EndObject(rapidjson::SizeType) {
    stack_.pop_back();
    sink_.Close();
    return true;
  }
  bool StartArray() { return Open(true); }
  bool EndArray(rapidjson::SizeType) {
    stack_.pop_back();
    sink_.CloseArray();
    return true;
  }

  bool done() const { return started_ && stack_.empty(); }

  std::string CurrentPointer() const {
    std::string p;
    for (std::size_t i = 1; i < stack_.size(); ++i) {
      p += '/';
      if (stack_[i - 1].array) p += std::to_string(stack_[i - 1].used - 1);
      else AppendJsonPointerSegment(p, stack_[i].name);
    }
    if (!stack_.empty()) {
      const Frame& top = stack_.back();
      if (!top.array && has_key_) {
        p += '/';
        AppendJsonPointerSegment(p, key_);
      } else if (top.array) {
        p += '/';
        p += std::to_string(top.used);
      }
    }
    return p;
  }

 private:
  // Filter bit of a key (0-255): its length and up to 8 bytes from each end, mixed.
  static std::size_t KeyBits(std::string_view k) {
    std::uint64_t head = 0, tail = 0;
    if (k.size() >= 8) {
      std::memcpy(&head, k.data(), 8);
      std::memcpy(&tail, k.data() + k.size() - 8, 8);
    } else {
      std::memcpy(&head, k.data(), k.size());
    }
    std::uint64_t h = (head * 0x9E3779B97F4A7C15ULL) ^ (tail * 0xC2B2AE3D27D4EB4FULL) ^ k.size();
    h *= 0xFF51AFD7ED558CCDULL;
    return static_cast<std::size_t>(h >> 56);
  }

  // The name the next value is given (its key, or "" as an array item); false for a
  // top-level value that is not an object.
  bool Place(bool object, std::string_view& name) {
    if (!started_) {
      started_ = true;
      if (!object) return Fail("top-level value must be a JSON object");
      name = {};
      return true;
    }
    if (stack_.empty()) return Fail("unexpected value after the top-level object");
    Frame& f = stack_.back();
    if (f.array) {
      ++f.used;
      name = {};
    } else {
      name = key_;
      has_key_ = false;
    }
    return true;
  }

  bool Scalar(NodeKind kind, std::string_view value) {
    std::string_view name;
    if (!Place(false, name)) return false;
    sink_.Value(name, value, kind);
    return true;
  }

  bool Open(bool array) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth)
      return Fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    std::string_view name;
    if (!Place(!array, name)) return false;
    stack_.push_back(Frame{array, 0, name, nullptr, {0, 0, 0, 0}});
    if (keys_.size() < stack_.size()) keys_.resize(stack_.size());
    keys_[stack_.size() - 1].clear();
    if (array) sink_.OpenArray(name);
    else sink_.Open(name);
    return true;
  }

  TreeSink& sink_;
  std::vector<Frame>& stack_;
  std::vector<std::vector<std::string_view>>& keys_;  // per depth, reused
  std::string_view key_;
  bool has_key_ = false;
  bool started_ = false;
};

// What RapidJSON's own failure means, in the reader's words.
std::string DescribeParseError(const rapidjson::ParseResult& ok, std::string_view text) {
  switch (ok.Code()) {
    case rapidjson::kParseErrorStringInvalidEncoding:  // not raised without kParseValidateEncodingFlag
      return "text is not valid UTF-8 at byte " + std::to_string(ok.Offset());
    case rapidjson::kParseErrorStringEscapeInvalid:  // also what RapidJSON says for a raw control character
      if (ok.Offset() < text.size() && static_cast<unsigned char>(text[ok.Offset()]) < 0x20)
        return "not well-formed JSON at byte " + std::to_string(ok.Offset()) +
               ": control characters in strings must be escaped";
      [[fallthrough]];
    default:
      return "not well-formed JSON at byte " + std::to_string(ok.Offset()) + ": " +
             rapidjson::GetParseError_En(ok.Code());
  }
}

// No kParseValidateEncodingFlag: the handlers' CheckString validates every string.
//
// RapidJSON's recursive parser is about twice as fast as its iterative one here. It is
// safe because both handlers refuse a container past `max_depth` in StartObject /
// StartArray, which stops the parse before it recurses any deeper: the recursion is
// bounded by the limit, a few hundred bytes of stack per level. A caller that raises the
// limit past kMaxRecursiveDepth gets the iterative parser, whose stack is on the heap.
constexpr unsigned kParseFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag |
                                 rapidjson::kParseStopWhenDoneFlag;
constexpr unsigned kIterativeParseFlags = kParseFlags | rapidjson::kParseIterativeFlag;
constexpr int kMaxRecursiveDepth = 256;

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void Indent(std::string& out, int level) { out.append(static_cast<std::size_t>(level) * 2, ' '); }

void AppendString(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

void AppendScalar(std::string& out, const SourceNode& node) {
  switch (node.kind) {
    case NodeKind::kString: AppendString(out, node.value); break;
    case NodeKind::kNumber: out += node.value.empty() ? std::string_view("null") : std::string_view(node.value); break;
    case NodeKind::kBool: out += node.value == "true" ? "true" : "false"; break;
    default: out += "null"; break;
  }
}

}  // namespace

void AppendJsonPointerSegment(std::string& out, std::string_view segment) {
  for (char c : segment) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
}

namespace {

// Size and emptiness checks, then the input copied into a NUL-terminated padded buffer.
std::optional<FieldError> Prepare(std::string_view text, const JsonLimits& limits, std::string& buffer) {
  if (text.size() > limits.max_bytes)
    return FieldError{"", "JSON document is " + std::to_string(text.size()) + " bytes, larger than the limit of " +
                              std::to_string(limits.max_bytes) + " bytes"};
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    return FieldError{"", "starts with a UTF-8 byte order mark (EF BB BF), which JSON text must not have"};
  std::size_t first = 0;
  while (first < text.size() && IsJsonSpace(text[first])) ++first;
  if (first == text.size()) return FieldError{"", "empty input: expected a JSON object"};
  buffer.reserve(text.size() + kSimdPadding);
  buffer.assign(text);
  buffer.append(kSimdPadding, '\0');
  return std::nullopt;
}

template <typename Handler>
std::optional<FieldError> Run(std::string_view text, const JsonLimits& limits, Handler& handler, Stream& stream) {
  rapidjson::Reader reader;
  rapidjson::ParseResult ok = limits.max_depth <= kMaxRecursiveDepth
                                  ? reader.Parse<kParseFlags>(stream, handler)
                                  : reader.Parse<kIterativeParseFlags>(stream, handler);
  if (handler.failed()) return std::move(handler.error());
  if (!ok) return FieldError{handler.CurrentPointer(), DescribeParseError(ok, text)};
  if (!handler.done()) return FieldError{"", "not well-formed JSON: incomplete document"};
  std::size_t pos = stream.Tell();  // a NUL in the input stops RapidJSON early: caught here
  while (pos < text.size() && IsJsonSpace(text[pos])) ++pos;
  if (pos != text.size())
    return FieldError{"", "not well-formed JSON at byte " + std::to_string(pos) +
                              ": trailing data after the top-level object"};
  return std::nullopt;
}

}  // namespace

std::optional<FieldError> ParseJsonInto(std::string_view text, SourceNode& root, const JsonLimits& limits) {
  thread_local std::string buffer;
  if (auto error = Prepare(text, limits, buffer)) return error;
  Stream stream(buffer.data());
  TreeBuilder builder(limits, stream, text, root);
  return Run(text, limits, builder, stream);
}

std::optional<FieldError> ParseJsonEvents(std::string_view text, TreeSink& sink, const JsonLimits& limits) {
  // The sink sees views into the buffer and might itself parse JSON: the thread's
  // buffer and the forwarder's stacks are lent to the outermost call only.
  thread_local std::string shared;
  thread_local EventForwarder::Scratch shared_scratch;
  thread_local bool lent = false;
  std::string own;
  EventForwarder::Scratch own_scratch;
  std::string& buffer = lent ? own : shared;
  EventForwarder::Scratch& scratch = lent ? own_scratch : shared_scratch;
  struct Lend {
    bool& flag;
    bool mine;
    ~Lend() { if (mine) flag = false; }
  } lend{lent, !lent};
  lent = true;
  if (auto error = Prepare(text, limits, buffer)) return error;
  Stream stream(buffer.data());
  EventForwarder forwarder(limits, stream, text, sink, scratch);
  return Run(text, limits, forwarder, stream);
}

Expected<SourceNode> ParseJson(std::string_view text, const JsonLimits& limits) {
  SourceNode root;
  if (auto error = ParseJsonInto(text, root, limits)) return std::move(*error);
  return root;
}

void AppendJson(std::string& out, const SourceNode& node) {
  switch (node.kind) {
    case NodeKind::kObject: {
      out += '{';
      bool first = true;
      for (const auto& c : node.children) {
        if (!first) out += ',';
        first = false;
        AppendString(out, c.name);
        out += ':';
        AppendJson(out, c);
      }
      out += '}';
      break;
    }
    case NodeKind::kArray: {
      out += '[';
      bool first = true;
      for (const auto& c : node.children) {
        if (!first) out += ',';
        first = false;
        AppendJson(out, c);
      }
      out += ']';
      break;
    }
    default: AppendScalar(out, node);
  }
}

void AppendJsonPretty(std::string& out, const SourceNode& node, int indent_level) {
  if (node.is_scalar()) {
    AppendScalar(out, node);
    return;
  }
  const bool object = node.kind == NodeKind::kObject;
  if (node.children.empty()) {
    out += object ? "{}" : "[]";
    return;
  }
  out += object ? "{\n" : "[\n";
  bool first = true;
  for (const auto& c : node.children) {
    if (!first) out += ",\n";
    first = false;
    Indent(out, indent_level + 1);
    if (object) {
      AppendString(out, c.name);
      out += ": ";
    }
    AppendJsonPretty(out, c, indent_level + 1);
  }
  out += '\n';
  Indent(out, indent_level);
  out += object ? '}' : ']';
}

std::string WriteJson(const SourceNode& node, bool pretty) {
  std::string out;
  out.reserve(4096);
  if (pretty) {
    AppendJsonPretty(out, node, 0);
    out += '\n';
  } else {
    AppendJson(out, node);
  }
  return out;
}

}  // namespace caregate::format
