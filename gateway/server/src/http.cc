#include "caregate/server/http.h"

#include <algorithm>

#include <boost/beast/http/status.hpp>

#include "caregate/core/text.h"

namespace caregate::server {

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void Headers::Add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }

void Headers::Set(std::string name, std::string value) {
  std::erase_if(fields_, [&](const Field& f) { return IEquals(f.first, name); });
  fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string_view> Headers::Find(std::string_view name) const {
  for (const auto& f : fields_)
    if (IEquals(f.first, name)) return std::string_view(f.second);
  return std::nullopt;
}

std::size_t Headers::Count(std::string_view name) const {
  return static_cast<std::size_t>(
      std::count_if(fields_.begin(), fields_.end(), [&](const Field& f) { return IEquals(f.first, name); }));
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

std::string_view RequestContext::Param(std::string_view name) const {
  for (const auto& [k, v] : path_params)
    if (k == name) return v;
  return {};
}

std::optional<std::string_view> RequestContext::Query(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

std::optional<std::string_view> RequestContext::Header(std::string_view name) const {
  if (headers == nullptr) return std::nullopt;
  return headers->Find(name);
}

Response ProblemForRequestId(caregate::Problem problem, std::string_view detail, std::string_view request_id) {
  const ProblemInfo& info = Describe(problem);
  Response r;
  r.status = info.http_status;
  r.content_type = "application/problem+json";
  std::string& b = r.body;
  b.reserve(160 + detail.size());
  b += "{\"type\":\"";
  AppendJsonEscaped(b, kProblemTypePrefix);
  AppendJsonEscaped(b, info.slug);
  b += "\",\"title\":\"";
  AppendJsonEscaped(b, info.title);
  b += "\",\"status\":";
  b += std::to_string(info.http_status);
  if (!detail.empty()) {
    b += ",\"detail\":\"";
    AppendJsonEscaped(b, detail);
    b += '"';
  }
  if (!request_id.empty()) {
    b += ",\"instance\":\"";
    AppendJsonEscaped(b, request_id);
    b += '"';
  }
  b += '}';
  return r;
}

Response Problem(caregate::Problem problem, std::string detail, const RequestContext& ctx) {
  return ProblemForRequestId(problem, detail, ctx.request_id);
}

std::optional<std::string> PercentDecode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  if (!IsValidUtf8(out)) return std::nullopt;
  return out;
}

std::optional<Params> ParseQuery(std::string_view query) {
  Params out;
  for (std::string_view part : Split(query, '&')) {
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    auto name = PercentDecode(part.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

namespace {

bool SafeFieldText(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

void AppendResponseHead(std::string& out, const Response& r, std::string_view date, std::size_t body_size,
                        bool keep_alive) {
  const auto reason = boost::beast::http::obsolete_reason(boost::beast::http::int_to_status(
      static_cast<unsigned>(r.status)));
  out.append("HTTP/1.1 ");
  AppendDecimal(out, r.status);
  out.push_back(' ');
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  AppendField(out, "Server", "caregate");
  AppendField(out, "Date", date);
  if (!r.content_type.empty() && SafeFieldText(r.content_type)) AppendField(out, "Content-Type", r.content_type);
  for (const auto& [name, value] : r.headers)
    if (!name.empty() && SafeFieldText(name) && SafeFieldText(value)) AppendField(out, name, value);
  if (!keep_alive) AppendField(out, "Connection", "close");
  if (r.status != 204 && r.status != 304) {
    out.append("Content-Length: ");
    AppendDecimal(out, body_size);
    out.append("\r\n");
  }
  out.append("\r\n");
}

}  // namespace caregate::server
