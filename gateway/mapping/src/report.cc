#include "caregate/mapping/report.h"

#include <set>

#include "caregate/core/text.h"
#include "caregate/model/field_registry.h"

namespace caregate::mapping {
namespace {

const char* DirectionName(Direction d) {
  switch (d) {
    case Direction::kBoth: return "both";
    case Direction::kIn: return "in";
    case Direction::kOut: return "out";
  }
  return "?";
}

struct Coverage {
  size_t mapped = 0, total = 0;
  std::vector<std::string> unmapped;
};

Coverage CoverageOf(const MappingPlan& plan, const std::string& system) {
  std::set<std::string> mapped;
  for (const auto& r : plan.Rules(system))
    if (!r.is_group) mapped.insert(r.canonical);
  Coverage c;
  for (const auto& f : model::AllFields()) {
    ++c.total;
    if (mapped.count(std::string(f.name))) ++c.mapped;
    else c.unmapped.emplace_back(f.name);
  }
  return c;
}

}  // namespace

std::string RenderMappingsJson(const MappingPlan& plan) {
  std::string out = "{\"version\":";
  AppendJsonString(out, plan.version());
  out += ",\"systems\":[";
  bool first_sys = true;
  for (const auto& sys : plan.systems()) {
    if (!first_sys) out += ',';
    first_sys = false;
    const SystemProfile* p = plan.Profile(sys);
    out += "{\"name\":";
    AppendJsonString(out, sys);
    out += ",\"display_name\":";
    AppendJsonString(out, p->display_name);
    out += ",\"rules\":[";
    bool first = true;
    for (const auto& r : plan.Rules(sys)) {
      if (!first) out += ',';
      first = false;
      out += "{\"rule\":";
      AppendJsonString(out, r.id);
      out += ",\"canonical\":";
      AppendJsonString(out, r.canonical);
      out += ",\"path\":";
      AppendJsonString(out, r.path);
      out += ",\"transform\":";
      AppendJsonString(out, r.transform);
      out += ",\"direction\":";
      AppendJsonString(out, DirectionName(r.direction));
      out += r.lossy ? ",\"lossy\":true" : ",\"lossy\":false";
      out += ",\"purpose\":";
      AppendJsonString(out, r.purpose);
      out += ",\"source\":";
      AppendJsonString(out, r.file + ":" + std::to_string(r.line));
      out += '}';
    }
    Coverage c = CoverageOf(plan, sys);
    out += "],\"coverage\":{\"canonical_fields\":" + std::to_string(c.total) +
           ",\"mapped\":" + std::to_string(c.mapped) + ",\"not_mapped\":[";
    for (size_t i = 0; i < c.unmapped.size(); ++i) {
      if (i) out += ',';
      AppendJsonString(out, c.unmapped[i]);
    }
    out += "]}}";
  }
  out += "],\"code_sets\":[";
  bool first_set = true;
  for (const auto& [name, set] : plan.code_sets()) {
    if (!first_set) out += ',';
    first_set = false;
    out += "{\"name\":";
    AppendJsonString(out, name);
    out += ",\"codes\":[";
    bool first = true;
    for (const auto& e : set->entries()) {
      if (!first) out += ',';
      first = false;
      out += "{\"code\":";
      AppendJsonString(out, e.code);
      out += ",\"meaning\":";
      AppendJsonString(out, e.meaning);
      for (const auto& [sys, v] : e.systems) {
        out += ',';
        AppendJsonString(out, sys);
        out += ":{\"value\":";
        AppendJsonString(out, v.value);
        out += v.lossy ? ",\"lossy\":true}" : ",\"lossy\":false}";
      }
      out += '}';
    }
    out += "]}";
  }
  out += "],\"record_rules\":[";
  bool first_rule = true;
  for (const auto& r : RecordRules()) {
    if (!first_rule) out += ',';
    first_rule = false;
    out += "{\"rule\":";
    AppendJsonString(out, r.id);
    out += ",\"description\":";
    AppendJsonString(out, r.description);
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string MappingsPageHead(std::string_view title, std::string_view extra_css) {
  const std::string t = XmlEscaped(title);
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + t +
         "</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
         "margin:1em 0}th,td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top;"
         "font-size:14px}th{background:#eef}" +
         std::string(extra_css) + "code{font-size:13px}</style></head><body>\n<h1>" + t + "</h1>\n";
}

std::string RenderMappingsHtml(const MappingPlan& plan) {
  std::string out = MappingsPageHead("caregate mapping tables", "tr.lossy td{background:#fff3e0}") +
      "<p>Tables version (SHA-256 of every table file): <code>" + XmlEscaped(plan.version()) + "</code>. Loaded from <code>" + XmlEscaped(plan.dir()) +
      "</code>. Rows highlighted are <strong>lossy</strong>: a value mapped through them may lose detail, and "
      "a lossy value is never written back over the source system's own value.</p>\n";
  out += "<h2>Record rules</h2><table><tr><th>Rule</th><th>What it does</th></tr>\n";
  for (const auto& r : RecordRules())
    out += "<tr><td><code>" + XmlEscaped(r.id) + "</code></td><td>" + XmlEscaped(r.description) + "</td></tr>\n";
  out += "</table>\n";
  for (const auto& sys : plan.systems()) {
    const SystemProfile* p = plan.Profile(sys);
    Coverage c = CoverageOf(plan, sys);
    out += "<h2>" + XmlEscaped(p->display_name) + " field rules</h2>\n<p>" + std::to_string(c.mapped) + " of " +
           std::to_string(c.total) + " canonical fields are mapped for " + XmlEscaped(p->display_name) + ".</p>\n";
    out += "<table><tr><th>Rule</th><th>Canonical field</th><th>" + XmlEscaped(p->display_name) +
           " path</th><th>Transform</th><th>Direction</th><th>Lossy</th><th>Purpose</th><th>Source</th></tr>\n";
    for (const auto& r : plan.Rules(sys)) {
      out += r.lossy ? "<tr class=\"lossy\">" : "<tr>";
      out += "<td><code>" + XmlEscaped(r.id) + "</code></td><td><code>" + XmlEscaped(r.canonical) + "</code></td><td><code>" +
             XmlEscaped(r.path) + "</code></td><td><code>" + XmlEscaped(r.transform) + "</code></td><td>" +
             DirectionName(r.direction) + "</td><td>" + (r.lossy ? "yes" : "no") + "</td><td>" + XmlEscaped(r.purpose) +
             "</td><td>" + XmlEscaped(r.file + ":" + std::to_string(r.line)) + "</td></tr>\n";
    }
    out += "</table>\n";
    if (!c.unmapped.empty()) {
      out += "<details><summary>Canonical fields " + XmlEscaped(p->display_name) + " does not carry (" +
             std::to_string(c.unmapped.size()) + ")</summary><p>";
      for (size_t i = 0; i < c.unmapped.size(); ++i) out += (i ? ", " : "") + std::string("<code>") + XmlEscaped(c.unmapped[i]) + "</code>";
      out += "</p></details>\n";
    }
  }
  out += "<h2>Code sets</h2>\n";
  for (const auto& [name, set] : plan.code_sets()) {
    out += "<h3 id=\"" + XmlEscaped(name) + "\">" + XmlEscaped(name) + "</h3><table><tr><th>Canonical code</th>";
    std::vector<std::string> systems;
    for (const auto& sys : plan.systems())
      if (set->HasSystem(sys)) systems.push_back(sys);
    for (const auto& sys : systems) out += "<th>" + XmlEscaped(plan.Profile(sys)->display_name) + "</th>";
    out += "<th>Meaning</th></tr>\n";
    for (const auto& e : set->entries()) {
      bool lossy = false;
      for (const auto& [s, v] : e.systems) lossy = lossy || v.lossy;
      out += lossy ? "<tr class=\"lossy\">" : "<tr>";
      out += "<td><code>" + XmlEscaped(e.code) + "</code></td>";
      for (const auto& sys : systems) {
        auto it = e.systems.find(sys);
        out += "<td>" + (it == e.systems.end() ? std::string() : XmlEscaped(it->second.value) + (it->second.lossy ? " <em>(lossy)</em>" : "")) + "</td>";
      }
      out += "<td>" + XmlEscaped(e.meaning) + "</td></tr>\n";
    }
    out += "</table>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace caregate::mapping
