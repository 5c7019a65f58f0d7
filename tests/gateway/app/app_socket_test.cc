// The application over real loopback sockets: lookups, body limit, malformed and slow
// requests, and the audit event behind each.
#include "../server/test_client.h"
#include "app_fixture.h"

namespace caregate::app::testing {
namespace {

using server::testing::Conn;
using server::testing::Get;
using server::testing::RunningServer;
using server::testing::TestOptions;

std::string Post(std::string_view target, std::string_view token, std::string_view body) {
  std::string r = "POST " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " +
                  std::string(token) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  r += body;
  return r;
}
std::string Auth(const char* token) { return std::string("Authorization: Bearer ") + token + "\r\n"; }

class AppSocket : public AppTest {};

TEST_F(AppSocket, IngestThenLookupOverKeepAliveWithRequestIds) {
  RunningServer s(TestOptions(), handler_);
  Conn c(s.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Post("/v1/ingest/cis", kService, SpecExample("cis-record.json"))));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  ASSERT_TRUE(c.Send(Get("/v1/persons/nhs:9912003888", Auth(kHealth) + "X-Request-Id: trace-42\r\n")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("x-request-id"), "trace-42");
  EXPECT_EQ(r->header("content-type"), "application/xml");
  // The rendering is written from the cache (a shared body), whole.
  EXPECT_NE(r->body.find("<ClientIntegrationResponse"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("<Surname>Smith</Surname>"), std::string::npos) << r->body;
  EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
  auto e = LastEvent();
  EXPECT_EQ(e.request_id, "trace-42");
  EXPECT_EQ(e.outcome, "200");
  ASSERT_TRUE(c.Send(Get("/v1/persons/nhs:9912003888", Auth(kIg))));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->header("content-type"), "application/problem+json");
  EXPECT_EQ(LastEvent().outcome, "403 forbidden-role");
}

TEST_F(AppSocket, BodyOverTheLimitIs413AndStoresNothing) {
  auto options = TestOptions();
  options.body_limit = 4096;
  RunningServer s(options, handler_);
  Conn c(s.port());
  std::string big = CisJson(PersonFields{.cis = "C-1"});
  big.insert(big.size() - 1, ",\"Padding\":\"" + std::string(8000, 'x') + "\"");
  ASSERT_TRUE(c.Send(Post("/v1/ingest/cis", kService, big)));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(app_->store().SourceRecordCount(), 0);
  // A refusal like any other: audited, durably, before the answer, with who asked.
  auto e = LastEvent();
  EXPECT_EQ(e.action, "refused");
  EXPECT_EQ(e.outcome, "413 body-too-large");
  EXPECT_EQ(e.user, "nightly-export");
  EXPECT_EQ(e.role, "service");
  EXPECT_EQ(e.detail, "POST /v1/ingest/{system}");
  EXPECT_EQ(e.request_id, r->header("x-request-id"));
  // Without a valid token too (the body limit is checked before the token).
  Conn anonymous(s.port());
  ASSERT_TRUE(anonymous.Send(Post("/v1/ingest/cis", "not-a-token", big)));
  r = anonymous.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  e = LastEvent();
  EXPECT_EQ(e.outcome, "413 body-too-large");
  EXPECT_EQ(e.user, "");
}

TEST_F(AppSocket, MalformedRequestIs400AndTheServerKeepsServing) {
  RunningServer s(TestOptions(), handler_);
  {
    Conn c(s.port());
    ASSERT_TRUE(c.Send("GARBAGE\r\n\r\n"));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
  }
  Conn c(s.port());
  ASSERT_TRUE(c.Send(Get("/healthz")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// A request refused for its framing (RFC 9112: Transfer-Encoding without chunked last)
// has a known head: audited with who sent it, like a 413, and its body is never run.
TEST_F(AppSocket, AFramingRefusalIsAuditedWithTheCaller) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-1"})).status, 201);
  RunningServer s(TestOptions(), handler_);
  Conn c(s.port());
  const auto before = Events().size();
  ASSERT_TRUE(c.Send("GET /v1/persons/cis:C-1 HTTP/1.1\r\nHost: x\r\n" + Auth(kHealth) +
                     "Transfer-Encoding: gzip\r\n\r\nGET /v1/persons/cis:C-1 HTTP/1.1\r\nHost: x\r\n" +
                     Auth(kHealth) + "\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.ClosedWithin(std::chrono::seconds(3)));
  auto events = Events();
  ASSERT_EQ(events.size(), before + 1);  // the refusal, and no read of the smuggled request
  EXPECT_EQ(events.back().action, "refused");
  EXPECT_EQ(events.back().outcome, "400 malformed");
  EXPECT_EQ(events.back().user, "amy.jones");
  EXPECT_EQ(events.back().person_ids, std::vector<std::string>{"cis:C-1"});
  EXPECT_EQ(events.back().request_id, r->header("x-request-id"));
}

TEST_F(AppSocket, SlowRequestIsCutOffWithoutReachingTheApplication) {
  RunningServer s(TestOptions(), handler_);  // header timeout 600 ms
  const auto before = Events().size();
  Conn c(s.port());
  ASSERT_TRUE(c.Send("GET /v1/persons/nhs:9912003888 HTTP/1.1\r\nHost: local"));  // never finished
  EXPECT_TRUE(c.ClosedWithin(std::chrono::seconds(5)));
  EXPECT_EQ(Events().size(), before);  // no request, so no access and no event
}

TEST_F(AppSocket, ConcurrentLookupsAreEachAudited) {
  ASSERT_EQ(IngestCis(CisJson(PersonFields{.cis = "C-1"})).status, 201);
  RunningServer s(TestOptions(), handler_);
  const auto before = Events().size();
  constexpr int kClients = 8, kEach = 10;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&] {
      Conn c(s.port());
      for (int j = 0; j < kEach; ++j) {
        if (!c.Send(Get("/v1/persons/cis:C-1", Auth(kCouncil)))) return;
        auto r = c.Read();
        if (r && r->status == 200) ++ok;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
  EXPECT_EQ(Events().size(), before + kClients * kEach);
  EXPECT_TRUE(app_->audit().Verify().ok);
}

}  // namespace
}  // namespace caregate::app::testing
