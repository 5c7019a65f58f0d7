// The pure request handler, in-process: no sockets.
#include "caregate/server/handler.h"

#include <gtest/gtest.h>

#include <optional>
#include <rapidjson/document.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>
#include <future>
#include <set>
#include <thread>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"

namespace caregate::server {
namespace {

struct Seen {
  std::string route, request_id, user, role, organisation, remote, body;
  Params params, query;
};

class HandlerTest : public ::testing::Test {
 protected:
  HandlerTest() {
    tokens_.Add(Sha256Hex("t-health"), Role::kHealth, "alice");
    tokens_.Add(Sha256Hex("t-council"), Role::kCouncil, "bob");
    tokens_.Add(Sha256Hex("t-ig"), Role::kIg, "carol");
    tokens_.Add(Sha256Hex("t-svc"), Role::kService, "job");
    router_.Add("GET", "/v1/persons/{id}", Access::Roles({Role::kHealth, Role::kCouncil}),
                [this](const RequestContext& ctx) {
                  seen_.route = std::string(ctx.route);
                  seen_.request_id = ctx.request_id;
                  seen_.user = ctx.principal->user_id;
                  seen_.role = std::string(RoleName(ctx.principal->role));
                  seen_.organisation = ctx.principal->organisation;
                  seen_.remote = ctx.remote;
                  seen_.params = ctx.path_params;
                  seen_.query = ctx.query;
                  return Response::Json(200, "{\"id\":\"" + std::string(ctx.Param("id")) + "\"}");
                });
    router_.Add("POST", "/v1/ingest/cis", Access::Roles({Role::kService}), [this](const RequestContext& ctx) {
      seen_.body = std::string(ctx.body);
      Response r = Response::Json(201, "{}");
      r.headers.Add("Location", "/v1/persons/cis:1");
      return r;
    });
    router_.Add("GET", "/v1/boom", Access::AnyRole(), [](const RequestContext&) -> Response {
      throw std::runtime_error("secret internal detail /var/lib/caregate");
    });
    router_.Add("GET", "/v1/busy", Access::AnyRole(), [](const RequestContext&) -> Response {
      throw FatalError(Problem::kUnavailable, "database locked");
    });
    router_.Add("GET", "/public/text", Access::Anyone(),
                [](const RequestContext&) { return Response::Text(200, "plain"); });
  }

  RequestHandler& handler() {
    if (!handler_) handler_ = std::make_unique<RequestHandler>(router_, tokens_);
    return *handler_;
  }

  Response Call(std::string method, std::string target, std::string token = {}, std::string body = {},
                Headers extra = {}) {
    Request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers = std::move(extra);
    if (!token.empty()) r.headers.Add("Authorization", "Bearer " + token);
    r.body = std::move(body);
    r.remote = "127.0.0.1:40000";
    return handler().Handle(r);
  }

  Router router_;
  TokenStore tokens_;
  std::unique_ptr<RequestHandler> handler_;
  Seen seen_;
};

rapidjson::Document ParseJson(const std::string& body) {
  // RAPIDJSON_SSE2 scans 16 aligned bytes at a time, past the terminator; give it room so
  // AddressSanitizer builds do not report that over-read.
  std::string padded = body;
  padded.reserve(body.size() + 32);
  rapidjson::Document d;
  d.Parse(padded.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

void ExpectProblem(const Response& r, int status, std::string_view slug) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto d = ParseJson(r.body);
  ASSERT_TRUE(d.IsObject());
  EXPECT_EQ(std::string(d["type"].GetString()), std::string(kProblemTypePrefix) + std::string(slug));
  EXPECT_TRUE(d["title"].IsString());
  EXPECT_EQ(d["status"].GetInt(), status);
  EXPECT_TRUE(d.HasMember("detail"));
  ASSERT_TRUE(d.HasMember("instance"));
  EXPECT_EQ(std::string(d["instance"].GetString()), std::string(*r.headers.Find("X-Request-Id")));
}

TEST_F(HandlerTest, HealthzIsPublic) {
  Response r = Call("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ready"})");
  EXPECT_EQ(r.route, "/healthz");
  handler().SetReady(false);
  ExpectProblem(Call("GET", "/healthz"), 503, "unavailable");
}

TEST_F(HandlerTest, MetricsIsPrometheusTextAndPublic) {
  handler().Record("/healthz", 200, 0.001);
  Response r = Call("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("caregate_http_requests_total{route=\"/healthz\",status=\"200\"} 1\n"), std::string::npos)
      << r.body;
}

TEST_F(HandlerTest, V1WithoutTokenIs401WithWwwAuthenticate) {
  Response r = Call("GET", "/v1/persons/nhs:1");
  ExpectProblem(r, 401, "unauthenticated");
  EXPECT_EQ(r.headers.Find("WWW-Authenticate"), "Bearer realm=\"caregate\"");
  EXPECT_EQ(r.route, "/v1/persons/{id}");
}

TEST_F(HandlerTest, UnknownV1PathWithoutTokenIs401NotA404) {
  // Unauthenticated callers learn nothing about which /v1 paths exist.
  Response r = Call("GET", "/v1/nothing/here");
  ExpectProblem(r, 401, "unauthenticated");
  EXPECT_EQ(r.route, RequestHandler::kUnmatchedRoute);
  ExpectProblem(Call("DELETE", "/v1/persons/x"), 401, "unauthenticated");
}

TEST_F(HandlerTest, InvalidTokenIs401) {
  Response r = Call("GET", "/v1/persons/nhs:1", "wrong");
  ExpectProblem(r, 401, "unauthenticated");
  EXPECT_NE(r.headers.Find("WWW-Authenticate")->find("invalid_token"), std::string_view::npos);
  Headers basic;
  basic.Add("Authorization", "Basic dDpoZWFsdGg=");
  ExpectProblem(Call("GET", "/v1/persons/nhs:1", {}, {}, basic), 401, "unauthenticated");
  Headers two;
  two.Add("Authorization", "Bearer t-health");
  two.Add("Authorization", "Bearer t-ig");
  ExpectProblem(Call("GET", "/v1/persons/nhs:1", {}, {}, two), 401, "unauthenticated");
  Headers lower;
  lower.Add("authorization", "bearer   t-health");
  EXPECT_EQ(Call("GET", "/v1/persons/nhs:1", {}, {}, lower).status, 200);
}

TEST_F(HandlerTest, ReplacedTokensApplyToTheNextRequest) {
  EXPECT_EQ(Call("GET", "/v1/persons/nhs:1", "t-health").status, 200);
  EXPECT_EQ(handler().token_count(), 4u);
  TokenStore rotated;
  rotated.Add(Sha256Hex("t-health-2"), Role::kHealth, "alice");
  rotated.Add(Sha256Hex("t-ig"), Role::kCouncil, "carol");  // the same token, another role
  handler().ReplaceTokens(std::move(rotated));
  EXPECT_EQ(handler().token_count(), 2u);
  ExpectProblem(Call("GET", "/v1/persons/nhs:1", "t-health"), 401, "unauthenticated");
  ExpectProblem(Call("POST", "/v1/ingest/cis", "t-svc", "{}"), 401, "unauthenticated");
  EXPECT_EQ(Call("GET", "/v1/persons/nhs:1", "t-health-2").status, 200);
  EXPECT_EQ(seen_.user, "alice");
  EXPECT_EQ(Call("GET", "/v1/persons/nhs:1", "t-ig").status, 200);
  EXPECT_EQ(seen_.role, "council");
}

// Requests authenticate while the tokens are replaced over and over (run under the
// sanitizers in CI): each sees one whole token set, old or new, never a torn one.
TEST_F(HandlerTest, TokensReplacedWhileRequestsRun) {
  router_.Add("GET", "/v1/whoami", Access::AnyRole(),
              [](const RequestContext& ctx) { return Response::Text(200, ctx.principal->user_id); });
  TokenStore first;
  first.Add(Sha256Hex("t-rot"), Role::kIg, "user-a");
  handler().ReplaceTokens(std::move(first));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t)
    callers.emplace_back([&] {
      while (!stop) {
        Request r;
        r.method = "GET";
        r.target = "/v1/whoami";
        r.headers.Add("Authorization", "Bearer t-rot");
        Response res = handler().Handle(r);
        if (!(res.status == 200 && (res.body == "user-a" || res.body == "user-b"))) ++bad;
        ++calls;
      }
    });
  for (int i = 0; calls < 5000; ++i) {
    TokenStore next;
    next.Add(Sha256Hex("t-rot"), Role::kIg, i % 2 ? "user-a" : "user-b");
    handler().ReplaceTokens(std::move(next));
  }
  stop = true;
  for (auto& c : callers) c.join();
  EXPECT_EQ(bad.load(), 0) << "of " << calls.load() << " calls";
}

TEST_F(HandlerTest, WrongRoleIs403) {
  ExpectProblem(Call("GET", "/v1/persons/nhs:1", "t-ig"), 403, "forbidden-role");
  ExpectProblem(Call("GET", "/v1/persons/nhs:1", "t-svc"), 403, "forbidden-role");
  ExpectProblem(Call("POST", "/v1/ingest/cis", "t-health", "{}"), 403, "forbidden-role");
}

TEST_F(HandlerTest, UnknownPathIs404) {
  ExpectProblem(Call("GET", "/v1/unknown", "t-health"), 404, "not-found");
  Response r = Call("GET", "/nothing");
  ExpectProblem(r, 404, "not-found");
  EXPECT_EQ(r.route, RequestHandler::kUnmatchedRoute);
}

TEST_F(HandlerTest, WrongMethodIs405WithAllowHeader) {
  Response r = Call("DELETE", "/v1/persons/nhs:1", "t-health");
  ExpectProblem(r, 405, "method-not-allowed");
  EXPECT_EQ(r.headers.Find("Allow"), "GET, HEAD");
  r = Call("POST", "/healthz");
  ExpectProblem(r, 405, "method-not-allowed");
  EXPECT_EQ(r.headers.Find("Allow"), "GET, HEAD");
}

// A method HTTP does not define is 501 on any path (RFC 9110 9.1: methods are
// case-sensitive, so "get" is one); under /v1 only once the caller is authenticated.
TEST_F(HandlerTest, AnUndefinedMethodIs501) {
  ExpectProblem(Call("BREW", "/v1/persons/nhs:1", "t-health"), 501, "not-implemented");
  ExpectProblem(Call("get", "/healthz"), 501, "not-implemented");
  ExpectProblem(Call("BREW", "/nothing"), 501, "not-implemented");
  ExpectProblem(Call("BREW", "/v1/persons/nhs:1"), 401, "unauthenticated");
  ExpectProblem(Call("PATCH", "/healthz"), 405, "method-not-allowed");
}

TEST_F(HandlerTest, ContextCarriesPrincipalParamsQueryAndRequestId) {
  Response r = Call("GET", "/v1/persons/nhs%3A9912003888?view=cis&x=a+b%21", "t-council");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"id":"nhs:9912003888"})");
  EXPECT_EQ(seen_.route, "/v1/persons/{id}");
  EXPECT_EQ(seen_.user, "bob");
  EXPECT_EQ(seen_.role, "council");
  EXPECT_EQ(seen_.organisation, "council");
  EXPECT_EQ(seen_.remote, "127.0.0.1:40000");
  ASSERT_EQ(seen_.query.size(), 2u);
  EXPECT_EQ(seen_.query[0], (std::pair<std::string, std::string>{"view", "cis"}));
  EXPECT_EQ(seen_.query[1].second, "a b!");
  EXPECT_FALSE(seen_.request_id.empty());
  EXPECT_EQ(r.headers.Find("X-Request-Id"), seen_.request_id);
  EXPECT_EQ(r.headers.Find("Cache-Control"), "no-store");
}

TEST_F(HandlerTest, HandlersSetStatusHeadersAndContentType) {
  Response r = Call("POST", "/v1/ingest/cis", "t-svc", "{\"a\":1}");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers.Find("Location"), "/v1/persons/cis:1");
  EXPECT_EQ(seen_.body, "{\"a\":1}");
  r = Call("GET", "/public/text");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "plain");
}

TEST_F(HandlerTest, AbsoluteFormTargetIsRouted) {
  EXPECT_EQ(Call("GET", "http://gateway.local:8080/healthz").status, 200);
  ExpectProblem(Call("GET", "*"), 400, "malformed");
}

TEST_F(HandlerTest, KeepsSaneRequestIdAndReplacesOthers) {
  Headers h;
  h.Add("X-Request-Id", "job-42.retry_1~x");
  Response r = Call("GET", "/v1/persons/a", "t-health", {}, h);
  EXPECT_EQ(seen_.request_id, "job-42.retry_1~x");
  EXPECT_EQ(r.headers.Find("X-Request-Id"), "job-42.retry_1~x");
  for (std::string bad : {std::string("has space"), std::string("quote\""), std::string(129, 'a'), std::string()}) {
    Headers b;
    b.Add("X-Request-Id", bad);
    Call("GET", "/v1/persons/a", "t-health", {}, b);
    EXPECT_NE(seen_.request_id, bad);
    EXPECT_FALSE(seen_.request_id.empty());
  }
}

TEST_F(HandlerTest, RequestIdsAreUniqueAcrossThreads) {
  // Build the handler before the threads start: the fixture's lazy construction is not thread-safe
  // (ASan caught four threads racing to create it), the handler's id counter is what is under test.
  const RequestHandler& h = handler();
  std::vector<std::set<std::string>> ids(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) ids[t].insert(h.NewRequestId());
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (auto& s : ids) all.insert(s.begin(), s.end());
  EXPECT_EQ(all.size(), 8000u);
}

TEST_F(HandlerTest, ProblemJsonHasRfc9457Members) {
  RequestContext ctx;
  ctx.request_id = "req-1";
  Response r = Problem(Problem::kInvalidRecord, "Person/DateOfBirth: \"not a date\"\n", ctx);
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto d = ParseJson(r.body);
  EXPECT_EQ(std::string(d["type"].GetString()), "urn:caregate:problem:invalid-record");
  EXPECT_EQ(std::string(d["title"].GetString()), "The record is invalid");
  EXPECT_EQ(d["status"].GetInt(), 422);
  EXPECT_EQ(std::string(d["detail"].GetString()), "Person/DateOfBirth: \"not a date\"\n");
  EXPECT_EQ(std::string(d["instance"].GetString()), "req-1");
  EXPECT_EQ(d.MemberCount(), 5u);
}

TEST_F(HandlerTest, RefusalHookSeesEvery401And403) {
  std::vector<std::pair<int, std::string>> refusals;
  handler().OnRefused([&](const RequestContext& ctx, caregate::Problem, const Response& r) {
    refusals.emplace_back(r.status, ctx.principal ? ctx.principal->user_id : std::string("-"));
    EXPECT_NE(r.body.find("\"instance\":\"" + ctx.request_id + "\""), std::string::npos) << r.body;
  });
  Call("GET", "/v1/persons/a");
  Call("GET", "/v1/persons/a", "bad");
  Call("GET", "/v1/persons/a", "t-ig");
  Call("GET", "/v1/persons/a", "t-health");  // allowed: no refusal
  Call("GET", "/nothing");                   // 404: not a refusal
  ASSERT_EQ(refusals.size(), 3u);
  EXPECT_EQ(refusals[0], (std::pair<int, std::string>{401, "-"}));
  EXPECT_EQ(refusals[1], (std::pair<int, std::string>{401, "-"}));
  EXPECT_EQ(refusals[2], (std::pair<int, std::string>{403, "carol"}));
}

TEST_F(HandlerTest, ARequestRefusedUnreadGoesToTheRefusalHookToo) {
  // The server refuses a body over the limit before the handler sees the request; it
  // still reaches the refusal hook, authenticated when it can be, with its route.
  struct Seen {
    caregate::Problem problem;
    std::string user, route;
  };
  std::vector<Seen> seen;
  handler().OnRefused([&](const RequestContext& ctx, caregate::Problem problem, const Response&) {
    seen.push_back({problem, ctx.principal ? ctx.principal->user_id : "-", std::string(ctx.route)});
  });
  auto refuse = [&](std::string token, std::string target) {
    Request head;
    head.method = "POST";
    head.target = std::move(target);
    if (!token.empty()) head.headers.Add("Authorization", "Bearer " + token);
    std::optional<Response> out;
    handler().RefuseAsync(std::move(head), caregate::Problem::kBodyTooLarge, "the request body is over 10 bytes",
                          [&](Response r) { out = std::move(r); });
    return out;  // no deferred write here: answered before RefuseAsync returns
  };
  auto r = refuse("t-svc", "/v1/ingest/cis?x=1");
  ASSERT_TRUE(r);
  ExpectProblem(*r, 413, "body-too-large");
  EXPECT_TRUE(r->close);
  EXPECT_EQ(r->route, "/v1/ingest/cis");
  EXPECT_FALSE(r->headers.Find("X-Request-Id").value_or("").empty());
  r = refuse("", "/v1/ingest/cis");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);  // not 401: the body limit is what stopped it
  r = refuse("t-svc", "*");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->route, RequestHandler::kUnmatchedRoute);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].problem, caregate::Problem::kBodyTooLarge);
  EXPECT_EQ(seen[0].user, "job");
  EXPECT_EQ(seen[0].route, "/v1/ingest/cis");
  EXPECT_EQ(seen[1].user, "-");
  EXPECT_EQ(seen[2].route, "");
}

TEST_F(HandlerTest, FailingRefusalHookTurnsRefusalInto5xx) {
  handler().OnRefused([](const RequestContext&, caregate::Problem, const Response&) {
    throw FatalError(Problem::kIoFailure, "audit disk full");
  });
  Response r = Call("GET", "/v1/persons/a", "t-ig");
  ExpectProblem(r, 500, "io-failure");
  EXPECT_EQ(r.body.find("disk"), std::string::npos);
}

TEST_F(HandlerTest, HandlerExceptionBecomes500WithoutDetails) {
  Response r = Call("GET", "/v1/boom", "t-ig");
  ExpectProblem(r, 500, "internal");
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_EQ(r.route, "/v1/boom");
  ExpectProblem(Call("GET", "/v1/busy", "t-ig"), 503, "unavailable");
}

TEST_F(HandlerTest, BadEncodingIs400) {
  ExpectProblem(Call("GET", "/v1/persons/a?view=%zz", "t-health"), 400, "malformed");
  ExpectProblem(Call("GET", "/v1/persons/%ff", "t-health"), 400, "malformed");
}

// A deferred write completed later from another thread, as the audit writer does.
class DeferredWriteTest : public HandlerTest {
 protected:
  DeferredWriteTest() {
    router_.Add("GET", "/v1/deferred", Access::AnyRole(), [this](const RequestContext& ctx) {
      auto done = ctx.Defer();
      writers_.emplace_back([this, done, gate = gate_] {
        gate.wait();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        written_ = true;
        done(fail_ ? std::make_exception_ptr(FatalError(Problem::kIoFailure, "disk full /var/lib/x")) : nullptr);
      });
      return Response::Text(200, "answer");
    });
  }
  ~DeferredWriteTest() override {
    for (auto& t : writers_) t.join();
  }

  // Writers start once this is ready; ready from the start unless a test holds it back.
  static std::shared_future<void> Ready() {
    std::promise<void> p;
    p.set_value();
    return p.get_future().share();
  }

  std::vector<std::thread> writers_;
  std::atomic<bool> written_{false};
  bool fail_ = false;
  std::shared_future<void> gate_ = Ready();
};

TEST_F(DeferredWriteTest, HandleReturnsOnlyOnceTheDeferredWriteIsDone) {
  Response r = Call("GET", "/v1/deferred", "t-svc");
  EXPECT_TRUE(written_.load());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "answer");
  EXPECT_EQ(r.route, "/v1/deferred");
  EXPECT_TRUE(r.headers.Has("X-Request-Id"));
}

TEST_F(DeferredWriteTest, FailedDeferredWriteReplacesTheAnswerWithAProblem) {
  fail_ = true;
  Response r = Call("GET", "/v1/deferred", "t-svc");
  EXPECT_TRUE(written_.load());
  ExpectProblem(r, 500, "io-failure");
  EXPECT_EQ(r.body.find("disk full"), std::string::npos) << r.body;  // no internals leak
}

TEST_F(DeferredWriteTest, HandleAsyncAnswersOnTheThreadThatFinishesTheWrite) {
  std::promise<void> open_gate;
  gate_ = open_gate.get_future().share();
  std::promise<std::pair<Response, std::thread::id>> answered;
  auto answer = answered.get_future();
  Request req;
  req.method = "GET";
  req.target = "/v1/deferred";
  req.headers.Add("Authorization", "Bearer t-svc");
  handler().HandleAsync(std::move(req), [&](Response r) { answered.set_value({std::move(r), std::this_thread::get_id()}); },
                        nullptr);
  // Returned at once, unanswered: the write has not even started.
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  open_gate.set_value();
  auto [r, thread] = answer.get();
  EXPECT_TRUE(written_.load());
  EXPECT_EQ(r.body, "answer");
  EXPECT_NE(thread, std::this_thread::get_id());
}

// With `resume` (the server's: post to the session's thread), the request is finished
// where resume runs it, not on the thread that finished the write.
TEST_F(DeferredWriteTest, HandleAsyncWithResumeFinishesTheRequestWhereResumeRunsIt) {
  std::promise<void> open_gate;
  gate_ = open_gate.get_future().share();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<RequestHandler::Task> resumed;  // what the writer handed back
  std::optional<std::pair<Response, std::thread::id>> answered;
  Request req;
  req.method = "GET";
  req.target = "/v1/deferred";
  req.headers.Add("Authorization", "Bearer t-svc");
  handler().HandleAsync(
      std::move(req), [&](Response r) { answered.emplace(std::move(r), std::this_thread::get_id()); }, nullptr,
      [&](RequestHandler::Task task) {
        std::lock_guard lock(mu);
        resumed.push_back(std::move(task));
        cv.notify_one();
      });
  open_gate.set_value();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !resumed.empty(); }));
  }
  EXPECT_FALSE(answered.has_value());  // handed back, not answered on the writer's thread
  for (auto& task : resumed) task();
  ASSERT_TRUE(answered.has_value());
  EXPECT_EQ(answered->first.body, "answer");
  EXPECT_EQ(answered->second, std::this_thread::get_id());
  EXPECT_EQ(resumed.size(), 1u);
}

TEST_F(DeferredWriteTest, RefusalHookCanDeferToo) {
  handler().OnRefused([this](const RequestContext& ctx, caregate::Problem, const Response&) {
    auto done = ctx.Defer();
    writers_.emplace_back([this, done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      written_ = true;
      done(nullptr);
    });
  });
  ExpectProblem(Call("GET", "/v1/deferred"), 401, "unauthenticated");
  EXPECT_TRUE(written_.load());
}

TEST(RequestContext, DeferOutsideAHandlerIsAnError) {
  RequestContext ctx;
  EXPECT_THROW(ctx.Defer(), FatalError);
}

}  // namespace
}  // namespace caregate::server
