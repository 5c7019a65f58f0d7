#pragma once
// An App over a temp database with one token per role, called in-process.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include "../identity/records.h"
#include "caregate/app/app.h"
#include "caregate/core/hash.h"

namespace caregate::app::testing {

using caregate::testing::CisJson;
using caregate::testing::PersonFields;
using caregate::testing::S1Xml;
using caregate::testing::SpecExample;
using caregate::testing::TempDir;

inline const char* kHealth = "tok-health";
inline const char* kCouncil = "tok-council";
inline const char* kIg = "tok-ig";
inline const char* kService = "tok-service";

inline server::TokenStore TestTokens() {
  server::TokenStore t;
  t.Add(Sha256Hex(kHealth), server::Role::kHealth, "amy.jones");
  t.Add(Sha256Hex(kCouncil), server::Role::kCouncil, "kamran.ahmed");
  t.Add(Sha256Hex(kIg), server::Role::kIg, "ig.officer1");
  t.Add(Sha256Hex(kService), server::Role::kService, "nightly-export");
  return t;
}

class AppTest : public ::testing::Test {
 protected:
  AppTest()
      : app_(std::make_unique<App>(caregate::testing::TestEngine(), dir_.file("caregate.db"))),
        handler_(app_->MakeHandler(TestTokens())) {}

  server::Response Call(std::string method, std::string target, const char* token, std::string body = {}) {
    server::Request r;
    r.method = std::move(method);
    r.target = std::move(target);
    if (token != nullptr) r.headers.Add("Authorization", std::string("Bearer ") + token);
    r.body = std::move(body);
    return handler_->Handle(r);
  }
  server::Response IngestCis(const std::string& json) { return Call("POST", "/v1/ingest/cis", kService, json); }
  server::Response IngestS1(const std::string& xml) { return Call("POST", "/v1/ingest/systmone", kService, xml); }

  std::vector<audit::AuditEvent> Events() { return app_->audit().Query({}); }
  audit::AuditEvent LastEvent() {
    auto e = Events();
    EXPECT_FALSE(e.empty());
    return e.empty() ? audit::AuditEvent{} : e.back();
  }

  static rapidjson::Document Json(const std::string& body) {
    // Padding: RapidJSON's SSE2 scanner reads aligned 16-byte blocks past the end.
    std::string padded = body;
    padded.append(16, '\0');
    rapidjson::Document d;
    d.Parse(padded.c_str());
    EXPECT_FALSE(d.HasParseError()) << body;
    return d;
  }

  TempDir dir_;
  std::unique_ptr<App> app_;
  std::shared_ptr<server::RequestHandler> handler_;
};

}  // namespace caregate::app::testing
