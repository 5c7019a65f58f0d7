#pragma once
// The pure request handler: Request in, Response out, no sockets. It authenticates,
// routes, authorises, calls the route's handler and turns failures into problem+json.
// Server feeds it from the network; tests call Handle() directly.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "caregate/server/auth.h"
#include "caregate/server/http.h"
#include "caregate/server/metrics.h"
#include "caregate/server/router.h"

namespace caregate::server {

// Called for every refusal the framework itself produces (401, 403, and the 413 the
// server gives a body over the limit), before the response is returned, so the
// application can make an audit event durable first. If it throws, the caller gets a 500
// (or the FatalError's problem) instead of the refusal.
using RefusalHook =
    std::function<void(const RequestContext& ctx, caregate::Problem problem, const Response& refusal)>;

class RequestHandler {
 public:
  // Adds `GET /healthz` and `GET /metrics` (both public) unless the router has them.
  RequestHandler(Router router, TokenStore tokens,
                 std::shared_ptr<Metrics> metrics = std::make_shared<Metrics>());

  // Set before serving.
  void OnRefused(RefusalHook hook) { on_refused_ = std::move(hook); }
  // Thread-safe, at any time: the tokens every request from now on is authenticated
  // against (a token rotation; `caregate serve` on SIGHUP). A request already past
  // authentication finishes as it began; on a kept-alive connection the next request is
  // checked against the new tokens.
  void ReplaceTokens(TokenStore tokens);
  std::size_t token_count() const;
  std::vector<std::pair<std::string, Role>> Principals() const;  // of the tokens in use (TokenStore::Principals)
  // /healthz answers 200 {"status":"ready"} when ready, 503 problem+json otherwise.
  // Starts ready; Server clears it when it begins to stop.
  void SetReady(bool ready) { ready_.store(ready, std::memory_order_relaxed); }
  bool ready() const { return ready_.load(std::memory_order_relaxed); }

  // Thread-safe. Never throws: a handler's exception becomes a 500 problem (or the
  // FatalError's own problem), logged to stderr with the request id and route only.
  // Runs the route's handler on the calling thread and returns once every write it
  // deferred (RequestContext::Defer) is done.
  Response Handle(const Request& request) const;

  // The same, without waiting, for the server. `done` is called exactly once with the
  // response: on this thread, or on the thread that finishes the last deferred write
  // (the audit writer), so it must not block. A route with Execution::kWorker has its
  // handler passed to `offload` to run elsewhere; with no `offload`, every handler runs
  // on this thread. With `resume`, a deferred write's completion is handed to it (the
  // server posts it to the session's I/O thread), so that finishing the request (the
  // response's last headers, `done`, freeing the request) is not done on the thread that
  // finished the write: the audit writer, which every lookup's commit waits for.
  using Task = std::function<void()>;
  using Offload = std::function<void(Task)>;
  using Resume = std::function<void(Task)>;
  void HandleAsync(Request request, std::function<void(Response)> done, const Offload& offload,
                   Resume resume = {}) const;

  // For the session: a request it refuses before reading all of it (413, a body over the
  // limit), given its method, target and header fields. Authenticated when it carries a
  // valid token (else anonymous), routed for the metrics, passed to the refusal hook, and
  // answered through `done` like HandleAsync, with `Connection: close`.
  void RefuseAsync(Request head, caregate::Problem problem, std::string detail,
                   std::function<void(Response)> done) const;

  // For the session: a fresh unique request id, and the per-request metrics
  // (caregate_http_requests_total{route,status}, caregate_http_request_duration_seconds{route}).
  std::string NewRequestId() const;
  void Record(std::string_view route, int status, double seconds) const;

  Metrics& metrics() const { return *metrics_; }
  const Router& router() const { return router_; }

  static constexpr std::string_view kUnmatchedRoute = "(unmatched)";

 private:
  friend struct InFlight;
  // Authenticates, routes and authorises: sets `to_invoke` to the route to call, or
  // returns the response when there is none to call.
  Response Dispatch(const Request& request, RequestContext& ctx, const Route*& to_invoke) const;
  Response Refuse(caregate::Problem problem, std::string detail, RequestContext& ctx) const;
  // The context every call starts from: request id, method, target, headers, body.
  void Begin(InFlight& call) const;
  Response Invoke(const Route& route, RequestContext& ctx) const;
  // The response once the handler and every deferred write are done.
  void Complete(InFlight& call) const;

  // Per-route request metrics, found without taking the registry's lock: the histogram
  // is made up front, a counter per status on first use.
  struct RouteMetrics {
    MetricHistogram* duration = nullptr;
    std::array<std::atomic<MetricCounter*>, 600> by_status{};
  };
  MetricCounter& StatusCounter(std::string_view route, int status) const;

  std::optional<Principal> Authenticate(std::string_view token) const;

  Router router_;
  // Replaced whole by ReplaceTokens; a request copies the pointer under the mutex and
  // authenticates against its copy. (Not std::atomic<std::shared_ptr>: libstdc++ 12's
  // load releases its lock with a relaxed store, a data race ThreadSanitizer reports.)
  mutable std::mutex tokens_mutex_;
  std::shared_ptr<const TokenStore> tokens_;
  std::shared_ptr<const TokenStore> Tokens() const;
  std::shared_ptr<Metrics> metrics_;
  std::unordered_map<std::string_view, std::unique_ptr<RouteMetrics>> route_metrics_;  // keys: router_ patterns
  RefusalHook on_refused_;
  std::atomic<bool> ready_{true};
  std::string id_prefix_;  // random per process, so ids stay unique across restarts
  mutable std::atomic<std::uint64_t> id_counter_{0};
};

}  // namespace caregate::server
