#pragma once
// An IG officer's account of who saw what, when, in which role, with what outcome and
// why. Output is deterministic (no generation time) so reports can be compared and kept.
#include <optional>
#include <string>
#include <vector>

#include "caregate/audit/audit_event.h"
#include "caregate/audit/audit_log.h"

namespace caregate::audit {

// {"person": "nhs:..." | null, "count": N, "first": time|null, "last": time|null,
//  "summary": {"by_user": [{"user","organisation","roles":[...],"count"}...],
//              "by_outcome": [{"outcome","count"}...], "by_action": [...]},
//  "events": [{"seq","time","user","role","organisation","action","person_ids",
//              "view","outcome","request_id","detail","hash"}...]}
// `person` "" means the report is not about one person.
// `paged` (the HTTP route): the body also has "next_after", the `after` of the next
// page, or null when these events are the last that match.
std::string RenderAuditReportJson(const std::vector<AuditEvent>& events, const std::string& person,
                                  std::optional<std::int64_t> next_after = std::nullopt, bool paged = false);
// A self-contained HTML page (inline style, no scripts, every value escaped): a short
// summary (accesses by user and by outcome) and one table row per event.
std::string RenderAuditReportHtml(const std::vector<AuditEvent>& events, const std::string& person);
// {"ok", "count", "head": {"seq","hash"}, "first_bad_seq", "problem"} (the last two only
// when not ok).
std::string RenderVerifyResultJson(const VerifyResult& r);

}  // namespace caregate::audit
