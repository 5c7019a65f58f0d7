#pragma once
// The application the request and session fuzz targets talk to: caregate::app::App over
// a private database under $TMPDIR holding three council records (an ordinary one, a
// sensitive one and one whose Consent_To_Share is No) and two SystmOne ones (sensitive,
// and withheld by consent), one token per role
// (tok-health, tok-council, tok-ig, tok-service), made once per process.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
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

// `s` with each (from, to) pair replaced once, in order; every `from` must be there.
using Edits = std::initializer_list<std::pair<std::string_view, std::string_view>>;
inline std::string Edited(std::string s, Edits edits) {
  for (const auto& [from, to] : edits) {
    std::size_t p = s.find(from);
    Check(p != std::string::npos, "fixture text not found", std::string(from));
    s.replace(p, from.size(), to);
  }
  return s;
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
    const std::string sensitive = Edited(plain, {{"\"LCC-0048213\"", "\"LCC-0048214\""},
                                                 {"\"9912003888\"", "null"},
                                                 {"\"700412\"", "null"},
                                                 {"\"22 Mill Lane\"", "\"77 Secret Row\""},
                                                 {"\"LS12 2AB\"", "\"LS7 7SR\""},
                                                 {"\"0113 496 0000\"", "\"0113 496 7777\""},
                                                 {"\"07700 900123\"", "\"07700 907777\""},
                                                 {"\"Sensitive_Record\": false", "\"Sensitive_Record\": true"}});
    const std::string withheld = Edited(plain, {{"\"LCC-0048213\"", "\"LCC-0048215\""},
                                                {"\"9912003888\"", "null"},
                                                {"\"700412\"", "null"},
                                                {"\"Smith\"", "\"Withheldson\""},
                                                {"\"22 Mill Lane\"", "\"5 Hidden Close\""},
                                                {"\"Consent_To_Share\": \"Yes\"", "\"Consent_To_Share\": \"No\""}});
    // SystmOne's own: a sensitive record and one withheld by consent, neither with an NHS
    // number or a council id, so that nothing links them to the council's.
    std::ifstream s1in(std::string(CAREGATE_SAMPLES_FOR_FUZZ) + "/systmone/single-record.xml", std::ios::binary);
    std::stringstream s1ss;
    s1ss << s1in.rdbuf();
    const std::string s1 = Edited(s1ss.str(), {{"<NHSNumber>9912003888</NHSNumber>", ""},
                                               {"<LocalAuthorityIdentifier>LCC-0048213</LocalAuthorityIdentifier>", ""}});
    const std::string s1_sensitive =
        Edited(s1, {{">700412<", ">700499<"},
                    {"<Surname>Smith</Surname>", "<Surname>Hiddenby</Surname>"},
                    {"<Road>Mill Lane</Road>", "<Road>Hidden Mews</Road>"},
                    {"<Postcode>LS12 2AB</Postcode>", "<Postcode>LS9 9HM</Postcode>"},
                    {">0113 496 0000<", ">0113 496 9999<"},
                    {">07700 900123<", ">07700 909999<"},
                    {"<SensitiveRecord>false</SensitiveRecord>", "<SensitiveRecord>true</SensitiveRecord>"}});
    const std::string s1_withheld =
        Edited(s1, {{">700412<", ">700498<"},
                    {"<Surname>Smith</Surname>", "<Surname>Consentless</Surname>"},
                    {"<Road>Mill Lane</Road>", "<Road>Quiet Close</Road>"},
                    {"<ConsentToShare>Yes</ConsentToShare>", "<ConsentToShare>No</ConsentToShare>"}});

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
