// Spec section 3: what makes a record invalid. Every error names the field (XPath or
// JSON Pointer) and the problem, and every error of a record is reported.
#include <gtest/gtest.h>

#include "test_support.h"

using namespace caregate;
using caregate::testing::Dump;
using caregate::testing::HasError;
using caregate::testing::SpecExample;
using caregate::testing::TheEngine;

namespace {
std::string Cis(const std::string& from, const std::string& to) {
  std::string json = SpecExample("cis-record.json");
  auto pos = json.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) json.replace(pos, from.size(), to);
  return json;
}
std::string S1(const std::string& from, const std::string& to) {
  std::string xml = SpecExample("systmone-record.xml");
  auto pos = xml.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) xml.replace(pos, from.size(), to);
  return xml;
}
FieldErrors Errors(std::string_view system, const std::string& bytes) {
  auto r = TheEngine().Read(system, bytes);
  EXPECT_FALSE(r.ok()) << "record was accepted";
  return r.ok() ? FieldErrors{} : r.errors();
}
const char* kS1 = "/ClientIntegrationResponse/Response";
}  // namespace

TEST(InvalidCis, NotWellFormed) {
  auto e = Errors("cis", "{\"Record_Type\": \"CIS_Client\", ");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].problem.find("JSON"), std::string::npos) << Dump(e);
}

TEST(InvalidCis, IdentifiesNobody) {
  std::string json = "{\"Record_Type\":\"CIS_Client\",\"Surname\":\"Smith\",\"NHS_Number\":null}";
  auto e = Errors("cis", json);
  EXPECT_TRUE(HasError(e, "", "identifies nobody")) << Dump(e);
}

TEST(InvalidCis, NhsNumberFailsModulus11) {
  auto e = Errors("cis", Cis("\"9912003888\"", "\"9912003880\""));
  EXPECT_TRUE(HasError(e, "/NHS_Number", "Modulus 11")) << Dump(e);
}

TEST(InvalidCis, NhsNumberNotTenDigits) {
  auto e = Errors("cis", Cis("\"9912003888\"", "\"991200388\""));
  EXPECT_TRUE(HasError(e, "/NHS_Number", "10 digits")) << Dump(e);
}

TEST(InvalidCis, DateNotOnTheCalendar) {
  auto e = Errors("cis", Cis("1941-03-14", "1941-02-29"));
  EXPECT_TRUE(HasError(e, "/Date_of_Birth", "calendar date")) << Dump(e);
}

TEST(InvalidCis, DeathBeforeBirth) {
  auto e = Errors("cis", Cis("\"Date_of_Death\": null", "\"Date_of_Death\": \"1930-01-01\""));
  EXPECT_TRUE(HasError(e, "/Date_of_Death", "precedes date of birth")) << Dump(e);
}

TEST(InvalidCis, CodedFieldOutsideItsList) {
  auto e = Errors("cis", Cis("\"Gender\": \"1\"", "\"Gender\": \"M\""));
  EXPECT_TRUE(HasError(e, "/Gender", "not in code list gender")) << Dump(e);
  auto e2 = Errors("cis", Cis("\"Consent_To_Share\": \"Yes\"", "\"Consent_To_Share\": \"Maybe\""));
  EXPECT_TRUE(HasError(e2, "/Consent_To_Share", "not in code list consent")) << Dump(e2);
  auto e3 = Errors("cis", Cis("\"Event_Type\": \"Review\"", "\"Event_Type\": \"Visit\""));
  EXPECT_TRUE(HasError(e3, "/Events/3/Event_Type", "not in code list episode_kind")) << Dump(e3);
}

TEST(InvalidCis, TextNotValidUtf8) {
  auto e = Errors("cis", Cis("Richard", "Rich\xC3\x28rd"));
  ASSERT_FALSE(e.empty());
  EXPECT_NE(Dump(e).find("UTF-8"), std::string::npos) << Dump(e);
}

TEST(InvalidCis, WrongRecordType) {
  auto e = Errors("cis", Cis("\"CIS_Client\"", "\"CIS_Provider\""));
  EXPECT_TRUE(HasError(e, "/Record_Type", "must be 'CIS_Client'")) << Dump(e);
  auto e2 = Errors("cis", Cis("\"Record_Type\": \"CIS_Client\",", ""));
  EXPECT_TRUE(HasError(e2, "/Record_Type", "required")) << Dump(e2);
}

TEST(InvalidCis, WrongJsonTypes) {
  auto e = Errors("cis", Cis("\"Sensitive_Record\": false", "\"Sensitive_Record\": \"no\""));
  EXPECT_TRUE(HasError(e, "/Sensitive_Record", "true or false")) << Dump(e);
  auto e2 = Errors("cis", Cis("\"Planned_Units_Per_Week\": 7", "\"Planned_Units_Per_Week\": \"seven\""));
  EXPECT_TRUE(HasError(e2, "/Events/2/Planned_Units_Per_Week", "number")) << Dump(e2);
  auto e3 = Errors("cis", Cis("\"Events\": [", "\"Events\": {\"x\": 1}, \"Ignored\": ["));
  EXPECT_TRUE(HasError(e3, "/Events", "expected an array")) << Dump(e3);
}

TEST(InvalidCis, EveryErrorIsReported) {
  std::string json = Cis("\"9912003888\"", "\"9912003880\"");
  json.replace(json.find("1941-03-14"), 10, "1941-13-14");
  json.replace(json.find("\"Gender\": \"1\""), 13, "\"Gender\": \"Q\"");
  auto e = Errors("cis", json);
  EXPECT_TRUE(HasError(e, "/NHS_Number", "Modulus 11")) << Dump(e);
  EXPECT_TRUE(HasError(e, "/Date_of_Birth", "calendar date")) << Dump(e);
  EXPECT_TRUE(HasError(e, "/Gender", "not in code list")) << Dump(e);
  EXPECT_EQ(e.size(), 3u) << Dump(e);
}

TEST(InvalidSystmOne, NotWellFormed) {
  auto e = Errors("systmone", "<ClientIntegrationResponse><Response></ClientIntegrationResponse>");
  ASSERT_FALSE(e.empty());
}

TEST(InvalidSystmOne, NhsNumberFailsModulus11) {
  auto e = Errors("systmone", S1("<NHSNumber>9912003888</NHSNumber>", "<NHSNumber>9912003881</NHSNumber>"));
  EXPECT_TRUE(HasError(e, std::string(kS1) + "/Identity/NHSNumber", "Modulus 11")) << Dump(e);
}

TEST(InvalidSystmOne, EmptyNhsNumberIsAllowedWhenAnotherIdExists) {
  auto r = TheEngine().Read("systmone", S1("<NHSNumber>9912003888</NHSNumber>", "<NHSNumber></NHSNumber>"));
  ASSERT_TRUE(r.ok()) << Dump(r.errors());
  EXPECT_EQ(r->person.nhs_number, "");
}

TEST(InvalidSystmOne, IdentifiesNobody) {
  std::string xml = S1("<NHSNumber>9912003888</NHSNumber>", "<NHSNumber/>");
  xml.replace(xml.find("<StrategicReportingIdentifier>700412</StrategicReportingIdentifier>"),
              std::string("<StrategicReportingIdentifier>700412</StrategicReportingIdentifier>").size(), "");
  xml.replace(xml.find("<LocalAuthorityIdentifier>LCC-0048213</LocalAuthorityIdentifier>"),
              std::string("<LocalAuthorityIdentifier>LCC-0048213</LocalAuthorityIdentifier>").size(), "");
  auto e = Errors("systmone", xml);
  EXPECT_TRUE(HasError(e, std::string(kS1) + "/Identity", "identifies nobody")) << Dump(e);
}

TEST(InvalidSystmOne, DatesAndCodes) {
  std::string xml = S1("<DateOfBirth>1941-03-14</DateOfBirth>", "<DateOfBirth>1941-03-14</DateOfBirth><DateOfDeath>1941-03-13</DateOfDeath>");
  auto e = Errors("systmone", xml);
  EXPECT_TRUE(HasError(e, std::string(kS1) + "/Demographics/DateOfDeath", "precedes date of birth")) << Dump(e);
  auto e2 = Errors("systmone", S1("<Sex>M</Sex>", "<Sex>X</Sex>"));
  EXPECT_TRUE(HasError(e2, std::string(kS1) + "/Demographics/Sex", "not in code list gender")) << Dump(e2);
  auto e3 = Errors("systmone", S1("<Status>Completed</Status>", "<Status>Done</Status>"));
  EXPECT_TRUE(HasError(e3, std::string(kS1) + "/Community/Visit[1]/Status", "visit_status")) << Dump(e3);
  auto e4 = Errors("systmone", S1("<SetDate>2024-06-28</SetDate>", "<SetDate>2024-06-31</SetDate>"));
  EXPECT_TRUE(HasError(e4, std::string(kS1) + "/Community/CarePlan[1]/Goal[1]/SetDate", "calendar")) << Dump(e4);
  auto e5 = Errors("systmone", S1("Scheme=\"CTV3\"", "Scheme=\"ICD10\""));
  EXPECT_TRUE(HasError(e5, std::string(kS1) + "/Clinical/Event[1]/ClinicalCode/Code[1]/@Scheme", "clinical_scheme")) << Dump(e5);
}

TEST(InvalidSystmOne, WrongRootElement) {
  auto e = Errors("systmone", "<Patient><Response/></Patient>");
  EXPECT_TRUE(HasError(e, "/Patient", "ClientIntegrationResponse")) << Dump(e);
}

TEST(InvalidSystmOne, SensitiveRecordMustBeBoolean) {
  auto e = Errors("systmone", S1("<SensitiveRecord>false</SensitiveRecord>", "<SensitiveRecord>no</SensitiveRecord>"));
  EXPECT_TRUE(HasError(e, std::string(kS1) + "/Community/Sharing/SensitiveRecord", "true or false")) << Dump(e);
}

TEST(InvalidCis, CaseNoteTimeWithoutOffset) {
  auto e = Errors("cis", Cis("2024-07-02T11:05:00+01:00", "2024-07-02T11:05:00"));
  EXPECT_TRUE(HasError(e, "/Case_Notes/0/Date_Time", "no offset")) << Dump(e);
}

TEST(InvalidCis, NegativeUnitCost) {
  auto e = Errors("cis", Cis("\"Unit_Cost\": 24.5", "\"Unit_Cost\": -24.5"));
  EXPECT_TRUE(HasError(e, "/Events/2/Unit_Cost", "negative")) << Dump(e);
}

// A case note time that is a real date-time, but falls in year 10000 (or 0000) once in UK
// time, where SystmOne holds it: refused when read, rather than written as a date-time
// nobody can read back.
TEST(InvalidCis, CaseNoteTimeOutsideTheYearsOnceInUkTime) {
  auto e = Errors("cis", Cis("2024-07-02T11:05:00+01:00", "9999-12-31T23:59:59-01:00"));
  EXPECT_TRUE(HasError(e, "/Case_Notes/0/Date_Time", "outside 0001-01-01 to 9999-12-31 in UK time")) << Dump(e);
  e = Errors("cis", Cis("2024-07-02T11:05:00+01:00", "0001-01-01T00:00:00+01:00"));
  EXPECT_TRUE(HasError(e, "/Case_Notes/0/Date_Time", "in UK time")) << Dump(e);
}
