#pragma once
// Small record builders for the identity and application tests: minimal valid CIS and
// SystmOne records with just the fields a test is about.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "caregate/engine/engine.h"
#include "support/temp_dir.h"

namespace caregate::testing {

inline std::shared_ptr<const engine::Engine> TestEngine() {
  static auto engine = engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  return engine;
}


inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string SpecExample(const std::string& name) {
  return ReadFile(std::string(CAREGATE_SPEC_DIR) + "/examples/" + name);
}

struct PersonFields {
  std::string nhs{}, s1{}, cis{};
  std::string surname = "O'Brien", given = "Mary", dob = "1950-02-03", gender = "F", postcode = "LS12 2AB";
  std::string consent = "Yes", sensitive = "false";
  std::string ethnicity{};  // S1 letter or CIS label
  std::string phone = "0113 496 0001";
  std::string line1 = "22 Mill Lane";
};

inline std::string CisJson(const PersonFields& p) {
  auto opt = [](const char* k, const std::string& v) {
    return v.empty() ? std::string() : ",\"" + std::string(k) + "\":\"" + v + "\"";
  };
  const std::string gender = p.gender == "M" ? "1" : p.gender == "F" ? "2" : p.gender == "I" ? "9" : "X";
  const std::string consent = p.consent == "NotAsked" ? "Not asked" : p.consent;
  return "{\"Record_Type\":\"CIS_Client\"" + opt("LA_Person_Unique_Identifier", p.cis) + opt("NHS_Number", p.nhs) +
         opt("SystmOne_Identifier", p.s1) + opt("First_Name", p.given) + opt("Surname", p.surname) +
         opt("Date_of_Birth", p.dob) + ",\"Gender\":\"" + gender + "\"" + opt("Ethnicity", p.ethnicity) +
         ",\"Address\":{\"Line_1\":\"" + p.line1 + "\",\"Town\":\"Leeds\",\"Postcode\":\"" + p.postcode + "\"}" +
         opt("Phone_Home", p.phone) + opt("Consent_To_Share", consent) +
         ",\"Sensitive_Record\":" + p.sensitive + "}";
}

inline std::string S1Xml(const PersonFields& p) {
  auto el = [](const char* k, const std::string& v) {
    return v.empty() ? std::string() : "<" + std::string(k) + ">" + v + "</" + k + ">";
  };
  return "<ClientIntegrationResponse><Response><Identity>" + el("NHSNumber", p.nhs) +
         el("StrategicReportingIdentifier", p.s1) + el("LocalAuthorityIdentifier", p.cis) +
         "</Identity><Demographics>" + el("FirstName", p.given) + el("Surname", p.surname) +
         el("DateOfBirth", p.dob) + el("Sex", p.gender) + el("Ethnicity", p.ethnicity) +
         "<Address><HouseNumber>22</HouseNumber><Road>Mill Lane</Road><Town>Leeds</Town>" + el("Postcode", p.postcode) +
         "</Address>" + el("HomeTelephone", p.phone) + "</Demographics><Community><Sharing>" +
         el("ConsentToShare", p.consent) + el("SensitiveRecord", p.sensitive) +
         "</Sharing></Community></Response></ClientIntegrationResponse>";
}

inline model::CareRecord ReadOrDie(std::string_view system, const std::string& bytes) {
  auto r = TestEngine()->Read(system, bytes, true);
  if (!r) ADD_FAILURE() << system << " record invalid: " << FormatErrors(r.errors()) << "\n" << bytes;
  return r ? r.value() : model::CareRecord{};
}

}  // namespace caregate::testing
