#include "caregate/server/router.h"

#include <gtest/gtest.h>

#include "caregate/core/error.h"

namespace caregate::server {
namespace {

Response Ok(const RequestContext&) { return Response::Json(200, "{}"); }

Router Sample() {
  Router r;
  r.Add("GET", "/v1/persons/{id}", Access::Roles({Role::kHealth, Role::kCouncil}), Ok);
  r.Add("GET", "/v1/persons/{id}/lineage", Access::Roles({Role::kIg}), Ok);
  r.Add("POST", "/v1/ingest/{system}", Access::Roles({Role::kService}), Ok);
  r.Add("GET", "/v1/audit/events", Access::Roles({Role::kIg}), Ok);
  r.Add("GET", "/v1/audit/{what}", Access::Roles({Role::kIg}), Ok);
  r.Add("DELETE", "/v1/audit/events", Access::Roles({Role::kIg}), Ok);
  return r;
}

TEST(Router, MatchesLiteralPath) {
  Router r = Sample();
  auto m = r.Find("GET", "/v1/audit/events");
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(m.route->pattern, "/v1/audit/events");
  EXPECT_TRUE(m.params.empty());
}

TEST(Router, ExtractsPercentDecodedPathParams) {
  Router r = Sample();
  auto m = r.Find("GET", "/v1/persons/nhs%3A9912003888/lineage");
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(m.route->pattern, "/v1/persons/{id}/lineage");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "nhs:9912003888");
  // '+' is literal in a path, not a space.
  m = r.Find("GET", "/v1/persons/a+b");
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(m.params[0].second, "a+b");
}

TEST(Router, PrefersLiteralSegmentOverParameter) {
  Router r = Sample();
  auto m = r.Find("GET", "/v1/audit/verify");
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(m.route->pattern, "/v1/audit/{what}");
  EXPECT_EQ(m.params[0].second, "verify");
  m = r.Find("GET", "/v1/audit/events");
  EXPECT_EQ(m.route->pattern, "/v1/audit/events");
}

TEST(Router, Returns405WithAllowHeader) {
  Router r = Sample();
  auto m = r.Find("PUT", "/v1/audit/events");
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "DELETE, GET, HEAD");
  EXPECT_EQ(m.pattern, "/v1/audit/events");
  m = r.Find("GET", "/v1/ingest/cis");
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST");
  m = r.Find("HEAD", "/v1/ingest/cis");  // only a GET route serves HEAD
  EXPECT_EQ(m.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST");
}

TEST(Router, HeadIsServedByTheGetRoute) {
  Router r = Sample();
  auto m = r.Find("HEAD", "/v1/audit/events");
  ASSERT_EQ(m.outcome, Router::Outcome::kFound);
  EXPECT_EQ(m.route->method, "GET");
  EXPECT_EQ(m.route->pattern, "/v1/audit/events");
}

TEST(Router, UnknownPathIsNotFound) {
  Router r = Sample();
  for (const char* path : {"/", "/v1", "/v1/persons", "/v1/persons/", "/v1/persons//lineage", "/v1/persons/x/y",
                           "/V1/persons/x", "/v1/persons/x/lineage/", "relative"})
    EXPECT_EQ(r.Find("GET", path).outcome, Router::Outcome::kNotFound) << path;
}

TEST(Router, RejectsBadPercentEncodingInParams) {
  Router r = Sample();
  EXPECT_EQ(r.Find("GET", "/v1/persons/%zz").outcome, Router::Outcome::kBadEncoding);
  EXPECT_EQ(r.Find("GET", "/v1/persons/%ff").outcome, Router::Outcome::kBadEncoding);  // not UTF-8
  EXPECT_EQ(r.Find("GET", "/v1/persons/abc%4").outcome, Router::Outcome::kBadEncoding);
}

TEST(Router, RejectsBadRoutesAtRegistration) {
  Router r = Sample();
  auto bad = [&](const char* method, const char* pattern, Access access = Access::AnyRole()) {
    try {
      r.Add(method, pattern, access, Ok);
      ADD_FAILURE() << method << " " << pattern << " was accepted";
    } catch (const FatalError& e) {
      EXPECT_EQ(e.problem(), Problem::kUsage);
      EXPECT_NE(std::string(e.what()).find(pattern), std::string::npos) << e.what();
    }
  };
  bad("GET", "v1/x");
  bad("GET", "/v1//x");
  bad("GET", "/v1/x/");
  bad("get", "/v1/x");
  bad("GET", "/v1/{bad-name}");
  bad("GET", "/v1/{a}/{a}");
  bad("GET", "/v1/persons/{id}");              // already registered
  bad("GET", "/v1/persons/{person}");          // same paths, other parameter name
  bad("GET", "/v1/public", Access::Anyone());  // /v1 always needs a token
  bad("GET", "/v1", Access::Anyone());
  EXPECT_NO_THROW(r.Add("GET", "/healthz", Access::Anyone(), Ok));
  EXPECT_THROW(r.Add("GET", "/x", Access::Anyone(), Handler()), FatalError);
}

TEST(Router, AccessRoles) {
  Access a = Access::Roles({Role::kHealth, Role::kCouncil});
  EXPECT_TRUE(a.Allows(Role::kHealth));
  EXPECT_TRUE(a.Allows(Role::kCouncil));
  EXPECT_FALSE(a.Allows(Role::kIg));
  EXPECT_FALSE(a.Allows(Role::kService));
  EXPECT_FALSE(a.is_public());
  EXPECT_TRUE(Access::Anyone().is_public());
  EXPECT_TRUE(Access::AnyRole().Allows(Role::kIg));
  EXPECT_FALSE(Access::AnyRole().is_public());
}

TEST(Http, PercentDecode) {
  EXPECT_EQ(PercentDecode("a%20b+c", false), "a b+c");
  EXPECT_EQ(PercentDecode("a%20b+c", true), "a b c");
  EXPECT_EQ(PercentDecode("%C3%A9", false), "\xC3\xA9");
  EXPECT_EQ(PercentDecode("%", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%4", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%g0", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%C3", false), std::nullopt);  // truncated UTF-8
}

TEST(Http, ParseQueryDecodesPairsInOrder) {
  auto q = ParseQuery("view=cis&from=2024-01-01T00%3A00%3A00Z&&flag&name=J+Smith");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[0], (std::pair<std::string, std::string>{"view", "cis"}));
  EXPECT_EQ((*q)[1].second, "2024-01-01T00:00:00Z");
  EXPECT_EQ((*q)[2], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ((*q)[3].second, "J Smith");
  EXPECT_FALSE(ParseQuery("a=%zz"));
  EXPECT_TRUE(ParseQuery("")->empty());
}

TEST(Http, HeadersAreCaseInsensitive) {
  Headers h;
  h.Add("Content-Type", "a");
  h.Add("X-Thing", "1");
  h.Add("x-thing", "2");
  EXPECT_EQ(h.Find("content-type"), "a");
  EXPECT_EQ(h.Count("X-THING"), 2u);
  h.Set("X-Thing", "3");
  EXPECT_EQ(h.Count("x-thing"), 1u);
  EXPECT_EQ(h.Find("x-thing"), "3");
  EXPECT_FALSE(h.Has("missing"));
}

}  // namespace
}  // namespace caregate::server
