// The server over real loopback sockets: keep-alive, limits, malformed input, timeouts,
// graceful stop, metrics.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <future>
#include <mutex>
#include <optional>
#include <vector>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"
#include "caregate/server/server.h"
#include "test_client.h"

namespace caregate::server {
namespace {

using namespace std::chrono_literals;
using testing::Conn;
using testing::Get;
using testing::Reply;
using testing::RunningServer;
using testing::TestOptions;

constexpr const char* kAuth = "Authorization: Bearer tok\r\n";

std::shared_ptr<RequestHandler> MakeHandler(std::atomic<int>* in_flight = nullptr) {
  Router router;
  router.Add("GET", "/v1/echo", Access::AnyRole(), [](const RequestContext& ctx) {
    return Response::Text(200, "n=" + std::string(ctx.Query("n").value_or("")));
  });
  router.Add("POST", "/v1/echo", Access::AnyRole(), [](const RequestContext& ctx) {
    return Response::Text(200, "len=" + std::to_string(ctx.body.size()));
  });
  router.Add("GET", "/v1/slow", Access::AnyRole(), [in_flight](const RequestContext& ctx) {
    if (in_flight) ++*in_flight;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(std::string(ctx.Query("ms").value_or("0")))));
    if (in_flight) --*in_flight;
    return Response::Text(200, "slept");
  });
  router.Add("GET", "/v1/status/{code}", Access::AnyRole(), [](const RequestContext& ctx) {
    return Response::Text(std::stoi(std::string(ctx.Param("code"))), "body");
  });
  TokenStore tokens;
  tokens.Add(Sha256Hex("tok"), Role::kService, "job");
  return std::make_shared<RequestHandler>(std::move(router), std::move(tokens));
}

std::string Post(std::string_view target, std::string_view body, std::string_view extra = {}) {
  return "POST " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n" + kAuth + std::string(extra) +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(ServerSocket, AnswersOverLoopbackWithKeepAlive) {
  RunningServer s(TestOptions(), MakeHandler());
  Conn c(s.port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send(Get("/v1/echo?n=" + std::to_string(i), kAuth)));
    auto r = c.Read();
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "n=" + std::to_string(i));
    EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
    EXPECT_FALSE(r->header("x-request-id").empty());
    EXPECT_FALSE(r->header("date").empty());
    EXPECT_EQ(r->header("server"), "caregate");
    EXPECT_NE(r->header("connection"), "close");
  }
  ASSERT_TRUE(c.Send(Get("/healthz")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, R"({"status":"ready"})");
}

// HEAD is answered wherever GET is (RFC 9110 9.3.2): the same status and head, with the
// GET answer's Content-Length, and no body, so the next answer on the connection starts
// right after the head.
TEST(ServerSocket, HeadIsAnsweredLikeGetWithoutTheBody) {
  RunningServer s(TestOptions(), MakeHandler());
  Conn c(s.port());
  const std::string head = "HEAD /v1/echo?n=12345 HTTP/1.1\r\nHost: localhost\r\n" + std::string(kAuth) + "\r\n";
  ASSERT_TRUE(c.Send(head + Get("/v1/echo?n=2", kAuth) + "HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" +
                     Get("/healthz")));
  auto a = c.Read(std::chrono::seconds(10), /*head_request=*/true);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->header("content-length"), "7");  // "n=12345", not sent
  EXPECT_EQ(a->header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(a->body, "");
  auto b = c.Read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body, "n=2");  // the next answer was not mistaken for a body
  auto h = c.Read(std::chrono::seconds(10), true);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->header("content-length"), std::to_string(std::string(R"({"status":"ready"})").size()));
  auto g = c.Read();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->body, R"({"status":"ready"})");
  // Without a token, HEAD is refused like GET; a POST-only route does not take it.
  ASSERT_TRUE(c.Send("HEAD /v1/echo HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto u = c.Read(std::chrono::seconds(10), true);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->status, 401);
  EXPECT_EQ(u->body, "");
}

TEST(ServerSocket, PipelinedRequestsAreAnsweredInOrder) {
  RunningServer s(TestOptions(), MakeHandler());
  Conn c(s.port());
  ASSERT_TRUE(c.Send(Get("/v1/slow?ms=100", kAuth) + Get("/v1/echo?n=2", kAuth) + Post("/v1/echo", "abc") +
                     Get("/v1/echo?n=4", kAuth)));
  auto a = c.Read(), b = c.Read(), d = c.Read(), e = c.Read();
  ASSERT_TRUE(a && b && d && e);
  EXPECT_EQ(a->body, "slept");
  EXPECT_EQ(b->body, "n=2");
  EXPECT_EQ(d->body, "len=3");
  EXPECT_EQ(e->body, "n=4");
}

TEST(ServerSocket, BodyOverLimitIs413AndCloses) {
  auto options = TestOptions();
  options.body_limit = 1024;
  RunningServer s(options, MakeHandler());
  {
    Conn c(s.port());
    ASSERT_TRUE(c.Send(Post("/v1/echo", std::string(1024, 'x'))));  // at the limit: fine
    auto ok = c.Read();
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->body, "len=1024");
    c.Send(Post("/v1/echo", std::string(200000, 'x')));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->header("content-type"), "application/problem+json");
    EXPECT_NE(r->body.find("\"type\":\"urn:caregate:problem:body-too-large\""), std::string::npos) << r->body;
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.ClosedWithin(3s));
  }
  {
    // Chunked: no Content-Length to check up front; the parser stops at the limit.
    Conn c(s.port());
    std::string req = std::string("POST /v1/echo HTTP/1.1\r\nHost: x\r\n") + kAuth + "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 4; ++i) req += "200\r\n" + std::string(512, 'y') + "\r\n";
    req += "0\r\n\r\n";
    c.Send(req);
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.ClosedWithin(3s));
  }
  Conn after(s.port());
  after.Send(Get("/healthz"));
  auto r = after.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(ServerSocket, HugeHeaderIs431AndCloses) {
  auto options = TestOptions();
  options.header_limit = 4096;
  RunningServer s(options, MakeHandler());
  Conn c(s.port());
  c.Send(Get("/healthz", "X-Big: " + std::string(8000, 'h') + "\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(r->body.find("header-too-large"), std::string::npos);
  EXPECT_TRUE(c.ClosedWithin(3s));
}

TEST(ServerSocket, MalformedRequestIs400AndServerKeepsServing) {
  RunningServer s(TestOptions(), MakeHandler());
  for (std::string bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET /healthz HTTP/9.x\r\n\r\n"),
                          std::string("GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"),
                          std::string("POST /v1/echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n")}) {
    Conn c(s.port());
    c.Send(bad);
    auto r = c.Read();
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_NE(r->body.find("\"type\":\"urn:caregate:problem:malformed\""), std::string::npos);
    EXPECT_TRUE(c.ClosedWithin(3s));
  }
  Conn c(s.port());
  c.Send(Get("/healthz"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(ServerSocket, SilentClientIsDroppedAfterHeaderTimeout) {
  RunningServer s(TestOptions(), MakeHandler());  // header timeout 600 ms
  auto t0 = std::chrono::steady_clock::now();
  Conn silent(s.port());
  Conn partial(s.port());
  partial.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // never finishes the head
  EXPECT_TRUE(silent.ClosedWithin(3s));
  EXPECT_TRUE(partial.ClosedWithin(3s));
  const double took = Since(t0);
  EXPECT_GE(took, 0.5);
  EXPECT_LT(took, 2.5);
}

TEST(ServerSocket, SlowBodyIsDroppedAfterBodyTimeout) {
  auto options = TestOptions();
  options.timeouts.body = 500ms;
  RunningServer s(options, MakeHandler());
  Conn c(s.port());
  c.Send(std::string("POST /v1/echo HTTP/1.1\r\nHost: x\r\n") + kAuth + "Content-Length: 100\r\n\r\nonly a bit");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ClosedWithin(3s));
  EXPECT_GE(Since(t0), 0.4);
}

TEST(ServerSocket, IdleKeepAliveConnectionIsClosed) {
  RunningServer s(TestOptions(), MakeHandler());  // idle timeout 600 ms
  Conn c(s.port());
  c.Send(Get("/healthz"));
  ASSERT_TRUE(c.Read());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ClosedWithin(3s));
  EXPECT_GE(Since(t0), 0.5);
}

TEST(ServerSocket, ConnectionsOverTheCapAre503AndClosed) {
  ServerOptions o = TestOptions();
  o.max_connections = 2;
  o.timeouts.idle = std::chrono::milliseconds(5000);
  RunningServer s(o, MakeHandler());
  EXPECT_EQ(s.server().max_connections(), 2u);
  Conn a(s.port());
  std::optional<Conn> b;
  b.emplace(s.port());
  ASSERT_TRUE(a.Send(Get("/healthz")));
  ASSERT_TRUE(b->Send(Get("/healthz")));
  ASSERT_EQ(a.Read()->status, 200);
  ASSERT_EQ(b->Read()->status, 200);
  // Both are open and idle: a third is told to come back, and closed.
  Conn c(s.port());
  auto r = c.Read(3s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("content-type"), "application/problem+json");
  EXPECT_EQ(r->header("retry-after"), "1");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_NE(r->body.find("\"status\":503"), std::string::npos) << r->body;
  EXPECT_TRUE(c.ClosedWithin(3s));
  // The open ones still work, and a place freed is taken again.
  ASSERT_TRUE(a.Send(Get("/healthz")));
  EXPECT_EQ(a.Read()->status, 200);
  b.reset();
  EXPECT_EQ(s.server().connections_refused(), 1u);
  ASSERT_TRUE(a.Send(Get("/metrics")));
  auto m = a.Read();
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("caregate_http_connections_refused_total 1\n"), std::string::npos) << m->body;
  for (int i = 0; i < 100; ++i) {
    Conn d(s.port());
    ASSERT_TRUE(d.Send(Get("/healthz")));
    auto rd = d.Read(3s);
    ASSERT_TRUE(rd);
    if (rd->status == 200) return;
    std::this_thread::sleep_for(20ms);  // b's close may not have been seen yet
  }
  ADD_FAILURE() << "no connection accepted after one was closed";
}

TEST(Server, ConnectionCapFollowsTheDescriptorLimitByDefault) {
  ServerOptions o = TestOptions();
  o.max_connections = 0;
  Server s(o, MakeHandler());
  struct rlimit rl {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  // Descriptors are kept back for the database, logs and TLS files.
  EXPECT_EQ(s.max_connections(), rl.rlim_cur > 512 ? rl.rlim_cur - 256 : rl.rlim_cur / 2);
  EXPECT_GE(s.max_connections(), 1u);
}

// RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no body
// length anyone can agree on. Reading it as bodiless would run its body as the next
// request (smuggling it past a proxy that reads the header the other way): 400, closed.
TEST(ServerSocket, TransferEncodingThatIsNotChunkedIs400AndCloses) {
  RunningServer s(TestOptions(), MakeHandler());
  for (const char* coding : {"gzip", "identity", "xchunked", "chunked, gzip"}) {
    Conn c(s.port());
    c.Send(std::string("POST /v1/echo HTTP/1.1\r\nHost: x\r\n") + kAuth + "Transfer-Encoding: " + coding +
           "\r\n\r\nGET /v1/echo?n=smuggled HTTP/1.1\r\nHost: x\r\n" + kAuth + "\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r) << coding;
    EXPECT_EQ(r->status, 400) << coding;
    EXPECT_NE(r->body.find("Transfer-Encoding"), std::string::npos) << r->body;
    EXPECT_TRUE(c.ClosedWithin(3s)) << coding << ": the rest was read as another request";
  }
  Conn c(s.port());  // chunked is read as before
  c.Send(std::string("POST /v1/echo HTTP/1.1\r\nHost: x\r\n") + kAuth +
         "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "len=3");
}

// RFC 9112 3.2: an HTTP/1.1 request without a Host field, or with more than one, is 400.
TEST(ServerSocket, HttpOneOneWithoutExactlyOneHostIs400) {
  RunningServer s(TestOptions(), MakeHandler());
  for (const char* head : {"GET /healthz HTTP/1.1\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"}) {
    Conn c(s.port());
    c.Send(head);
    auto r = c.Read();
    ASSERT_TRUE(r) << head;
    EXPECT_EQ(r->status, 400) << head;
    EXPECT_NE(r->body.find("Host"), std::string::npos) << r->body;
    EXPECT_TRUE(c.ClosedWithin(3s));
  }
  Conn c(s.port());  // HTTP/1.0 needs none
  c.Send("GET /healthz HTTP/1.0\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// RFC 9110 2.5: a later HTTP/1 minor version is served as HTTP/1.1, kept alive and all
// (Beast's parser takes only 1.0 and 1.1). RFC 9110 15.6.6: another major version gets
// 505, and the connection closes.
TEST(ServerSocket, LaterMinorVersionIsServedAsHttp11AndOtherMajorsAre505) {
  RunningServer s(TestOptions(), MakeHandler());
  {
    Conn c(s.port());
    c.Send("GET /v1/echo?n=1 HTTP/1.2\r\nHost: localhost\r\n" + std::string(kAuth) + "\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "n=1");
    // The same connection, and a head that arrives in two pieces (the read operation's path).
    c.Send("GET /v1/echo?n=2 HTTP/1.9\r\nHost: local");
    std::this_thread::sleep_for(50ms);
    c.Send("host\r\n" + std::string(kAuth) + "\r\n");
    r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "n=2");
  }
  for (std::string other : {std::string("GET /healthz HTTP/2.0\r\nHost: localhost\r\n\r\n"),
                            std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),  // HTTP/2's preface
                            std::string("GET /healthz HTTP/0.9\r\n\r\n"),
                            std::string("GET /healthz HTTP/3.1\r\nHost: localhost\r\n\r\n")}) {
    Conn c(s.port());
    c.Send(other);
    auto r = c.Read();
    ASSERT_TRUE(r) << other;
    EXPECT_EQ(r->status, 505) << other;
    EXPECT_NE(r->body.find("\"type\":\"urn:caregate:problem:http-version\""), std::string::npos) << r->body;
    EXPECT_TRUE(c.ClosedWithin(3s)) << other;
  }
}

// The parser judges a version as soon as its characters are in, before the line ends:
// whether the rest of the line comes in the same read or later must not change the
// answer (review: a request line split after its version got 400). A line that is not
// `method SP target SP HTTP/D.D CRLF` stays 400 whatever version text it holds.
TEST(ServerSocket, VersionAnswersDoNotDependOnWhereTheLineIsSplit) {
  RunningServer s(TestOptions(), MakeHandler());
  struct Case {
    std::string first, rest;
    int status;
  };
  const std::string target_4k = "/v1/echo?n=" + std::string(4096 - 4 - 11 - 9, 'x');  // the line is 4096 bytes
  for (const Case& c : std::vector<Case>{
           {"GET /v1/echo?n=1 HTTP/1.2", "\r\nHost: localhost\r\n" + std::string(kAuth) + "\r\n", 200},
           {"GET " + target_4k + " HTTP/1.2", "\r\nHost: localhost\r\n" + std::string(kAuth) + "\r\n", 200},
           {"GET /healthz HTTP/2.0", "\r\nHost: localhost\r\n\r\n", 505},
           {"PRI * HTTP/2.0", "\r\n\r\nSM\r\n\r\n", 505},
           {"GET /healthz HTTP/1.1 HTTP/2.0\r\nHost: localhost\r\n\r\n", "", 400},
           {"GET /a b HTTP/3.0\r\nHost: localhost\r\n\r\n", "", 400},
           {"GET /healthz HTTP/1.1\nX: HTTP/2.0\r\n\r\n", "", 400},
           {"GET /healthz HTTP/1.2", std::string(20000, 'x'), 431},  // no end of line within the limit
       }) {
    SCOPED_TRACE(c.first.substr(0, 40));
    Conn conn(s.port());
    ASSERT_TRUE(conn.Send(c.first));
    if (!c.rest.empty()) {
      std::this_thread::sleep_for(30ms);
      conn.Send(c.rest);  // may fail once the server has answered and closed (431)
    }
    auto r = conn.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    if (c.status == 200) {
      EXPECT_EQ(r->body.substr(0, 2), "n=");
    }
  }
}

TEST(ServerSocket, HttpTenClosesAfterResponse) {
  RunningServer s(TestOptions(), MakeHandler());
  Conn c(s.port());
  c.Send("GET /healthz HTTP/1.0\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.ClosedWithin(2s));
}

TEST(ServerSocket, ExpectContinueGets100) {
  RunningServer s(TestOptions(), MakeHandler());
  Conn c(s.port());
  c.Send(std::string("POST /v1/echo HTTP/1.1\r\nHost: x\r\n") + kAuth +
         "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  auto cont = c.Read(2s);
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  c.Send("hello");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "len=5");
}

TEST(ServerSocket, BlockedHandlerDoesNotStallOtherConnections) {
  auto options = TestOptions();
  options.io_threads = 1;  // even with one I/O thread
  RunningServer s(options, MakeHandler());
  Conn slow(s.port());
  slow.Send(Get("/v1/slow?ms=1500", kAuth));
  std::this_thread::sleep_for(100ms);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    Conn fast(s.port());
    fast.Send(Get("/healthz"));
    auto r = fast.Read(2s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_LT(Since(t0), 0.5);
  auto r = slow.Read(3s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "slept");
}

TEST(ServerSocket, ManyConcurrentClientsAreAllAnswered) {
  RunningServer s(TestOptions(), MakeHandler());
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t)
    clients.emplace_back([&, t] {
      Conn c(s.port());
      for (int i = 0; i < 50; ++i) {
        if (!c.Send(Get("/v1/echo?n=" + std::to_string(t * 100 + i), kAuth))) return;
        auto r = c.Read();
        if (r && r->status == 200 && r->body == "n=" + std::to_string(t * 100 + i)) ++ok;
      }
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 800);
}

TEST(ServerSocket, StopLetsInFlightRequestFinish) {
  std::atomic<int> in_flight{0};
  auto handler = MakeHandler(&in_flight);
  auto server = std::make_unique<Server>(TestOptions(), handler);
  const auto port = server->port();
  std::thread runner([&] { server->Run(); });
  Conn busy(port);
  busy.Send(Get("/v1/slow?ms=700", kAuth));
  Conn idle(port);
  idle.Send(Get("/healthz"));
  ASSERT_TRUE(idle.Read());
  while (in_flight.load() == 0) std::this_thread::sleep_for(5ms);

  auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_TRUE(idle.ClosedWithin(1s));  // idle keep-alive connections close at once
  auto r = busy.Read(3s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "slept");
  EXPECT_EQ(r->header("connection"), "close");
  runner.join();
  EXPECT_LT(Since(t0), 2.0);
  EXPECT_FALSE(handler->ready());
  Conn refused(port);
  EXPECT_FALSE(refused.connected());
}

TEST(ServerSocket, StopBeforeRunReturnsAtOnce) {
  Server server(TestOptions(), MakeHandler());
  server.Stop();
  server.Stop();
  auto t0 = std::chrono::steady_clock::now();
  server.Run();
  EXPECT_LT(Since(t0), 1.0);
}

TEST(ServerSocket, SigtermStopsTheServer) {
  auto options = TestOptions();
  options.handle_signals = true;
  Server server(options, MakeHandler());
  auto done = std::async(std::launch::async, [&] { server.Run(); });
  Conn c(server.port());
  c.Send(Get("/healthz"));
  ASSERT_TRUE(c.Read());
  std::raise(SIGTERM);
  EXPECT_EQ(done.wait_for(3s), std::future_status::ready);
}

TEST(ServerSocket, MetricsCountRequestsByRouteAndStatus) {
  auto options = TestOptions();
  options.body_limit = 16;
  RunningServer s(options, MakeHandler());
  {
    Conn c(s.port());
    for (int i = 0; i < 3; ++i) {
      c.Send(Get("/healthz"));
      ASSERT_TRUE(c.Read());
    }
    c.Send(Get("/v1/echo"));  // no token
    ASSERT_TRUE(c.Read());
  }
  {
    Conn c(s.port());
    c.Send(Post("/v1/echo", std::string(100, 'x')));
    ASSERT_TRUE(c.Read());
  }
  // Requests are counted once their response is written, so poll briefly.
  const std::vector<std::string> expected = {
      "caregate_http_requests_total{route=\"/healthz\",status=\"200\"} 3\n",
      "caregate_http_requests_total{route=\"/v1/echo\",status=\"401\"} 1\n",
      "caregate_http_requests_total{route=\"/v1/echo\",status=\"413\"} 1\n",
      "# TYPE caregate_http_request_duration_seconds histogram\n",
      "caregate_http_request_duration_seconds_count{route=\"/healthz\"} 3\n",
      "caregate_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 3\n",
      "# TYPE caregate_http_connections_open gauge\n"};
  std::string text;
  for (int attempt = 0; attempt < 50; ++attempt) {
    Conn c(s.port());
    c.Send(Get("/metrics"));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    text = r->body;
    if (std::all_of(expected.begin(), expected.end(), [&](const std::string& e) { return text.find(e) != std::string::npos; }))
      break;
    std::this_thread::sleep_for(20ms);
  }
  for (const auto& e : expected) EXPECT_NE(text.find(e), std::string::npos) << e << "\n" << text;
}

TEST(ServerSocket, BodylessAndInvalidStatusesAreSafe) {
  RunningServer s(TestOptions(), MakeHandler());
  Conn c(s.port());
  c.Send(Get("/v1/status/204", kAuth));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->body, "");
  c.Send(Get("/v1/status/42", kAuth));  // not a final status: the server answers 500
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  c.Send(Get("/v1/status/201", kAuth));  // and the connection is still usable
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "body");
}

TEST(ServerSocket, ListensOnIpv6Loopback) {
  auto options = TestOptions();
  options.listen = "[::1]:0";
  std::unique_ptr<RunningServer> s;
  try {
    s = std::make_unique<RunningServer>(options, MakeHandler());
  } catch (const FatalError& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  EXPECT_EQ(s->server().endpoint(), "[::1]:" + std::to_string(s->port()));
  Conn c(s->port(), "::1");
  ASSERT_TRUE(c.connected());
  c.Send(Get("/healthz"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(Server, ParsesListenAddresses) {
  EXPECT_EQ(ParseHostPort("127.0.0.1:8080").host, "127.0.0.1");
  EXPECT_EQ(ParseHostPort("127.0.0.1:8080").port, 8080);
  EXPECT_EQ(ParseHostPort("[::1]:0").host, "::1");
  EXPECT_EQ(ParseHostPort("localhost:65535").port, 65535);
  for (const char* bad : {"", "127.0.0.1", ":8080", "127.0.0.1:", "::1:80", "[::1]", "[::1]80", "h:65536", "h:8x"})
    EXPECT_THROW(ParseHostPort(bad), FatalError) << bad;
}

TEST(Server, ReportsBoundPortAndBindFailures) {
  Server a(TestOptions(), MakeHandler());
  EXPECT_NE(a.port(), 0);
  EXPECT_EQ(a.endpoint(), "127.0.0.1:" + std::to_string(a.port()));
  EXPECT_FALSE(a.tls());
  auto options = TestOptions();
  options.listen = "127.0.0.1:" + std::to_string(a.port());
  try {
    Server b(options, MakeHandler());
    ADD_FAILURE() << "bound a port already listening";
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kIoFailure);
  }
  options.listen = "nonsense";
  try {
    Server c(options, MakeHandler());
    ADD_FAILURE() << "accepted a bad listen address";
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kUsage);
  }
}

TEST(ServerSocket, DeferredAnswerDoesNotHoldTheIoThread) {
  // One I/O thread, no pool: while one request waits for its deferred write (an audit
  // event being committed), the same thread keeps answering other connections.
  std::mutex mu;
  std::vector<RequestContext::WriteDone> pending;
  Router router;
  router.Add(
      "GET", "/v1/deferred", Access::AnyRole(),
      [&](const RequestContext& ctx) {
        std::lock_guard lock(mu);
        pending.push_back(ctx.Defer());
        return Response::Text(200, "written");
      },
      Execution::kInline);
  TokenStore tokens;
  tokens.Add(Sha256Hex("tok"), Role::kService, "job");
  auto options = TestOptions();
  options.io_threads = 1;
  options.handler_threads = 0;
  RunningServer s(options, std::make_shared<RequestHandler>(std::move(router), std::move(tokens)));
  auto take = [&] {
    for (int i = 0; i < 400; ++i) {
      {
        std::lock_guard lock(mu);
        if (!pending.empty()) {
          auto done = std::move(pending.back());
          pending.pop_back();
          return done;
        }
      }
      std::this_thread::sleep_for(5ms);
    }
    return RequestContext::WriteDone();
  };

  Conn waiting(s.port());
  waiting.Send(Get("/v1/deferred", kAuth));
  auto done = take();
  ASSERT_TRUE(done);
  Conn other(s.port());
  other.Send(Get("/healthz"));
  auto r = other.Read(2s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(waiting.Read(200ms));  // not answered before its write is done
  std::thread([done] { done(nullptr); }).join();
  r = waiting.Read(2s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "written");

  waiting.Send(Get("/v1/deferred", kAuth));  // the same connection, kept alive
  done = take();
  ASSERT_TRUE(done);
  std::thread([done] { done(std::make_exception_ptr(FatalError(caregate::Problem::kIoFailure, "fsync"))); }).join();
  r = waiting.Read(2s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);  // never answered as if written
}

TEST(Server, HandlersRunOnIoThreadsWhenThePoolIsOff) {
  auto options = TestOptions();
  options.handler_threads = 0;
  RunningServer s(options, MakeHandler());
  Conn c(s.port());
  c.Send(Get("/v1/echo?n=7", kAuth));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "n=7");
}

}  // namespace
}  // namespace caregate::server
