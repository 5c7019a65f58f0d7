#include "caregate/app/app.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "caregate/app/unified_view.h"
#include "caregate/format/json.h"
#include "caregate/audit/report.h"
#include "caregate/mapping/report.h"
#include "caregate/model/canonical_json.h"

namespace caregate::app {

namespace {

// GET /v1/audit/events answers a page of events at a time: this many unless `limit` says
// otherwise, and never more than kAuditPageMax.
constexpr std::int64_t kAuditPage = 1000;
constexpr std::int64_t kAuditPageMax = 10000;

using server::Access;
using server::RequestContext;
using server::Response;
using server::Role;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(JsonWriter& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void StrArray(JsonWriter& w, const std::vector<std::string>& items) {
  w.StartArray();
  for (const auto& s : items) Str(w, s);
  w.EndArray();
}

bool IsSystem(std::string_view s) { return s == "systmone" || s == "cis"; }
bool IsView(std::string_view s) { return IsSystem(s) || s == "canonical"; }

std::string DefaultView(Role role) { return role == Role::kCouncil ? "cis" : "systmone"; }

std::string Outcome(int status, caregate::Problem p) {
  return std::to_string(status) + " " + std::string(Describe(p).slug);
}

// problem+json with the field errors of an invalid record: {"path","problem"} each.
Response InvalidRecord(const FieldErrors& errors, const RequestContext& ctx) {
  Response r = server::Problem(caregate::Problem::kInvalidRecord,
                               std::to_string(errors.size()) + " problem(s) with the record; see errors", ctx);
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartArray();
  for (const auto& e : errors) {
    w.StartObject();
    w.Key("path");
    Str(w, e.path);
    w.Key("problem");
    Str(w, e.problem);
    w.EndObject();
  }
  w.EndArray();
  const auto brace = r.body.rfind('}');
  r.body.replace(brace, 1, std::string(",\"errors\":") + sb.GetString() + "}");
  return r;
}

std::string PersonIdFromPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/persons/";
  if (!path.starts_with(kPrefix)) return {};
  std::string_view rest = path.substr(kPrefix.size());
  rest = rest.substr(0, rest.find('/'));
  auto decoded = server::PercentDecode(rest, false);
  return decoded ? *decoded : std::string();
}

std::string ProposalJson(const identity::LinkProposal& p) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("id");
  w.Int64(p.id);
  w.Key("status");
  Str(w, p.status);
  w.Key("person_a");
  StrArray(w, p.ids_a);
  w.Key("person_b");
  StrArray(w, p.ids_b);
  w.Key("match_key");
  Str(w, p.match_key);
  w.Key("created_at");
  Str(w, p.created_at);
  w.Key("decided_by");
  if (p.decided_by.empty()) w.Null(); else Str(w, p.decided_by);
  w.Key("decided_at");
  if (p.decided_at.empty()) w.Null(); else Str(w, p.decided_at);
  w.EndObject();
  return sb.GetString();
}

}  // namespace

std::string DefaultDatabasePath() {
  if (const char* env = std::getenv("CAREGATE_DB"); env && *env) return env;
  return "caregate.db";
}

struct App::Impl {
  std::shared_ptr<const engine::Engine> engine;
  identity::PersonStore store;
  audit::AuditLog audit;
  std::shared_ptr<server::Metrics> metrics;
  std::string mappings_json;
  server::MetricHistogram& audit_latency;
  server::MetricGauge& records_stored;
  server::MetricGauge& persons_stored;
  server::MetricGauge& audit_events;
  server::MetricGauge& audit_commits;
  server::MetricCounter& audit_failures;
  server::MetricGauge& audit_insert_seconds;
  server::MetricGauge& audit_commit_seconds;
  server::MetricGauge& audit_wal_tails;
  server::MetricGauge& audit_wal_tails_forced;

  Impl(std::shared_ptr<const engine::Engine> e, const std::string& db, std::shared_ptr<server::Metrics> m,
       identity::PersonStoreOptions store_options)
      : engine(std::move(e)),
        store(db, store_options),
        audit(db),
        metrics(std::move(m)),
        mappings_json(mapping::RenderMappingsJson(engine->plan())),
        audit_latency(metrics->Histogram("caregate_audit_write_seconds",
                                         "Time a request waited for its audit event to be durable (group commit)")),
        records_stored(metrics->Gauge("caregate_records_stored", "Source records held in the store")),
        persons_stored(metrics->Gauge("caregate_persons_stored", "Persons known to the identity index")),
        audit_events(metrics->Gauge("caregate_audit_events_committed", "Audit events committed by this process")),
        audit_commits(metrics->Gauge("caregate_audit_commits", "Audit group commits by this process")),
        audit_failures(metrics->Counter("caregate_audit_write_failures_total",
                                        "Requests failed because their audit event could not be made durable")),
        audit_insert_seconds(metrics->Gauge("caregate_audit_writer_insert_seconds",
                                            "Audit writer time chaining and inserting events (this process)")),
        audit_commit_seconds(metrics->Gauge("caregate_audit_writer_commit_seconds",
                                            "Audit writer time in COMMIT, mostly fsync (this process)")),
        audit_wal_tails(metrics->Gauge("caregate_audit_wal_tails",
                                       "WAL tail checkpoints the audit writer ran between batches (this process)")),
        audit_wal_tails_forced(metrics->Gauge(
            "caregate_audit_wal_tails_forced",
            "Of those, tails run while events were queued, having waited 32 batches for a quiet moment")) {
    RefreshGauges();
  }
  // Audit callbacks still queued use the metrics below: let them run while those exist.
  ~Impl() { audit.Close(); }

  void RefreshGauges() {
    records_stored.Set(static_cast<double>(store.SourceRecordCount()));
    persons_stored.Set(static_cast<double>(store.PersonCount()));
    const auto st = audit.stats();
    audit_events.Set(static_cast<double>(st.events));
    audit_commits.Set(static_cast<double>(st.commits));
    audit_insert_seconds.Set(static_cast<double>(st.insert_us) / 1e6);
    audit_commit_seconds.Set(static_cast<double>(st.commit_us) / 1e6);
    audit_wal_tails.Set(static_cast<double>(st.wal_tails));
    audit_wal_tails_forced.Set(static_cast<double>(st.wal_tails_forced));
  }

  // Queues the event and defers the response until it is durable (RequestContext::Defer),
  // without blocking this thread; if it cannot be made durable the framework answers 500
  // instead of the response the handler gives.
  void Audit(const RequestContext& ctx, std::string_view action, std::vector<std::string> person_ids,
             std::string_view view, std::string outcome, std::string detail = {}) {
    audit::AuditEvent e;
    if (ctx.principal) {
      e.user = ctx.principal->user_id;
      e.role = std::string(server::RoleName(ctx.principal->role));
      e.organisation = ctx.principal->organisation;
    }
    e.action = std::string(action);
    e.person_ids = std::move(person_ids);
    e.view = std::string(view);
    e.outcome = std::move(outcome);
    e.request_id = ctx.request_id;
    e.detail = std::move(detail);
    // Runs on the audit writer thread: record, then release the response.
    audit.Append(std::move(e), [this, done = ctx.Defer(), start = std::chrono::steady_clock::now()](
                                   std::int64_t, const std::exception_ptr& error) {
      if (error)
        audit_failures.Inc();
      else
        audit_latency.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      done(error);
    });
  }

  Response Refuse(caregate::Problem p, std::string detail, const RequestContext& ctx, std::string_view action,
                  std::vector<std::string> ids, std::string_view view) {
    Response r = server::Problem(p, detail, ctx);
    Audit(ctx, action, std::move(ids), view, Outcome(r.status, p), std::move(detail));
    return r;
  }

  // ---- GET /v1/persons/{id} ----
  Response GetPerson(const RequestContext& ctx) {
    const std::string id(ctx.Param("id"));
    std::string view = DefaultView(ctx.principal->role);
    if (auto q = ctx.Query("view")) view = std::string(*q);
    if (!IsView(view)) {
      // Named by every id the person is known by, as the framework's refusals are, so that
      // an IG officer asking about the person by any of them finds the attempt.
      auto known = store.Find(id, /*with_lineage=*/false);
      return Refuse(caregate::Problem::kUsage, "view must be systmone, cis or canonical", ctx, "read",
                    known ? known->ids : std::vector<std::string>{id}, "");
    }
    auto person = store.Find(id, /*with_lineage=*/view == "canonical");
    if (!person) return Refuse(caregate::Problem::kNotFound, "no person with this id", ctx, "read", {id}, view);
    auto rendered = RenderedView(*ctx.principal, view, person);
    if (!rendered)
      return Refuse(caregate::Problem::kConsentWithheld,
                    "the person has not consented to share their record with your organisation", ctx, "read",
                    person->ids, view);
    Response r;
    r.content_type = rendered->content_type;
    r.shared_body = rendered->body;  // written from the cache, not copied
    if (!rendered->lossy.empty()) r.headers.Add("X-Caregate-Lossy-Fields", rendered->lossy);
    std::string detail = rendered->detail;
    Audit(ctx, "read", person->ids, view, "200", std::move(detail));
    return r;
  }

  // A rendered view depends only on the stored records (the snapshot), the caller's
  // organisation and the view, so it is kept with the snapshot (its memo) and goes when
  // the snapshot is replaced. Every request is still authorised and audited; only the
  // rendering is shared.
  struct Rendered {
    std::string content_type, lossy, detail;
    std::shared_ptr<const std::string> body;
  };

  std::shared_ptr<const Rendered> RenderedView(const server::Principal& who, const std::string& view,
                                               const std::shared_ptr<const identity::PersonSnapshot>& person) {
    if (auto kept = person->memo.Get(who.organisation, view)) return std::static_pointer_cast<const Rendered>(kept);
    auto uv = BuildUnifiedView(*person, {who.organisation, view, false});
    if (!uv) return nullptr;
    auto out = std::make_shared<Rendered>();
    if (view == "canonical") {
      out->content_type = "application/json";
      out->body = std::make_shared<const std::string>(CanonicalViewJson(*person, *uv));
    } else {
      mapping::WriteReport report;
      std::string body;
      engine->Render(body, uv->record, view, false, &report);
      out->body = std::make_shared<const std::string>(std::move(body));
      out->content_type = std::string(engine->adapter(view).media_type());
      for (const auto& l : report.lossy) out->lossy += (out->lossy.empty() ? "" : ", ") + l.field;
    }
    out->detail = "records: ";
    for (const auto& s : uv->systems) out->detail += s + " ";
    if (uv->consent_withheld_other) out->detail += "; other organisation's record withheld (consent)";
    if (uv->redacted_other) out->detail += "; contact details redacted (sensitive)";
    return std::static_pointer_cast<const Rendered>(person->memo.Put(who.organisation, view, std::move(out)));
  }

  std::size_t Warm(std::size_t max_persons, const std::vector<server::Role>& roles, unsigned threads) {
    std::vector<std::pair<server::Principal, std::string>> targets;  // (organisation, default view), each once
    for (const auto role : roles) {
      server::Principal who{"", role, std::string(server::OrganisationOf(role))};
      std::string view = DefaultView(role);
      const bool seen = std::any_of(targets.begin(), targets.end(), [&](const auto& t) {
        return t.first.organisation == who.organisation && t.second == view;
      });
      if (!seen) targets.emplace_back(std::move(who), std::move(view));
    }
    return store.Warm(max_persons, threads, [&](const std::shared_ptr<const identity::PersonSnapshot>& person) {
      if (person->ids.empty()) return;
      for (const auto& [who, view] : targets) {
        RenderedView(who, view, person);  // null (not kept) when withheld from this organisation
      }
    });
  }

  std::string CanonicalViewJson(const identity::PersonSnapshot& person, const UnifiedView& uv) {
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartObject();
    w.Key("view");
    Str(w, "canonical");
    w.Key("person_ids");
    StrArray(w, uv.person_ids);
    w.Key("sources");
    w.StartArray();
    for (const auto& s : uv.systems) {
      w.StartObject();
      w.Key("system");
      Str(w, s);
      w.Key("updated_at");
      Str(w, s == "systmone" ? person.systmone_updated_at : person.cis_updated_at);
      w.EndObject();
    }
    w.EndArray();
    w.Key("field_sources");
    w.StartObject();
    for (const auto& [field, system] : uv.field_sources) {
      Str(w, field);
      Str(w, system);
    }
    w.EndObject();
    // What each translated view of this record would lose.
    w.Key("lossy");
    w.StartObject();
    for (const char* target : {"systmone", "cis"}) {
      mapping::WriteReport report;
      std::string scratch;
      engine->Render(scratch, uv.record, target, false, &report);
      w.Key(target);
      w.StartArray();
      for (const auto& l : report.lossy) {
        w.StartObject();
        w.Key("field");
        Str(w, l.field);
        w.Key("rule");
        Str(w, l.rule);
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
    w.Key("withheld");
    w.Bool(uv.consent_withheld_other);
    w.Key("redacted");
    w.Bool(uv.redacted_other);
    w.Key("canonical_record");
    const std::string record = model::ToCanonicalJson(uv.record);
    w.RawValue(record.data(), record.size(), rapidjson::kObjectType);
    w.EndObject();
    return sb.GetString();
  }

  // ---- POST /v1/ingest/{system} ----
  Response Ingest(const RequestContext& ctx) {
    const std::string system(ctx.Param("system"));
    if (!IsSystem(system)) return server::Problem(caregate::Problem::kNotFound, "no such source system", ctx);
    std::vector<std::string> ids;  // a refused record's, for its audit event
    auto record = engine->Read(system, ctx.body, true, &ids);
    if (!record) {
      Response r = InvalidRecord(record.errors(), ctx);
      Audit(ctx, "ingest", store.WithKnownIds(ids), system,
            Outcome(422, caregate::Problem::kInvalidRecord), FormatErrors(record.errors()));
      return r;
    }
    const identity::IngestOutcome out = store.Ingest(record.value());
    const int status = out.created ? 201 : 200;
    std::string detail = std::string(out.created ? "created" : out.unchanged ? "unchanged" : "updated") + " " +
                         system + " record";
    if (out.merged) detail += "; persons merged on NHS number";
    if (!out.proposals.empty()) detail += "; link proposal(s) raised";
    Audit(ctx, "ingest", out.person_ids, system, std::to_string(status), std::move(detail));
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartObject();
    w.Key("person_ids");
    StrArray(w, out.person_ids);
    w.Key("status");
    Str(w, out.created ? "created" : "updated");
    w.Key("link_proposals");
    w.StartArray();
    for (auto id : out.proposals) w.Int64(id);
    w.EndArray();
    w.EndObject();
    return Response::Json(status, sb.GetString());
  }

  // ---- POST /v1/translate?from=&to= ----
  Response Translate(const RequestContext& ctx) {
    const std::string from(ctx.Query("from").value_or(""));
    const std::string to(ctx.Query("to").value_or(""));
    if (!IsSystem(from) || !IsView(to))
      return Refuse(caregate::Problem::kUsage, "from must be systmone or cis; to systmone, cis or canonical", ctx,
                    "translate", {}, to);
    std::vector<std::string> ids;  // a refused record's, for its audit event
    auto record = engine->Read(from, ctx.body, to == "canonical", &ids);
    if (!record) {
      Response r = InvalidRecord(record.errors(), ctx);
      Audit(ctx, "translate", std::move(ids), to, Outcome(422, caregate::Problem::kInvalidRecord),
            FormatErrors(record.errors()));
      return r;
    }
    Response r;
    mapping::WriteReport report;
    engine->Render(r.body, record.value(), to, false, &report);
    r.content_type = to == "canonical" ? "application/json" : std::string(engine->adapter(to).media_type());
    std::string lossy;
    for (const auto& l : report.lossy) lossy += (lossy.empty() ? "" : ", ") + l.field;
    if (!lossy.empty()) r.headers.Add("X-Caregate-Lossy-Fields", lossy);
    // Unknown keys or elements a system's format cannot carry (spec 1 and 2: reported,
    // never silently dropped). Only their number: their names are the sender's bytes, and
    // to=canonical lists them.
    if (to != "canonical" && !record->unmapped.empty())
      r.headers.Add("X-Caregate-Unmapped-Items", std::to_string(record->unmapped.size()));
    Audit(ctx, "translate", record->person_ids(), to, "200", "from " + from);
    return r;
  }

  // ---- GET /v1/persons/{id}/lineage ----
  Response Lineage(const RequestContext& ctx) {
    const std::string id(ctx.Param("id"));
    auto person = store.Find(id, /*with_lineage=*/true);
    if (!person) return Refuse(caregate::Problem::kNotFound, "no person with this id", ctx, "lineage", {id}, "");
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartObject();
    w.Key("person_ids");
    StrArray(w, person->ids);
    w.Key("values");
    Str(w, "redacted");
    w.Key("sources");
    w.StartArray();
    for (const char* system : {"systmone", "cis"}) {
      const model::CareRecord* r = person->record(system);
      if (r == nullptr) continue;
      w.StartObject();
      w.Key("system");
      Str(w, system);
      w.Key("updated_at");
      Str(w, std::string_view(system) == "systmone" ? person->systmone_updated_at : person->cis_updated_at);
      w.Key("fields");
      w.StartArray();
      for (const auto& p : r->lineage) {
        w.StartObject();
        w.Key("field");
        Str(w, p.field);
        w.Key("system");
        Str(w, system);
        w.Key("source_path");
        Str(w, p.source_path);
        w.Key("rule");
        Str(w, p.rule);
        w.Key("lossy");
        w.Bool(p.lossy);
        w.EndObject();
      }
      w.EndArray();
      w.Key("unmapped_paths");
      w.StartArray();
      for (const auto& u : r->unmapped) Str(w, u.source_path);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    // Per view: the fields the translated record would carry lossily or not at all.
    w.Key("views");
    w.StartObject();
    for (const char* view : {"systmone", "cis"}) {
      auto uv = BuildUnifiedView(*person, {"caregate", view, true});
      if (!uv) continue;
      mapping::WriteReport report;
      std::string scratch;
      engine->Render(scratch, uv->record, view, false, &report);
      w.Key(view);
      w.StartObject();
      w.Key("lossy");
      w.StartArray();
      for (const auto& l : report.lossy) {
        w.StartObject();
        w.Key("field");
        Str(w, l.field);
        w.Key("target_path");
        Str(w, l.source_path);
        w.Key("rule");
        Str(w, l.rule);
        w.EndObject();
      }
      w.EndArray();
      w.Key("not_carried");
      StrArray(w, report.not_carried);
      w.EndObject();
    }
    w.EndObject();
    w.EndObject();
    Audit(ctx, "lineage", person->ids, "", "200");
    return Response::Json(200, sb.GetString());
  }

  // ---- GET /v1/audit/events ----
  Response AuditEvents(const RequestContext& ctx) {
    audit::AuditQuery q;
    q.person_id = std::string(ctx.Query("person").value_or(""));
    q.user = std::string(ctx.Query("user").value_or(""));
    q.from = std::string(ctx.Query("from").value_or(""));
    q.to = std::string(ctx.Query("to").value_or(""));
    // One page at a time: `limit` events at most (kAuditPage unless asked, never more
    // than kAuditPageMax), and `next_after` says where the next page starts. A trail of
    // millions of events is never built into one body.
    FieldErrors errors;
    auto count = [&](const char* name, std::int64_t max) -> std::optional<std::int64_t> {
      auto v = ctx.Query(name);
      if (!v) return std::nullopt;
      std::int64_t n = 0;
      bool ok = !v->empty() && v->size() <= 18;
      for (char c : *v) ok = ok && c >= '0' && c <= '9';
      if (ok) {
        for (char c : *v) n = n * 10 + (c - '0');
        ok = n <= max;
      }
      if (!ok) {
        errors.push_back({name, max == kAuditPageMax ? "must be a whole number from 0 to " + std::to_string(max)
                                                     : "must be a whole number (an event's seq)"});
        return std::nullopt;
      }
      return n;
    };
    q.after_seq = count("after", std::numeric_limits<std::int64_t>::max()).value_or(0);
    const std::int64_t page = count("limit", kAuditPageMax).value_or(kAuditPage);
    std::vector<std::string> ids;
    if (!q.person_id.empty()) ids.push_back(q.person_id);
    for (auto& e : audit::CheckAuditQuery(q)) errors.push_back(std::move(e));
    if (!errors.empty()) return Refuse(caregate::Problem::kUsage, FormatErrors(errors), ctx, "audit-query", ids, "");
    q.limit = page + 1;  // one more than the page: is there a next page?
    // A person is asked for by one id, but known by all of theirs: events that named the
    // person only by another id (a read before two records were linked) are theirs too.
    // Each id's first page after `after`, merged by seq, holds the union's first page.
    auto events = audit::QueryAnyOf(
        q, q.person_id.empty() ? std::vector<std::string>{} : store.WithKnownIds({q.person_id}),
        [&](const audit::AuditQuery& one) { return audit.Query(one); });
    std::optional<std::int64_t> next_after;
    if (static_cast<std::int64_t>(events.size()) > page) {
      events.resize(static_cast<std::size_t>(page));
      next_after = events.empty() ? q.after_seq : events.back().seq;
    }
    Audit(ctx, "audit-query", ids, "", "200", std::to_string(events.size()) + " event(s) returned");
    return Response::Json(200, audit::RenderAuditReportJson(events, q.person_id, next_after, /*paged=*/true));
  }

  Response AuditVerify(const RequestContext& ctx) {
    auto result = audit.Verify();
    Audit(ctx, "audit-verify", {}, "", "200", result.ok ? "chain intact" : "chain damaged at seq " +
                                                                              std::to_string(result.first_bad_seq));
    return Response::Json(200, audit::RenderVerifyResultJson(result));
  }

  // ---- link review ----
  Response ListProposals(const RequestContext& ctx) {
    std::string status(ctx.Query("status").value_or("pending"));
    if (status == "all") status.clear();
    if (!status.empty() && status != "pending" && status != "accepted" && status != "rejected")
      return Refuse(caregate::Problem::kUsage, "status must be pending, accepted, rejected or all", ctx,
                    "link-review", {}, "");
    auto proposals = store.Proposals(status);
    std::vector<std::string> ids;
    std::string body = "{\"proposals\":[";
    for (std::size_t i = 0; i < proposals.size(); ++i) {
      if (i) body += ',';
      body += ProposalJson(proposals[i]);
      ids.insert(ids.end(), proposals[i].ids_a.begin(), proposals[i].ids_a.end());
      ids.insert(ids.end(), proposals[i].ids_b.begin(), proposals[i].ids_b.end());
    }
    body += "]}";
    Audit(ctx, "link-review", std::move(ids), "", "200", std::to_string(proposals.size()) + " proposal(s)");
    return Response::Json(200, std::move(body));
  }

  Response DecideProposal(const RequestContext& ctx) {
    const std::string id_text(ctx.Param("id"));
    char* end = nullptr;
    const long long id = std::strtoll(id_text.c_str(), &end, 10);
    if (id_text.empty() || *end != '\0' || id <= 0)
      return Refuse(caregate::Problem::kNotFound, "no such link proposal", ctx, "link-decide", {}, "");
    // The hardened reader (depth, size and UTF-8 checked, format/json.h): a body is
    // whatever the caller sent, up to the server's 1 MiB limit.
    auto doc = format::ParseJson(ctx.body);
    if (!doc)
      return Refuse(caregate::Problem::kUsage, "request body: " + FormatErrors(doc.errors()), ctx, "link-decide", {},
                    "");
    const SourceNode* field = doc.value().child("decision");
    std::string decision = field && field->kind == NodeKind::kString ? field->value : std::string();
    if (decision != "accept" && decision != "reject")
      return Refuse(caregate::Problem::kUsage, R"(send {"decision":"accept"} or {"decision":"reject"})", ctx,
                    "link-decide", {}, "");
    auto before = store.Proposal(id);
    std::vector<std::string> ids;
    if (before) {
      ids = before->ids_a;
      ids.insert(ids.end(), before->ids_b.begin(), before->ids_b.end());
      std::sort(ids.begin(), ids.end());  // each id once, though both sides be one person
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    }
    auto result = store.Decide(id, decision == "accept", ctx.principal->user_id);
    switch (result.status) {
      case identity::DecideStatus::kNotFound:
        return Refuse(caregate::Problem::kNotFound, result.detail, ctx, "link-decide", ids, "");
      case identity::DecideStatus::kAlreadyDecided:
      case identity::DecideStatus::kConflict:
        return Refuse(caregate::Problem::kConflict, result.detail, ctx, "link-decide", ids, "");
      case identity::DecideStatus::kOk: break;
    }
    Audit(ctx, "link-" + decision, ids, "", "200", "proposal " + id_text);
    return Response::Json(200, ProposalJson(*result.proposal));
  }

  // ---- refusals made by the framework (401, 403 forbidden-role, 413 body-too-large) ----
  // A known person's refusal names every id the person is known by, so that an IG
  // officer asking about the person by any of them finds it (the caller learns nothing:
  // the answer is the same refusal either way).
  void OnRefused(const RequestContext& ctx, caregate::Problem problem, const Response& refusal) {
    std::vector<std::string> ids;
    if (auto id = PersonIdFromPath(ctx.path); !id.empty()) ids = store.WithKnownIds({id});
    Audit(ctx, "refused", std::move(ids), "", Outcome(refusal.status, problem),
          std::string(ctx.method) + " " + std::string(ctx.route.empty() ? ctx.path : ctx.route));
  }
};

App::App(std::shared_ptr<const engine::Engine> engine, const std::string& db_path,
         std::shared_ptr<server::Metrics> metrics, identity::PersonStoreOptions store_options)
    : impl_(std::make_unique<Impl>(std::move(engine), db_path, std::move(metrics), store_options)) {}
App::~App() = default;

std::size_t App::Warm(std::size_t max_persons, const std::vector<server::Role>& roles, unsigned threads) {
  return impl_->Warm(max_persons, roles, threads);
}

identity::PersonStore& App::store() { return impl_->store; }
audit::AuditLog& App::audit() { return impl_->audit; }
const engine::Engine& App::engine() const { return *impl_->engine; }
server::Metrics& App::metrics() { return *impl_->metrics; }

server::Router App::Routes() {
  Impl* d = impl_.get();
  server::Router r;
  auto bind = [d](Response (Impl::*fn)(const RequestContext&)) {
    return [d, fn](const RequestContext& ctx) { return (d->*fn)(ctx); };
  };
  r.Add("GET", "/metrics", Access::Anyone(), [d](const RequestContext&) {
    d->RefreshGauges();
    Response res;
    res.content_type = std::string(server::Metrics::kContentType);
    res.body = d->metrics->Render();
    return res;
  });
  // Lookups and translations never block (their audit event is deferred), so they run on
  // the I/O thread; the routes that write the store or scan the audit trail do not.
  r.Add("GET", "/v1/persons/{id}", Access::Roles({Role::kHealth, Role::kCouncil}), bind(&Impl::GetPerson),
        server::Execution::kInline);
  r.Add("GET", "/v1/persons/{id}/lineage", Access::Roles({Role::kIg}), bind(&Impl::Lineage));
  r.Add("POST", "/v1/ingest/{system}", Access::Roles({Role::kService}), bind(&Impl::Ingest));
  r.Add("POST", "/v1/translate", Access::Roles({Role::kHealth, Role::kCouncil, Role::kService}),
        bind(&Impl::Translate), server::Execution::kInline);
  r.Add("GET", "/v1/audit/events", Access::Roles({Role::kIg}), bind(&Impl::AuditEvents));
  r.Add("GET", "/v1/audit/verify", Access::Roles({Role::kIg}), bind(&Impl::AuditVerify));
  r.Add(
      "GET", "/v1/mappings", Access::Roles({Role::kIg}),
      [d](const RequestContext&) { return Response::Json(200, d->mappings_json); }, server::Execution::kInline);
  r.Add("GET", "/v1/links/proposed", Access::Roles({Role::kIg}), bind(&Impl::ListProposals));
  r.Add("POST", "/v1/links/proposed/{id}", Access::Roles({Role::kIg}), bind(&Impl::DecideProposal));
  return r;
}

std::shared_ptr<server::RequestHandler> App::MakeHandler(server::TokenStore tokens) {
  auto handler = std::make_shared<server::RequestHandler>(Routes(), std::move(tokens), impl_->metrics);
  Impl* d = impl_.get();
  handler->OnRefused([d](const RequestContext& ctx, caregate::Problem problem, const Response& refusal) {
    d->OnRefused(ctx, problem, refusal);
  });
  return handler;
}

}  // namespace caregate::app
