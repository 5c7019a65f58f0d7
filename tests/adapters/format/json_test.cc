#include <gtest/gtest.h>

#include <string>

#include "caregate/core/text.h"
#include "caregate/core/tree_sink.h"
#include "caregate/format/compare.h"
#include "caregate/format/json.h"
#include "test_util.h"

namespace caregate::format {
namespace {

using testing::ErrorPath;
using testing::Problem;
using testing::SpecExample;
using testing::Stopwatch;

std::string Repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// ---------------------------------------------------------------- reading

TEST(JsonReader, ParsesSpecExample) {
  auto r = ParseJson(SpecExample("cis-record.json"));
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  const SourceNode& root = *r;
  EXPECT_EQ(root.kind, NodeKind::kObject);
  EXPECT_EQ(root.name, "");
  ASSERT_NE(root.child("Record_Type"), nullptr);
  EXPECT_EQ(root.child("Record_Type")->kind, NodeKind::kString);
  EXPECT_EQ(root.child("Record_Type")->value, "CIS_Client");
  EXPECT_EQ(root.children.front().name, "Record_Type");  // document order kept
  EXPECT_EQ(root.children.back().name, "Last_Updated");
  EXPECT_EQ(root.child("Date_of_Death")->kind, NodeKind::kNull);
  EXPECT_EQ(root.child("Sensitive_Record")->kind, NodeKind::kBool);
  EXPECT_EQ(root.child("Sensitive_Record")->value, "false");
  const SourceNode* address = root.child("Address");
  ASSERT_NE(address, nullptr);
  EXPECT_EQ(address->kind, NodeKind::kObject);
  EXPECT_EQ(address->child("Postcode")->value, "LS12 2AB");
  EXPECT_EQ(address->line, 17u);
  const SourceNode* events = root.child("Events");
  ASSERT_NE(events, nullptr);
  EXPECT_EQ(events->kind, NodeKind::kArray);
  ASSERT_EQ(events->children.size(), 4u);
  for (const auto& e : events->children) EXPECT_EQ(e.name, "");
  const SourceNode& service = events->children[2];
  EXPECT_EQ(service.child("Planned_Units_Per_Week")->kind, NodeKind::kNumber);
  EXPECT_EQ(service.child("Planned_Units_Per_Week")->value, "7");
  EXPECT_EQ(service.child("Unit_Cost")->value, "24.5");
  EXPECT_EQ(root.line, 1u);
}

TEST(JsonReader, KeepsNumbersAsWritten) {
  auto r = ParseJson(R"({"a":1.50,"b":-0,"c":1E+2,"d":12345678901234567890123,"e":0.1e-400})");
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  EXPECT_EQ(r->child("a")->value, "1.50");
  EXPECT_EQ(r->child("b")->value, "-0");
  EXPECT_EQ(r->child("c")->value, "1E+2");
  EXPECT_EQ(r->child("d")->value, "12345678901234567890123");
  EXPECT_EQ(r->child("e")->value, "0.1e-400");
}

TEST(JsonReader, DecodesEscapes) {
  auto r = ParseJson(R"({"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00","":"empty key"})");
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  EXPECT_EQ(r->child("s")->value, "a\"b\\c/d\n\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(r->child("")->value, "empty key");
}

// The string scan reads 16 bytes at a time from wherever a string starts, into the
// padding after the text: strings of every length up to past two blocks, with an
// escape, a control character or the end of the text at every position, through both
// readers (tree and events).
class StringCollector : public TreeSink {
 public:
  void Open(std::string_view name) override { keys.emplace_back(name); }
  void Close() override {}
  void OpenArray(std::string_view name) override { keys.emplace_back(name); }
  void CloseArray() override {}
  void Value(std::string_view name, std::string_view value, NodeKind) override {
    keys.emplace_back(name);
    values.emplace_back(value);
  }
  std::vector<std::string> keys, values;
};

TEST(JsonReader, ScansStringsOfEveryLengthWithEscapesAnywhere) {
  for (std::size_t len = 0; len <= 40; ++len) {
    const std::string plain = Repeat("x", len);
    for (std::size_t at = 0; at <= len; ++at) {
      // An escape (two of them, so the copy after the first one moves bytes too) at `at`.
      std::string raw = plain.substr(0, at) + "\\n" + plain.substr(at) + "\\\"";
      std::string want = plain.substr(0, at) + "\n" + plain.substr(at) + "\"";
      std::string doc = "{\"" + plain.substr(0, at) + "\":\"" + raw + "\"}";
      auto r = ParseJson(doc);
      ASSERT_TRUE(r.ok()) << doc << ": " << FormatErrors(r.errors());
      ASSERT_EQ(r->children.size(), 1u) << doc;
      EXPECT_EQ(r->children[0].name, plain.substr(0, at)) << doc;
      EXPECT_EQ(r->children[0].value, want) << doc;
      StringCollector events;
      ASSERT_FALSE(ParseJsonEvents(doc, events).has_value()) << doc;
      ASSERT_EQ(events.values.size(), 1u) << doc;
      EXPECT_EQ(events.values[0], want) << doc;

      // A raw control character at `at`: refused at its byte.
      std::string bad = "{\"k\":\"" + plain.substr(0, at) + "\x01" + plain.substr(at) + "\"}";
      auto b = ParseJson(bad);
      ASSERT_FALSE(b.ok()) << bad;
      EXPECT_EQ(Problem(b), "not well-formed JSON at byte " + std::to_string(6 + at) +
                                ": control characters in strings must be escaped");
    }
    // The text ends inside the string: the scan stops in the padding, and the
    // document is refused as unterminated.
    std::string cut = "{\"k\":\"" + plain;
    auto c = ParseJson(cut);
    ASSERT_FALSE(c.ok()) << cut;
    EXPECT_NE(Problem(c).find("not well-formed JSON"), std::string::npos) << Problem(c);
  }
}

TEST(JsonReader, KeepsEmbeddedNulEscape) {
  auto r = ParseJson(R"({"s":"a\u0000b"})");
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  EXPECT_EQ(r->child("s")->value, std::string("a\0b", 3));
}

TEST(JsonReader, RejectsTrailingData) {
  for (std::string text : {std::string(R"({"a":1} x)"), std::string(R"({"a":1}{"b":2})"), std::string(R"({"a":1},)"),
                           std::string("{\"a\":1}\0x", 9)}) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(Problem(r).find("trailing data"), std::string::npos) << Problem(r);
    EXPECT_NE(Problem(r).find("at byte"), std::string::npos) << Problem(r);
  }
  EXPECT_TRUE(ParseJson("{\"a\":1} \r\n\t").ok());
}

TEST(JsonReader, RejectsEmptyInput) {
  for (std::string text : {"", "  \n\t "}) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(Problem(r).find("empty input"), std::string::npos) << Problem(r);
  }
}

// RFC 8259 forbids a byte order mark; one is refused by name (it is invisible in an
// editor, so "invalid value at byte 0" would leave the reader guessing), by both entry
// points. (The export's extract reader skips one at the very start of a file.)
TEST(JsonReader, RejectsAByteOrderMarkByName) {
  const std::string text = "\xEF\xBB\xBF{\"a\":1}";
  auto r = ParseJson(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Problem(r), "starts with a UTF-8 byte order mark (EF BB BF), which JSON text must not have");
  EXPECT_EQ(ErrorPath(r), "");
  SourceNode root;
  TreeBuilder events(root);
  std::optional<FieldError> e = ParseJsonEvents(text, events);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->problem, Problem(r));
  // Anywhere else it is just text: inside a string, a valid character.
  auto ok = ParseJson("{\"a\":\"\xEF\xBB\xBFx\"}");
  ASSERT_TRUE(ok.ok()) << Problem(ok);
  EXPECT_EQ(ok->child("a")->value, "\xEF\xBB\xBFx");
}

TEST(JsonReader, RejectsTopLevelArrayAndScalars) {
  for (std::string text : {"[1,2]", "\"s\"", "42", "null", "true"}) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(Problem(r).find("top-level value must be a JSON object"), std::string::npos) << Problem(r);
  }
}

TEST(JsonReader, RejectsMillionDeepObjectsFast) {
  const std::size_t n = 1000000;
  std::string text = Repeat("{\"a\":", n) + "1" + std::string(n, '}');
  JsonLimits limits;
  limits.max_bytes = text.size();  // so the depth check, not the size check, fires
  Stopwatch watch;
  auto r = ParseJson(text, limits);
  EXPECT_LT(watch.seconds(), 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("nested deeper than 64 levels"), std::string::npos) << Problem(r);
  EXPECT_EQ(ErrorPath(r), Repeat("/a", 64));
}

TEST(JsonReader, RejectsMillionDeepArraysFast) {
  const std::size_t n = 1000000;
  std::string text = "{\"a\":" + std::string(n, '[') + std::string(n, ']') + "}";
  JsonLimits limits;
  limits.max_bytes = text.size();
  Stopwatch watch;
  auto r = ParseJson(text, limits);
  EXPECT_LT(watch.seconds(), 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("nested deeper than 64 levels"), std::string::npos) << Problem(r);
  // Default limits: the same input is refused on size before any parsing.
  auto sized = ParseJson(text);
  ASSERT_FALSE(sized.ok());
  EXPECT_NE(Problem(sized).find("larger than the limit"), std::string::npos) << Problem(sized);
}

TEST(JsonReader, AcceptsDepthUpToLimit) {
  std::string ok = Repeat("{\"a\":", 63) + "{}" + std::string(63, '}');  // 64 levels
  EXPECT_TRUE(ParseJson(ok).ok());
  std::string deep = Repeat("{\"a\":", 64) + "{}" + std::string(64, '}');  // 65 levels
  EXPECT_FALSE(ParseJson(deep).ok());
  JsonLimits limits;
  limits.max_depth = 65;
  EXPECT_TRUE(ParseJson(deep, limits).ok());
}

// Up to 256 levels the recursive parser runs (the handlers stop it at the limit);
// a caller allowing more gets the iterative one, whose stack is on the heap. Both
// give the same answers either side of the limit.
TEST(JsonReader, DeepLimitsParseTheSameRecursivelyOrIteratively) {
  for (int limit : {200, 256, 257, 100000}) {
    JsonLimits limits;
    limits.max_depth = limit;
    const auto inner = static_cast<std::size_t>(limit - 1);  // under the root object
    const std::string at_limit = "{\"a\":" + Repeat("[", inner) + std::string(inner, ']') + "}";
    EXPECT_TRUE(ParseJson(at_limit, limits).ok()) << limit;
    std::string over = "{\"a\":" + Repeat("[", static_cast<std::size_t>(limit)) +
                       std::string(static_cast<std::size_t>(limit), ']') + "}";
    auto r = ParseJson(over, limits);
    ASSERT_FALSE(r.ok()) << limit;
    const std::string want = "nested deeper than " + std::to_string(limit) + " levels";
    EXPECT_EQ(Problem(r).substr(0, want.size()), want) << limit;
  }
}

TEST(JsonReader, RejectsOversizeInput) {
  JsonLimits limits;
  limits.max_bytes = 100;
  std::string text = "{\"a\":\"" + std::string(100, 'x') + "\"}";
  auto r = ParseJson(text, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("larger than the limit of 100 bytes"), std::string::npos) << Problem(r);
}

TEST(JsonReader, RejectsTruncatedDocuments) {
  const std::string text = SpecExample("cis-record.json");
  int rejected = 0;
  for (std::size_t cut = 1; cut + 2 < text.size(); cut += 37) {
    auto r = ParseJson(std::string_view(text).substr(0, cut));
    ASSERT_FALSE(r.ok()) << "accepted a document truncated at byte " << cut;
    EXPECT_NE(Problem(r).find("not well-formed JSON"), std::string::npos) << Problem(r);
    ++rejected;
  }
  EXPECT_GT(rejected, 20);
}

TEST(JsonReader, RejectsInvalidUtf8) {
  const std::string cases[] = {
      "{\"a\":\"\xC3\x28\"}",          // bad continuation byte
      "{\"a\":\"\xC0\xAF\"}",          // overlong '/'
      "{\"a\":\"\xED\xA0\x80\"}",      // UTF-8-encoded surrogate
      "{\"a\":\"\xF4\x90\x80\x80\"}",  // above U+10FFFF
      "{\"\xC3\x28\":1}",              // in a key
      "{\"a\":\"x\xC3\"}",             // truncated sequence
  };
  for (const auto& text : cases) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(Problem(r).find("not valid UTF-8"), std::string::npos) << Problem(r);
  }
}

// A text that is valid UTF-8 and has no \u escape is checked once, whole; any other
// text string by string. Both ways must accept and refuse the same strings, and name
// the field at fault.
TEST(JsonReader, Utf8IsCheckedWholeOrPerStringWithTheSameResult) {
  for (std::string escape : {"", R"(,"e":"\u00e9")", R"(,"e":"a\\u")"}) {
    SCOPED_TRACE(escape);
    auto good = ParseJson("{\"Name\":\"Bj\xC3\xB6rn Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80\"" + escape + "}");
    ASSERT_TRUE(good.ok()) << Problem(good);
    EXPECT_EQ(good.value().child("Name")->value, "Bj\xC3\xB6rn Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80");
    auto bad = ParseJson("{\"Name\":\"ok\",\"Address\":{\"Town\":\"Le\xC3\x28" "ds\"}" + escape + "}");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(Problem(bad).find("string is not valid UTF-8"), std::string::npos) << Problem(bad);
    EXPECT_EQ(ErrorPath(bad), "/Address/Town");
    auto bad_key = ParseJson("{\"Na\xFFme\":\"x\"" + escape + "}");
    ASSERT_FALSE(bad_key.ok());
    EXPECT_NE(Problem(bad_key).find("key is not valid UTF-8"), std::string::npos) << Problem(bad_key);
  }
  // An escaped lone surrogate after valid multi-byte text is still refused.
  auto r = ParseJson("{\"a\":\"\xC3\xA9\",\"b\":\"\\udc00\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ErrorPath(r), "/b");
}

TEST(JsonReader, RejectsRawControlCharacters) {
  auto r = ParseJson("{\"a\":\"tab\there\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Problem(r), "not well-formed JSON at byte 9: control characters in strings must be escaped");
  EXPECT_EQ(ErrorPath(r), "/a");
}

TEST(JsonReader, RejectsLoneSurrogateEscapes) {
  for (std::string text : {R"({"a":"\udc00"})", R"({"a":"\ud800"})", R"({"a":"\ud800x"})", R"({"\udfff":1})"}) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_FALSE(Problem(r).empty());
  }
}

TEST(JsonReader, RejectsHugeString) {
  std::string big(256 * 1024 + 1, 'x');
  auto r = ParseJson("{\"a\":\"" + big + "\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("string longer than 262144 bytes"), std::string::npos) << Problem(r);
  EXPECT_EQ(ErrorPath(r), "/a");
  auto k = ParseJson("{\"" + big + "\":1}");
  ASSERT_FALSE(k.ok());
  EXPECT_NE(Problem(k).find("key longer than"), std::string::npos) << Problem(k);
  EXPECT_TRUE(ParseJson("{\"a\":\"" + std::string(256 * 1024, 'x') + "\"}").ok());
}

TEST(JsonReader, RejectsDuplicateKeys) {
  auto r = ParseJson(R"({"Address":{"Town":"Leeds","Town":"York"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("duplicate key \"Town\""), std::string::npos) << Problem(r);
  EXPECT_EQ(ErrorPath(r), "/Address/Town");
  // Objects past the linear-scan size use a hash set; check both sides of it.
  for (int n : {5, 16, 17, 40}) {
    std::string text = "{";
    for (int i = 0; i < n; ++i) text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    EXPECT_TRUE(ParseJson(text + "\"last\":0}").ok()) << n;
    auto dup = ParseJson(text + "\"k3\":0}");
    ASSERT_FALSE(dup.ok()) << n;
    EXPECT_EQ(ErrorPath(dup), "/k3");
  }
  // The same key in sibling objects is fine.
  EXPECT_TRUE(ParseJson(R"({"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]})").ok());
}

TEST(JsonReader, ErrorNamesPointerAndByteOffset) {
  auto r = ParseJson(R"({"Address": {"Town" "Leeds"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ErrorPath(r), "/Address/Town");
  EXPECT_EQ(Problem(r), "not well-formed JSON at byte 20: Missing a colon after a name of object member.");
  auto a = ParseJson(R"({"Events":[{"a":1},{"a":tru}]})");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(ErrorPath(a), "/Events/1/a");
  auto esc = ParseJson(R"({"a/b~c":{"x":})");
  ASSERT_FALSE(esc.ok());
  EXPECT_EQ(ErrorPath(esc), "/a~1b~0c/x");
}

TEST(JsonReader, RejectsMalformedSyntax) {
  for (std::string text : {R"({"a":01})", R"({"a":1,})", R"({'a':1})", R"({"a":NaN})", R"({"a":1e999})",
                           R"({"a":"x)", "{\"a\":\"tab\there\"}", R"({"a":[1,]})", "{\"a\":1 /*c*/}"}) {
    auto r = ParseJson(text);
    EXPECT_FALSE(r.ok()) << text;
  }
}

// ---------------------------------------------------------------- writing

SourceNode SmallTree() {
  SourceNode root;
  root.add("s", NodeKind::kString, "a\"b\n\x01");
  root.add("n", NodeKind::kNumber, "1.50");
  root.add("t", NodeKind::kBool, "true");
  root.add("z", NodeKind::kNull);
  SourceNode& arr = root.add("arr", NodeKind::kArray);
  arr.add("", NodeKind::kNumber, "1");
  arr.add("", NodeKind::kObject).add("k", NodeKind::kString, "v");
  root.add("o", NodeKind::kObject);
  root.add("e", NodeKind::kArray);
  return root;
}

TEST(JsonWriter, WritesCompactOneLine) {
  EXPECT_EQ(WriteJson(SmallTree()),
            R"({"s":"a\"b\n\u0001","n":1.50,"t":true,"z":null,"arr":[1,{"k":"v"}],"o":{},"e":[]})");
}

TEST(JsonWriter, WritesPretty) {
  EXPECT_EQ(WriteJson(SmallTree(), /*pretty=*/true),
            "{\n"
            "  \"s\": \"a\\\"b\\n\\u0001\",\n"
            "  \"n\": 1.50,\n"
            "  \"t\": true,\n"
            "  \"z\": null,\n"
            "  \"arr\": [\n"
            "    1,\n"
            "    {\n"
            "      \"k\": \"v\"\n"
            "    }\n"
            "  ],\n"
            "  \"o\": {},\n"
            "  \"e\": []\n"
            "}\n");
}

TEST(JsonWriter, AppendsNdjsonLines) {
  std::string out;
  SourceNode a = SmallTree();
  SourceNode b;
  b.add("Record_Type", NodeKind::kString, "CIS_Client");
  AppendJson(out, a);
  out += '\n';
  AppendJson(out, b);
  out += '\n';
  auto lines = Split(out, '\n');
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], "");
  auto ra = ParseJson(lines[0]);
  auto rb = ParseJson(lines[1]);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(FirstDifference(*ra, a), "");
  EXPECT_EQ(FirstDifference(*rb, b), "");
}

TEST(JsonWriter, RoundTripsSpecExample) {
  auto first = ParseJson(SpecExample("cis-record.json"));
  ASSERT_TRUE(first.ok()) << FormatErrors(first.errors());
  for (bool pretty : {false, true}) {
    std::string text = WriteJson(*first, pretty);
    EXPECT_EQ(text.find('\n') == std::string::npos, !pretty);
    auto second = ParseJson(text);
    ASSERT_TRUE(second.ok()) << FormatErrors(second.errors());
    EXPECT_EQ(FirstDifference(*first, *second), "") << text;
    EXPECT_EQ(WriteJson(*second, pretty), text);  // stable
  }
}

TEST(JsonWriter, RoundTripsUnicodeAndControlCharacters) {
  SourceNode root;
  std::string all;
  for (int c = 1; c < 0x80; ++c) all += static_cast<char>(c);
  all += "\xC3\xA9\xE2\x80\xA8\xF0\x9F\x98\x80";
  all += std::string("\0end", 4);
  root.add(all, NodeKind::kString, all);
  auto back = ParseJson(WriteJson(root));
  ASSERT_TRUE(back.ok()) << FormatErrors(back.errors());
  EXPECT_EQ(FirstDifference(root, *back), "");
}

TEST(JsonPointer, EscapesSegments) {
  std::string p;
  AppendJsonPointerSegment(p, "a/b~c");
  EXPECT_EQ(p, "a~1b~0c");
}

}  // namespace
}  // namespace caregate::format
