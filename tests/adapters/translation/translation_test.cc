#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "caregate/core/text.h"
#include "caregate/format/xml.h"
#include "caregate/model/canonical_json.h"
#include "caregate/model/field_registry.h"
#include "caregate/synth/synth.h"
#include "test_support.h"

using namespace caregate;
using caregate::testing::Render;
using caregate::testing::SpecExample;
using caregate::testing::TheEngine;

namespace {
model::CareRecord ReadOk(std::string_view system, const std::string& bytes) {
  auto r = TheEngine().Read(system, bytes);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : FormatErrors(r.errors()));
  return r.ok() ? r.value() : model::CareRecord{};
}
const model::Provenance* LineageOf(const model::CareRecord& r, std::string_view field) {
  for (const auto& p : r.lineage)
    if (p.field == field) return &p;
  return nullptr;
}
}  // namespace

TEST(SystmOneToCanonical, ReadsSpecExample) {
  auto r = ReadOk("systmone", SpecExample("systmone-record.xml"));
  EXPECT_EQ(r.person.nhs_number, "9912003888");
  EXPECT_EQ(r.person.s1_id, "700412");
  EXPECT_EQ(r.person.cis_id, "LCC-0048213");
  EXPECT_EQ(r.person.gender, "male");
  EXPECT_EQ(r.person.ethnicity, "white_british");
  EXPECT_EQ(r.person.address.line_1, "22 Mill Lane");
  EXPECT_EQ(r.person.address.line_2, "Armley");
  EXPECT_EQ(r.person.consent, "yes");
  EXPECT_EQ(r.source_record_id, "700412");
  ASSERT_EQ(r.episodes.size(), 1u);
  EXPECT_EQ(r.episodes[0].kind, "request");
  EXPECT_EQ(r.episodes[0].route_of_access, "hospital_discharge");
  ASSERT_EQ(r.care_plans.size(), 1u);
  EXPECT_EQ(r.care_plans[0].aim, "rehabilitation");
  ASSERT_EQ(r.care_plans[0].goals.size(), 1u);
  ASSERT_EQ(r.visits.size(), 1u);
  EXPECT_EQ(r.visits[0].date_time, "2024-07-02T09:30:00+01:00");
  ASSERT_EQ(r.entries.size(), 1u);
  ASSERT_EQ(r.entries[0].codes.size(), 1u);
  EXPECT_EQ(r.entries[0].codes[0].scheme, "ctv3");
  EXPECT_EQ(r.envelope.function, "GetPatientRecord");
}

TEST(SystmOneToCanonical, RecordsProvenanceForEveryMappedField) {
  auto r = ReadOk("systmone", SpecExample("systmone-record.xml"));
  const auto* p = LineageOf(r, "person.family_name");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->source_path, "/ClientIntegrationResponse/Response/Demographics/Surname");
  EXPECT_EQ(p->rule, "S1-023");
  EXPECT_FALSE(p->lossy);
  const auto* g = LineageOf(r, "care_plans[0].goals[0].status");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->source_path, "/ClientIntegrationResponse/Response/Community/CarePlan[1]/Goal[1]/Status");
  const auto* derived = LineageOf(r, "person.address.line_1");
  ASSERT_NE(derived, nullptr);
  EXPECT_EQ(derived->rule, "ADDR-4.3");
}

TEST(CisToCanonical, ReadsSpecExample) {
  auto r = ReadOk("cis", SpecExample("cis-record.json"));
  EXPECT_EQ(r.person.cis_id, "LCC-0048213");
  EXPECT_EQ(r.person.gender, "male");
  EXPECT_EQ(r.person.address.house_number, "22");
  EXPECT_EQ(r.person.address.road, "Mill Lane");
  EXPECT_EQ(r.person.address.locality, "Armley");
  ASSERT_EQ(r.episodes.size(), 4u);
  EXPECT_EQ(r.episodes[2].kind, "service");
  EXPECT_EQ(r.episodes[2].planned_units_per_week, "7");
  EXPECT_EQ(r.episodes[2].unit_cost, "24.5");
  ASSERT_EQ(r.care_plans.size(), 1u);
  EXPECT_EQ(r.care_plans[0].goals.size(), 1u);
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].author_role, "Reablement Support Worker");
  const auto* p = LineageOf(r, "episodes[1].assessment_type");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->source_path, "/Events/1/Assessment_Type");
}

TEST(SystmOneToCis, MapsCodeListsAndAddress) {
  auto out = Render(ReadOk("systmone", SpecExample("systmone-record.xml")), "cis");
  EXPECT_NE(out.find("\"Gender\":\"1\""), std::string::npos);
  EXPECT_NE(out.find("\"Ethnicity\":\"White: English, Welsh, Scottish, Northern Irish or British\""), std::string::npos);
  EXPECT_NE(out.find("\"Line_1\":\"22 Mill Lane\",\"Line_2\":\"Armley\""), std::string::npos);
  EXPECT_NE(out.find("\"Consent_To_Share\":\"Yes\""), std::string::npos);
  EXPECT_NE(out.find("\"Sensitive_Record\":false"), std::string::npos);
  EXPECT_NE(out.find("\"LA_Person_Unique_Identifier\":\"LCC-0048213\""), std::string::npos);
  EXPECT_NE(out.find("\"SystmOne_Identifier\":\"700412\""), std::string::npos);
  EXPECT_EQ(out.rfind("{\"Record_Type\":\"CIS_Client\"", 0), 0u);
}

TEST(CisToSystmOne, MapsCodeListsAndCarriesIds) {
  auto out = Render(ReadOk("cis", SpecExample("cis-record.json")), "systmone");
  EXPECT_NE(out.find("<Sex>M</Sex>"), std::string::npos);
  EXPECT_NE(out.find("<Ethnicity>A</Ethnicity>"), std::string::npos);
  EXPECT_NE(out.find("<HouseNumber>22</HouseNumber>"), std::string::npos);
  EXPECT_NE(out.find("<Road>Mill Lane</Road>"), std::string::npos);
  EXPECT_NE(out.find("<LocalAuthorityIdentifier>LCC-0048213</LocalAuthorityIdentifier>"), std::string::npos);
  EXPECT_NE(out.find("<StrategicReportingIdentifier>700412</StrategicReportingIdentifier>"), std::string::npos);
  EXPECT_NE(out.find("<ConsentToShare>Yes</ConsentToShare>"), std::string::npos);
  EXPECT_NE(out.find("<CouncilEvent>"), std::string::npos);
}

// SystmOne's XML may write a number with leading zeros; a JSON number may not have
// them (RFC 8259), so the canonical value drops them and the CIS record stays JSON.
TEST(SystmOneToCis, NumbersLoseTheirLeadingZeros) {
  std::string xml = Render(ReadOk("cis", SpecExample("cis-record.json")), "systmone");
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"<UnitCost>24.5</UnitCost>", "<UnitCost>0024.50</UnitCost>"},
           {"<PlannedUnitsPerWeek>7</PlannedUnitsPerWeek>", "<PlannedUnitsPerWeek>007</PlannedUnitsPerWeek>"}}) {
    const auto at = xml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    xml.replace(at, from.size(), to);
  }
  const auto out = Render(ReadOk("systmone", xml), "cis");
  EXPECT_NE(out.find("\"Unit_Cost\":24.50,"), std::string::npos) << out;
  EXPECT_NE(out.find("\"Planned_Units_Per_Week\":7,"), std::string::npos) << out;
  EXPECT_TRUE(TheEngine().Read("cis", out).ok()) << out;
}

// A postcode that is no UK one keeps whole characters (valid UTF-8) both ways, and a
// no-break space after it goes.
TEST(CisToSystmOne, PostcodesStayValidUtf8) {
  const auto rec = ReadOk("cis", [] {
    std::string json = SpecExample("cis-record.json");
    const std::string from = "\"LS12 2AB\"";
    json.replace(json.find(from), from.size(), "\"ls12 \u00e1\u00e1\"");
    return json;
  }());
  const auto xml = Render(rec, "systmone");
  EXPECT_NE(xml.find("<Postcode>LS1 2\u00e1\u00e1</Postcode>"), std::string::npos) << xml;
  EXPECT_TRUE(IsValidUtf8(xml));
  EXPECT_TRUE(IsValidUtf8(Render(rec, "cis")));
  const auto nbsp = ReadOk("cis", [] {
    std::string json = SpecExample("cis-record.json");
    const std::string from = "\"LS12 2AB\"";
    json.replace(json.find(from), from.size(), "\"ls122ab\\u00a0\"");
    return json;
  }());
  EXPECT_NE(Render(nbsp, "systmone").find("<Postcode>LS12 2AB</Postcode>"), std::string::npos);
}

// A case note's blank lines (between paragraphs, at the end) are SystmOne <Line/>
// elements, and come back as blank lines: the text round-trips unchanged.
TEST(CaseNotes, BlankLinesSurviveTheTripThroughSystmOne) {
  for (const std::string text : {"Para one.\\n\\nPara two.", "a\\n\\n\\nb", "ends with a line end\\n", "one"}) {
    const std::string json = R"({"Record_Type":"CIS_Client","LA_Person_Unique_Identifier":"X1",)"
                             R"("Case_Notes":[{"Note_Reference":"N1","Text":")" + text + "\"}]}";
    const auto rec = ReadOk("cis", json);
    ASSERT_EQ(rec.entries.size(), 1u);
    const auto back = ReadOk("systmone", Render(rec, "systmone"));
    ASSERT_EQ(back.entries.size(), 1u) << text;
    EXPECT_EQ(back.entries[0].text, rec.entries[0].text) << text;
    const auto s1s1 = ReadOk("systmone", Render(back, "systmone"));
    EXPECT_EQ(s1s1.entries[0].text, rec.entries[0].text) << text;
  }
}

TEST(Gender, EveryCodeMapsBothWays) {
  const std::pair<const char*, const char*> pairs[] = {{"M", "1"}, {"F", "2"}, {"I", "9"}, {"U", "X"}};
  std::string xml = SpecExample("systmone-record.xml");
  for (auto [s1, cis] : pairs) {
    std::string doc = xml;
    doc.replace(doc.find("<Sex>M</Sex>"), 12, std::string("<Sex>") + s1 + "</Sex>");
    auto out = Render(ReadOk("systmone", doc), "cis");
    EXPECT_NE(out.find(std::string("\"Gender\":\"") + cis + "\""), std::string::npos) << s1;
    auto back = Render(ReadOk("cis", out), "systmone");
    EXPECT_NE(back.find(std::string("<Sex>") + s1 + "</Sex>"), std::string::npos) << s1;
  }
}

TEST(Ethnicity, LossyLabelsAreFlaggedAndCollapse) {
  std::string json = SpecExample("cis-record.json");
  json.replace(json.find("White: English, Welsh, Scottish, Northern Irish or British"),
               std::string("White: English, Welsh, Scottish, Northern Irish or British").size(), "White: Roma");
  auto rec = ReadOk("cis", json);
  EXPECT_EQ(rec.person.ethnicity, "white_roma");
  mapping::WriteReport report;
  auto s1 = Render(rec, "systmone", &report);
  EXPECT_NE(s1.find("<Ethnicity>C</Ethnicity>"), std::string::npos);
  bool flagged = false;
  for (const auto& p : report.lossy)
    if (p.field == "person.ethnicity" && p.lossy && p.rule == "S1-028") flagged = true;
  EXPECT_TRUE(flagged);
  // Back from SystmOne, C reads as the non-lossy label of its row.
  auto cis = Render(ReadOk("systmone", s1), "cis");
  EXPECT_NE(cis.find("\"Ethnicity\":\"White: Any other White background\""), std::string::npos);
}

TEST(Ethnicity, EverySystmOneLetterReadsToItsNonLossyLabel) {
  std::string xml = SpecExample("systmone-record.xml");
  const std::pair<const char*, const char*> cases[] = {
      {"C", "White: Any other White background"}, {"S", "Other ethnic group: Any other ethnic group"},
      {"99", "Undeclared / Not known"}, {"Z", "Refused"}, {"R", "Asian or Asian British: Chinese"}};
  for (auto [letter, label] : cases) {
    std::string doc = xml;
    doc.replace(doc.find("<Ethnicity>A</Ethnicity>"), 24, std::string("<Ethnicity>") + letter + "</Ethnicity>");
    auto out = Render(ReadOk("systmone", doc), "cis");
    EXPECT_NE(out.find(std::string("\"Ethnicity\":\"") + label + "\""), std::string::npos) << letter;
  }
}

TEST(Sharing, AbsentSharingMeansNotAskedAndNotSensitive) {
  std::string xml = SpecExample("systmone-record.xml");
  auto b = xml.find("<Sharing>");
  auto e = xml.find("</Sharing>") + 10;
  xml.erase(b, e - b);
  auto rec = ReadOk("systmone", xml);
  EXPECT_EQ(rec.person.consent, "not_asked");
  EXPECT_EQ(rec.person.sensitive, "false");
  auto out = Render(rec, "cis");
  EXPECT_NE(out.find("\"Consent_To_Share\":\"Not asked\""), std::string::npos);
  EXPECT_NE(out.find("\"Sensitive_Record\":false"), std::string::npos);
}

TEST(Postcode, IsNormalisedOnTheWayIn) {
  std::string json = SpecExample("cis-record.json");
  json.replace(json.find("LS12 2AB"), 8, "ls122ab");
  auto rec = ReadOk("cis", json);
  EXPECT_EQ(rec.person.address.postcode, "LS12 2AB");
}

TEST(UnknownData, SystmOneUnknownElementsAreKeptAsUnmapped) {
  std::string xml = SpecExample("systmone-record.xml");
  xml.replace(xml.find("<RecordState>"), 13, "<Alerts><Alert Type=\"Risk\">Dog in house</Alert></Alerts><RecordState>");
  auto rec = ReadOk("systmone", xml);
  bool kept = false;
  for (const auto& u : rec.unmapped)
    if (u.value == "Dog in house" && u.source_path.find("/Response/Alerts/Alert") != std::string::npos) kept = true;
  EXPECT_TRUE(kept);
  auto canonical = model::ToCanonicalJson(rec);
  EXPECT_NE(canonical.find("Dog in house"), std::string::npos);
}

// Spec 1: unknown elements never make a record invalid, vendor extensions in their own
// namespace included. They are unmapped data under their expanded names; one that shares
// a local name with ours is never read as ours.
TEST(UnknownData, SystmOneElementsFromAnotherNamespaceAreKeptAsUnmapped) {
  std::string xml = SpecExample("systmone-record.xml");
  const std::string nhs = ReadOk("systmone", xml).person.nhs_number;
  xml.replace(xml.find("<RecordState>"), 13,
              "<ext:Flag xmlns:ext=\"urn:vendor:ext\" ext:level=\"2\">1</ext:Flag><RecordState>");
  xml.replace(xml.find("<NHSNumber>"), 11, "<x:NHSNumber xmlns:x=\"urn:other\">9434765919</x:NHSNumber><NHSNumber>");
  xml.replace(xml.find("<Surname>"), 9, "<Surname xmlns=\"urn:other\">Impostor</Surname><Surname>");
  xml.replace(xml.find("<FirstName>"), 11, "<u:FirstName>Undeclared</u:FirstName><FirstName>");
  auto rec = ReadOk("systmone", xml);
  EXPECT_EQ(rec.person.nhs_number, nhs);
  EXPECT_NE(rec.person.family_name, "Impostor");
  EXPECT_NE(rec.person.given_name, "Undeclared");
  std::map<std::string, std::string> unmapped;
  for (const auto& u : rec.unmapped) unmapped[u.source_path] = u.value;
  const std::string r = "/ClientIntegrationResponse/Response";
  EXPECT_EQ(unmapped[r + "/{urn:vendor:ext}Flag/#text"], "1");  // with attributes, as for ours
  EXPECT_EQ(unmapped[r + "/{urn:vendor:ext}Flag/@{urn:vendor:ext}level"], "2");
  EXPECT_EQ(unmapped[r + "/Identity/{urn:other}NHSNumber"], "9434765919");
  EXPECT_EQ(unmapped[r + "/Demographics/{urn:other}Surname"], "Impostor");
  EXPECT_EQ(unmapped[r + "/Demographics/u:FirstName"], "Undeclared");  // a prefix never declared
}

// Attributes and child elements no rule knows, on an element of ours that holds a value,
// are unmapped data; the element's text is still its value.
TEST(UnknownData, UnknownAttributesAndChildrenOfAValueElementAreUnmapped) {
  std::string xml = SpecExample("systmone-record.xml");
  const auto plain = ReadOk("systmone", xml);
  xml.replace(xml.find("<Surname>"), 9, "<Surname xml:lang=\"en\" verified=\"yes\">");
  xml.replace(xml.find("<NHSNumber>"), 11, "<NHSNumber type=\"x\">");
  xml.replace(xml.find("<FirstName>"), 11, "<FirstName><Preferred>Molly</Preferred>");
  auto rec = ReadOk("systmone", xml);
  EXPECT_EQ(rec.person.family_name, plain.person.family_name);
  EXPECT_EQ(rec.person.nhs_number, plain.person.nhs_number);
  EXPECT_EQ(rec.person.given_name, plain.person.given_name);  // the text beside <Preferred>
  std::map<std::string, std::string> unmapped;
  for (const auto& u : rec.unmapped) unmapped[u.source_path] = u.value;
  const std::string d = "/ClientIntegrationResponse/Response/Demographics";
  EXPECT_EQ(unmapped[d + "/Surname/@{http://www.w3.org/XML/1998/namespace}lang"], "en");
  EXPECT_EQ(unmapped[d + "/Surname/@verified"], "yes");
  EXPECT_EQ(unmapped["/ClientIntegrationResponse/Response/Identity/NHSNumber/@type"], "x");
  EXPECT_EQ(unmapped[d + "/FirstName/Preferred"], "Molly");
  // JSON has no attributes: an object where a value belongs is still a type error.
  std::string json = SpecExample("cis-record.json");
  const auto at = json.find("\"Surname\"");
  json.replace(at, json.find(',', at) - at, "\"Surname\": {\"First\": \"x\"}");
  auto bad = TheEngine().Read("cis", json);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(caregate::testing::HasError(bad.errors(), "/Surname", "expected a single value"))
      << FormatErrors(bad.errors());
}

// Found in review: the text around an unknown child element holds the document's
// indentation, which is not part of the value.
TEST(UnknownData, AValueBesideAnUnknownChildInAnIndentedDocumentReads) {
  std::string xml = SpecExample("systmone-record.xml");
  const auto plain = ReadOk("systmone", xml);
  const auto at = xml.find("<NHSNumber>");
  const auto end = xml.find("</NHSNumber>");
  xml.replace(at, end - at,
              "<NHSNumber>\n          <ext:Checked xmlns:ext=\"urn:x\">yes</ext:Checked>\n          " +
                  plain.person.nhs_number + "\n        ");
  auto rec = ReadOk("systmone", xml);
  EXPECT_EQ(rec.person.nhs_number, plain.person.nhs_number);
  bool kept = false;
  for (const auto& u : rec.unmapped) kept = kept || u.source_path.ends_with("/NHSNumber/{urn:x}Checked");
  EXPECT_TRUE(kept);
}

// A value element of ours given twice would have its first value replaced unseen: the
// record is refused, naming the second (as JSON's duplicate keys are).
TEST(UnknownData, AValueElementGivenTwiceIsRefused) {
  std::string xml = SpecExample("systmone-record.xml");
  xml.replace(xml.find("</NHSNumber>"), 12, "</NHSNumber><NHSNumber>9434765919</NHSNumber><NHSNumber>1</NHSNumber>");
  auto r = TheEngine().Read("systmone", xml);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(caregate::testing::HasError(r.errors(), "/ClientIntegrationResponse/Response/Identity/NHSNumber[2]",
                                          "appears more than once"))
      << FormatErrors(r.errors());
  EXPECT_EQ(r.errors().size(), 1u) << FormatErrors(r.errors());  // once per name, not per repeat
  // Also across a repeated container: a second <Response> holding another NHS number.
  std::string twice = SpecExample("systmone-record.xml");
  twice.replace(twice.find("</ClientIntegrationResponse>"), 28,
                "<Response><Identity><NHSNumber>9434765919</NHSNumber></Identity></Response></ClientIntegrationResponse>");
  auto r2 = TheEngine().Read("systmone", twice);
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(caregate::testing::HasError(r2.errors(), "/ClientIntegrationResponse/Response[2]/Identity/NHSNumber",
                                          "appears more than once"))
      << FormatErrors(r2.errors());
  // A repeated container whose contents do not clash merges, as it always did: an empty
  // second <Clinical/>, a second <Sharing> with what the first lacks.
  std::string merged = SpecExample("systmone-record.xml");
  merged.replace(merged.find("<RecordState>"), 13, "<Clinical/><RecordState>");
  ReadOk("systmone", merged);
  // Repeating elements (collections, narrative lines) are not affected: the spec example
  // has several, and reads.
  ReadOk("systmone", SpecExample("systmone-record.xml"));
}

// Unknown siblings are indexed in one pass: 200,000 of them used to take minutes (each
// one scanned all the others); the unmapped items stop at 1,000.
TEST(UnknownData, ManyUnknownSiblingsReadInLinearTime) {
  std::string xml = SpecExample("systmone-record.xml");
  std::string many;
  for (int i = 0; i < 200000; ++i) many += "<X>a</X>";
  xml.replace(xml.find("<RecordState>"), 13, many + "<RecordState>");
  const auto t0 = std::chrono::steady_clock::now();
  auto rec = ReadOk("systmone", xml);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 20.0) << "quadratic again? (linear: well under a second; quadratic: minutes)";
  EXPECT_EQ(rec.unmapped.size(), 1000u);
  EXPECT_EQ(rec.unmapped.front().source_path, "/ClientIntegrationResponse/Response/X[1]");
}

// Spec 3: parsers cap document size. A SystmOne file streams record by record, and each
// record is capped as one sent over HTTP is: one over the cap is refused by name, and the
// batch goes on (a 100 MB record used to be read whole, 441 MB of memory).
TEST(FileInput, ASystmOneRecordOverTheCapIsRefusedAndTheBatchGoesOn) {
  const std::string ok =
      "<ClientIntegrationResponse><Response><Identity><NHSNumber>9912003888</NHSNumber></Identity></Response>"
      "</ClientIntegrationResponse>";
  std::string big = ok;
  big.replace(big.find("</Response>"), 11, "<X>" + std::string(format::XmlLimits{}.max_bytes, 'a') + "</X></Response>");
  const auto path = std::filesystem::temp_directory_path() / ("caregate-big-" + std::to_string(::getpid()) + ".xml");
  {
    std::ofstream f(path, std::ios::binary);
    f << "<ClientIntegrationBatch>" << ok << big << ok << "</ClientIntegrationBatch>";
  }
  auto stream = TheEngine().adapter("systmone").OpenFile(path.string());
  ASSERT_TRUE(stream.ok());
  std::vector<std::string> seen;
  adapters::StreamRecord rec;
  while ((*stream)->Next(rec)) seen.push_back(rec.tree.ok() ? "ok" : FormatErrors(rec.tree.errors()));
  std::filesystem::remove(path);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], "ok");
  EXPECT_NE(seen[1].find("record larger than " + std::to_string(format::XmlLimits{}.max_bytes) + " bytes"),
            std::string::npos)
      << seen[1];
  EXPECT_EQ(seen[2], "ok");
}

// Spec 3: a record that is not well-formed is refused, and a rejected record changes
// nothing. A single SystmOne document followed by anything but white space or comments
// is not well-formed: the record is refused whole (it used to be yielded, then the fault
// reported as a second record, so translate printed it and ingest stored it).
TEST(FileInput, ASingleSystmOneDocumentWithTrailingContentIsRefusedWhole) {
  const std::string ok =
      "<ClientIntegrationResponse><Response><Identity><NHSNumber>9912003888</NHSNumber></Identity></Response>"
      "</ClientIntegrationResponse>";
  for (const std::string& tail : {std::string("\n<junk"), std::string("\n") + ok, std::string("</Extra>"),
                                  std::string("trailing text")}) {
    auto stream = TheEngine().adapter("systmone").OpenBuffer(ok + tail);
    ASSERT_TRUE(stream.ok());
    std::vector<std::string> seen;
    adapters::StreamRecord rec;
    while ((*stream)->Next(rec)) seen.push_back(rec.tree.ok() ? "ok" : FormatErrors(rec.tree.errors()));
    ASSERT_EQ(seen.size(), 1u) << tail;
    EXPECT_NE(seen[0].find("not well-formed"), std::string::npos) << tail << ": " << seen[0];
    EXPECT_FALSE((*stream)->batch());
  }
  // White space, comments and processing instructions after the root are well-formed.
  auto stream = TheEngine().adapter("systmone").OpenBuffer(ok + "\n<!-- end -->\n<?pi x?>\n");
  ASSERT_TRUE(stream.ok());
  adapters::StreamRecord rec;
  ASSERT_TRUE((*stream)->Next(rec));
  EXPECT_TRUE(rec.tree.ok()) << FormatErrors(rec.tree.errors());
  EXPECT_FALSE((*stream)->Next(rec));
}

// An event without Event_Type has no SystmOne element of its own: it travels in the
// CouncilEvent extension, as assessments do, instead of vanishing from the SystmOne file.
TEST(Episodes, AnEventWithoutATypeSurvivesTheTripThroughSystmOne) {
  const std::string json =
      R"({"Record_Type":"CIS_Client","NHS_Number":"9912003888","Events":[{"Event_Reference":"E1",)"
      R"("Event_Start_Date":"2024-01-01","Event_Outcome":"Progress to reablement/ST-Max"}]})";
  auto rec = ReadOk("cis", json);
  ASSERT_EQ(rec.episodes.size(), 1u);
  EXPECT_EQ(rec.episodes[0].kind, "");
  const std::string xml = Render(rec, "systmone");
  EXPECT_NE(xml.find("<EventUID>E1</EventUID>"), std::string::npos) << xml;
  auto back = ReadOk("systmone", xml);
  ASSERT_EQ(back.episodes.size(), 1u);
  EXPECT_EQ(back.episodes[0].reference, "E1");
  EXPECT_EQ(back.episodes[0].start_date, "2024-01-01");
  EXPECT_EQ(back.episodes[0].outcome, rec.episodes[0].outcome);
  EXPECT_EQ(back.episodes[0].kind, "");
}

// Text directly inside an element our tables give child elements or attributes (a
// <Drug> with its name as text, a <Narrative> without <Line>, a <Visit> holding only
// text) is unknown content: kept as unmapped data, never a reason to refuse the record
// (spec 1). It was refused with "expected child elements, found text".
TEST(UnknownData, TextWhereElementsAreExpectedIsKeptAsUnmapped) {
  const std::string xml = SpecExample("systmone-record.xml");
  struct Case {
    std::string from, to, path, value;
  };
  const std::string s1 = "/ClientIntegrationResponse/Response";
  for (const Case& c : std::vector<Case>{
           {"<Narrative>", "<Narrative>Direct text", s1 + "/Clinical/Event[1]/Narrative/#text", "Direct text"},
           {"</ClinicalCode>", "</ClinicalCode><Medication><Drug>Paracetamol 500mg</Drug></Medication>",
            s1 + "/Clinical/Event[1]/Medication[1]/Drug/#text", "Paracetamol 500mg"},
           {"<Sharing>", "<Sharing>shared ", s1 + "/Community/Sharing/#text", "shared"},
           {"</Community>", "<Visit>visited</Visit></Community>", s1 + "/Community/Visit[2]/#text", "visited"}}) {
    std::string doc = xml;
    const auto at = doc.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    doc.replace(at, c.from.size(), c.to);
    const auto rec = ReadOk("systmone", doc);
    const auto it = std::find_if(rec.unmapped.begin(), rec.unmapped.end(),
                                 [&](const auto& u) { return u.source_path == c.path; });
    std::string seen;
    for (const auto& u : rec.unmapped) seen += u.source_path + " ";
    ASSERT_NE(it, rec.unmapped.end()) << c.to << ": " << seen;
    EXPECT_EQ(it->value, c.value) << c.to;
    EXPECT_EQ(rec.person.nhs_number, "9912003888");
  }
  // White space alone in such an element (an indented empty one) is nothing.
  std::string doc = xml;
  doc.replace(doc.find("</ClinicalCode>"), 15, "</ClinicalCode><Medication><Drug>\n    \n  </Drug></Medication>");
  const auto rec = ReadOk("systmone", doc);
  for (const auto& u : rec.unmapped) EXPECT_EQ(u.source_path.find("/Drug"), std::string::npos) << u.source_path;
}

TEST(UnknownData, CisUnknownKeysAreKeptAsUnmapped) {
  std::string json = SpecExample("cis-record.json");
  json.insert(json.rfind('}'), ",\"Key_Safe\":{\"Code\":\"1234\"}");
  auto rec = ReadOk("cis", json);
  ASSERT_FALSE(rec.unmapped.empty());
  EXPECT_EQ(rec.unmapped.back().source_path, "/Key_Safe/Code");
  EXPECT_EQ(rec.unmapped.back().value, "1234");
}

namespace {
// Every value of the canonical record, by canonical path, minus lineage-only noise.
std::map<std::string, std::string> Values(const model::CareRecord& r) {
  std::map<std::string, std::string> out;
  std::function<void(void*, model::Entity, const std::string&)> walk = [&](void* e, model::Entity t, const std::string& prefix) {
    for (const auto* f : model::FieldsOf(t))
      if (!f->get(e).empty()) out[prefix + std::string(t == model::Entity::kRecord ? f->name : f->local)] = f->get(e);
    for (const auto* c : model::CollectionsOf(t))
      for (size_t i = 0; i < c->size(e); ++i)
        walk(c->at(e, i), c->item, prefix + std::string(c->local) + "[" + std::to_string(i) + "].");
  };
  walk(const_cast<model::CareRecord*>(&r), model::Entity::kRecord, "");
  return out;
}
}  // namespace

TEST(RoundTrip, SystmOneToCisToSystmOneKeepsEveryFieldCisCarries) {
  auto original = ReadOk("systmone", SpecExample("systmone-record.xml"));
  auto cis = Render(original, "cis");
  auto via = ReadOk("cis", cis);
  auto back = ReadOk("systmone", Render(via, "systmone"));
  // Fields CIS has no rule for are reported as not carried; everything else survives.
  mapping::WriteReport report;
  Render(original, "cis", &report);
  auto before = Values(original), after = Values(back);
  for (const auto& [path, value] : before) {
    bool not_carried = false;
    for (const auto& nc : report.not_carried)
      if (path.rfind(nc, 0) == 0) not_carried = true;
    if (not_carried) continue;
    EXPECT_EQ(after[path], value) << path;
  }
  EXPECT_FALSE(report.not_carried.empty());  // e.g. clinical codes stay in the health record
  EXPECT_EQ(back.person.address.house_number, "22");
  EXPECT_EQ(back.person.address.road, "Mill Lane");
  EXPECT_EQ(back.person.address.locality, "Armley");
}

TEST(RoundTrip, CisToSystmOneToCisIsExactForTheSpecExample) {
  auto original = ReadOk("cis", SpecExample("cis-record.json"));
  auto s1 = Render(original, "systmone");
  auto back = ReadOk("systmone", s1);
  auto cis_again = Render(back, "cis");
  auto reread = ReadOk("cis", cis_again);
  auto before = Values(original), after = Values(reread);
  mapping::WriteReport report;
  Render(original, "systmone", &report);
  EXPECT_TRUE(report.not_carried.empty()) << report.not_carried.front();
  EXPECT_EQ(before, after);
}

TEST(RoundTrip, SyntheticRecordsSurviveBothWays) {
  for (const char* format : {"cis", "systmone"}) {
    synth::Generator gen(42, format);
    std::string other = std::string(format) == "cis" ? "systmone" : "cis";
    for (std::uint64_t i = 0; i < 200; ++i) {
      auto rec = gen.Make(i);
      auto first = ReadOk(format, Render(rec, format));
      auto there = ReadOk(other, Render(first, other));
      auto back = ReadOk(format, Render(there, format));
      mapping::WriteReport report;
      Render(first, other, &report);
      std::set<std::string> lossy;
      for (const auto& l : report.lossy) lossy.insert(l.field);
      auto before = Values(first), after = Values(back);
      // Spec 4.3 cannot round-trip an address with no numbered line and fewer than three
      // lines through CIS ("Ty Gwyn", "Harehills" reads back as house name and road):
      // documented in docs/decisions.md; those address parts are compared as lines only.
      const auto& a = first.person.address;
      bool ambiguous_address = format == std::string("systmone") && a.house_number.empty() &&
                               (a.house_name.empty() + a.road.empty() + a.locality.empty()) > 0;
      for (const auto& [path, value] : before) {
        bool skip = lossy.count(path) > 0 ||
                    (ambiguous_address && path.rfind("person.address.", 0) == 0 && path.find("line_") == std::string::npos &&
                     path != "person.address.town" && path != "person.address.county" && path != "person.address.postcode");
        for (const auto& nc : report.not_carried)
          if (path.rfind(nc, 0) == 0) skip = true;
        if (!skip) {
          EXPECT_EQ(after[path], value) << format << " record " << i << " " << path;
        }
      }
    }
  }
}

TEST(Synth, IsDeterministic) {
  synth::Generator a(7, "cis"), b(7, "cis"), c(8, "cis");
  EXPECT_EQ(Render(a.Make(5), "cis"), Render(b.Make(5), "cis"));
  EXPECT_NE(Render(a.Make(5), "cis"), Render(c.Make(5), "cis"));
}

TEST(CanonicalJson, RoundTripsThroughItsOwnForm) {
  auto rec = ReadOk("systmone", SpecExample("systmone-record.xml"));
  auto json = model::ToCanonicalJson(rec);
  auto back = model::FromCanonicalJson(json);
  ASSERT_TRUE(back.ok()) << FormatErrors(back.errors());
  EXPECT_EQ(model::ToCanonicalJson(back.value()), json);
}

TEST(UnknownData, RepeatedUnknownElementsAreIndexed) {
  std::string xml = SpecExample("systmone-record.xml");
  xml.replace(xml.find("<RecordState>"), 13,
              "<Appointments><Appointment><When>2024-11-25</When></Appointment>"
              "<Appointment><When>2024-12-02</When></Appointment></Appointments><RecordState>");
  auto rec = ReadOk("systmone", xml);
  std::set<std::string> paths;
  for (const auto& u : rec.unmapped) paths.insert(u.source_path);
  EXPECT_TRUE(paths.count("/ClientIntegrationResponse/Response/Appointments/Appointment[1]/When"));
  EXPECT_TRUE(paths.count("/ClientIntegrationResponse/Response/Appointments/Appointment[2]/When"));
}
