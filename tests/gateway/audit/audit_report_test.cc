#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "audit_test_support.h"
#include "caregate/audit/report.h"
#include "caregate/core/text.h"

namespace caregate::audit {
namespace {

using testing::MakeEvent;

// RapidJSON's SSE2 scanner (RAPIDJSON_SSE2, set for the whole project) loads 16 aligned
// bytes at a time and may read past the end of the text; parse from a padded copy so
// AddressSanitizer sees no overflow.
bool Parse(rapidjson::Document& d, const std::string& json) {
  std::vector<char> padded(json.begin(), json.end());
  padded.resize(json.size() + 32, '\0');
  return !d.Parse(padded.data()).HasParseError();
}

std::vector<AuditEvent> Sample() {
  std::vector<AuditEvent> events = {
      MakeEvent("alice", {"nhs:9912003888"}, "200", "2024-05-01T10:00:00.000Z"),
      MakeEvent("bob", {"nhs:9912003888", "cis:77"}, "403 consent-withheld", "2024-05-02T09:30:00.000Z"),
      MakeEvent("alice", {"nhs:9912003888"}, "200", "2024-05-03T08:00:00.000Z"),
  };
  events[1].role = "council";
  events[1].organisation = "Leeds City Council";
  events[1].action = "refused";
  events[1].view = "cis";
  events[1].detail = "Consent_To_Share is No";
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].seq = static_cast<std::int64_t>(i + 1);
    events[i].hash = std::string(64, static_cast<char>('a' + i));
  }
  return events;
}

TEST(AuditReport, JsonListsEventsWithASummaryByUserAndOutcome) {
  const std::string json = RenderAuditReportJson(Sample(), "nhs:9912003888");
  rapidjson::Document d;
  ASSERT_TRUE(Parse(d, json)) << json;
  EXPECT_STREQ(d["person"].GetString(), "nhs:9912003888");
  EXPECT_EQ(d["count"].GetInt(), 3);
  EXPECT_STREQ(d["first"].GetString(), "2024-05-01T10:00:00.000Z");
  EXPECT_STREQ(d["last"].GetString(), "2024-05-03T08:00:00.000Z");

  const auto& by_user = d["summary"]["by_user"];
  ASSERT_EQ(by_user.Size(), 2u);
  EXPECT_STREQ(by_user[0]["user"].GetString(), "alice");
  EXPECT_EQ(by_user[0]["count"].GetInt(), 2);
  EXPECT_EQ(by_user[0]["refused"].GetInt(), 0);
  EXPECT_STREQ(by_user[1]["user"].GetString(), "bob");
  EXPECT_STREQ(by_user[1]["organisation"].GetString(), "Leeds City Council");
  EXPECT_STREQ(by_user[1]["roles"][0].GetString(), "council");
  EXPECT_EQ(by_user[1]["refused"].GetInt(), 1);

  const auto& by_outcome = d["summary"]["by_outcome"];
  ASSERT_EQ(by_outcome.Size(), 2u);
  EXPECT_STREQ(by_outcome[0]["outcome"].GetString(), "200");
  EXPECT_EQ(by_outcome[0]["count"].GetInt(), 2);
  EXPECT_STREQ(by_outcome[1]["outcome"].GetString(), "403 consent-withheld");

  const auto& ev = d["events"][1];
  EXPECT_EQ(ev["seq"].GetInt(), 2);
  EXPECT_STREQ(ev["time"].GetString(), "2024-05-02T09:30:00.000Z");
  EXPECT_STREQ(ev["role"].GetString(), "council");
  EXPECT_STREQ(ev["action"].GetString(), "refused");
  EXPECT_STREQ(ev["person_ids"][1].GetString(), "cis:77");
  EXPECT_STREQ(ev["view"].GetString(), "cis");
  EXPECT_STREQ(ev["outcome"].GetString(), "403 consent-withheld");
  EXPECT_STREQ(ev["detail"].GetString(), "Consent_To_Share is No");
  EXPECT_STREQ(ev["request_id"].GetString(), "req-bob");
}

TEST(AuditReport, JsonForNoEventsAndNoPerson) {
  rapidjson::Document d;
  ASSERT_TRUE(Parse(d, RenderAuditReportJson({}, "")));
  EXPECT_TRUE(d["person"].IsNull());
  EXPECT_EQ(d["count"].GetInt(), 0);
  EXPECT_TRUE(d["first"].IsNull());
  EXPECT_EQ(d["events"].Size(), 0u);
}

TEST(AuditReport, JsonStaysValidUtf8WhateverTheFieldsHold) {
  auto events = Sample();
  events[0].detail = std::string("bad \xff\xfe bytes, \"quotes\", \x01 control, caf\xc3\xa9");
  const std::string json = RenderAuditReportJson(events, "nhs:\xc3");
  EXPECT_TRUE(IsValidUtf8(json));
  rapidjson::Document d;
  ASSERT_TRUE(Parse(d, json)) << json;
  EXPECT_EQ(std::string(d["events"][0]["detail"].GetString()),
            "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes, \"quotes\", \x01 control, caf\xc3\xa9");
}

TEST(AuditReport, HtmlIsSelfContainedAndEscapesEveryValue) {
  auto events = Sample();
  events[0].detail = "<script>alert('x')</script>";
  events[0].user = "a&b";
  const std::string html = RenderAuditReportHtml(events, "nhs:<9912003888>");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a&amp;b"), std::string::npos);
  EXPECT_NE(html.find("nhs:&lt;9912003888&gt;"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
}

TEST(AuditReport, HtmlHasSummaryAndOneRowPerEvent) {
  const std::string html = RenderAuditReportHtml(Sample(), "nhs:9912003888");
  EXPECT_NE(html.find("3 events by 2 users, from 2024-05-01T10:00:00.000Z to 2024-05-03T08:00:00.000Z"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("1 was refused or failed."), std::string::npos);
  EXPECT_NE(html.find("Accesses by user"), std::string::npos);
  EXPECT_NE(html.find("By outcome"), std::string::npos);
  EXPECT_NE(html.find("<tr class=\"refused\">"), std::string::npos);
  EXPECT_NE(html.find("<td>Consent_To_Share is No</td>"), std::string::npos);
  std::size_t rows = 0;
  for (std::size_t p = html.find("<h2>Events</h2>"); (p = html.find("<tr", p + 1)) != std::string::npos;) ++rows;
  EXPECT_EQ(rows, 4u);  // header + 3 events
}

TEST(AuditReport, HtmlForNoEvents) {
  const std::string html = RenderAuditReportHtml({}, "nhs:1");
  EXPECT_NE(html.find("No events recorded for this person."), std::string::npos);
  EXPECT_EQ(html.find("<table"), std::string::npos);
}

TEST(AuditReport, VerifyResultJson) {
  VerifyResult ok;
  ok.ok = true;
  ok.count = 3;
  ok.head_seq = 3;
  ok.head_hash = std::string(64, 'f');
  EXPECT_EQ(RenderVerifyResultJson(ok),
            "{\"ok\":true,\"count\":3,\"head\":{\"seq\":3,\"hash\":\"" + std::string(64, 'f') + "\"}}");
  VerifyResult bad = ok;
  bad.ok = false;
  bad.first_bad_seq = 2;
  bad.problem = "event 2 has been altered";
  rapidjson::Document d;
  ASSERT_TRUE(Parse(d, RenderVerifyResultJson(bad)));
  EXPECT_FALSE(d["ok"].GetBool());
  EXPECT_EQ(d["first_bad_seq"].GetInt(), 2);
  EXPECT_STREQ(d["problem"].GetString(), "event 2 has been altered");
}

}  // namespace
}  // namespace caregate::audit
