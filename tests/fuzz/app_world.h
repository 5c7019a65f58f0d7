#pragma once
// The application the request and session fuzz targets talk to: caregate::app::App over
// a private database under $TMPDIR holding three council records (an ordinary one, a
// sensitive one and one whose Consent_To_Share is No) and two SystmOne ones (sensitive,
// and withheld by consent), one token per role
// (tok-health, tok-council, tok-ig, tok-service), made once per process.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <sstream>
#include <string>
#include <string_view>

#include "caregate/app/app.h"
#include "caregate/core/hash.h"
#include "fuzz_util.h"

namespace caregate::fuzz {

namespace server = caregate::server;

// What only the council may see: its sensitive record's address and phones, and its
// withheld record's name and address. No seed holds these strings.
inline constexpr std::string_view kMarkers[] = {"77 Secret Row", "0113 496 7777", "07700 907777", "LS7 7SR",
                                                "Withheldson", "5 Hidden Close"};
// What only health may see: the same of its own (SystmOne) sensitive and withheld records.
inline constexpr std::string_view kHealthMarkers[] = {"Hidden Mews", "LS9 9HM", "0113 496 9999", "07700 909999",
                                                      "Consentless", "Quiet Close"};

inline std::string Replace(std::string s, std::string_view from, std::string_view to) {
  std::size_t p = s.find(from);
  Check(p != std::string::npos, "fixture text not found", std::string(from));
  return s.replace(p, from.size(), to);
}

struct World {
  std::filesystem::path dir;
  std::unique_ptr<caregate::app::App> app;
  std::shared_ptr<server::RequestHandler> handler;

  World() {
    // A private directory under $TMPDIR (tmpfs makes the audit's fsyncs cheap).
    std::string tmpl = (std::filesystem::temp_directory_path() / "caregate-request-fuzz-XXXXXX").string();
    Check(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed", tmpl);
    dir = tmpl;
    app = std::make_unique<caregate::app::App>(caregate::engine::Engine::Load(CAREGATE_MAPPINGS_FOR_FUZZ),
                                               (dir / "caregate.db").string());
    server::TokenStore tokens;
    tokens.Add(caregate::Sha256Hex("tok-health"), server::Role::kHealth, "amy.jones");
    tokens.Add(caregate::Sha256Hex("tok-council"), server::Role::kCouncil, "kamran.ahmed");
    tokens.Add(caregate::Sha256Hex("tok-ig"), server::Role::kIg, "ig.officer1");
    tokens.Add(caregate::Sha256Hex("tok-service"), server::Role::kService, "nightly-export");
    handler = app->MakeHandler(std::move(tokens));

    std::ifstream in(std::string(CAREGATE_SAMPLES_FOR_FUZZ) + "/cis/single-record.json", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string plain = ss.str();
    Check(!plain.empty(), "cannot read samples/cis/single-record.json");
    std::string sensitive = Replace(plain, "\"LCC-0048213\"", "\"LCC-0048214\"");
    sensitive = Replace(sensitive, "\"9912003888\"", "null");
    sensitive = Replace(sensitive, "\"700412\"", "null");
    sensitive = Replace(sensitive, "\"22 Mill Lane\"", "\"77 Secret Row\"");
    sensitive = Replace(sensitive, "\"LS12 2AB\"", "\"LS7 7SR\"");
    sensitive = Replace(sensitive, "\"0113 496 0000\"", "\"0113 496 7777\"");
    sensitive = Replace(sensitive, "\"07700 900123\"", "\"07700 907777\"");
    sensitive = Replace(sensitive, "\"Sensitive_Record\": false", "\"Sensitive_Record\": true");
    std::string withheld = Replace(plain, "\"LCC-0048213\"", "\"LCC-0048215\"");
    withheld = Replace(withheld, "\"9912003888\"", "null");
    withheld = Replace(withheld, "\"700412\"", "null");
    withheld = Replace(withheld, "\"Smith\"", "\"Withheldson\"");
    withheld = Replace(withheld, "\"22 Mill Lane\"", "\"5 Hidden Close\"");
    withheld = Replace(withheld, "\"Consent_To_Share\": \"Yes\"", "\"Consent_To_Share\": \"No\"");
    // SystmOne's own: a sensitive record and one withheld by consent, neither with an NHS
    // number or a council id, so that nothing links them to the council's.
    std::ifstream s1in(std::string(CAREGATE_SAMPLES_FOR_FUZZ) + "/systmone/single-record.xml", std::ios::binary);
    std::stringstream s1ss;
    s1ss << s1in.rdbuf();
    std::string s1 = Replace(s1ss.str(), "<NHSNumber>9912003888</NHSNumber>", "");
    s1 = Replace(s1, "<LocalAuthorityIdentifier>LCC-0048213</LocalAuthorityIdentifier>", "");
    std::string s1_sensitive = Replace(s1, ">700412<", ">700499<");
    s1_sensitive = Replace(s1_sensitive, "<Surname>Smith</Surname>", "<Surname>Hiddenby</Surname>");
    s1_sensitive = Replace(s1_sensitive, "<Road>Mill Lane</Road>", "<Road>Hidden Mews</Road>");
    s1_sensitive = Replace(s1_sensitive, "<Postcode>LS12 2AB</Postcode>", "<Postcode>LS9 9HM</Postcode>");
    s1_sensitive = Replace(s1_sensitive, ">0113 496 0000<", ">0113 496 9999<");
    s1_sensitive = Replace(s1_sensitive, ">07700 900123<", ">07700 909999<");
    s1_sensitive = Replace(s1_sensitive, "<SensitiveRecord>false</SensitiveRecord>", "<SensitiveRecord>true</SensitiveRecord>");
    std::string s1_withheld = Replace(s1, ">700412<", ">700498<");
    s1_withheld = Replace(s1_withheld, "<Surname>Smith</Surname>", "<Surname>Consentless</Surname>");
    s1_withheld = Replace(s1_withheld, "<Road>Mill Lane</Road>", "<Road>Quiet Close</Road>");
    s1_withheld = Replace(s1_withheld, "<ConsentToShare>Yes</ConsentToShare>", "<ConsentToShare>No</ConsentToShare>");

    const std::pair<const char*, const std::string*> fixtures[] = {
        {"/v1/ingest/cis", &plain},           {"/v1/ingest/cis", &sensitive},
        {"/v1/ingest/cis", &withheld},        {"/v1/ingest/systmone", &s1_sensitive},
        {"/v1/ingest/systmone", &s1_withheld}};
    for (const auto& [target, body] : fixtures) {
      server::Request r;
      r.method = "POST";
      r.target = target;
      r.headers.Add("Authorization", "Bearer tok-service");
      r.body = *body;
      server::Response res = handler->Handle(r);
      Check(res.status == 201 || res.status == 200, "fixture not stored", res.body);
    }
  }
  ~World() {
    handler.reset();
    app.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

inline World& TheWorld() {
  static World w;
  return w;
}

}  // namespace caregate::fuzz
