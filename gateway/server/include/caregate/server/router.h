#pragma once
// The one route table: method + path pattern -> handler and who may call it.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/server/auth.h"
#include "caregate/server/http.h"

namespace caregate::server {

// Who may call a route.
class Access {
 public:
  static Access Anyone();         // no token needed (health check, metrics)
  static Access AnyRole();        // any valid token
  static Access Roles(std::initializer_list<Role> roles);

  bool is_public() const { return public_; }
  bool Allows(Role role) const { return (mask_ >> static_cast<unsigned>(role)) & 1u; }

 private:
  bool public_ = false;
  std::uint8_t mask_ = 0;
};

// A handler must be thread-safe: many run at once.
using Handler = std::function<Response(const RequestContext&)>;

// Where a route's handler runs.
enum class Execution {
  // On the server's worker pool, never on the thread that does socket I/O: the handler
  // may block (a store write's fsync, a long query).
  kWorker,
  // On the I/O thread that read the request, saving two thread hand-offs: for handlers
  // that never block. Writes they must wait for go through RequestContext::Defer.
  kInline,
};

struct Route {
  std::string method;   // exact, upper case: "GET", "POST", ...
  std::string pattern;  // "/v1/persons/{id}/lineage"
  Access access;
  Handler handler;
  Execution execution = Execution::kWorker;
};

class Router {
 public:
  // Patterns are absolute paths of literal segments and `{name}` segments, each `{name}`
  // matching one non-empty segment. Throws FatalError(kUsage) for a malformed pattern,
  // a repeated method+pattern, two patterns that match the same paths with different
  // parameter names, or a public route under /v1 (every /v1 call needs a token).
  void Add(std::string method, std::string pattern, Access access, Handler handler,
           Execution execution = Execution::kWorker);

  enum class Outcome { kFound, kMethodNotAllowed, kNotFound, kBadEncoding };
  struct Match {
    Outcome outcome = Outcome::kNotFound;
    const Route* route = nullptr;  // kFound
    std::string_view pattern;      // kFound and kMethodNotAllowed
    Params params;                 // kFound: percent-decoded
    std::string allow;             // kMethodNotAllowed: "GET, POST"
  };
  // `path` is still percent-encoded. When several patterns match, literal segments
  // win over parameters, left to right.
  Match Find(std::string_view method, std::string_view path) const;

  bool Has(std::string_view method, std::string_view pattern) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // per route; "{name}" for a parameter
};

}  // namespace caregate::server
