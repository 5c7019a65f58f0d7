// Fuzz target for the HTTP API behind the sockets: the pure request handler with every
// route of spec section 8 (caregate::app::App), over the store of app_world.h: council
// and SystmOne records, sensitive ones and ones withheld by consent among them.
//
// Input, as text so that seeds can be read and written by hand:
//   line 1:   <who><METHOD> <target>      who: h health, c council, i ig, s service,
//                                         n no Authorization, b a wrong token; anything
//                                         else: only the headers below
//   lines:    Name: value                 request header fields, up to a blank line
//   the rest: the body
//
// What must hold for every request (spec section 8, docs/lookups.md):
//   - never a 500: whatever a caller sends is answered by a rule, not by a failure;
//   - every error is application/problem+json whose "status" is the response's status;
//     every JSON body is valid JSON;
//   - without a valid token, nothing but /healthz and /metrics answers 2xx;
//   - every refusal (401, 403) and every person read (2xx on /v1/persons/...) has left
//     at least one audit event before the response came back;
//   - nobody but a record's own organisation ever sees a sensitive record's address or
//     phones, or anything of a record withheld by consent (council records: only the
//     council; SystmOne records: only health).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "caregate/app/app.h"
#include "caregate/core/hash.h"
#include "app_world.h"
#include "fuzz_util.h"

namespace {

using caregate::fuzz::Check;
namespace server = caregate::server;
using caregate::fuzz::kHealthMarkers;
using caregate::fuzz::kMarkers;
using caregate::fuzz::TheWorld;
using caregate::fuzz::World;

rapidjson::Document ParseJson(const std::string& body) {
  std::string padded = body;
  padded.append(16, '\0');  // RapidJSON's SSE2 scan reads aligned blocks past the end
  rapidjson::Document d;
  d.Parse(padded.c_str(), body.size());
  if (d.HasParseError())
    caregate::fuzz::Fail("response body is not JSON", std::string(rapidjson::GetParseError_En(d.GetParseError())) +
                                                          "\n" + body);
  return d;
}

std::string_view NextLine(std::string_view& rest) {
  std::size_t n = rest.find('\n');
  std::string_view line = rest.substr(0, n);
  rest = n == std::string_view::npos ? std::string_view() : rest.substr(n + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  if (rest.empty()) return 0;
  // The caller's own text may come back (a translation, say): such inputs are skipped.
  for (std::string_view m : kMarkers)
    if (rest.find(m) != std::string_view::npos) return 0;
  for (std::string_view m : kHealthMarkers)
    if (rest.find(m) != std::string_view::npos) return 0;
  World& w = TheWorld();

  const char who = rest[0];
  rest.remove_prefix(1);
  std::string_view first = NextLine(rest);
  std::size_t sp = first.find(' ');
  server::Request req;
  req.method = std::string(first.substr(0, sp));
  req.target = sp == std::string_view::npos ? std::string() : std::string(first.substr(sp + 1));
  for (std::string_view h = NextLine(rest); !h.empty(); h = NextLine(rest)) {
    std::size_t colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    req.headers.Add(std::string(h.substr(0, colon)), std::string(value));
  }
  req.body = std::string(rest);
  const char* token = nullptr;
  switch (who) {
    case 'h': token = "tok-health"; break;
    case 'c': token = "tok-council"; break;
    case 'i': token = "tok-ig"; break;
    case 's': token = "tok-service"; break;
    case 'b': token = "tok-wrong"; break;
    default: break;
  }
  if (token) req.headers.Add("Authorization", std::string("Bearer ") + token);
  // Who the caller may be: a seed's own Authorization fields may carry any token.
  bool maybe_valid = who == 'h' || who == 'c' || who == 'i' || who == 's';
  bool maybe_council = who == 'c', maybe_health = who == 'h';
  for (const auto& [name, value] : req.headers) {
    if (value.find("tok-") != std::string::npos) maybe_valid = true;
    if (value.find("tok-council") != std::string::npos) maybe_council = true;
    if (value.find("tok-health") != std::string::npos) maybe_health = true;
  }

  const std::int64_t events_before = w.app->audit().stats().events;
  server::Response res = w.handler->Handle(req);
  const std::int64_t events_after = w.app->audit().stats().events;
  const std::string what = req.method + " " + req.target + " -> " + std::to_string(res.status) + " (" + res.route +
                           ")\n" + res.body.substr(0, 2000);

  Check(res.status >= 200 && res.status <= 599, "status out of range", what);
  Check(res.status != 500, "500 Internal Server Error", what);
  if (res.status >= 400) {
    Check(res.content_type == "application/problem+json", "error is not problem+json", what);
    rapidjson::Document d = ParseJson(res.body);
    Check(d.IsObject() && d.HasMember("status") && d["status"].IsInt() && d["status"].GetInt() == res.status,
          "problem's status is not the response's", what);
    Check(d.HasMember("title") && d["title"].IsString(), "problem without a title", what);
  } else if (res.content_type.rfind("application/json", 0) == 0 && !res.body.empty()) {
    ParseJson(res.body);
  }
  Check(caregate::IsValidUtf8(res.body) || res.content_type.find("xml") == std::string::npos,
        "XML body is not UTF-8", what);
  if (!maybe_valid && res.status < 300)
    Check(res.route == "/healthz" || res.route == "/metrics", "answered 2xx without a token", what);
  if (res.status == 401 || res.status == 403) Check(events_after > events_before, "refusal not audited", what);
  if (res.status < 300 && res.route.rfind("/v1/persons/", 0) == 0)
    Check(events_after > events_before, "person read not audited", what);
  if (!maybe_council)
    for (std::string_view m : kMarkers)
      Check(res.body.find(m) == std::string::npos, "council-only data shown to another role", what);
  if (!maybe_health)
    for (std::string_view m : kHealthMarkers)
      Check(res.body.find(m) == std::string::npos, "health-only data shown to another role", what);
  return 0;
}
