#include "caregate/server/handler.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <future>
#include <mutex>
#include <random>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "caregate/core/error.h"

namespace caregate::server {

namespace {

// A caller's X-Request-Id is kept when it is 1..128 URI-unreserved characters, so it can
// be echoed, logged and used as the problem's `instance` without escaping.
bool SaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '~';
    if (!ok) return false;
  }
  return true;
}

bool IEqualsAscii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

// `Bearer <token>`: scheme case-insensitive (RFC 9110), token68 characters only.
std::string_view BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || !IEqualsAscii(value.substr(0, kScheme.size()), kScheme)) return {};
  std::string_view rest = value.substr(kScheme.size());
  if (rest.front() != ' ') return {};
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  for (char c : rest) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
    if (!ok) return {};
  }
  return rest;
}

std::string RandomHex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
    std::random_device rd;
    for (auto& b : buf) b = static_cast<unsigned char>(rd());
  }
  std::string out;
  for (unsigned char b : buf) fmt::format_to(std::back_inserter(out), "{:02x}", b);
  return out;
}

// Keeps personal data out of the log: the route pattern, never the target.
void LogFailure(const RequestContext& ctx, std::string_view what) {
  std::string route = ctx.route.empty() ? std::string(RequestHandler::kUnmatchedRoute) : std::string(ctx.route);
  fmt::print(stderr, "caregate server: request {} {} {} failed: {}\n", ctx.request_id, ctx.method, route, what);
}

caregate::Problem ErrorProblem(caregate::Problem p) {
  return Describe(p).http_status >= 400 ? p : caregate::Problem::kInternal;
}

constexpr std::string_view kRequestsName = "caregate_http_requests_total";
constexpr std::string_view kRequestsHelp = "HTTP requests answered, by route pattern and status";
constexpr std::string_view kDurationName = "caregate_http_request_duration_seconds";
constexpr std::string_view kDurationHelp =
    "Time from the request being read to the response being written, by route pattern";

constexpr std::string_view kFailureDetail = "the request could not be completed; quote the request id when reporting it";

}  // namespace

RequestHandler::RequestHandler(Router router, TokenStore tokens, std::shared_ptr<Metrics> metrics)
    : router_(std::move(router)),
      tokens_(std::make_shared<const TokenStore>(std::move(tokens))),
      metrics_(metrics ? std::move(metrics) : std::make_shared<Metrics>()),
      id_prefix_(RandomHex(8)) {
  if (!router_.Has("GET", "/healthz"))
    router_.Add(
        "GET", "/healthz", Access::Anyone(),
        [this](const RequestContext& ctx) {
          if (!ready()) return Problem(caregate::Problem::kUnavailable, "the server is stopping", ctx);
          return Response::Json(200, R"({"status":"ready"})");
        },
        Execution::kInline);
  if (!router_.Has("GET", "/metrics"))
    router_.Add("GET", "/metrics", Access::Anyone(), [this](const RequestContext&) {
      Response r;
      r.content_type = std::string(Metrics::kContentType);
      r.body = metrics_->Render();
      return r;
    });
  // The router is complete and never changes from here on, so its patterns can be keys.
  auto add_route = [&](std::string_view pattern) {
    if (route_metrics_.count(pattern) != 0) return;
    auto rm = std::make_unique<RouteMetrics>();
    rm->duration = &metrics_->Histogram(kDurationName, kDurationHelp, {{"route", std::string(pattern)}});
    route_metrics_.emplace(pattern, std::move(rm));
  };
  for (const Route& r : router_.routes()) add_route(r.pattern);
  add_route(kUnmatchedRoute);
}

std::string RequestHandler::NewRequestId() const {
  return fmt::format("{}-{:x}", id_prefix_, id_counter_.fetch_add(1, std::memory_order_relaxed) + 1);
}

MetricCounter& RequestHandler::StatusCounter(std::string_view route, int status) const {
  return metrics_->Counter(kRequestsName, kRequestsHelp, {{"route", std::string(route)}, {"status", std::to_string(status)}});
}

void RequestHandler::Record(std::string_view route, int status, double seconds) const {
  if (route.empty()) route = kUnmatchedRoute;
  const auto it = route_metrics_.find(route);
  if (it == route_metrics_.end() || status < 0 || status >= static_cast<int>(it->second->by_status.size())) {
    StatusCounter(route, status).Inc();
    metrics_->Histogram(kDurationName, kDurationHelp, {{"route", std::string(route)}}).Observe(seconds);
    return;
  }
  RouteMetrics& rm = *it->second;
  auto& slot = rm.by_status[static_cast<std::size_t>(status)];
  MetricCounter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter = &StatusCounter(route, status);  // the registry returns the same series to racing callers
    slot.store(counter, std::memory_order_release);
  }
  counter->Inc();
  rm.duration->Observe(seconds);
}

// One request between being read and answered. It owns the request (the context's views
// point into it) and counts what the response still waits for: the handler, and every
// write it deferred. Whoever brings the count to zero completes the request.
struct InFlight : std::enable_shared_from_this<InFlight> {
  InFlight(const RequestHandler& h, Request r, std::function<void(Response)> d,
           RequestHandler::Resume res = {})
      : handler(h), request(std::move(r)), done(std::move(d)), resume(std::move(res)) {}

  void Arrive(std::exception_ptr e) {
    if (e) {
      std::lock_guard lock(mu);
      if (!error) error = std::move(e);
    }
    if (outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) handler.Complete(*this);
  }

  const RequestHandler& handler;
  Request request;
  RequestContext ctx;
  Response response;                // set before the handler's own Arrive
  std::atomic<int> outstanding{1};  // deferred writes not yet done, + 1 for the handler
  std::mutex mu;
  std::exception_ptr error;  // guarded by mu: the first deferred write that failed
  std::function<void(Response)> done;
  RequestHandler::Resume resume;  // where a deferred write's completion continues; empty: in place
};

RequestContext::WriteDone RequestContext::Defer() const {
  if (in_flight == nullptr)
    throw FatalError(caregate::Problem::kInternal, "RequestContext::Defer called outside a RequestHandler");
  // The handler's own count is still held, so this cannot race with completion.
  in_flight->outstanding.fetch_add(1, std::memory_order_relaxed);
  return [call = in_flight->shared_from_this()](std::exception_ptr e) mutable {
    if (!call->resume) return call->Arrive(std::move(e));
    // Called once. The task may run (and finish the request) before `resume` returns:
    // `self` holds the request, and `resume` with it, until then, and no longer, so that
    // the request is usually freed by the task, on its own thread.
    const auto self = std::move(call);
    self->resume([self, e = std::move(e)]() mutable { self->Arrive(std::move(e)); });
  };
}

Response RequestHandler::Handle(const Request& request) const {
  std::promise<Response> result;
  auto future = result.get_future();
  HandleAsync(request, [&result](Response r) { result.set_value(std::move(r)); }, nullptr);
  Response r = future.get();
  if (r.shared_body) r.body = *std::exchange(r.shared_body, nullptr);
  return r;
}

void RequestHandler::Begin(InFlight& call) const {
  const Request& req = call.request;
  RequestContext& ctx = call.ctx;
  ctx.in_flight = &call;
  ctx.method = req.method;
  ctx.target = req.target;
  ctx.headers = &req.headers;
  ctx.body = req.body;
  ctx.remote = req.remote;
  auto incoming = req.headers.Find("X-Request-Id");
  ctx.request_id = incoming && req.headers.Count("X-Request-Id") == 1 && SaneRequestId(*incoming)
                       ? std::string(*incoming)
                       : NewRequestId();
}

void RequestHandler::RefuseAsync(Request head, caregate::Problem problem, std::string detail,
                                 std::function<void(Response)> done) const {
  auto call = std::make_shared<InFlight>(*this, std::move(head), std::move(done));
  Begin(*call);
  const Request& req = call->request;
  RequestContext& ctx = call->ctx;
  try {
    const std::string_view target = req.target;
    if (target.starts_with('/')) {
      ctx.path = target.substr(0, target.find('?'));
      ctx.route = router_.Find(req.method, ctx.path).pattern;
    }
    auto header = req.headers.Find("Authorization");
    if (header && req.headers.Count("Authorization") == 1) {
      const std::string_view token = BearerToken(*header);
      if (!token.empty()) ctx.principal = Authenticate(token);
    }
    call->response = Refuse(problem, std::move(detail), ctx);
  } catch (const std::exception& e) {  // only allocation failures can get here
    LogFailure(ctx, e.what());
    call->response = Problem(caregate::Problem::kInternal, std::string(kFailureDetail), ctx);
  }
  call->response.close = true;  // the rest of the request is never read
  call->Arrive(nullptr);
}

void RequestHandler::HandleAsync(Request request, std::function<void(Response)> done, const Offload& offload,
                                 Resume resume) const {
  auto call = std::make_shared<InFlight>(*this, std::move(request), std::move(done), std::move(resume));
  Begin(*call);
  const Request& req = call->request;
  RequestContext& ctx = call->ctx;
  const Route* route = nullptr;
  try {
    call->response = Dispatch(req, ctx, route);
  } catch (const std::exception& e) {  // only allocation failures can get here
    LogFailure(ctx, e.what());
    call->response = Problem(caregate::Problem::kInternal, std::string(kFailureDetail), ctx);
    route = nullptr;
  }
  if (route == nullptr) return call->Arrive(nullptr);
  auto run = [call, route] {
    call->response = call->handler.Invoke(*route, call->ctx);
    call->Arrive(nullptr);
  };
  if (offload && route->execution == Execution::kWorker)
    offload(std::move(run));
  else
    run();
}

void RequestHandler::Complete(InFlight& call) const {
  RequestContext& ctx = call.ctx;
  Response res = std::move(call.response);
  if (call.error) {  // nothing may be answered as if its write had happened
    try {
      std::rethrow_exception(call.error);
    } catch (const FatalError& e) {
      LogFailure(ctx, fmt::format("a deferred write failed: {}", e.what()));
      res = Problem(ErrorProblem(e.problem()), std::string(kFailureDetail), ctx);
    } catch (const std::exception& e) {
      LogFailure(ctx, fmt::format("a deferred write failed: {}", e.what()));
      res = Problem(caregate::Problem::kInternal, std::string(kFailureDetail), ctx);
    } catch (...) {
      LogFailure(ctx, "a deferred write failed");
      res = Problem(caregate::Problem::kInternal, std::string(kFailureDetail), ctx);
    }
  }
  res.route = ctx.route.empty() ? std::string(kUnmatchedRoute) : std::string(ctx.route);
  res.headers.Set("X-Request-Id", ctx.request_id);
  if (!res.headers.Has("Cache-Control")) res.headers.Add("Cache-Control", "no-store");
  call.done(std::move(res));
}

Response RequestHandler::Dispatch(const Request& request, RequestContext& ctx, const Route*& to_invoke) const {
  std::string_view target = request.target;
  if (!target.starts_with('/')) {
    // absolute-form (RFC 9112 3.2.2): keep the path and query.
    const auto scheme = target.find("://");
    if (scheme != std::string_view::npos) {
      const auto slash = target.find_first_of("/?", scheme + 3);
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      if (target.starts_with('?')) return Problem(caregate::Problem::kMalformed, "the request target has no path", ctx);
    }
  }
  if (!target.starts_with('/'))
    return Problem(caregate::Problem::kMalformed, "the request target must be an absolute path", ctx);
  const auto qmark = target.find('?');
  ctx.path = target.substr(0, qmark);
  const std::string_view query = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);

  Router::Match match = router_.Find(request.method, ctx.path);
  ctx.route = match.pattern;

  const bool v1 = ctx.path == "/v1" || ctx.path.starts_with("/v1/");
  const bool needs_token = v1 || (match.route != nullptr && !match.route->access.is_public());
  if (needs_token) {
    // Authenticate before saying whether a /v1 path exists at all.
    auto header = request.headers.Find("Authorization");
    if (!header || request.headers.Count("Authorization") != 1) {
      Response r = Refuse(caregate::Problem::kUnauthenticated, "send `Authorization: Bearer <token>`", ctx);
      if (r.status == 401) r.headers.Set("WWW-Authenticate", "Bearer realm=\"caregate\"");
      return r;
    }
    const std::string_view token = BearerToken(*header);
    if (!token.empty()) ctx.principal = Authenticate(token);
    if (!ctx.principal) {
      Response r = Refuse(caregate::Problem::kUnauthenticated, "the bearer token is not valid", ctx);
      if (r.status == 401) r.headers.Set("WWW-Authenticate", "Bearer realm=\"caregate\", error=\"invalid_token\"");
      return r;
    }
  }

  // Under /v1 the caller is known by now: every refusal is audited (spec 8), also for a
  // path or method the API does not have. Elsewhere nobody is known and nothing is
  // personal.
  auto refuse = [&](caregate::Problem problem, std::string detail) {
    return v1 ? Refuse(problem, std::move(detail), ctx) : Problem(problem, std::move(detail), ctx);
  };
  // A method HTTP does not define (BREW, or "get": methods are case-sensitive) is 501,
  // whatever the path (RFC 9110 9.1); 405 is for a defined method a path does not allow.
  static constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                  "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  if (std::find(std::begin(kMethods), std::end(kMethods), ctx.method) == std::end(kMethods))
    return refuse(caregate::Problem::kNotImplemented, "the server does not implement this method");
  switch (match.outcome) {
    case Router::Outcome::kNotFound:
      return refuse(caregate::Problem::kNotFound, "no resource at this path");
    case Router::Outcome::kMethodNotAllowed: {
      Response r = refuse(caregate::Problem::kMethodNotAllowed,
                          fmt::format("{} does not allow {}; it allows {}", match.pattern, ctx.method, match.allow));
      if (r.status == 405) r.headers.Set("Allow", match.allow);
      return r;
    }
    case Router::Outcome::kBadEncoding:
      return refuse(caregate::Problem::kMalformed, "a path segment is not valid percent-encoded UTF-8");
    case Router::Outcome::kFound: break;
  }

  const Route& route = *match.route;
  if (!route.access.is_public() && !route.access.Allows(ctx.principal->role))
    return Refuse(caregate::Problem::kForbiddenRole,
                  fmt::format("role {} may not call {} {}", RoleName(ctx.principal->role), route.method, route.pattern),
                  ctx);
  auto params = ParseQuery(query);
  if (!params) return refuse(caregate::Problem::kMalformed, "the query string is not valid percent-encoded UTF-8");
  // A parameter given twice (?view=cis&view=systmone) has no one meaning: refused, where
  // the first used to be taken silently (an audit query filtered on one person of two).
  // Sorted names, so a query of thousands of parameters costs n log n, not n^2.
  std::vector<std::string_view> names;
  names.reserve(params->size());
  for (const auto& p : *params) names.emplace_back(p.first);
  std::sort(names.begin(), names.end());
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    const std::string name(*dup);
    const bool plain = !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    return refuse(caregate::Problem::kMalformed, plain ? "the query parameter '" + name + "' is given more than once"
                                                       : std::string("a query parameter is given more than once"));
  }
  ctx.query = std::move(*params);
  ctx.path_params = std::move(match.params);
  to_invoke = &route;
  return {};
}

void RequestHandler::ReplaceTokens(TokenStore tokens) {
  auto next = std::make_shared<const TokenStore>(std::move(tokens));
  std::lock_guard lock(tokens_mutex_);
  tokens_.swap(next);  // the old set is freed outside the lock, by its last reader
}

std::shared_ptr<const TokenStore> RequestHandler::Tokens() const {
  std::lock_guard lock(tokens_mutex_);
  return tokens_;
}

std::size_t RequestHandler::token_count() const { return Tokens()->size(); }

std::vector<std::pair<std::string, Role>> RequestHandler::Principals() const { return Tokens()->Principals(); }

std::optional<Principal> RequestHandler::Authenticate(std::string_view token) const {
  return Tokens()->Authenticate(token);
}

Response RequestHandler::Refuse(caregate::Problem problem, std::string detail, RequestContext& ctx) const {
  Response r = Problem(problem, std::move(detail), ctx);
  if (!on_refused_) return r;
  try {
    on_refused_(ctx, problem, r);
  } catch (const FatalError& e) {
    LogFailure(ctx, fmt::format("the refusal hook failed: {}", e.what()));
    return Problem(ErrorProblem(e.problem()), std::string(kFailureDetail), ctx);
  } catch (const std::exception& e) {
    LogFailure(ctx, fmt::format("the refusal hook failed: {}", e.what()));
    return Problem(caregate::Problem::kInternal, std::string(kFailureDetail), ctx);
  } catch (...) {
    LogFailure(ctx, "the refusal hook failed");
    return Problem(caregate::Problem::kInternal, std::string(kFailureDetail), ctx);
  }
  return r;
}

Response RequestHandler::Invoke(const Route& route, RequestContext& ctx) const {
  try {
    return route.handler(ctx);
  } catch (const FatalError& e) {
    LogFailure(ctx, e.what());
    return Problem(ErrorProblem(e.problem()), std::string(kFailureDetail), ctx);
  } catch (const std::exception& e) {
    LogFailure(ctx, e.what());
  } catch (...) {
    LogFailure(ctx, "unknown exception");
  }
  return Problem(caregate::Problem::kInternal, std::string(kFailureDetail), ctx);
}

}  // namespace caregate::server
