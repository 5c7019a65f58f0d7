#pragma once
// Socket-free HTTP values: what a handler receives and returns. No Boost here, so the
// modules that write handlers compile without Beast.
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "caregate/core/error.h"
#include "caregate/server/auth.h"

namespace caregate::server {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  void Add(std::string name, std::string value);
  void Set(std::string name, std::string value);  // replaces every field of that name
  std::optional<std::string_view> Find(std::string_view name) const;  // first of that name
  std::size_t Count(std::string_view name) const;
  bool Has(std::string_view name) const { return Find(name).has_value(); }

  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }
  std::size_t size() const { return fields_.size(); }

 private:
  std::vector<Field> fields_;
};

// Decoded name/value pairs (path parameters, query parameters) in order.
using Params = std::vector<std::pair<std::string, std::string>>;

// One complete request as the session read it.
struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // origin-form "/path?query" (absolute-form is accepted too)
  Headers headers;
  std::string body;
  std::string remote;  // "127.0.0.1:54321", "[::1]:54321"; empty in-process
};

// What a handler returns. `headers` are sent as given; the framework adds
// Content-Type, Content-Length, X-Request-Id, Date, Server and Cache-Control: no-store
// (unless the handler set one).
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // A body shared with a cache (the rendered views), written as it is rather than copied
  // into `body`; when set, `body` is ignored. RequestHandler::Handle (in-process callers,
  // the tests) hands the response back with it copied into `body`.
  std::shared_ptr<const std::string> shared_body;
  Headers headers;
  bool close = false;  // close the connection after this response

  // Filled by the framework: the route pattern the response was produced for, used as
  // the metrics label ("(unmatched)" when no route matched).
  std::string route;

  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body);  // text/plain; charset=utf-8
};

// The state of one request being handled; defined by RequestHandler.
struct InFlight;

// Everything a route handler may use. Views point into the Request, which outlives
// the handler call.
struct RequestContext {
  std::string_view method;
  std::string_view target;
  std::string_view path;   // target up to '?', still percent-encoded
  std::string_view route;  // the matched pattern, e.g. "/v1/persons/{id}"
  Params path_params;      // percent-decoded {name} values
  Params query;            // percent-decoded, '+' as space, in order
  const Headers* headers = nullptr;
  std::string_view body;
  std::optional<Principal> principal;  // set on every route that needs a token
  std::string request_id;              // unique, or the caller's sane X-Request-Id
  std::string remote;

  // Value of path parameter `name`; empty when the route has no such parameter.
  std::string_view Param(std::string_view name) const;
  // First query parameter `name`, if present.
  std::optional<std::string_view> Query(std::string_view name) const;
  std::optional<std::string_view> Header(std::string_view name) const;

  // For a handler (or the refusal hook) that has started a write its response must not
  // be sent before, such as an audit event being group-committed: returns the callback
  // to call exactly once, from any thread, when the write is durable (null) or has
  // failed (the exception). The response is held until every such callback has been
  // called, and becomes a 500 (or the FatalError's problem) if any reported a failure,
  // so no thread has to block while the write commits. Only inside a RequestHandler
  // call; throws FatalError(kInternal) elsewhere.
  using WriteDone = std::function<void(std::exception_ptr error)>;
  WriteDone Defer() const;

  InFlight* in_flight = nullptr;  // set by RequestHandler; what Defer() registers with
};

// RFC 9457 problem+json from caregate's problem table: type, title, status, detail,
// instance (= the request id). The status comes from the table; `detail` should not echo
// personal data or raw client input.
Response Problem(caregate::Problem problem, std::string detail, const RequestContext& ctx);
Response ProblemForRequestId(caregate::Problem problem, std::string_view detail,
                             std::string_view request_id);

// The `type` member is this prefix followed by the problem's slug.
inline constexpr std::string_view kProblemTypePrefix = "urn:caregate:problem:";

// RFC 3986 percent-decoding; `plus_as_space` for application/x-www-form-urlencoded
// query strings. nullopt on a bad escape or when the result is not valid UTF-8.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_as_space);
// Splits `a=1&b=x%20y` into decoded pairs; nullopt if any part fails to decode.
std::optional<Params> ParseQuery(std::string_view query);

// Appends the HTTP/1.1 status line and header block the session sends before `r`'s body
// of `body_size` bytes, ending with the empty line: Server, Date, Content-Type (if set),
// r.headers in order, `Connection: close` unless `keep_alive`, and Content-Length unless
// the status is 204 or 304. A field whose name or value holds CR or LF is left out, and so
// is an empty name. The bytes are what Beast's serializer wrote for the same message
// (tested against it), written without Beast's field list and buffer sequences.
void AppendResponseHead(std::string& out, const Response& r, std::string_view date, std::size_t body_size,
                        bool keep_alive);

}  // namespace caregate::server
