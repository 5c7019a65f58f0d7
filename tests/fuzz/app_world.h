#pragma once
// The application the request and session fuzz targets talk to: caregate::app::App over
// a private database under $TMPDIR holding three council records (an ordinary one, a
// sensitive one and one whose Consent_To_Share is No), one token per role
// (tok-health, tok-council, tok-ig, tok-service), made once per process.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "caregate/app/app.h"
#include "caregate/core/hash.h"
#include "fuzz_util.h"

namespace caregate::fuzz {

namespace server = caregate::server;

// What only the council may see: the sensitive record's address and phones, and the
// withheld record's name and address. No seed holds these strings.
inline constexpr std::string_view kMarkers[] = {"77 Secret Row", "0113 496 7777", "07700 907777", "LS7 7SR",
                                         "Withheldson", "5 Hidden Close"};

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
    for (const std::string* body : {&plain, static_cast<const std::string*>(&sensitive), static_cast<const std::string*>(&withheld)}) {
      server::Request r;
      r.method = "POST";
      r.target = "/v1/ingest/cis";
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
