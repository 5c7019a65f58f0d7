// Listener and sessions, after the shape of Beast's own examples (advanced_server_flex):
// the Engine owns the io_contexts and accepts; a Session per connection reads one request
// at a time, hands it to the RequestHandler on a worker thread and writes the answer.
//
// Threading: one io_context per I/O thread, each run by exactly one thread. A session is
// placed on one context (round robin) and stays there, so its handlers never run at the
// same time and need no strand; contexts share nothing on the hot path. Context 0 also
// runs the acceptor, the signal set and the shutdown timers. Handlers of routes that may
// block (Execution::kWorker) run on a separate worker pool; the others on the session's
// I/O thread. Either way a handler does not wait for its audit event to be durable: it
// defers its response (RequestContext::Defer), and the audit writer's completion posts
// the response back to the session's context.
#include "caregate/server/server.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <future>
#include <ctime>
#include <list>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "caregate/core/error.h"
#include "caregate/core/text.h"

namespace caregate::server {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
// Sessions run on their io_context's own executor type rather than asio's type-erased
// any_io_executor (beast::tcp_stream's default), which Beast copies and destroys on every
// operation (~2% of an I/O thread under the lookup bench).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using PlainStream = beast::basic_stream<tcp, Executor>;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kFirstReadSize = 4096;
constexpr std::size_t kKeepBuffer = 64u << 10;  // idle connections keep at most this much buffer
constexpr std::size_t kMaxDrain = 8u << 20;  // bytes discarded before closing after an error

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  return addr.is_v6() ? fmt::format("[{}]:{}", addr.to_string(), ep.port())
                      : fmt::format("{}:{}", addr.to_string(), ep.port());
}

std::string ToString(beast::string_view s) { return std::string(s.data(), s.size()); }

// RFC 9110 Date, formatted at most once a second per thread.
std::string_view HttpDate() {
  thread_local std::time_t cached = -1;
  thread_local char text[64];
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const int n = std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                                tm.tm_sec);
    length = n > 0 ? static_cast<std::size_t>(n) : 0;
    cached = now;
  }
  return {text, length};
}

bool IsHttpError(const beast::error_code& ec) {
  return &ec.category() == &http::make_error_code(http::error::bad_method).category();
}

std::vector<std::unique_ptr<asio::io_context>> MakeContexts(unsigned n) {
  std::vector<std::unique_ptr<asio::io_context>> out;
  for (unsigned i = 0; i < n; ++i) out.push_back(std::make_unique<asio::io_context>(1));
  return out;
}

// ServerOptions::max_connections, or from the descriptor limit when it is 0.
std::size_t ConnectionCap(std::size_t requested) {
  if (requested != 0) return requested;
  constexpr rlim_t kMost = 65'536, kKeptBack = 256;
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1'024 - kKeptBack;
  const rlim_t want = rl.rlim_max == RLIM_INFINITY ? kMost : std::min(rl.rlim_max, kMost);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    struct rlimit raised = rl;
    raised.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = want;
  }
  const rlim_t cur = rl.rlim_cur == RLIM_INFINITY ? kMost : rl.rlim_cur;
  return static_cast<std::size_t>(cur > 2 * kKeptBack ? cur - kKeptBack : std::max<rlim_t>(1, cur / 2));
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Shutdown() = 0;  // any thread
  // A TLS session keeps the context it was made with, which a reload may replace.
  std::shared_ptr<const ssl::context> tls_context;
};

// The server's TLS context from its certificate chain and key files. Throws
// FatalError(kIoFailure) naming the file that cannot be loaded.
std::shared_ptr<ssl::context> MakeTlsContext(const std::string& cert, const std::string& key) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  beast::error_code ec;
  ctx->use_certificate_chain_file(cert, ec);
  if (ec)
    throw FatalError(caregate::Problem::kIoFailure,
                     fmt::format("{}: cannot load the TLS certificate: {}", cert, ec.message()));
  ctx->use_private_key_file(key, ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw FatalError(caregate::Problem::kIoFailure,
                     fmt::format("{}: cannot load the TLS key, or it does not match the certificate", key));
  return ctx;
}

// "subject <RFC 2253 name>, serial <hex>, valid until <YYYY-MM-DDTHH:MM:SSZ>" of the
// context's certificate: what an operator checks after a renewal.
std::string CertificateSummary(ssl::context& ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx.native_handle());
  if (!cert) return "no certificate";
  std::string subject;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      if (n > 0 && data) subject.assign(data, static_cast<std::size_t>(n));
    }
    BIO_free(bio);
  }
  std::string serial;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  std::string until;
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
    until = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
  return OneLine("subject " + (subject.empty() ? std::string("(none)") : subject) + ", serial " +
                 (serial.empty() ? std::string("?") : serial) + ", valid until " + (until.empty() ? "?" : until));
}

class Engine {
 public:
  Engine(ServerOptions options, std::shared_ptr<RequestHandler> handler);
  ~Engine();

  void Run();
  void Stop();

  // Sessions call these. Register returns false when the server is already stopping.
  bool Register(const std::shared_ptr<SessionBase>& s, std::list<std::weak_ptr<SessionBase>>::iterator& it);
  void Unregister(std::list<std::weak_ptr<SessionBase>>::iterator it);

  const ServerOptions& options() const { return options_; }
  const RequestHandler& handler() const { return *handler_; }
  // Runs Execution::kWorker handlers on the pool; empty when handlers run on I/O threads.
  const RequestHandler::Offload& offload() const { return offload_; }
  // Requests handed to the handler and not yet answered (see Session::Completion); the
  // destructor waits for them, since their answers are posted to the contexts.
  void CallStarted() { calls_.fetch_add(1, std::memory_order_relaxed); }
  void CallEnded() {
    if (calls_.fetch_sub(1, std::memory_order_acq_rel) == 1) calls_.notify_all();
  }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  const tcp::endpoint& bound() const { return bound_; }
  bool tls() const { return tls_; }
  // SIGHUP's work: the TLS files read again (a failure keeps the context in use), then
  // ServerOptions::on_reload. On context 0.
  void Reload() noexcept;
  bool serving() const {
    return started_.load(std::memory_order_acquire) && !stopping_.load(std::memory_order_acquire);
  }
  template <class F>
  void PostToFirstContext(F&& f) {
    asio::post(*iocs_[0], std::forward<F>(f));
  }
  // Connections counted against the cap: from accept to the session's end.
  void ConnectionEnded() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::size_t max_connections() const { return max_connections_; }
  std::uint64_t connections_refused() const { return refused_connections_->value(); }
  // Refusals still writing their 503 and waiting for the client to close.
  void RefusalEnded() { refusing_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  void DoAccept();
  void OnAccept(beast::error_code ec, asio::io_context& target, Socket socket);
  void Refuse(Socket socket);
  void StopNow();  // on context 0
  void WaitForReload();  // on context 0: SIGHUP -> options_.on_reload, again and again

  ServerOptions options_;
  std::shared_ptr<RequestHandler> handler_;
  MetricGauge* open_connections_ = nullptr;
  MetricCounter* refused_connections_ = nullptr;
  std::size_t max_connections_ = 0;
  // Declared before the io_contexts: sessions and refusals the contexts destroy use them.
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> refusing_{0};

  // Declared before the io_context so they outlive the handlers it destroys.
  std::mutex sessions_mutex_;
  std::list<std::weak_ptr<SessionBase>> sessions_;
  bool closed_ = false;  // under sessions_mutex_: the engine is being destroyed
  std::shared_ptr<ssl::context> ssl_ctx_;  // on context 0: replaced by Reload
  bool tls_ = false;  // set once: tls() is read from any thread, ssl_ctx_ only on context 0

  unsigned io_threads_ = 1;
  std::vector<std::unique_ptr<asio::io_context>> iocs_;
  // Keeps every context's run() going while the server accepts; released by Stop().
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running_;
  std::size_t next_ioc_ = 0;  // context 0 only
  // These live on context 0.
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::signal_set reload_signals_;  // SIGHUP, with ServerOptions::on_reload
  asio::steady_timer grace_timer_;
  asio::steady_timer retry_timer_;
  std::unique_ptr<asio::thread_pool> pool_;  // destroyed first: its work refers to sessions
  RequestHandler::Offload offload_;
  std::atomic<std::int64_t> calls_{0};
  tcp::endpoint bound_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> forced_{false};
};

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, PlainStream>;

 public:
  template <class... Args>
  Session(Engine& engine, asio::io_context& ioc, std::string remote, Args&&... args)
      : engine_(engine), ioc_(ioc), stream_(std::forward<Args>(args)...), remote_(std::move(remote)) {}

  ~Session() override {
    if (registered_) engine_.Unregister(it_);
    engine_.ConnectionEnded();
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void Shutdown() override {
    // A weak reference: should this never run (its context already out of work), it must
    // not keep the session, and with it the server's shutdown, waiting.
    asio::post(stream_.get_executor(), [weak = this->weak_from_this()] {
      auto self = weak.lock();
      if (!self) return;
      self->stopping_ = true;
      // Waiting for a next request that has not begun: nothing is in flight.
      if (self->state_ == State::kIdle) beast::get_lowest_layer(self->stream_).cancel();
    });
  }

 private:
  enum class State { kStarting, kIdle, kReading, kHandling, kWriting, kClosing };

  const ServerTimeouts& timeouts() const { return engine_.options().timeouts; }
  PlainStream& lowest() { return beast::get_lowest_layer(stream_); }

  void Begin() {
    registered_ = engine_.Register(this->shared_from_this(), it_);
    if (!registered_) return Close();
    if constexpr (kTls) {
      state_ = State::kStarting;
      lowest().expires_after(timeouts().header);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->WaitForRequest();
                              });
    } else {
      WaitForRequest();
    }
  }

  void WaitForRequest() {
    if (stopping_ || engine_.stopping()) return Close();
    if (buffer_.size() > 0) return ReadHeader();  // a pipelined request is already here
    if (buffer_.capacity() > kKeepBuffer) buffer_.shrink_to_fit();  // after a large body
    state_ = State::kIdle;
    // A new connection gets the header timeout for its first byte; a kept-alive one the
    // idle timeout.
    lowest().expires_after(first_ ? timeouts().header : timeouts().idle);
    stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(engine_.options().header_limit));
    parser_->body_limit(engine_.options().body_limit);
    // Usually the whole request came in with the first read: parse it here rather than
    // through a read operation that would only find it in the buffer.
    beast::error_code parse_ec;
    ParseBuffered(parse_ec);
    if (parse_ec) return ReadFailed(parse_ec);
    if (parser_->is_header_done()) return OnHeader({});
    lowest().expires_after(timeouts().header);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  // Feeds the parser what is already buffered, as Beast's read operations do first.
  void ParseBuffered(beast::error_code& ec) {
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        return;
      }
      if (ec || used == 0) return;
    }
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return ReadFailed(ec);
    // The head is known: the refusal goes through the handler, authenticated if it can be
    // and audited, as a 413 does, then the connection closes.
    if (std::string bad = FramingProblem(); !bad.empty()) return RefuseUnread(caregate::Problem::kMalformed, bad);
    const auto length = parser_->content_length();
    if (length && *length > engine_.options().body_limit) return ReadFailed(http::error::body_limit);
    const auto& req = parser_->get();
    const auto expect = req[http::field::expect];
    if (!parser_->is_done() && beast::iequals(expect, "100-continue")) {
      continue_ = {http::status::continue_, 11};
      lowest().expires_after(timeouts().write);
      return http::async_write(stream_, continue_,
                               [self = this->shared_from_this()](beast::error_code wec, std::size_t) {
                                 if (wec) return self->Close();
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  // What Beast's parser lets through but RFC 9112 refuses; empty when the head is fine.
  // The answer is 400 and the connection closes, so nothing after the head is read as a
  // request of its own.
  std::string FramingProblem() const {
    const auto& req = parser_->get();
    // 6.3: without chunked as the final coding, the body's length cannot be known (Beast
    // would read the request as bodiless, and its body as the next request).
    if (req.count(http::field::transfer_encoding) > 0 && !parser_->chunked())
      return "the request's Transfer-Encoding does not end in chunked, so its body's length is unknown";
    // 3.2: an HTTP/1.1 request has exactly one Host field.
    if (req.version() >= 11) {
      const auto hosts = req.count(http::field::host);
      if (hosts == 0) return "the HTTP/1.1 request has no Host header field";
      if (hosts > 1) return "the HTTP/1.1 request has more than one Host header field";
    }
    return {};
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    lowest().expires_after(timeouts().body);
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->ReadFailed(ec);
      self->Dispatch();
    });
  }

  void ReadFailed(beast::error_code ec) {
    const auto& opts = engine_.options();
    // Beast's parser takes HTTP/1.0 and HTTP/1.1 only. RFC 9110 2.5: a later minor version
    // of 1 is served as the highest we speak (its request line is mended to 1.1 and the
    // head parsed again); RFC 9112 and 9110 15.6.6: another major version is answered 505.
    if (ec == http::error::bad_version) {
      const auto [version, line_end] = RefusedVersion();
      // The parser judges the version as soon as its characters are in, before the line's
      // end: wait for the end (the head's limit and timeout still apply) before deciding.
      if (line_end == std::string_view::npos)
        return buffer_.size() >= opts.header_limit ? ReadFailed(http::error::header_limit) : ReadMoreOfTheHead();
      if (version >= 12 && version <= 19) {
        MendVersionToHttp11(line_end);
        return ReadHeader();
      }
      if (version >= 0 && version / 10 != 1)
        return SendError(caregate::Problem::kHttpVersion,
                         fmt::format("HTTP/{}.{} is not supported; caregate speaks HTTP/1.1", version / 10,
                                     version % 10));
    }
    if (ec == http::error::header_limit)
      return SendError(caregate::Problem::kHeaderTooLarge,
                       fmt::format("the request line and header fields are over {} bytes", opts.header_limit));
    if (ec == http::error::body_limit) {
      std::string detail = fmt::format("the request body is over {} bytes", opts.body_limit);
      // Beast reports this only once the header is parsed (for a Content-Length over the
      // limit, before it marks the header done): the request is known, so its refusal
      // goes through the handler (authenticated if it can be, audited like any other).
      if (parser_ && !parser_->get().target().empty())
        return RefuseUnread(caregate::Problem::kBodyTooLarge, std::move(detail));
      return SendError(caregate::Problem::kBodyTooLarge, std::move(detail));
    }
    // The client went away or was too slow: nobody to answer.
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == http::error::need_more ||
        !IsHttpError(ec))
      return Close();
    SendError(caregate::Problem::kMalformed, fmt::format("the request is not valid HTTP/1.1 ({})", ec.message()));
  }

  // What the parser refused with bad_version, read from the buffer, where the refused
  // line still is (the parser consumes nothing of a start line it rejects): `line_end`, the
  // offset of the line's '\n' (npos while it has not arrived), and `version`, 10 x major +
  // minor when the line is `method SP target SP HTTP/D.D CRLF` (exactly two spaces; the
  // target has none), else -1.
  struct Refused {
    int version;
    std::size_t line_end;
  };
  Refused RefusedVersion() const {
    const auto data = buffer_.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    const std::size_t lf = text.find('\n');
    if (lf == std::string_view::npos) return {-1, lf};
    if (lf == 0 || text[lf - 1] != '\r') return {-1, lf};  // a bare LF: malformed
    const std::string_view line = text.substr(0, lf - 1);
    if (std::count(line.begin(), line.end(), ' ') != 2) return {-1, lf};
    const std::string_view v = line.substr(line.rfind(' ') + 1);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (v.size() != 8 || !v.starts_with("HTTP/") || !digit(v[5]) || v[6] != '.' || !digit(v[7])) return {-1, lf};
    return {10 * (v[5] - '0') + (v[7] - '0'), lf};
  }
  // "HTTP/1.x" -> "HTTP/1.1" in the buffered request line whose '\n' is at `line_end`
  // (RefusedVersion found it well-formed).
  void MendVersionToHttp11(std::size_t line_end) {
    const auto data = buffer_.data();
    static_cast<char*>(data.data())[line_end - 2] = '1';
  }
  // More of a head whose request line has not ended yet, until its '\n' is in (only the
  // new bytes are searched: a line trickling in byte by byte is not parsed again and
  // again); then the head is parsed again. Within one header timeout from the first such
  // read and the header size limit, as any head.
  void ReadMoreOfTheHead() {
    if (!more_deadline_) more_deadline_ = Clock::now() + timeouts().header;
    lowest().expires_at(*more_deadline_);
    stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              const auto data = self->buffer_.cdata();
                              const std::string_view fresh(static_cast<const char*>(data.data()) + data.size() - n, n);
                              if (fresh.find('\n') != std::string_view::npos) {
                                self->more_deadline_.reset();
                                return self->ReadHeader();
                              }
                              if (self->buffer_.size() >= self->engine_.options().header_limit)
                                return self->ReadFailed(http::error::header_limit);
                              self->ReadMoreOfTheHead();
                            });
  }

  void Dispatch() {
    state_ = State::kHandling;
    started_ = Clock::now();
    first_ = false;
    auto msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    head_only_ = msg.method() == http::verb::head;
    Request req;
    req.method = ToString(msg.method_string());
    req.target = ToString(msg.target());
    for (const auto& field : msg) req.headers.Add(ToString(field.name_string()), ToString(field.value()));
    req.body = std::move(msg.body());
    req.remote = remote_;
    // The handler may run on a worker thread, and a deferred write (the audit event)
    // completes on the writer's thread: the rest of the request is finished, and the
    // response written, on this session's context.
    engine_.handler().HandleAsync(std::move(req), Completion(engine_, this->shared_from_this(), ioc_),
                                  engine_.offload(), [ex = stream_.get_executor()](RequestHandler::Task task) {
                                    asio::post(ex, std::move(task));
                                  });
  }

  // Hands the response back to the session's context. Its work guard keeps the context
  // running while the session has no socket operation pending, and the engine counts it
  // (Engine::CallStarted/CallEnded) so that it never outlives the contexts; it releases
  // both as soon as it has been called, or when it is dropped uncalled.
  struct Completion {
    Completion(Engine& e, std::shared_ptr<Session> s, asio::io_context& ioc)
        : engine(&e), self(std::move(s)), work(asio::make_work_guard(ioc)) {
      engine->CallStarted();
    }
    Completion(const Completion& o) : engine(o.engine), self(o.self), work(o.work) {  // std::function wants it
      if (engine) engine->CallStarted();
    }
    Completion(Completion&& o) noexcept
        : engine(std::exchange(o.engine, nullptr)), self(std::move(o.self)), work(std::move(o.work)) {}
    Completion& operator=(const Completion&) = delete;
    ~Completion() { Release(); }

    void operator()(Response res) {
      auto session = std::move(self);
      asio::dispatch(session->stream_.get_executor(), [session, res = std::move(res)]() mutable {
        session->Write(std::move(res));
      });
      session.reset();
      Release();
    }
    void Release() {
      if (engine == nullptr) return;
      work.reset();
      self.reset();
      std::exchange(engine, nullptr)->CallEnded();
    }

    Engine* engine;
    std::shared_ptr<Session> self;
    asio::executor_work_guard<asio::io_context::executor_type> work;
  };

  // Answers a request whose header was read but whose body will not be.
  void RefuseUnread(caregate::Problem problem, std::string detail) {
    state_ = State::kHandling;
    started_ = Clock::now();
    first_ = false;
    keep_alive_ = false;
    unread_request_ = true;
    const auto& head = parser_->get();
    head_only_ = head.method() == http::verb::head;
    Request req;
    req.method = ToString(head.method_string());
    req.target = ToString(head.target());
    for (const auto& field : head) req.headers.Add(ToString(field.name_string()), ToString(field.value()));
    req.remote = remote_;
    parser_.reset();
    engine_.handler().RefuseAsync(std::move(req), problem, std::move(detail),
                                  Completion(engine_, this->shared_from_this(), ioc_));
  }

  void SendError(caregate::Problem problem, std::string detail) {
    state_ = State::kHandling;
    started_ = Clock::now();
    keep_alive_ = false;
    unread_request_ = true;
    head_only_ = false;  // the request could not be read: its method is not known
    const std::string id = engine_.handler().NewRequestId();
    Response res = ProblemForRequestId(problem, detail, id);
    res.route = std::string(RequestHandler::kUnmatchedRoute);
    res.close = true;
    res.headers.Set("X-Request-Id", id);
    res.headers.Set("Cache-Control", "no-store");
    Write(std::move(res));
  }

  void Write(Response r) {
    state_ = State::kWriting;
    if (r.status < 200 || r.status > 599) {  // 1xx is not a final answer
      fmt::print(stderr, "caregate server: route {} returned status {}; sending 500\n", r.route, r.status);
      std::string route = std::move(r.route);
      r = ProblemForRequestId(caregate::Problem::kInternal, {}, {});
      r.route = std::move(route);
    }
    if (r.status == 204 || r.status == 304) {  // no body allowed
      r.body.clear();
      r.shared_body.reset();
      r.content_type.clear();
    }
    // The head is formatted here (AppendResponseHead) and written with the body in one
    // gather write: Beast's field list and serializer cost ~9% of an I/O thread's time.
    body_ = std::move(r.body);
    shared_body_ = std::move(r.shared_body);
    const std::string_view body = shared_body_ ? std::string_view(*shared_body_) : std::string_view(body_);
    const bool keep = keep_alive_ && !r.close && !stopping_ && !engine_.stopping();
    head_.clear();
    AppendResponseHead(head_, r, HttpDate(), body.size(), keep);
    route_ = std::move(r.route);
    status_ = r.status;
    lowest().expires_after(timeouts().write);
    // A HEAD request gets the head alone, Content-Length as for GET (RFC 9110 9.3.2).
    const std::size_t body_bytes = head_only_ ? 0 : body.size();
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body.data(), body_bytes)};
    asio::async_write(stream_, buffers, [self = this->shared_from_this(), keep](beast::error_code ec, std::size_t) {
      self->OnWrite(ec, keep);
    });
  }

  void OnWrite(beast::error_code ec, bool keep) {
    engine_.handler().Record(route_, status_, std::chrono::duration<double>(Clock::now() - started_).count());
    shared_body_.reset();
    if (body_.capacity() > kKeepBuffer) std::string().swap(body_);  // after a large body
    body_.clear();
    if (ec) return Close();
    if (!keep) return CloseGracefully();
    WaitForRequest();
  }

  // RFC 9112 9.6: after an error response the client may still be sending a request we
  // did not read; closing at once would reset the connection and could destroy our answer
  // in its receive buffer. So half-close, then read and discard until the client closes
  // (bounded in time and bytes). After a complete exchange, close at once unless bytes are
  // already waiting (a pipelined request after `Connection: close`).
  void CloseGracefully() {
    state_ = State::kClosing;
    lowest().expires_after(timeouts().linger);
    if constexpr (kTls) {
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      beast::error_code ec;
      const std::size_t waiting = lowest().socket().available(ec);
      if (!unread_request_ && waiting == 0 && buffer_.size() == 0) return Close();
      lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return Close();
      drain_ = std::make_unique<char[]>(kFirstReadSize);
      Drain();
    }
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_.get(), kFirstReadSize),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrain) return self->Close();
                              self->Drain();
                            });
  }

  void Close() {
    state_ = State::kClosing;
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  Engine& engine_;
  asio::io_context& ioc_;  // the one context (and thread) this session runs on
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::empty_body> continue_;
  std::string head_;                                // the response being written: head,
  std::string body_;                                // its own body, or
  std::shared_ptr<const std::string> shared_body_;  // one shared with a cache
  std::unique_ptr<char[]> drain_;
  std::size_t drained_ = 0;
  State state_ = State::kStarting;
  bool first_ = true;
  std::optional<Clock::time_point> more_deadline_;  // ReadMoreOfTheHead's, for one head
  bool keep_alive_ = false;
  bool stopping_ = false;
  bool registered_ = false;
  bool unread_request_ = false;  // an error response went out before the request was read
  bool head_only_ = false;       // the request being answered is a HEAD: no body goes out
  std::list<std::weak_ptr<SessionBase>>::iterator it_;
  Clock::time_point started_;
  std::string route_;
  int status_ = 0;
};

Engine::Engine(ServerOptions options, std::shared_ptr<RequestHandler> handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      io_threads_(options_.io_threads != 0 ? options_.io_threads : std::max(1u, std::thread::hardware_concurrency())),
      iocs_(MakeContexts(io_threads_)),
      acceptor_(*iocs_[0]),
      signals_(*iocs_[0]),
      reload_signals_(*iocs_[0]),
      grace_timer_(*iocs_[0]),
      retry_timer_(*iocs_[0]) {
  if (!handler_) throw FatalError(caregate::Problem::kUsage, "the server needs a request handler");
  for (auto& ioc : iocs_) keep_running_.push_back(asio::make_work_guard(*ioc));
  open_connections_ = &handler_->metrics().Gauge("caregate_http_connections_open", "Open client connections");
  refused_connections_ = &handler_->metrics().Counter(
      "caregate_http_connections_refused_total", "Connections answered 503 and closed at the connection limit");
  max_connections_ = ConnectionCap(options_.max_connections);

  if (options_.tls_cert.empty() != options_.tls_key.empty())
    throw FatalError(caregate::Problem::kUsage, "TLS needs both a certificate file and a key file");
  if (!options_.tls_cert.empty()) ssl_ctx_ = MakeTlsContext(options_.tls_cert, options_.tls_key);
  tls_ = ssl_ctx_ != nullptr;

  const HostPort hp = ParseHostPort(options_.listen);
  beast::error_code ec;
  tcp::resolver resolver(*iocs_[0]);
  auto results = resolver.resolve(hp.host, std::to_string(hp.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    throw FatalError(caregate::Problem::kUsage, fmt::format("cannot resolve listen address {}", options_.listen));
  const tcp::endpoint ep = results.begin()->endpoint();
  auto check = [&](std::string_view what) {
    if (ec)
      throw FatalError(caregate::Problem::kIoFailure,
                       fmt::format("cannot listen on {}: {} failed: {}", options_.listen, what, ec.message()));
  };
  acceptor_.open(ep.protocol(), ec);
  check("open");
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  check("SO_REUSEADDR");
  acceptor_.bind(ep, ec);
  check("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  check("listen");
  bound_ = acceptor_.local_endpoint(ec);
  check("getsockname");

  if (options_.handler_threads > 0) {
    pool_ = std::make_unique<asio::thread_pool>(options_.handler_threads);
    offload_ = [pool = pool_.get()](RequestHandler::Task task) { asio::post(*pool, std::move(task)); };
  }

  if (options_.handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](beast::error_code sec, int signal) {
      if (sec) return;
      fmt::print(stderr, "caregate server: signal {} received, stopping\n", signal);
      Stop();
    });
    if (options_.on_reload || tls_) {
      reload_signals_.add(SIGHUP);
      WaitForReload();
    }
  }
  asio::post(*iocs_[0], [this] { DoAccept(); });
}

Engine::~Engine() {
  Stop();
  if (pool_) {
    pool_->stop();
    pool_->join();
    pool_.reset();  // destroys the handlers it never ran, and their Completions
  }
  // Answers still to come (a deferred audit write) are posted to the contexts, which
  // must outlive them. They always come: the audit log completes or fails every event.
  for (auto n = calls_.load(std::memory_order_acquire); n != 0; n = calls_.load(std::memory_order_acquire))
    calls_.wait(n, std::memory_order_acquire);
  std::lock_guard lock(sessions_mutex_);
  closed_ = true;
}

void Engine::DoAccept() {
  if (stopping()) return;
  asio::io_context& target = *iocs_[next_ioc_++ % iocs_.size()];
  acceptor_.async_accept(target.get_executor(), [this, &target](beast::error_code ec, Socket socket) {
    OnAccept(ec, target, std::move(socket));
  });
}

void Engine::OnAccept(beast::error_code ec, asio::io_context& target, Socket socket) {
  if (stopping()) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Out of descriptors and the like: wait a little rather than spin.
    fmt::print(stderr, "caregate server: accept failed: {}\n", ec.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([this](beast::error_code tec) {
      if (!tec) DoAccept();
    });
    return;
  }
  if (connections_.load(std::memory_order_relaxed) >= max_connections_) {
    Refuse(std::move(socket));
    return DoAccept();
  }
  connections_.fetch_add(1, std::memory_order_relaxed);
  socket.set_option(tcp::no_delay(true), ec);
  std::string remote = FormatEndpoint(socket.remote_endpoint(ec));
  if (ssl_ctx_) {
    using TlsStream = beast::ssl_stream<PlainStream>;
    auto session = std::make_shared<Session<TlsStream>>(*this, target, std::move(remote), std::move(socket), *ssl_ctx_);
    session->tls_context = ssl_ctx_;
    session->Start();
  } else {
    std::make_shared<Session<PlainStream>>(*this, target, std::move(remote), std::move(socket))->Start();
  }
  DoAccept();
}

// A connection over the cap (ServerOptions::max_connections): it is answered 503 with
// Retry-After, its sending side is shut, and whatever the client sends is read and
// dropped until it closes or the linger time ends. Closing at once, with the client's
// request unread, would send a reset that can destroy the answer before it is read.
class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(Engine& engine, Socket socket) : engine_(engine), socket_(std::move(socket)), timer_(socket_.get_executor()) {
    Response r = ProblemForRequestId(caregate::Problem::kUnavailable,
                                     fmt::format("the server is serving its limit of {} connections; try again shortly",
                                                 engine.max_connections()),
                                     "");
    r.headers.Add("Retry-After", "1");
    AppendResponseHead(response_, r, HttpDate(), r.body.size(), /*keep_alive=*/false);
    response_ += r.body;
  }
  ~Refusal() { engine_.RefusalEnded(); }

  void Start() {
    timer_.expires_after(engine_.options().timeouts.linger);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Finish();
    });
    asio::async_write(socket_, asio::buffer(response_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->Finish();
      beast::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
      self->Drain();
    });
  }

 private:
  void Drain() {
    socket_.async_read_some(asio::buffer(drain_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->Finish();
      self->Drain();
    });
  }
  void Finish() {
    beast::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

  Engine& engine_;
  Socket socket_;
  asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor> timer_;
  std::string response_;
  std::array<char, 4096> drain_{};
};

void Engine::Refuse(Socket socket) {
  refused_connections_->Inc();
  // Over TLS a plain-text answer means nothing before the handshake: closed at once, as
  // is every refusal beyond 64 still lingering (a flood must not hold descriptors).
  if (tls_ || refusing_.load(std::memory_order_relaxed) >= 64) {
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  refusing_.fetch_add(1, std::memory_order_relaxed);
  std::make_shared<Refusal>(*this, std::move(socket))->Start();
}

bool Engine::Register(const std::shared_ptr<SessionBase>& s, std::list<std::weak_ptr<SessionBase>>::iterator& it) {
  std::lock_guard lock(sessions_mutex_);
  if (stopping()) return false;
  it = sessions_.insert(sessions_.end(), s);
  open_connections_->Add(1);
  return true;
}

void Engine::Unregister(std::list<std::weak_ptr<SessionBase>>::iterator it) {
  bool last = false;
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(it);
    open_connections_->Add(-1);
    last = sessions_.empty() && stopping() && !closed_;
  }
  if (last) asio::post(*iocs_[0], [this] { grace_timer_.cancel(); });
}

void Engine::WaitForReload() {
  reload_signals_.async_wait([this](beast::error_code sec, int) {
    if (sec || stopping_.load(std::memory_order_acquire)) return;
    WaitForReload();  // first, so that nothing Reload does can stop the next SIGHUP's
    Reload();
  });
}

void Engine::Reload() noexcept {
  ReloadReport report;
  if (tls_) {
    report.tls = true;
    try {
      auto next = MakeTlsContext(options_.tls_cert, options_.tls_key);
      report.tls_detail = CertificateSummary(*next);
      ssl_ctx_ = std::move(next);
      report.tls_loaded = true;
      fmt::print(stderr, "caregate server: SIGHUP: TLS certificate loaded from {}: {}\n", options_.tls_cert,
                 report.tls_detail);
    } catch (const std::exception& e) {  // FatalError for the files; OpenSSL's or memory's
      report.tls_detail = OneLine(e.what());
      fmt::print(stderr, "caregate server: SIGHUP: TLS certificate not reloaded, the one in use stays: {}\n",
                 report.tls_detail);
    }
  }
  if (!options_.on_reload) return;
  try {
    options_.on_reload(report);
  } catch (const std::exception& e) {
    fmt::print(stderr, "caregate server: SIGHUP: the reload failed: {}\n", OneLine(e.what()));
  } catch (...) {
    fmt::print(stderr, "caregate server: SIGHUP: the reload failed\n");
  }
}

void Engine::Stop() {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  handler_->SetReady(false);
  asio::post(*iocs_[0], [this] { StopNow(); });
}

void Engine::StopNow() {
  beast::error_code ec;
  acceptor_.close(ec);
  signals_.cancel(ec);
  reload_signals_.cancel(ec);
  retry_timer_.cancel();
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(sessions_mutex_);
    for (auto& w : sessions_)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  // Before the contexts may run out of work: a context whose run() has returned never
  // runs what is posted to it (a session closing at this moment was left waiting for
  // its Shutdown, and the whole grace period with it; seen under load with the sanitizers).
  for (auto& s : live) s->Shutdown();
  keep_running_.clear();  // each context's run() now returns once its sessions are done
  if (live.empty()) return;
  live.clear();  // outside the lock: this may destroy sessions
  grace_timer_.expires_after(options_.timeouts.shutdown_grace);
  grace_timer_.async_wait([this](beast::error_code tec) {
    if (tec) return;
    std::size_t left = 0;
    {
      std::lock_guard lock(sessions_mutex_);
      left = sessions_.size();
    }
    fmt::print(stderr, "caregate server: {} connection(s) still busy after the shutdown grace period; closing\n",
               left);
    forced_ = true;
    for (auto& ioc : iocs_) ioc->stop();
  });
}

void Engine::Run() {
  if (started_.exchange(true)) throw FatalError(caregate::Problem::kUsage, "Server::Run may be called only once");
  auto run = [](asio::io_context& ioc) {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        fmt::print(stderr, "caregate server: unexpected exception on an I/O thread: {}\n", e.what());
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(io_threads_ - 1);
  for (std::size_t i = 1; i < iocs_.size(); ++i) threads.emplace_back(run, std::ref(*iocs_[i]));
  run(*iocs_[0]);
  for (auto& t : threads) t.join();
  if (pool_) {
    if (forced_) pool_->stop();  // queued handlers are dropped; running ones finish
    pool_->join();
  }
}

}  // namespace

HostPort ParseHostPort(std::string_view listen) {
  auto fail = [&] {
    return FatalError(caregate::Problem::kUsage,
                      fmt::format("`{}` is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)", listen));
  };
  HostPort hp;
  std::string_view port;
  if (listen.starts_with('[')) {
    const auto close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') throw fail();
    hp.host = std::string(listen.substr(1, close - 1));
    port = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string_view::npos) throw fail();
    hp.host = std::string(listen.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) throw fail();  // IPv6 needs brackets
    port = listen.substr(colon + 1);
  }
  if (hp.host.empty() || port.empty() || port.size() > 5) throw fail();
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') throw fail();
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) throw fail();
  hp.port = static_cast<std::uint16_t>(value);
  return hp;
}

struct Server::Impl {
  Impl(ServerOptions options, std::shared_ptr<RequestHandler> handler)
      : engine(std::move(options), std::move(handler)) {}
  Engine engine;
};

Server::Server(ServerOptions options, std::shared_ptr<RequestHandler> handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

std::uint16_t Server::port() const { return impl_->engine.bound().port(); }

std::string Server::endpoint() const { return FormatEndpoint(impl_->engine.bound()); }

bool Server::tls() const { return impl_->engine.tls(); }

std::size_t Server::max_connections() const { return impl_->engine.max_connections(); }

std::uint64_t Server::connections_refused() const { return impl_->engine.connections_refused(); }

void Server::Run() { impl_->engine.Run(); }

void Server::Stop() { impl_->engine.Stop(); }

bool Server::Reload() {
  auto& engine = impl_->engine;
  if (!engine.serving()) return false;
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  engine.PostToFirstContext([&engine, done] {
    engine.Reload();
    done->set_value();
  });
  // A stop after the check above may leave the job never run: stop waiting then.
  while (finished.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready)
    if (!engine.serving()) return false;
  return true;
}

}  // namespace caregate::server
