#pragma once
// The network side: a listener accepting on one endpoint and a session per connection
// (HTTP/1.1 keep-alive, one request at a time, timeouts, header and body limits,
// optional TLS). Requests are handed to a RequestHandler. Boost stays in server.cc.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "caregate/server/handler.h"

namespace caregate::server {

struct ServerTimeouts {
  // A new connection's first request (and the TLS handshake), and any request head once
  // its first byte has arrived.
  std::chrono::milliseconds header{10'000};
  std::chrono::milliseconds body{30'000};   // the whole body, once the head is read
  std::chrono::milliseconds idle{30'000};   // keep-alive wait for the next request
  std::chrono::milliseconds write{30'000};  // writing one response
  // After an error response (400/413/431) the server stops sending and discards what
  // the client still sends for at most this long, so the client reads the error
  // instead of a connection reset.
  std::chrono::milliseconds linger{2'000};
  // Stop(): how long in-flight requests may take before the server gives up on them.
  std::chrono::milliseconds shutdown_grace{10'000};
};

// What a reload did with the TLS files, for ServerOptions::on_reload.
struct ReloadReport {
  bool tls = false;         // the server speaks TLS: its files were read again
  bool tls_loaded = false;  // and new connections get them; false: the ones in use stay
  // Loaded: the certificate, "subject <RFC 2253 name>, serial <hex>, valid until
  // <YYYY-MM-DDTHH:MM:SSZ>"; refused: why, on one line.
  std::string tls_detail;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT, [v6]:PORT; port 0 = ephemeral
  std::string tls_cert;                   // PEM chain; TLS when both files are given
  std::string tls_key;                    // PEM private key
  std::size_t body_limit = 1 << 20;       // bytes; larger -> 413 and close
  std::size_t header_limit = 16 << 10;    // request line + fields; larger -> 431 and close
  ServerTimeouts timeouts;
  unsigned io_threads = 0;       // socket I/O threads; 0 = hardware concurrency
  unsigned handler_threads = 64; // threads running Execution::kWorker handlers; 0 = all on the I/O threads
  // Client connections open at once. One more is answered 503 (problem+json, Retry-After)
  // and closed rather than left to exhaust the process's descriptors. 0: from the
  // descriptor limit (RLIMIT_NOFILE, its soft limit first raised to the hard one, at most
  // 65,536), less 256 kept back for the database, logs and TLS files.
  std::size_t max_connections = 0;
  bool handle_signals = true;    // SIGINT/SIGTERM -> Stop()
  // Called on every SIGHUP (with handle_signals) and Server::Reload(), on an I/O thread,
  // after the TLS files are read again, with what that did (`caregate serve` reloads its
  // tokens file and audits both). Must not throw or block for long.
  std::function<void(const ReloadReport&)> on_reload;
};

// Splits "HOST:PORT" / "[IPV6]:PORT". Throws FatalError(kUsage) when malformed.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
HostPort ParseHostPort(std::string_view listen);

class Server {
 public:
  // Binds and listens at once (so port() is known before Run()). Throws FatalError:
  // kUsage for a bad listen address, kIoFailure when it cannot bind or the TLS files
  // cannot be loaded.
  Server(ServerOptions options, std::shared_ptr<RequestHandler> handler);
  ~Server();  // call after Run() has returned (or if it never ran)
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const;    // the bound port (useful with port 0)
  std::string endpoint() const;  // "127.0.0.1:43211"
  bool tls() const;
  std::size_t max_connections() const;       // the cap in force (ServerOptions::max_connections)
  std::uint64_t connections_refused() const;  // answered 503 and closed at the cap so far

  // Serves until Stop() or a signal, then stops accepting, lets in-flight requests finish
  // (up to timeouts.shutdown_grace) and returns. Call once.
  void Run();
  // Thread-safe, idempotent, non-blocking; fine before Run() (Run then returns at once).
  void Stop();
  // What SIGHUP does, for callers that do not use signals: reads the TLS certificate and
  // key files again (new connections use them; a file that fails to load keeps the one in
  // use, said on stderr), then calls ServerOptions::on_reload. Waits until done, and
  // returns true then; false at once when the server is not serving (Run() not called
  // yet, or stopping). Not from an I/O thread.
  bool Reload();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace caregate::server
