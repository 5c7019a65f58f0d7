// The session writes its response head itself (AppendResponseHead) rather than through
// Beast's serializer: byte for byte what Beast wrote for the same message.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include <boost/beast/http.hpp>

#include "caregate/server/http.h"

namespace caregate::server {
namespace {

namespace http = boost::beast::http;

constexpr std::string_view kDate = "Thu, 03 Dec 2026 13:30:00 GMT";

// What the session sent before: Beast's message and serializer, set up as it did.
std::string BeastHead(const Response& r, std::size_t body_size, bool keep) {
  http::response<http::empty_body> res;
  res.version(11);
  res.result(static_cast<unsigned>(r.status));
  res.set(http::field::server, "caregate");
  res.set(http::field::date, boost::beast::string_view(kDate.data(), kDate.size()));
  auto safe = [](std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; };
  if (!r.content_type.empty() && safe(r.content_type)) res.set(http::field::content_type, boost::beast::string_view(r.content_type));
  for (const auto& [name, value] : r.headers)
    if (!name.empty() && safe(name) && safe(value)) res.insert(boost::beast::string_view(name), boost::beast::string_view(value));
  res.keep_alive(keep);
  if (r.status != 204 && r.status != 304) res.content_length(body_size);
  std::ostringstream out;
  out << res.base();
  return out.str();
}

std::string OurHead(const Response& r, std::size_t body_size, bool keep) {
  std::string out = "unchanged prefix|";
  AppendResponseHead(out, r, kDate, body_size, keep);
  EXPECT_EQ(out.rfind("unchanged prefix|", 0), 0u);
  return out.substr(17);
}

TEST(ResponseHead, MatchesBeastForAJsonAnswerKeptAlive) {
  Response r = Response::Json(200, "{}");
  r.headers.Add("X-Request-Id", "5f0c9a1e-7b7d-4a53-9d3e-2f1c0d7a9b11");
  r.headers.Add("Cache-Control", "no-store");
  const std::string head = OurHead(r, 2817, true);
  EXPECT_EQ(head, BeastHead(r, 2817, true));
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\nServer: caregate\r\nDate: ", 0), 0u) << head;
  EXPECT_NE(head.find("\r\nContent-Length: 2817\r\n\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("Connection"), std::string::npos) << head;
}

TEST(ResponseHead, MatchesBeastForErrorsThatClose) {
  for (int status : {400, 401, 403, 404, 405, 413, 431, 500, 503}) {
    Response r = Response::Json(status, "{}");
    r.content_type = "application/problem+json";
    r.headers.Add("X-Request-Id", "r1");
    r.headers.Add("WWW-Authenticate", "Bearer");
    EXPECT_EQ(OurHead(r, 0, false), BeastHead(r, 0, false)) << status;
    EXPECT_NE(OurHead(r, 0, false).find("\r\nConnection: close\r\n"), std::string::npos) << status;
  }
}

TEST(ResponseHead, NoContentLengthFor204And304AndNoTypeWhenEmpty) {
  for (int status : {204, 304}) {
    Response r;
    r.status = status;
    r.content_type.clear();
    const std::string head = OurHead(r, 0, true);
    EXPECT_EQ(head, BeastHead(r, 0, true)) << status;
    EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
    EXPECT_EQ(head.find("Content-Type"), std::string::npos) << head;
  }
}

TEST(ResponseHead, LeavesOutFieldsThatCouldSplitTheResponse) {
  Response r = Response::Text(200, "x");
  r.headers.Add("X-Good", "yes");
  r.headers.Add("X-Bad", "a\r\nSet-Cookie: stolen=1");
  r.headers.Add("X-Bad\r\nInjected", "b");
  r.headers.Add("", "no name");
  const std::string head = OurHead(r, 1, true);
  EXPECT_EQ(head, BeastHead(r, 1, true));
  EXPECT_NE(head.find("X-Good: yes\r\n"), std::string::npos);
  EXPECT_EQ(head.find("stolen"), std::string::npos);
  EXPECT_EQ(head.find("Injected"), std::string::npos);
  EXPECT_EQ(head.find("no name"), std::string::npos);
}

TEST(ResponseHead, UnusualStatusesKeepBeastsReasonPhrase) {
  for (int status : {201, 202, 409, 422, 429, 599}) {
    Response r = Response::Json(status, "{}");
    EXPECT_EQ(OurHead(r, 2, true), BeastHead(r, 2, true)) << status;
  }
}

}  // namespace
}  // namespace caregate::server
