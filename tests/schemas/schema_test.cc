// schemas/systmone.xsd (validated with libxml2, XSD 1.0), schemas/cis-record.schema.json
// (validated with RapidJSON's draft-04 SchemaValidator) and samples/ against them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/internal/regex.h>
#include <rapidjson/pointer.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include "caregate/core/hash.h"

namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------------------------ helpers

fs::path SourceDir() { return fs::path(CAREGATE_SOURCE_DIR); }
fs::path SpecDir() { return fs::path(CAREGATE_SPEC_DIR); }

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << p;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `doc` with the first `from` replaced by `to`; a missing `from` fails the test, so an
// edit that silently does nothing cannot make a "rejects" case pass.
std::string Edit(std::string doc, std::string_view from, std::string_view to) {
  auto at = doc.find(from);
  if (at == std::string::npos) {
    ADD_FAILURE() << "test bug: `" << from << "` is not in the document";
    return doc;
  }
  doc.replace(at, from.size(), to);
  return doc;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// RFC 4180 rows of a mapping table; lines starting with '#' are comments.
std::vector<std::map<std::string, std::string>> ReadCsv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : Lines(Slurp(p))) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          fields.back() += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          fields.back() += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        fields.emplace_back();
      } else if (c != '\r') {
        fields.back() += c;
      }
    }
    rows.push_back(std::move(fields));
  }
  std::vector<std::map<std::string, std::string>> out;
  if (rows.empty()) return out;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    std::map<std::string, std::string> row;
    for (std::size_t c = 0; c < rows[0].size() && c < rows[r].size(); ++c) row[rows[0][c]] = rows[r][c];
    out.push_back(std::move(row));
  }
  return out;
}

// The distinct values of one column of mappings/codesets/NAME.csv.
std::set<std::string> CodesetColumn(const std::string& name, const std::string& column) {
  std::set<std::string> out;
  for (auto& row : ReadCsv(SourceDir() / "mappings" / "codesets" / (name + ".csv"))) {
    EXPECT_TRUE(row.count(column)) << name << ".csv has no column " << column;
    out.insert(row[column]);
  }
  EXPECT_FALSE(out.empty()) << name << ".csv is empty";
  return out;
}

// A real proleptic Gregorian calendar date in years 0001-9999 (caregate refuses year 0).
bool IsRealDate(int y, int m, int d) {
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) return false;
  using namespace std::chrono;
  return year_month_day{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}}.ok();
}

std::string DateText(int y, int m, int d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

// Years that exercise every leap-year rule and the edges of the 4-digit range.
constexpr int kYears[] = {0,    1,    4,    100,  400,  1582, 1600, 1700, 1800, 1896, 1900,
                          1904, 1999, 2000, 2001, 2023, 2024, 2100, 2400, 9996, 9999};

// NHS number Modulus 11 (spec 3), to prove the sample's bad number is bad.
bool NhsCheckDigitOk(std::string_view n) {
  if (n.size() != 10 || !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  int sum = 0;
  for (int i = 0; i < 9; ++i) sum += (n[static_cast<std::size_t>(i)] - '0') * (10 - i);
  int check = 11 - sum % 11;
  if (check == 11) check = 0;
  return check != 10 && check == n[9] - '0';
}

// ------------------------------------------------------------------------ libxml2 side

// libxml2 2.9 passes xmlError*, 2.12+ const xmlError*: take whatever this version declares.
template <typename F>
struct SecondArg;
template <typename R, typename A, typename B>
struct SecondArg<R (*)(A, B)> {
  using type = B;
};
using XmlErrorArg = SecondArg<xmlStructuredErrorFunc>::type;

void CollectXmlError(void* ctx, XmlErrorArg e) {
  auto* out = static_cast<std::vector<std::string>*>(ctx);
  if (e == nullptr || e->message == nullptr) return;
  std::string m = e->message;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  out->push_back("line " + std::to_string(e->line) + ": " + m);
}

struct XmlDocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using XmlDocPtr = std::unique_ptr<xmlDoc, XmlDocFree>;

// Parses as caregate must (spec 3): no network, no entity substitution, no DTD loading.
XmlDocPtr ParseXml(std::string_view xml, const char* name, std::vector<std::string>* errors) {
  xmlSetStructuredErrorFunc(errors, CollectXmlError);
  XmlDocPtr doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), name, nullptr, XML_PARSE_NONET));
  xmlSetStructuredErrorFunc(nullptr, nullptr);
  return doc;
}

struct XmlResult {
  bool parsed = false;
  bool valid = false;
  std::string root;
  std::vector<std::string> errors;

  // What a consumer must check besides the schema: the root element (see systmone.xsd).
  bool IsSystmOneDocument() const {
    return valid && (root == "ClientIntegrationResponse" || root == "ClientIntegrationBatch");
  }
  std::string Describe() const {
    std::string s = parsed ? (valid ? "valid" : "INVALID") : "NOT WELL-FORMED";
    s += " (root " + root + ")";
    for (const auto& e : errors) s += "\n  " + e;
    return s;
  }
};

class SystmOneXsd {
 public:
  static const SystmOneXsd& Get() {
    static const SystmOneXsd xsd;
    return xsd;
  }
  bool loaded() const { return schema_ != nullptr; }
  const std::vector<std::string>& load_errors() const { return load_errors_; }
  static fs::path Path() { return SourceDir() / "schemas" / "systmone.xsd"; }

  XmlResult Validate(std::string_view xml, const char* name = "test.xml") const {
    XmlResult r;
    XmlDocPtr doc = ParseXml(xml, name, &r.errors);
    if (!doc) return r;
    r.parsed = true;
    if (xmlNode* root = xmlDocGetRootElement(doc.get())) r.root = reinterpret_cast<const char*>(root->name);
    if (!schema_) {
      r.errors.push_back("the schema did not load");
      return r;
    }
    xmlSchemaValidCtxtPtr vctx = xmlSchemaNewValidCtxt(schema_);
    xmlSchemaSetValidStructuredErrors(vctx, CollectXmlError, &r.errors);
    r.valid = xmlSchemaValidateDoc(vctx, doc.get()) == 0;
    xmlSchemaFreeValidCtxt(vctx);
    return r;
  }

 private:
  SystmOneXsd() {
    xmlSchemaParserCtxtPtr pctx = xmlSchemaNewParserCtxt(Path().string().c_str());
    xmlSchemaSetParserStructuredErrors(pctx, CollectXmlError, &load_errors_);
    schema_ = xmlSchemaParse(pctx);
    xmlSchemaFreeParserCtxt(pctx);
  }
  ~SystmOneXsd() {
    if (schema_) xmlSchemaFree(schema_);
  }
  xmlSchemaPtr schema_ = nullptr;
  std::vector<std::string> load_errors_;
};

// The schema document itself, for questions about what it declares.
class XsdText {
 public:
  XsdText() {
    std::vector<std::string> errors;
    doc_ = ParseXml(Slurp(SystmOneXsd::Path()), "systmone.xsd", &errors);
  }
  std::vector<std::string> Strings(const std::string& xpath) const {
    std::vector<std::string> out;
    if (!doc_) return out;
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc_.get());
    xmlXPathRegisterNs(ctx, BAD_CAST "xs", BAD_CAST "http://www.w3.org/2001/XMLSchema");
    xmlXPathObjectPtr res = xmlXPathEvalExpression(BAD_CAST xpath.c_str(), ctx);
    if (res && res->nodesetval) {
      for (int i = 0; i < res->nodesetval->nodeNr; ++i) {
        xmlChar* v = xmlNodeGetContent(res->nodesetval->nodeTab[i]);
        out.emplace_back(v ? reinterpret_cast<const char*>(v) : "");
        xmlFree(v);
      }
    }
    xmlXPathFreeObject(res);
    xmlXPathFreeContext(ctx);
    return out;
  }

 private:
  XmlDocPtr doc_;
};

std::string SpecS1() { return Slurp(SpecDir() / "examples" / "systmone-record.xml"); }

std::vector<fs::path> FilesIn(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ext) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// ----------------------------------------------------------------------- RapidJSON side

struct JsonResult {
  bool parsed = false;
  bool valid = false;
  std::string error;  // parse error, or "<keyword> at <JSON Pointer>"
  std::string Describe() const { return (parsed ? (valid ? "valid" : "INVALID: ") : "NOT JSON: ") + error; }
};

class CisJsonSchema {
 public:
  static const CisJsonSchema& Get() {
    static const CisJsonSchema s;
    return s;
  }
  static fs::path Path() { return SourceDir() / "schemas" / "cis-record.schema.json"; }
  bool loaded() const { return schema_ != nullptr; }
  const std::string& load_error() const { return load_error_; }
  const rapidjson::Document& json() const { return json_; }

  JsonResult Validate(const rapidjson::Value& v) const {
    JsonResult r;
    r.parsed = true;
    rapidjson::SchemaValidator validator(*schema_);
    r.valid = v.Accept(validator);
    if (!r.valid) {
      rapidjson::StringBuffer where;
      validator.GetInvalidDocumentPointer().StringifyUriFragment(where);
      r.error = std::string(validator.GetInvalidSchemaKeyword()) + " at " + where.GetString();
    }
    return r;
  }
  JsonResult Validate(std::string_view text) const {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (d.HasParseError()) {
      JsonResult r;
      r.error = std::string(rapidjson::GetParseError_En(d.GetParseError())) + " at byte " +
                std::to_string(d.GetErrorOffset());
      return r;
    }
    return Validate(d);
  }

 private:
  CisJsonSchema() {
    const std::string text = Slurp(Path());
    json_.Parse(text.data(), text.size());
    if (json_.HasParseError()) {
      load_error_ = rapidjson::GetParseError_En(json_.GetParseError());
      return;
    }
    schema_ = std::make_unique<rapidjson::SchemaDocument>(json_);
  }
  rapidjson::Document json_;
  std::unique_ptr<rapidjson::SchemaDocument> schema_;
  std::string load_error_;
};

std::string SpecCis() { return Slurp(SpecDir() / "examples" / "cis-record.json"); }

// The enum of a property of the CIS schema (under "properties" or "$defs/<def>/properties").
std::set<std::string> JsonEnum(const rapidjson::Value& schema_object, const char* property, bool* has_null) {
  std::set<std::string> out;
  *has_null = false;
  const auto& props = schema_object["properties"];
  EXPECT_TRUE(props.HasMember(property)) << property;
  if (!props.HasMember(property) || !props[property].HasMember("enum")) return out;
  for (const auto& v : props[property]["enum"].GetArray()) {
    if (v.IsNull())
      *has_null = true;
    else if (v.IsString())
      out.insert(v.GetString());
  }
  return out;
}

// ====================================================================== SystmOne schema

TEST(SystmOneSchema, CompilesWithLibxml2) {
  const auto& xsd = SystmOneXsd::Get();
  ASSERT_TRUE(xsd.loaded()) << [&] {
    std::string s;
    for (const auto& e : xsd.load_errors()) s += e + "\n";
    return s;
  }();
  EXPECT_TRUE(xsd.load_errors().empty());
}

TEST(SystmOneSchema, AcceptsSpecExample) {
  auto r = SystmOneXsd::Get().Validate(SpecS1(), "systmone-record.xml");
  EXPECT_TRUE(r.IsSystmOneDocument()) << r.Describe();
}

TEST(SystmOneSchema, AcceptsEverySystmOneSample) {
  auto files = FilesIn(SourceDir() / "samples" / "systmone", ".xml");
  ASSERT_GE(files.size(), 3u) << "expected single-record.xml, tpp-getpatientrecord.xml and batch.xml";
  for (const auto& f : files) {
    auto r = SystmOneXsd::Get().Validate(Slurp(f), f.filename().c_str());
    EXPECT_TRUE(r.IsSystmOneDocument()) << f << ": " << r.Describe();
  }
}

TEST(SystmOneSchema, AcceptsCaregateGoldenFiles) {
  // What caregate's own writer emits (expected.xml) and the TPP-shaped inputs of the
  // translation tests must be valid too.
  const fs::path golden = SourceDir() / "tests" / "golden";
  if (!fs::is_directory(golden)) GTEST_SKIP() << "no tests/golden";
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(golden)) {
    if (!e.is_regular_file() || e.path().extension() != ".xml") continue;
    ++n;
    auto r = SystmOneXsd::Get().Validate(Slurp(e.path()), e.path().filename().c_str());
    EXPECT_TRUE(r.IsSystmOneDocument()) << e.path() << ": " << r.Describe();
  }
  if (n == 0) GTEST_SKIP() << "no golden XML files";
}

TEST(SystmOneSchema, AcceptsUnknownElements) {
  const std::string base = SpecS1();
  struct Case {
    const char* what;
    std::string doc;
  };
  const std::vector<Case> cases = {
      {"unknown sections under Response",
       Edit(base, "    <Community>",
            "    <Appointments>\n      <Appointment>\n        <DateTime>2024-09-23T10:30:00</DateTime>\n"
            "        <Status>Booked</Status>\n        <Location>Patient's home</Location>\n      </Appointment>\n"
            "    </Appointments>\n    <Alerts><Alert Type=\"Access\">Key safe &amp; &lt;dog&gt;</Alert></Alerts>\n"
            "    <Community>")},
      {"unknown element among known siblings",
       Edit(base, "<Sex>M</Sex>", "<PreviousSurname>Smyth</PreviousSurname><Sex>M</Sex>")},
      {"nested unknown elements with attributes",
       Edit(base, "<Identity>", "<Identity><Foo><Bar x=\"1\">t</Bar></Foo>")},
      {"unknown element in the envelope", Edit(base, "<Response>", "<Diagnostics><Ms>12</Ms></Diagnostics><Response>")},
      {"unknown element inside a Visit", Edit(base, "<DurationMinutes>45</DurationMinutes>",
                                              "<DurationMinutes>45</DurationMinutes><TravelMinutes>12</TravelMinutes>")},
      {"unknown attributes on containers",
       Edit(Edit(base, "<Event ", "<Event Confidential=\"false\" "), "<Response>", "<Response Version=\"2\">")},
      {"known container names reused as plain text inside an unknown section",
       Edit(base, "<Community>",
            "<NextOfKin><Address>12 High Street, Leeds</Address><Event>Fall at home</Event>"
            "<Code>NOK1</Code></NextOfKin><Community>")},
      {"an element from another namespace",
       Edit(base, "<Identity>", "<Identity><x:NHSNumber xmlns:x=\"urn:example:other\">not ours</x:NHSNumber>")},
      {"unknown element inside a batch",
       "<ClientIntegrationBatch><BatchHeader><Created>2024-07-25</Created></BatchHeader>" +
           Edit(base, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "") + "</ClientIntegrationBatch>"},
  };
  for (const auto& c : cases) {
    auto r = SystmOneXsd::Get().Validate(c.doc);
    EXPECT_TRUE(r.IsSystmOneDocument()) << c.what << ": " << r.Describe();
  }
}

TEST(SystmOneSchema, AcceptsChildrenInAnyOrder) {
  std::string doc = SpecS1();
  doc = Edit(doc, "<Sex>M</Sex>", "");
  doc = Edit(doc, "<Title>Mr</Title>", "<Sex>M</Sex><Title>Mr</Title>");  // Sex first
  doc = Edit(doc, "<Function>GetPatientRecord</Function>", "");
  doc = Edit(doc, "</ClientIntegrationResponse>", "<Function>GetPatientRecord</Function></ClientIntegrationResponse>");
  doc = Edit(doc, "<RecordState>Active</RecordState>", "");
  doc = Edit(doc, "<Identity>", "<RecordState>Active</RecordState><Identity>");
  auto r = SystmOneXsd::Get().Validate(doc);
  EXPECT_TRUE(r.IsSystmOneDocument()) << r.Describe();
}

TEST(SystmOneSchema, AcceptsEmptyElementsAsAbsent) {
  std::string doc = SpecS1();
  doc = Edit(doc, "<NHSNumber>9912003888</NHSNumber>", "<NHSNumber/>");
  doc = Edit(doc, "<Ethnicity>A</Ethnicity>", "<Ethnicity></Ethnicity>");
  doc = Edit(doc, "<Sex>M</Sex>", "<Sex/><DateOfDeath/>");
  doc = Edit(doc, "<EnglishSpeaker>Yes</EnglishSpeaker>", "<EnglishSpeaker/>");
  doc = Edit(doc, "<CareStartDate>2024-06-28</CareStartDate>", "<CareStartDate/>");
  doc = Edit(doc, "DateTime=\"2024-06-28T10:15:00\"", "DateTime=\"\"");
  doc = Edit(doc, "Scheme=\"CTV3\"", "Scheme=\"\"");
  doc = Edit(doc, "<SensitiveRecord>false</SensitiveRecord>", "<SensitiveRecord/>");
  doc = Edit(doc, "<DurationMinutes>45</DurationMinutes>", "<DurationMinutes/>");
  doc = Edit(doc, "<Aim>Rehabilitation</Aim>", "<Aim/>");
  auto r = SystmOneXsd::Get().Validate(doc);
  EXPECT_TRUE(r.IsSystmOneDocument()) << r.Describe();
}

TEST(SystmOneSchema, AcceptsMinimalRecordAndCaregateExtensions) {
  const std::string minimal =
      "<ClientIntegrationResponse><Response><Identity><StrategicReportingIdentifier>700412"
      "</StrategicReportingIdentifier></Identity></Response></ClientIntegrationResponse>";
  auto r = SystmOneXsd::Get().Validate(minimal);
  EXPECT_TRUE(r.IsSystmOneDocument()) << r.Describe();

  std::string ext = SpecS1();
  ext = Edit(ext, "UserName=\"ajones\"", "UserName=\"ajones\" AuthorRole=\"Occupational Therapist\"");
  ext = Edit(ext, "<DischargeDate>", "<OutcomeDate>2024-06-27</OutcomeDate><DischargeDate>");
  ext = Edit(ext, "</Community>",
             "<CouncilEvent><EventType>Service</EventType><EventUID>SRV-77310</EventUID>"
             "<StartDate>2024-06-28</StartDate><EndDate>2024-07-24</EndDate><Outcome>Goals achieved</Outcome>"
             "<AssessmentType/><EligibleNeedsIdentified/><ServiceType>Short Term Support: ST-Max</ServiceType>"
             "<ServiceComponent>Reablement</ServiceComponent><DeliveryMechanism>CASSR Managed Personal Budget"
             "</DeliveryMechanism><PlannedUnitsPerWeek>7</PlannedUnitsPerWeek><UnitCost>24.5</UnitCost>"
             "<CostFrequencyUnitType>Hourly</CostFrequencyUnitType><ReviewReason/></CouncilEvent>"
             "<CouncilRecord><LACode>E08000035</LACode><InterpreterRequired>No</InterpreterRequired>"
             "<LastUpdated>2024-07-24T16:40:00+01:00</LastUpdated></CouncilRecord></Community>");
  r = SystmOneXsd::Get().Validate(ext);
  EXPECT_TRUE(r.IsSystmOneDocument()) << r.Describe();
}

TEST(SystmOneSchema, RejectsInvalidValues) {
  const std::string base = SpecS1();
  struct Case {
    const char* what;
    std::string from, to;
  };
  const std::vector<Case> cases = {
      {"Sex Q", "<Sex>M</Sex>", "<Sex>Q</Sex>"},
      {"Sex in lower case", "<Sex>M</Sex>", "<Sex>m</Sex>"},
      {"Sex with spaces", "<Sex>M</Sex>", "<Sex> M </Sex>"},
      {"NHSNumber 12345", "<NHSNumber>9912003888</NHSNumber>", "<NHSNumber>12345</NHSNumber>"},
      {"NHSNumber with spaces", "<NHSNumber>9912003888</NHSNumber>", "<NHSNumber>991 200 3888</NHSNumber>"},
      {"NHSNumber of 11 digits", "<NHSNumber>9912003888</NHSNumber>", "<NHSNumber>99120038881</NHSNumber>"},
      {"NHSNumber in Arabic-Indic digits", "<NHSNumber>9912003888</NHSNumber>",
       "<NHSNumber>\u0669\u0669\u0661\u0662\u0660\u0660\u0663\u0668\u0668\u0668</NHSNumber>"},
      {"date 2024-13-01", "<DateOfBirth>1941-03-14</DateOfBirth>", "<DateOfBirth>2024-13-01</DateOfBirth>"},
      {"date 2023-02-29", "<DateOfBirth>1941-03-14</DateOfBirth>", "<DateOfBirth>2023-02-29</DateOfBirth>"},
      {"date 1941-3-14", "<DateOfBirth>1941-03-14</DateOfBirth>", "<DateOfBirth>1941-3-14</DateOfBirth>"},
      {"date with a time", "<DateOfBirth>1941-03-14</DateOfBirth>", "<DateOfBirth>1941-03-14T00:00:00</DateOfBirth>"},
      {"date with a time zone", "<DateOfBirth>1941-03-14</DateOfBirth>", "<DateOfBirth>1941-03-14Z</DateOfBirth>"},
      {"date with spaces", "<DateOfBirth>1941-03-14</DateOfBirth>", "<DateOfBirth> 1941-03-14 </DateOfBirth>"},
      {"DateOfDeath 31 April", "<Sex>M</Sex>", "<DateOfDeath>2024-04-31</DateOfDeath><Sex>M</Sex>"},
      {"CareStartDate in UK order", "<CareStartDate>2024-06-28</CareStartDate>", "<CareStartDate>28/06/2024</CareStartDate>"},
      {"Goal SetDate 2024-00-10", "<SetDate>2024-06-28</SetDate>", "<SetDate>2024-00-10</SetDate>"},
      {"Ethnicity I (not a 2001 letter)", "<Ethnicity>A</Ethnicity>", "<Ethnicity>I</Ethnicity>"},
      {"Ethnicity as a census label", "<Ethnicity>A</Ethnicity>", "<Ethnicity>White: Irish</Ethnicity>"},
      {"EnglishSpeaker yes", "<EnglishSpeaker>Yes</EnglishSpeaker>", "<EnglishSpeaker>yes</EnglishSpeaker>"},
      {"ConsentToShare in CIS spelling", "<ConsentToShare>Yes</ConsentToShare>", "<ConsentToShare>Not asked</ConsentToShare>"},
      {"SensitiveRecord 1", "<SensitiveRecord>false</SensitiveRecord>", "<SensitiveRecord>1</SensitiveRecord>"},
      {"Aim Rehab", "<Aim>Rehabilitation</Aim>", "<Aim>Rehab</Aim>"},
      {"Code Scheme READ2", "Scheme=\"CTV3\"", "Scheme=\"READ2\""},
      {"Event DateTime with a space", "DateTime=\"2024-06-28T10:15:00\"", "DateTime=\"2024-06-28 10:15:00\""},
      {"Event DateTime 24:00", "DateTime=\"2024-06-28T10:15:00\"", "DateTime=\"2024-06-28T24:00:00\""},
      {"Event DateTime offset without colon", "DateTime=\"2024-06-28T10:15:00\"", "DateTime=\"2024-06-28T10:15:00+0100\""},
      {"Visit DateTime without time", "<DateTime>2024-07-02T09:30:00</DateTime>", "<DateTime>2024-07-02</DateTime>"},
      {"DurationMinutes 4.5", "<DurationMinutes>45</DurationMinutes>", "<DurationMinutes>4.5</DurationMinutes>"},
      {"DurationMinutes -4", "<DurationMinutes>45</DurationMinutes>", "<DurationMinutes>-4</DurationMinutes>"},
      {"an attribute on a known leaf", "<Sex>M</Sex>", "<Sex Source=\"PDS\">M</Sex>"},
      {"a child element in a known leaf", "<Surname>Smith</Surname>", "<Surname>Smith<Suffix>Jr</Suffix></Surname>"},
      {"an invalid known element inside an unknown one", "<Community>",
       "<NextOfKin><DateOfBirth>1970-02-30</DateOfBirth></NextOfKin><Community>"},
  };
  for (const auto& c : cases) {
    auto r = SystmOneXsd::Get().Validate(Edit(base, c.from, c.to));
    EXPECT_TRUE(r.parsed) << c.what << ": " << r.Describe();
    EXPECT_FALSE(r.valid) << c.what << " was accepted";
  }
  // The same checks inside a batch.
  std::string record = Edit(base, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "");
  auto r = SystmOneXsd::Get().Validate("<ClientIntegrationBatch>" + record + Edit(record, "<Sex>M</Sex>", "<Sex>Q</Sex>") +
                                       "</ClientIntegrationBatch>");
  EXPECT_FALSE(r.valid) << "a batch with a bad record was accepted";
  // A CouncilEvent number that is not a number.
  r = SystmOneXsd::Get().Validate(
      Edit(base, "</Community>", "<CouncilEvent><UnitCost>1e3</UnitCost></CouncilEvent></Community>"));
  EXPECT_FALSE(r.valid) << "UnitCost 1e3 was accepted";
  r = SystmOneXsd::Get().Validate(
      Edit(base, "</Community>", "<CouncilRecord><InterpreterRequired>Unknown</InterpreterRequired></CouncilRecord></Community>"));
  EXPECT_FALSE(r.valid) << "InterpreterRequired Unknown was accepted";
}

TEST(SystmOneSchema, RejectsDocumentsThatAreNotRecords) {
  // An undeclared root is invalid.
  auto r = SystmOneXsd::Get().Validate("<PatientRecord><NHSNumber>9912003888</NHSNumber></PatientRecord>");
  EXPECT_FALSE(r.valid) << r.Describe();
  // XSD 1.0 cannot say which declared element is the root (every known element is global
  // so that the lax wildcards find it): the consumer checks the root name.
  r = SystmOneXsd::Get().Validate("<Sex>M</Sex>");
  EXPECT_TRUE(r.valid) << r.Describe();
  EXPECT_FALSE(r.IsSystmOneDocument());
  // Not well-formed.
  r = SystmOneXsd::Get().Validate("<ClientIntegrationResponse><Response></ClientIntegrationResponse>");
  EXPECT_FALSE(r.parsed);
}

TEST(SystmOneSchema, DoesNotFetchExternalEntities) {
  // A document with an external entity must not make the parser read the file system or
  // the network; with entity substitution off the reference stays a reference.
  const std::string doc =
      "<?xml version=\"1.0\"?><!DOCTYPE ClientIntegrationResponse [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
      "<ClientIntegrationResponse><Response><Identity><StrategicReportingIdentifier>&x;"
      "</StrategicReportingIdentifier></Identity></Response></ClientIntegrationResponse>";
  std::vector<std::string> errors;
  XmlDocPtr d = ParseXml(doc, "xxe.xml", &errors);
  ASSERT_TRUE(d);
  xmlChar* text = xmlNodeGetContent(xmlDocGetRootElement(d.get()));
  std::string content = text ? reinterpret_cast<const char*>(text) : "";
  xmlFree(text);
  EXPECT_EQ(content.find("root:"), std::string::npos) << "external entity was expanded";
}

TEST(SystmOneSchema, DateTypeIsExactlyTheCalendar) {
  // The date patterns against std::chrono, month 0..13, day 0..32, over leap-year edges.
  const auto& xsd = SystmOneXsd::Get();
  ASSERT_TRUE(xsd.loaded());
  int checked = 0;
  for (int y : kYears)
    for (int m = 0; m <= 13; ++m)
      for (int d = 0; d <= 32; ++d) {
        const std::string date = DateText(y, m, d);
        const bool expect = IsRealDate(y, m, d);
        auto r = xsd.Validate("<DateOfBirth>" + date + "</DateOfBirth>");
        ASSERT_EQ(r.valid, expect) << date;
        ++checked;
      }
  EXPECT_GT(checked, 9000);
  // The date part of date-times follows the same rule.
  for (const char* ok : {"2024-02-29T10:15", "2000-02-29T00:00:00", "2024-06-28T10:15:00.5Z", "2024-06-28T23:59:59-05:30"})
    EXPECT_TRUE(xsd.Validate(std::string("<DateTime>") + ok + "</DateTime>").valid) << ok;
  for (const char* bad : {"2023-02-29T10:15", "1900-02-29T10:15", "2024-06-28T10", "2024-06-28t10:15", "2024-06-28T10:60"})
    EXPECT_FALSE(xsd.Validate(std::string("<DateTime>") + bad + "</DateTime>").valid) << bad;
}

TEST(SystmOneSchema, DeclaresEveryMappedPath) {
  // Every element and attribute of mappings/systmone.csv has a declaration, so a new
  // mapping row cannot leave the schema behind.
  XsdText xsd;
  auto globals = xsd.Strings("/xs:schema/xs:element/@name");
  std::set<std::string> elements(globals.begin(), globals.end());
  ASSERT_FALSE(elements.empty());
  int paths = 0;
  for (auto& row : ReadCsv(SourceDir() / "mappings" / "systmone.csv")) {
    std::string path = row["path"];
    if (path.empty()) continue;
    ++paths;
    std::string parent = "ClientIntegrationResponse";
    std::size_t pos = 0;
    while (pos <= path.size()) {
      auto end = path.find('/', pos);
      if (end == std::string::npos) end = path.size();
      std::string step = path.substr(pos, end - pos);
      pos = end + 1;
      if (step.size() > 2 && step.compare(step.size() - 2, 2, "[]") == 0) step.resize(step.size() - 2);
      if (step.empty()) continue;
      if (step[0] == '@') {
        auto attrs = xsd.Strings("/xs:schema/xs:element[@name='" + parent + "']//xs:attribute/@name");
        EXPECT_NE(std::find(attrs.begin(), attrs.end(), step.substr(1)), attrs.end())
            << row["rule"] << ": " << parent << "/" << step << " is not declared";
      } else {
        EXPECT_TRUE(elements.count(step)) << row["rule"] << ": element " << step << " is not declared";
        parent = step;
      }
      if (end == path.size()) break;
    }
  }
  EXPECT_GT(paths, 100);
}

TEST(SystmOneSchema, EnumerationsMatchCodesets) {
  XsdText xsd;
  const std::map<std::string, std::pair<std::string, std::string>> types = {
      {"Sex", {"gender", "systmone"}},
      {"Ethnicity", {"ethnicity", "systmone"}},
      {"EnglishSpeaker", {"english_speaker", "systmone"}},
      {"ConsentToShare", {"consent", "systmone"}},
      {"CarePlanAim", {"care_plan_aim", "systmone"}},
      {"ClinicalScheme", {"clinical_scheme", "systmone"}},
      {"InterpreterRequired", {"interpreter_required_s1", "systmone"}},
  };
  for (const auto& [type, codeset] : types) {
    auto values = xsd.Strings("/xs:schema/xs:simpleType[@name='" + type + "']/xs:restriction/xs:enumeration/@value");
    std::set<std::string> have(values.begin(), values.end());
    std::set<std::string> want = CodesetColumn(codeset.first, codeset.second);
    want.insert("");  // empty = absent
    EXPECT_EQ(have, want) << "simpleType " << type << " vs mappings/codesets/" << codeset.first << ".csv";
  }
}

// ============================================================================ CIS schema

TEST(CisSchema, LoadsInRapidJsonDraft04Validator) {
  const auto& s = CisJsonSchema::Get();
  ASSERT_TRUE(s.loaded()) << s.load_error();
  EXPECT_STREQ(s.json()["$schema"].GetString(), "https://json-schema.org/draft/2020-12/schema");
}

// Every keyword is one draft-04 and 2020-12 agree on, every $ref has only annotations
// beside it, and every pattern compiles in RapidJSON's regex engine (an invalid pattern
// is silently ignored by RapidJSON, which would switch the check off).
void CheckSchemaObject(const rapidjson::Value& s, const std::string& where) {
  static const std::set<std::string> kKeywords = {
      "$schema", "$id",      "$comment", "$defs", "$ref",       "title",    "description", "type",
      "enum",    "pattern",  "minLength", "properties", "required", "items", "additionalProperties", "anyOf"};
  ASSERT_TRUE(s.IsObject()) << where;
  for (const auto& m : s.GetObject()) {
    const std::string key = m.name.GetString();
    EXPECT_TRUE(kKeywords.count(key)) << where << ": keyword " << key << " is not in the draft-04 subset";
    if (key == "properties" || key == "$defs") {
      for (const auto& p : m.value.GetObject()) CheckSchemaObject(p.value, where + "/" + key + "/" + p.name.GetString());
    } else if (key == "items" || (key == "additionalProperties" && m.value.IsObject())) {
      CheckSchemaObject(m.value, where + "/" + key);
    } else if (key == "anyOf") {
      int i = 0;
      for (const auto& a : m.value.GetArray()) CheckSchemaObject(a, where + "/anyOf/" + std::to_string(i++));
    } else if (key == "pattern") {
      rapidjson::internal::Regex re(m.value.GetString());
      EXPECT_TRUE(re.IsValid()) << where << ": RapidJSON cannot compile " << m.value.GetString();
    } else if (key == "$ref") {
      // RapidJSON resolves only local refs it can parse as a URI-fragment JSON Pointer; an
      // unparsable one (e.g. "#/$defs/x": '$' unencoded) is dropped silently.
      rapidjson::Pointer target(m.value.GetString(), m.value.GetStringLength());
      EXPECT_TRUE(target.IsValid()) << where << ": RapidJSON cannot parse $ref " << m.value.GetString();
      EXPECT_TRUE(target.IsValid() && target.Get(CisJsonSchema::Get().json()) != nullptr)
          << where << ": $ref " << m.value.GetString() << " points nowhere";
      for (const auto& sibling : s.GetObject()) {
        const std::string k = sibling.name.GetString();
        EXPECT_TRUE(k == "$ref" || k == "description") << where << ": $ref beside " << k << " (ignored by draft-04)";
      }
    }
  }
}

TEST(CisSchema, UsesOnlyKeywordsDraft04Knows) { CheckSchemaObject(CisJsonSchema::Get().json(), "#"); }

TEST(CisSchema, AcceptsSpecExample) {
  auto r = CisJsonSchema::Get().Validate(SpecCis());
  EXPECT_TRUE(r.valid) << r.Describe();
}

TEST(CisSchema, AcceptsSingleRecordSample) {
  auto r = CisJsonSchema::Get().Validate(Slurp(SourceDir() / "samples" / "cis" / "single-record.json"));
  EXPECT_TRUE(r.valid) << r.Describe();
}

TEST(CisSchema, AcceptsNullsEmptyStringsAndUnknownKeys) {
  const std::string text =
      R"({"Record_Type":"CIS_Client","LA_Code":null,"LA_Person_Unique_Identifier":"LCC-1","NHS_Number":"",)"
      R"("SystmOne_Identifier":null,"Title":null,"Date_of_Birth":"","Date_of_Death":null,"Gender":"",)"
      R"("Ethnicity":null,"Interpreter_Required":"","Address":null,"Consent_To_Share":null,"Sensitive_Record":null,)"
      R"("Events":[{"Event_Type":null,"Event_Start_Date":null,"Event_Outcome":"","Unit_Cost":null,"Extra":[1,2]}],)"
      R"("Goals":null,"Case_Notes":[{"Date_Time":"","Text":null}],"Last_Updated":null,)"
      R"("Care_Package_Band":"B","Nested_Unknown":{"a":{"b":[true,null]}}})";
  auto r = CisJsonSchema::Get().Validate(text);
  EXPECT_TRUE(r.valid) << r.Describe();
}

TEST(CisSchema, RejectsInvalidRecords) {
  struct Case {
    const char* what;
    const char* from;
    const char* to;
  };
  const std::string base = SpecCis();
  const std::vector<Case> cases = {
      {"Gender 3", R"("Gender": "1")", R"("Gender": "3")"},
      {"Gender as a number", R"("Gender": "1")", R"("Gender": 1)"},
      {"Gender as SystmOne code", R"("Gender": "1")", R"("Gender": "M")"},
      {"Record_Type missing", R"("Record_Type": "CIS_Client",)", ""},
      {"Record_Type wrong", R"("Record_Type": "CIS_Client")", R"("Record_Type": "CIS_Person")"},
      {"Ethnicity as a 2001 letter", R"("Ethnicity": "White: English, Welsh, Scottish, Northern Irish or British")",
       R"("Ethnicity": "A")"},
      {"Ethnicity label misspelt", R"("Ethnicity": "White: English, Welsh, Scottish, Northern Irish or British")",
       R"("Ethnicity": "White: British")"},
      {"Consent_To_Share in SystmOne spelling", R"("Consent_To_Share": "Yes")", R"("Consent_To_Share": "NotAsked")"},
      {"Interpreter_Required Unknown", R"("Interpreter_Required": "No")", R"("Interpreter_Required": "Unknown")"},
      {"Sensitive_Record as a string", R"("Sensitive_Record": false)", R"("Sensitive_Record": "false")"},
      {"NHS_Number 12345", R"("NHS_Number": "9912003888")", R"("NHS_Number": "12345")"},
      {"NHS_Number with spaces", R"("NHS_Number": "9912003888")", R"("NHS_Number": "991 200 3888")"},
      {"NHS_Number as a number", R"("NHS_Number": "9912003888")", R"("NHS_Number": 9912003888)"},
      {"Date_of_Birth 2023-02-29", R"("Date_of_Birth": "1941-03-14")", R"("Date_of_Birth": "2023-02-29")"},
      {"Date_of_Birth 2024-13-01", R"("Date_of_Birth": "1941-03-14")", R"("Date_of_Birth": "2024-13-01")"},
      {"Date_of_Birth UK order", R"("Date_of_Birth": "1941-03-14")", R"("Date_of_Birth": "14/03/1941")"},
      {"Date_of_Birth with text after", R"("Date_of_Birth": "1941-03-14")", R"x("Date_of_Birth": "1941-03-14 (approx)")x"},
      {"Date_of_Death with a time", R"("Date_of_Death": null)", R"("Date_of_Death": "2024-08-03T10:00:00Z")"},
      {"Event_Type lower case", R"("Event_Type": "Request")", R"("Event_Type": "request")"},
      {"Event_Start_Date 31 June", R"("Event_Start_Date": "2024-06-27")", R"("Event_Start_Date": "2024-06-31")"},
      {"Event_Outcome not a CLD label", R"("Event_Outcome": "Progress to reablement/ST-Max"})",
       R"("Event_Outcome": "Accepted"})"},
      {"Request_Route_of_Access SystmOne source", R"("Request_Route_of_Access": "Discharge from hospital")",
       R"("Request_Route_of_Access": "Hospital")"},
      {"Unit_Cost as a string", R"("Unit_Cost": 24.5)", R"("Unit_Cost": "24.5")"},
      {"Goal Status unknown", R"("Status": "Achieved")", R"("Status": "Done")"},
      {"Case note time without offset", R"("Date_Time": "2024-07-02T11:05:00+01:00")",
       R"("Date_Time": "2024-07-02T11:05:00")"},
      {"Last_Updated as a date", R"("Last_Updated": "2024-07-24T16:40:00+01:00")", R"("Last_Updated": "2024-07-24")"},
      {"Events not an array", R"("Events": [)", R"("Events": {"x": [)"},
      {"Address not an object", R"("Address": {"Line_1": "22 Mill Lane", "Line_2": "Armley", "Line_3": "", "Town": "Leeds", "County": "West Yorkshire", "Postcode": "LS12 2AB"})",
       R"("Address": "22 Mill Lane, Armley")"},
      {"Address line a number", R"("Line_1": "22 Mill Lane")", R"("Line_1": 22)"},
      {"First_Name a number", R"("First_Name": "Richard")", R"("First_Name": 5)"},
  };
  for (const auto& c : cases) {
    std::string doc = Edit(base, c.from, c.to);
    if (std::string_view(c.what) == "Events not an array") doc = Edit(doc, R"(  ],
  "Goals")", R"(  ]},
  "Goals")");
    auto r = CisJsonSchema::Get().Validate(doc);
    EXPECT_TRUE(r.parsed) << c.what << ": " << r.Describe();
    EXPECT_FALSE(r.valid) << c.what << " was accepted";
  }
}

TEST(CisSchema, RejectsRecordThatIdentifiesNobody) {
  std::string doc = SpecCis();
  doc = Edit(doc, R"("LA_Person_Unique_Identifier": "LCC-0048213")", R"("LA_Person_Unique_Identifier": "")");
  doc = Edit(doc, R"("NHS_Number": "9912003888")", R"("NHS_Number": null)");
  doc = Edit(doc, R"("SystmOne_Identifier": "700412",)", "");
  auto r = CisJsonSchema::Get().Validate(doc);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.error.rfind("anyOf", 0), 0u) << r.error;
  // Any one id is enough.
  for (const char* id : {R"("SystmOne_Identifier": "700412",)", R"("Extra_Id": 1, "NHS_Number": "9912003888",)"}) {
    std::string one = Edit(doc, R"("Title")", std::string(id) + R"( "Title")");
    if (std::string_view(id).find("NHS") != std::string_view::npos) one = Edit(one, R"("NHS_Number": null,)", "");
    auto ok = CisJsonSchema::Get().Validate(one);
    EXPECT_TRUE(ok.valid) << id << ": " << ok.Describe();
  }
}

TEST(CisSchema, DatePatternIsExactlyTheCalendar) {
  const auto& schema = CisJsonSchema::Get();
  ASSERT_TRUE(schema.loaded());
  for (int y : kYears)
    for (int m = 0; m <= 13; ++m)
      for (int d = 0; d <= 32; ++d) {
        const std::string date = DateText(y, m, d);
        auto r = schema.Validate(R"({"Record_Type":"CIS_Client","LA_Person_Unique_Identifier":"x","Date_of_Birth":")" +
                                 date + R"(","Case_Notes":[{"Date_Time":")" + date + R"(T10:15:00Z"}]})");
        ASSERT_EQ(r.valid, IsRealDate(y, m, d)) << date << ": " << r.Describe();
      }
  for (const char* bad : {"2024-06-28T10:15:00+0100", "2024-06-28T24:00:00Z", "2024-06-28T10:15Z ", " 2024-06-28T10:15Z"}) {
    auto r = schema.Validate(std::string(R"({"Record_Type":"CIS_Client","LA_Person_Unique_Identifier":"x","Last_Updated":")") +
                             bad + "\"}");
    EXPECT_FALSE(r.valid) << bad;
  }
}

TEST(CisSchema, EnumerationsMatchCodesets) {
  const auto& root = CisJsonSchema::Get().json();
  const auto& defs = root["$defs"];
  struct Case {
    const rapidjson::Value* object;
    const char* property;
    const char* codeset;
  };
  const std::vector<Case> cases = {
      {&root, "Gender", "gender"},
      {&root, "Ethnicity", "ethnicity"},
      {&root, "Interpreter_Required", "interpreter_required"},
      {&root, "Consent_To_Share", "consent"},
      {&defs["event"], "Event_Type", "episode_kind"},
      {&defs["event"], "Event_Outcome", "event_outcome"},
      {&defs["event"], "Request_Route_of_Access", "referral_route"},
      {&defs["goal"], "Status", "goal_status"},
  };
  for (const auto& c : cases) {
    bool has_null = false;
    auto have = JsonEnum(*c.object, c.property, &has_null);
    auto want = CodesetColumn(c.codeset, "cis");
    want.insert("");
    EXPECT_EQ(have, want) << c.property << " vs mappings/codesets/" << c.codeset << ".csv";
    EXPECT_TRUE(has_null) << c.property << " must allow null";
  }
  bool has_null = false;
  auto ethnicity = JsonEnum(root, "Ethnicity", &has_null);
  EXPECT_EQ(ethnicity.size(), 22u) << "21 census labels and the empty string";
  auto gender = JsonEnum(root, "Gender", &has_null);
  EXPECT_EQ(gender, (std::set<std::string>{"1", "2", "9", "X", ""}));
}

TEST(CisSchema, AcceptsEveryExtractLineExceptTheDeliberatelyBadOnes) {
  const auto lines = Lines(Slurp(SourceDir() / "samples" / "cis" / "extract.ndjson"));
  ASSERT_GE(lines.size(), 20u);
  int good = 0, bad = 0, withheld = 0;
  std::set<std::string> bad_kinds;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string where = "extract.ndjson line " + std::to_string(i + 1);
    auto r = CisJsonSchema::Get().Validate(line);
    if (line.find("\"Sample_Note\":\"deliberately bad") == std::string::npos) {
      ++good;
      EXPECT_TRUE(r.valid) << where << ": " << r.Describe();
      if (line.find("\"Consent_To_Share\":\"No\"") != std::string::npos) ++withheld;
      continue;
    }
    ++bad;
    if (line.find("Modulus 11") != std::string::npos) {
      // Beyond JSON Schema: valid here, and only caregate's check-digit test rejects it.
      bad_kinds.insert("nhs");
      EXPECT_TRUE(r.valid) << where << ": " << r.Describe();
      rapidjson::Document d;
      d.Parse(line.c_str());
      ASSERT_TRUE(d.IsObject() && d.HasMember("NHS_Number") && d["NHS_Number"].IsString()) << where;
      EXPECT_FALSE(NhsCheckDigitOk(d["NHS_Number"].GetString())) << where << ": the NHS number is not bad";
    } else if (line.find("2023-02-29") != std::string::npos) {
      bad_kinds.insert("date");
      EXPECT_FALSE(r.valid) << where;
      EXPECT_NE(r.error.find("Event_Start_Date"), std::string::npos) << where << ": " << r.error;
    } else if (line.find("cut short") != std::string::npos) {
      bad_kinds.insert("truncated");
      EXPECT_FALSE(r.parsed) << where << ": " << r.Describe();
    } else if (line.find("identifies nobody") != std::string::npos) {
      bad_kinds.insert("nobody");
      EXPECT_FALSE(r.valid) << where;
      EXPECT_EQ(r.error.rfind("anyOf", 0), 0u) << where << ": " << r.error;
    } else {
      ADD_FAILURE() << where << ": unexpected bad line";
    }
  }
  EXPECT_EQ(bad, 4);
  EXPECT_EQ(bad_kinds, (std::set<std::string>{"nhs", "date", "truncated", "nobody"}));
  EXPECT_GE(good, 16);
  EXPECT_EQ(withheld, 1) << "one record must have Consent_To_Share No";
}

// =============================================================================== samples

TEST(SchemaSamples, SingleRecordsAreTheSpecExamples) {
  EXPECT_EQ(Slurp(SourceDir() / "samples" / "systmone" / "single-record.xml"), SpecS1());
  EXPECT_EQ(Slurp(SourceDir() / "samples" / "cis" / "single-record.json"), SpecCis());
}

TEST(SchemaSamples, BatchHoldsThreeToFiveRecords) {
  std::vector<std::string> errors;
  XmlDocPtr d = ParseXml(Slurp(SourceDir() / "samples" / "systmone" / "batch.xml"), "batch.xml", &errors);
  ASSERT_TRUE(d);
  xmlNode* root = xmlDocGetRootElement(d.get());
  ASSERT_STREQ(reinterpret_cast<const char*>(root->name), "ClientIntegrationBatch");
  int n = 0;
  for (xmlNode* c = root->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE) {
      EXPECT_STREQ(reinterpret_cast<const char*>(c->name), "ClientIntegrationResponse");
      ++n;
    }
  EXPECT_GE(n, 3);
  EXPECT_LE(n, 5);
}

TEST(SchemaSamples, TokensFileHoldsTheReadmeDemoTokens) {
  // samples/README.md publishes the plaintext demo tokens; tokens.txt must hold their
  // digests with the same role and user, one per role.
  std::map<std::string, std::pair<std::string, std::string>> digests;  // hex -> role, user
  for (const auto& line : Lines(Slurp(SourceDir() / "samples" / "tokens.txt"))) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string digest, role, user, extra;
    in >> digest >> role >> user;
    EXPECT_FALSE(in >> extra) << line;
    ASSERT_EQ(digest.rfind("sha256:", 0), 0u) << line;
    digests[digest.substr(7)] = {role, user};
  }
  std::set<std::string> roles;
  for (const auto& line : Lines(Slurp(SourceDir() / "samples" / "README.md"))) {
    // | `role` (...) | `user` | `demo-...` |
    auto t = line.find("`demo-");
    if (line.rfind("| `", 0) != 0 || t == std::string::npos) continue;
    std::string token = line.substr(t + 1, line.find('`', t + 1) - t - 1);
    std::string role = line.substr(3, line.find('`', 3) - 3);
    auto u = line.find("| `", 3);
    std::string user = line.substr(u + 3, line.find('`', u + 3) - u - 3);
    auto it = digests.find(caregate::Sha256Hex(token));
    ASSERT_NE(it, digests.end()) << "no digest for the README's " << role << " token";
    EXPECT_EQ(it->second.first, role);
    EXPECT_EQ(it->second.second, user);
    roles.insert(role);
  }
  EXPECT_EQ(roles, (std::set<std::string>{"health", "council", "ig", "service"}));
  EXPECT_EQ(digests.size(), 4u);
}

}  // namespace
