#include "caregate/audit/report.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

#include "caregate/core/text.h"

namespace caregate::audit {
namespace {

// Audit fields come from requests (URLs, headers), so they may hold any bytes; reports
// must stay valid UTF-8 whatever they hold. Each bad byte becomes U+FFFD.
std::string ValidUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n != 0 && i + n <= s.size() && IsValidUtf8(s.substr(i, n))) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

struct UserSummary {
  std::string user;
  std::string organisation;
  std::set<std::string> roles;
  std::int64_t count = 0;
  std::int64_t refused = 0;
};

struct Count {
  std::string key;
  std::int64_t count = 0;
};

bool IsRefusal(const AuditEvent& e) {
  return e.action == "refused" || (!e.outcome.empty() && (e.outcome[0] == '4' || e.outcome[0] == '5'));
}

struct Summary {
  std::vector<UserSummary> by_user;
  std::vector<Count> by_outcome;
  std::vector<Count> by_action;
  std::string first, last;
};

// Most frequent first; ties in name order, so the output is stable.
std::vector<Count> Ranked(const std::map<std::string, std::int64_t>& counts) {
  std::vector<Count> out;
  for (const auto& [k, n] : counts) out.push_back({k, n});
  std::stable_sort(out.begin(), out.end(), [](const Count& a, const Count& b) { return a.count > b.count; });
  return out;
}

Summary Summarise(const std::vector<AuditEvent>& events) {
  Summary s;
  std::map<std::pair<std::string, std::string>, UserSummary> users;
  std::map<std::string, std::int64_t> outcomes, actions;
  for (const auto& e : events) {
    auto& u = users[{e.user, e.organisation}];
    u.user = e.user;
    u.organisation = e.organisation;
    u.roles.insert(e.role);
    ++u.count;
    if (IsRefusal(e)) ++u.refused;
    ++outcomes[e.outcome];
    ++actions[e.action];
    if (s.first.empty() || e.time_utc < s.first) s.first = e.time_utc;
    if (e.time_utc > s.last) s.last = e.time_utc;
  }
  for (auto& [key, u] : users) s.by_user.push_back(std::move(u));
  std::stable_sort(s.by_user.begin(), s.by_user.end(),
                   [](const UserSummary& a, const UserSummary& b) { return a.count > b.count; });
  s.by_outcome = Ranked(outcomes);
  s.by_action = Ranked(actions);
  return s;
}

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(JsonWriter& w, std::string_view s) {
  const std::string v = ValidUtf8(s);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void Key(JsonWriter& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }

void StrOrNull(JsonWriter& w, std::string_view s) {
  if (s.empty())
    w.Null();
  else
    Str(w, s);
}

void Counts(JsonWriter& w, std::string_view name, std::string_view key_name, const std::vector<Count>& counts) {
  Key(w, name);
  w.StartArray();
  for (const auto& c : counts) {
    w.StartObject();
    Key(w, key_name);
    Str(w, c.key);
    Key(w, "count");
    w.Int64(c.count);
    w.EndObject();
  }
  w.EndArray();
}

void Html(std::string& out, std::string_view s) {
  std::string v = ValidUtf8(s);
  for (auto& c : v)  // control characters have no place in a report; tabs and newlines do
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') c = ' ';
  AppendXmlEscaped(out, v);
}

void Cell(std::string& out, std::string_view s, std::string_view tag = "td") {
  out += '<';
  out += tag;
  out += '>';
  Html(out, s);
  out += "</";
  out += tag;
  out += '>';
}

constexpr std::string_view kStyle = R"css(
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #b1b4b6; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f2f1; }
td.n { text-align: right; }
tr.refused td { background: #fdf0ef; }
.note { color: #505a5f; font-size: 0.9em; }
code { font-family: ui-monospace, monospace; }
)css";

}  // namespace

std::string RenderAuditReportJson(const std::vector<AuditEvent>& events, const std::string& person,
                                  std::optional<std::int64_t> next_after, bool paged) {
  const Summary s = Summarise(events);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Key(w, "person");
  StrOrNull(w, person);
  Key(w, "count");
  w.Int64(static_cast<std::int64_t>(events.size()));
  if (paged) {
    Key(w, "next_after");
    if (next_after) w.Int64(*next_after);
    else w.Null();
  }
  Key(w, "first");
  StrOrNull(w, s.first);
  Key(w, "last");
  StrOrNull(w, s.last);
  Key(w, "summary");
  w.StartObject();
  Key(w, "by_user");
  w.StartArray();
  for (const auto& u : s.by_user) {
    w.StartObject();
    Key(w, "user");
    Str(w, u.user);
    Key(w, "organisation");
    Str(w, u.organisation);
    Key(w, "roles");
    w.StartArray();
    for (const auto& r : u.roles) Str(w, r);
    w.EndArray();
    Key(w, "count");
    w.Int64(u.count);
    Key(w, "refused");
    w.Int64(u.refused);
    w.EndObject();
  }
  w.EndArray();
  Counts(w, "by_outcome", "outcome", s.by_outcome);
  Counts(w, "by_action", "action", s.by_action);
  w.EndObject();
  Key(w, "events");
  w.StartArray();
  for (const auto& e : events) {
    w.StartObject();
    Key(w, "seq");
    w.Int64(e.seq);
    Key(w, "time");
    Str(w, e.time_utc);
    Key(w, "user");
    Str(w, e.user);
    Key(w, "role");
    Str(w, e.role);
    Key(w, "organisation");
    Str(w, e.organisation);
    Key(w, "action");
    Str(w, e.action);
    Key(w, "person_ids");
    w.StartArray();
    for (const auto& id : e.person_ids) Str(w, id);
    w.EndArray();
    Key(w, "view");
    Str(w, e.view);
    Key(w, "outcome");
    Str(w, e.outcome);
    Key(w, "request_id");
    Str(w, e.request_id);
    Key(w, "detail");
    Str(w, e.detail);
    Key(w, "hash");
    Str(w, e.hash);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string RenderAuditReportHtml(const std::vector<AuditEvent>& events, const std::string& person) {
  const Summary s = Summarise(events);
  std::string out;
  out.reserve(2048 + events.size() * 400);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
      "'unsafe-inline'\">\n<title>";
  out += "Audit report";
  if (!person.empty()) {
    out += ": ";
    Html(out, person);
  }
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<h1>Audit report";
  if (!person.empty()) {
    out += " for <code>";
    Html(out, person);
    out += "</code>";
  }
  out += "</h1>\n<p>";
  if (events.empty()) {
    out += "No events recorded";
    out += person.empty() ? "." : " for this person.";
  } else {
    std::int64_t refused = 0;
    for (const auto& e : events) refused += IsRefusal(e) ? 1 : 0;
    out += std::to_string(events.size());
    out += events.size() == 1 ? " event" : " events";
    out += " by ";
    out += std::to_string(s.by_user.size());
    out += s.by_user.size() == 1 ? " user" : " users";
    out += ", from ";
    Html(out, s.first);
    out += " to ";
    Html(out, s.last);
    out += " (UTC); ";
    out += std::to_string(refused);
    out += refused == 1 ? " was refused or failed." : " were refused or failed.";
  }
  out += "</p>\n";

  if (!events.empty()) {
    out += "<h2>Accesses by user</h2>\n<table>\n<tr><th>User</th><th>Organisation</th><th>Roles</th>"
           "<th>Events</th><th>Refused or failed</th></tr>\n";
    for (const auto& u : s.by_user) {
      out += "<tr>";
      Cell(out, u.user);
      Cell(out, u.organisation);
      std::string roles;
      for (const auto& r : u.roles) roles += (roles.empty() ? "" : ", ") + r;
      Cell(out, roles);
      out += "<td class=\"n\">" + std::to_string(u.count) + "</td><td class=\"n\">" +
             std::to_string(u.refused) + "</td></tr>\n";
    }
    out += "</table>\n<h2>By outcome</h2>\n<table>\n<tr><th>Outcome</th><th>Events</th></tr>\n";
    for (const auto& c : s.by_outcome) {
      out += "<tr>";
      Cell(out, c.key);
      out += "<td class=\"n\">" + std::to_string(c.count) + "</td></tr>\n";
    }
    out += "</table>\n<h2>Events</h2>\n<table>\n<tr><th>Seq</th><th>Time (UTC)</th><th>User</th>"
           "<th>Role</th><th>Organisation</th><th>Action</th><th>Person ids</th><th>View</th>"
           "<th>Outcome</th><th>Why</th><th>Request id</th></tr>\n";
    for (const auto& e : events) {
      out += IsRefusal(e) ? "<tr class=\"refused\">" : "<tr>";
      out += "<td class=\"n\">" + std::to_string(e.seq) + "</td>";
      Cell(out, e.time_utc);
      Cell(out, e.user);
      Cell(out, e.role);
      Cell(out, e.organisation);
      Cell(out, e.action);
      std::string ids;
      for (const auto& id : e.person_ids) ids += (ids.empty() ? "" : ", ") + id;
      Cell(out, ids);
      Cell(out, e.view);
      Cell(out, e.outcome);
      Cell(out, e.detail);
      Cell(out, e.request_id);
      out += "</tr>\n";
    }
    out += "</table>\n";
  }
  out +=
      "<p class=\"note\">Every event is chained to the one before it by SHA-256, so an edited, "
      "inserted or removed event is detected by <code>caregate audit verify</code>.</p>\n"
      "</body>\n</html>\n";
  return out;
}

std::string RenderVerifyResultJson(const VerifyResult& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Key(w, "ok");
  w.Bool(r.ok);
  Key(w, "count");
  w.Int64(r.count);
  Key(w, "head");
  w.StartObject();
  Key(w, "seq");
  w.Int64(r.head_seq);
  Key(w, "hash");
  Str(w, r.head_hash);
  w.EndObject();
  if (!r.ok) {
    Key(w, "first_bad_seq");
    w.Int64(r.first_bad_seq);
    Key(w, "problem");
    Str(w, r.problem);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace caregate::audit
