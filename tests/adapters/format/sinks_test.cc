#include "caregate/format/sinks.h"

#include <gtest/gtest.h>

#include <string>

#include "caregate/core/tree_sink.h"
#include "caregate/format/xml.h"

namespace caregate::format {
namespace {

// A record with everything the writer treats specially: attributes, text that needs
// escaping (in elements and attributes), characters XML cannot carry, empty and null
// values, repeated elements (an array) and nesting.
SourceNode Awkward(std::size_t long_text = 0) {
  SourceNode root{"ClientIntegrationResponse", "", NodeKind::kObject, 0, {}};
  SourceNode& resp = root.add("Response", NodeKind::kObject);
  resp.add("@version", NodeKind::kString, "1 & \"2\" <3>\n\t\r");
  SourceNode& id = resp.add("Identity", NodeKind::kObject);
  id.add("NHSNumber", NodeKind::kString, "9434765919");
  id.add("Surname", NodeKind::kString, "O'Neill & Sons <Ltd> \"quoted\"\r\n\ttabbed");
  id.add("Control", NodeKind::kString, std::string("bell\x07 nul\x01 ffff\xEF\xBF\xBF fffe\xEF\xBF\xBE ok\xEF\xBF\xBD"));
  id.add("Empty", NodeKind::kString, "");
  id.add("Missing", NodeKind::kNull);
  SourceNode& events = resp.add("Event", NodeKind::kArray);
  for (int i = 0; i < 3; ++i) {
    SourceNode& e = events.add("", NodeKind::kObject);
    e.add("@id", NodeKind::kString, "E" + std::to_string(i));
    e.add("Text", NodeKind::kString, std::string(long_text, static_cast<char>('a' + i)) + "<" + std::to_string(i) + ">");
  }
  SourceNode& bare = resp.add("Bare", NodeKind::kObject);
  bare.add("@only", NodeKind::kString, "attribute");
  return root;
}

std::string Streamed(const SourceNode& tree, std::string out, int level, bool pretty) {
  XmlTextSink sink(out, level, pretty);
  ReplayTree(tree, sink);
  return out;
}

// The escaping (which passes plain 8-byte words whole) against a byte-by-byte statement
// of its rules, over strings dense and sparse in special bytes, at every alignment.
std::string ReferenceXmlEscape(std::string_view s, bool attribute) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
        (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xBE) {
      out += "\xEF\xBF\xBD";
      i += 2;
    } else if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '\r') out += "&#13;";
    else if (attribute && c == '"') out += "&quot;";
    else if (attribute && c == '\n') out += "&#10;";
    else if (attribute && c == '\t') out += "&#9;";
    else if (c < 0x20 && c != '\n' && c != '\t') out += "\xEF\xBF\xBD";
    else out += static_cast<char>(c);
  }
  return out;
}

TEST(XmlEscaping, MatchesTheRulesByteByByteAtEveryAlignment) {
  const std::string alphabet = std::string("abcXYZ 09;é") + "&<>\"'\r\n\t" + std::string(1, '\x01') +
                               std::string(1, '\x1F') + "\xEF\xBF\xBE\xEF\xBF\xBF\xEF\xBB\xBF\xC3\xA9";
  std::uint64_t seed = 12345;
  auto next = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>(seed >> 33);
  };
  for (int round = 0; round < 4000; ++round) {
    const std::size_t len = next() % 41;
    const bool sparse = round % 2 == 0;
    std::string s;
    for (std::size_t i = 0; i < len; ++i)
      s += sparse && next() % 8 != 0 ? 'p' : alphabet[next() % alphabet.size()];
    for (bool attribute : {false, true}) {
      const std::string expected = ReferenceXmlEscape(s, attribute);
      std::string appended = "head:";
      AppendXmlEscapedText(appended, s, attribute);
      ASSERT_EQ(appended, "head:" + expected) << round << " attribute " << attribute;
      std::string buffer(s.size() * kXmlEscapedMax + 1, '\0');
      char* end = WriteXmlEscapedText(buffer.data(), s, attribute);
      ASSERT_EQ(std::string(buffer.data(), end), expected) << round << " attribute " << attribute;
    }
  }
}

TEST(XmlTextSink, PrettyTextIsTheTreeWritersText) {
  for (int level : {0, 1, 3}) {
    for (std::size_t long_text : {std::size_t{0}, std::size_t{5000}, std::size_t{70000}}) {
      SourceNode tree = Awkward(long_text);
      std::string expected = "<?xml?>\n";  // what was in the buffer before stays
      AppendXml(expected, tree, level, true);
      EXPECT_EQ(Streamed(tree, "<?xml?>\n", level, true), expected) << "level " << level << ", text " << long_text;
    }
  }
}

TEST(XmlTextSink, CompactTextHasNoWhitespaceBetweenElements) {
  SourceNode root{"R", "", NodeKind::kObject, 0, {}};
  root.add("@a", NodeKind::kString, "x\"y");
  SourceNode& items = root.add("I", NodeKind::kArray);
  items.add("", NodeKind::kString, "1 < 2");
  items.add("", NodeKind::kString, "");
  SourceNode& n = root.add("N", NodeKind::kObject);
  n.add("V", NodeKind::kString, "line\nbreak");
  root.add("E", NodeKind::kObject);
  EXPECT_EQ(Streamed(root, "", 2, false),
            "<R a=\"x&quot;y\"><I>1 &lt; 2</I><I/><N><V>line\nbreak</V></N><E/></R>");
}

TEST(XmlTextSink, BufferHoldsExactlyTheTextOnceTheRootIsClosed) {
  std::string out = "before|";
  XmlTextSink sink(out, 0, false);
  sink.Open("A");
  sink.Value("B", std::string(10000, 'b'), NodeKind::kString);
  sink.Close();
  // No spare room is left behind: what the caller appends now follows the record.
  out += "|after";
  EXPECT_EQ(out, "before|<A><B>" + std::string(10000, 'b') + "</B></A>|after");
  sink.Open("C");  // a second record from the same sink goes after the caller's text
  sink.Close();
  EXPECT_EQ(out.substr(out.size() - 10), "|after<C/>");
}

TEST(XmlTextSink, ARecordLeftOpenKeepsOnlyWhatWasWritten) {
  std::string out;
  {
    XmlTextSink sink(out, 0, true);
    sink.Open("A");
    sink.Value("B", "1", NodeKind::kString);
  }  // destroyed with A still open
  EXPECT_EQ(out, "<A>\n  <B>1</B>\n");
}

// Into a TextBuffer: the same text as into a std::string; one sink rebound from buffer
// to buffer writes each record where it is told, after what the caller appended there.
TEST(XmlTextSink, ATextBufferGetsTheSameTextAndARebindMovesTheNextRecords) {
  const SourceNode root = Awkward(40);
  const std::string expected = Streamed(root, "", 0, false);
  TextBuffer first, second;
  first += "head|";
  XmlTextSink sink(first, 0, false);
  ReplayTree(root, sink);
  EXPECT_EQ(first.view(), "head|" + expected);
  second += "other|";
  sink.Rebind(second);
  ReplayTree(root, sink);
  ReplayTree(root, sink);
  EXPECT_EQ(second.view(), "other|" + expected + expected);
  EXPECT_EQ(first.view(), "head|" + expected);  // untouched since
}

}  // namespace
}  // namespace caregate::format
