// TLS: a self-signed certificate made in the test with the OpenSSL API (no openssl binary
// needed), a server using it, and an OpenSSL client over loopback.
#include <gtest/gtest.h>

#include "support/temp_dir.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <openssl/x509.h>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"
#include "caregate/server/server.h"
#include "test_client.h"
#include "test_tls.h"

namespace caregate::server {
namespace {

using namespace std::chrono_literals;
using testing::Conn;
using testing::Get;
using testing::RunningServer;
using testing::MakeSelfSigned;
using testing::TestOptions;

using caregate::testing::TempDir;

std::shared_ptr<RequestHandler> MakeHandler() {
  Router router;
  router.Add("POST", "/v1/echo", Access::AnyRole(), [](const RequestContext& ctx) {
    return Response::Text(200, "len=" + std::to_string(ctx.body.size()) + " user=" + ctx.principal->user_id);
  });
  TokenStore tokens;
  tokens.Add(Sha256Hex("tok"), Role::kHealth, "alice");
  return std::make_shared<RequestHandler>(std::move(router), std::move(tokens));
}

struct ClientCtx {
  ClientCtx() : ctx(SSL_CTX_new(TLS_client_method())) {}
  ~ClientCtx() { SSL_CTX_free(ctx); }
  SSL_CTX* ctx;
};

// Test options serving TLS with a fresh self-signed certificate (serial 1) in `dir`:
// cert.pem and key.pem.
ServerOptions TlsOptions(const TempDir& dir) {
  EXPECT_TRUE(MakeSelfSigned(dir.file("cert.pem"), dir.file("key.pem")));
  auto options = TestOptions();
  options.tls_cert = dir.file("cert.pem");
  options.tls_key = dir.file("key.pem");
  return options;
}

TEST(ServerTls, ServesHttpsWithASelfSignedCertificate) {
  TempDir dir;
  auto options = TlsOptions(dir);
  RunningServer s(options, MakeHandler());
  EXPECT_TRUE(s.server().tls());

  ClientCtx client;
  Conn c(s.port());
  ASSERT_TRUE(c.StartTls(client.ctx));
  for (int i = 0; i < 2; ++i) {  // keep-alive over TLS
    ASSERT_TRUE(c.Send(Get("/healthz")));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, R"({"status":"ready"})");
  }
  c.Send("POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: 3\r\n\r\nabc");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "len=3 user=alice");
}

TEST(ServerTls, PlainHttpToTheTlsPortGetsNoAnswer) {
  TempDir dir;
  auto options = TlsOptions(dir);
  RunningServer s(options, MakeHandler());
  Conn c(s.port());
  c.Send(Get("/healthz"));
  EXPECT_FALSE(c.Read(2s));
  Conn after(s.port());
  ClientCtx client;
  ASSERT_TRUE(after.StartTls(client.ctx));
  after.Send(Get("/healthz"));
  auto r = after.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// The serial number of the certificate a new TLS connection to `port` is shown.
long ServedSerial(std::uint16_t port, SSL_CTX* client) {
  Conn c(port);
  if (!c.StartTls(client)) return -1;
  X509* cert = SSL_get1_peer_certificate(c.ssl());
  const long serial = cert ? ASN1_INTEGER_get(X509_get_serialNumber(cert)) : -1;
  X509_free(cert);
  return serial;
}

// Certificate renewal without a restart (SIGHUP in `caregate serve`): new connections
// get the new certificate, a connection already open keeps working, and files that do
// not load keep the certificate in use.
TEST(ServerTls, ReloadServesTheRenewedCertificate) {
  TempDir dir;
  const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
  auto options = TlsOptions(dir);
  int reloads = 0;
  ReloadReport last;
  options.on_reload = [&reloads, &last](const ReloadReport& report) {
    ++reloads;
    last = report;
  };
  RunningServer s(options, MakeHandler());
  ClientCtx client;
  EXPECT_EQ(ServedSerial(s.port(), client.ctx), 1);
  Conn open(s.port());
  ASSERT_TRUE(open.StartTls(client.ctx));

  ASSERT_TRUE(MakeSelfSigned(cert, key, 2));
  EXPECT_TRUE(s.server().Reload());
  EXPECT_EQ(reloads, 1);
  EXPECT_EQ(ServedSerial(s.port(), client.ctx), 2);
  // The callback is told what was loaded: the certificate's subject, serial and end.
  EXPECT_TRUE(last.tls && last.tls_loaded);
  EXPECT_NE(last.tls_detail.find("subject CN="), std::string::npos) << last.tls_detail;
  EXPECT_NE(last.tls_detail.find(", serial 02, valid until 20"), std::string::npos) << last.tls_detail;
  ASSERT_TRUE(open.Send(Get("/healthz")));  // begun with the old certificate
  auto r = open.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  ASSERT_TRUE(MakeSelfSigned(dir.file("other.pem"), key, 3));  // a key that is not cert's
  EXPECT_TRUE(s.server().Reload());
  EXPECT_EQ(reloads, 2);
  EXPECT_EQ(ServedSerial(s.port(), client.ctx), 2);
  EXPECT_TRUE(last.tls && !last.tls_loaded);
  EXPECT_NE(last.tls_detail.find("does not match the certificate"), std::string::npos) << last.tls_detail;
  std::filesystem::remove(cert);
  EXPECT_TRUE(s.server().Reload());
  EXPECT_EQ(ServedSerial(s.port(), client.ctx), 2);

  s.StopAndJoin();
  EXPECT_FALSE(s.server().Reload());  // at once: nothing runs the reload any more
  EXPECT_EQ(reloads, 3);
}

// A reload whose callback throws is reported on stderr: Reload still returns, and the
// next reload runs (an exception used to escape into the I/O loop, and Reload waited
// for ever).
TEST(ServerTls, AFailingReloadCallbackDoesNotStopTheNext) {
  TempDir dir;
  auto options = TlsOptions(dir);
  int calls = 0;
  options.on_reload = [&calls](const ReloadReport&) {
    if (++calls == 1) throw std::runtime_error("tokens file vanished");
  };
  RunningServer s(options, MakeHandler());
  ClientCtx client;
  ASSERT_EQ(ServedSerial(s.port(), client.ctx), 1);
  EXPECT_TRUE(s.server().Reload());
  EXPECT_TRUE(s.server().Reload());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(ServedSerial(s.port(), client.ctx), 1);
}

TEST(ServerTls, MissingOrMismatchedFilesAreFatal) {
  TempDir dir;
  ASSERT_TRUE(MakeSelfSigned(dir.file("cert.pem"), dir.file("key.pem")));
  ASSERT_TRUE(MakeSelfSigned(dir.file("cert2.pem"), dir.file("key2.pem")));
  auto options = TestOptions();
  options.tls_cert = dir.file("cert.pem");
  options.tls_key = dir.file("missing.pem");
  EXPECT_THROW(Server(options, MakeHandler()), FatalError);
  options.tls_key = dir.file("key2.pem");  // not the certificate's key
  EXPECT_THROW(Server(options, MakeHandler()), FatalError);
  options.tls_key.clear();  // only one of the two
  try {
    Server server(options, MakeHandler());
    ADD_FAILURE() << "started TLS without a key";
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kUsage);
  }
}

}  // namespace
}  // namespace caregate::server
