#pragma once
// One audit event and its place in the hash chain. The canonical serialisation and the
// hash are public so an IG officer's own tool can re-check an exported trail; the exact
// byte format is documented in docs/audit.md and must never change for version 1.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caregate::audit {

struct AuditEvent {
  std::int64_t seq = 0;                 // set by the log: 1, 2, 3, ... without gaps
  std::string time_utc{};                 // RFC 3339, ms, Z; set by the log when empty
  std::string user{};
  std::string role{};                     // health, council, ig, service
  std::string organisation{};
  std::string action{};                   // read, ingest, translate, refused, lineage, audit-query
  std::vector<std::string> person_ids{};  // prefixed: "nhs:...", "s1:...", "cis:..."
  std::string view{};                     // systmone, cis, canonical, or ""
  std::string outcome{};                  // "200", "403 consent-withheld", ...
  std::string request_id{};
  std::string detail{};                   // why, in plain words
  std::string prev_hash{};                // set by the log
  std::string hash{};                     // set by the log

  friend bool operator==(const AuditEvent&, const AuditEvent&) = default;
};

// prev_hash of the first event.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// "caregate-audit/1\n" then, for seq, time_utc, user, role, organisation, action, the
// number of person ids, each person id, view, outcome, request_id and detail in that
// order: "<decimal byte length>:<bytes>\n". Length prefixes make it unambiguous whatever
// bytes a field holds.
std::string CanonicalAuditBytes(const AuditEvent& e);
// Lower-case hex SHA-256 of prev_hash followed by CanonicalAuditBytes(e).
std::string ComputeAuditHash(const AuditEvent& e);

// Now, UTC, as "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string UtcNowRfc3339();
// `t` (UTC) as "YYYY-MM-DDTHH:MM:SS.mmmZ", what UtcNowRfc3339 returns. The text up to the
// seconds is formatted once per second per thread (the audit queue stamps every event
// under its lock); only the milliseconds are written each time.
std::string FormatAuditTime(std::chrono::sys_time<std::chrono::milliseconds> t);
// Normalises an RFC 3339 time ("2024-05-01T10:00:00+01:00", "...T09:00:00.5Z") or a date
// ("2024-05-01") to "YYYY-MM-DDTHH:MM:SS.mmmZ" in UTC. A bound is inclusive at the
// precision written: as an upper bound (`end_of_period`), a date means its last
// millisecond and a time in whole seconds the last millisecond of that second.
// nullopt when `text` is neither.
std::optional<std::string> NormaliseAuditTime(std::string_view text, bool end_of_period = false);

}  // namespace caregate::audit
