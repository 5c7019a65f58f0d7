#include "caregate/server/router.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "caregate/core/error.h"

namespace caregate::server {

Access Access::Anyone() {
  Access a;
  a.public_ = true;
  a.mask_ = 0xF;
  return a;
}

Access Access::AnyRole() {
  Access a;
  a.mask_ = 0xF;
  return a;
}

Access Access::Roles(std::initializer_list<Role> roles) {
  Access a;
  for (Role r : roles) a.mask_ = static_cast<std::uint8_t>(a.mask_ | (1u << static_cast<unsigned>(r)));
  return a;
}

namespace {

bool IsParam(std::string_view seg) { return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}'; }

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// "/a/b" -> {"a","b"}; "/" -> {""}. The path must start with '/'.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t pos = 1;
  while (true) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(pos));
      return out;
    }
    out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
}

std::string Shape(const std::vector<std::string>& segments) {
  std::string s;
  for (const auto& seg : segments) s += "/" + (IsParam(seg) ? std::string("{}") : seg);
  return s;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Access access, Handler handler, Execution execution) {
  auto fail = [&](std::string_view why) {
    return FatalError(caregate::Problem::kUsage, fmt::format("route {} {}: {}", method, pattern, why));
  };
  if (method.empty() || !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
    throw fail("the method must be upper-case letters");
  if (pattern.empty() || pattern.front() != '/') throw fail("the pattern must start with '/'");
  if (!handler) throw fail("no handler");
  std::vector<std::string> segments;
  if (pattern != "/") {
    std::set<std::string, std::less<>> names;
    for (std::string_view seg : SplitPath(pattern)) {
      if (seg.empty()) throw fail("empty path segment");
      if (IsParam(seg)) {
        std::string_view name = seg.substr(1, seg.size() - 2);
        if (!IsIdentifier(name)) throw fail("a parameter name must be an identifier");
        if (!names.insert(std::string(name)).second) throw fail("repeated parameter name");
      } else if (seg.find_first_of("{}?#% ") != std::string_view::npos) {
        throw fail("a literal segment may not contain { } ? # % or space");
      }
      segments.emplace_back(seg);
    }
  } else {
    segments.emplace_back();
  }
  if (access.is_public() && (pattern == "/v1" || pattern.starts_with("/v1/")))
    throw fail("every /v1 route needs a token; it cannot be public");
  const std::string shape = Shape(segments);
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (Shape(segments_[i]) != shape) continue;
    if (routes_[i].pattern != pattern)
      throw fail(fmt::format("matches the same paths as {} with other parameter names", routes_[i].pattern));
    if (routes_[i].method == method) throw fail("already registered");
  }
  routes_.push_back(Route{std::move(method), std::move(pattern), access, std::move(handler), execution});
  segments_.push_back(std::move(segments));
}

bool Router::Has(std::string_view method, std::string_view pattern) const {
  return std::any_of(routes_.begin(), routes_.end(),
                     [&](const Route& r) { return r.method == method && r.pattern == pattern; });
}

namespace {
// A route serves its own method; a GET route serves HEAD too (RFC 9110 9.3.2: the same
// answer without its content, which the session leaves out).
bool Serves(std::string_view route_method, std::string_view method) {
  return route_method == method || (method == "HEAD" && route_method == "GET");
}
}  // namespace

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match m;
  if (path.empty() || path.front() != '/') return m;
  const std::vector<std::string_view> parts = SplitPath(path);

  // Specificity: the bit for segment k (most significant first) is set when segment k is
  // a literal, so a literal beats a parameter at the first place two patterns differ.
  // Only the first 63 segments count; no route is anywhere near that deep.
  auto specificity = [&](const std::vector<std::string>& segs) {
    std::uint64_t key = 0;
    for (std::size_t k = 0; k < segs.size() && k < 63; ++k)
      if (!IsParam(segs[k])) key |= std::uint64_t{1} << (62 - k);
    return key;
  };

  auto matches = [&](std::size_t i) {
    const auto& segs = segments_[i];
    if (segs.size() != parts.size()) return false;
    for (std::size_t k = 0; k < segs.size(); ++k)
      if (IsParam(segs[k]) ? parts[k].empty() : segs[k] != parts[k]) return false;
    return true;
  };

  std::size_t best = routes_.size();
  std::uint64_t best_key = 0;
  std::size_t best_any = routes_.size();
  std::uint64_t best_any_key = 0;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (!matches(i)) continue;
    const std::uint64_t key = specificity(segments_[i]);
    if (best_any == routes_.size() || key > best_any_key) best_any = i, best_any_key = key;
    if (Serves(routes_[i].method, method) && (best == routes_.size() || key > best_key)) best = i, best_key = key;
  }
  if (best == routes_.size()) {
    if (best_any == routes_.size()) return m;
    m.outcome = Outcome::kMethodNotAllowed;
    m.pattern = routes_[best_any].pattern;
    std::set<std::string_view> allow;
    for (std::size_t i = 0; i < routes_.size(); ++i)
      if (matches(i)) {
        allow.insert(routes_[i].method);
        if (routes_[i].method == "GET") allow.insert("HEAD");
      }
    for (std::string_view a : allow) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += a;
    }
    return m;
  }
  const auto& segs = segments_[best];
  m.pattern = routes_[best].pattern;
  for (std::size_t k = 0; k < segs.size(); ++k) {
    if (!IsParam(segs[k])) continue;
    auto value = PercentDecode(parts[k], false);
    if (!value) {
      m.outcome = Outcome::kBadEncoding;
      m.params.clear();
      return m;
    }
    m.params.emplace_back(segs[k].substr(1, segs[k].size() - 2), std::move(*value));
  }
  m.outcome = Outcome::kFound;
  m.route = &routes_[best];
  return m;
}

}  // namespace caregate::server
