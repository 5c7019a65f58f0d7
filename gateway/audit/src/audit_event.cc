#include "caregate/audit/audit_event.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "caregate/core/hash.h"
#include "caregate/core/text.h"

namespace caregate::audit {
namespace {

namespace chr = std::chrono;

void AppendField(std::string& out, std::string_view value) {
  AppendDecimal(out, value.size());
  out += ':';
  out.append(value);
  out += '\n';
}

// The numbers' fields: the decimal text as the value (short: no allocation).
void AppendNumberField(std::string& out, std::int64_t n) {
  std::string digits;
  AppendDecimal(digits, n);
  AppendField(out, digits);
}

void AppendCanonicalAuditBytes(std::string& out, const AuditEvent& e) {
  out += "caregate-audit/1\n";
  AppendNumberField(out, e.seq);
  AppendField(out, e.time_utc);
  AppendField(out, e.user);
  AppendField(out, e.role);
  AppendField(out, e.organisation);
  AppendField(out, e.action);
  AppendNumberField(out, static_cast<std::int64_t>(e.person_ids.size()));
  for (const auto& id : e.person_ids) AppendField(out, id);
  AppendField(out, e.view);
  AppendField(out, e.outcome);
  AppendField(out, e.request_id);
  AppendField(out, e.detail);
}

// Fixed-width unsigned decimal at `pos`; false unless all `n` characters are digits.
bool Digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

std::optional<std::string> FormatMillis(chr::sys_time<chr::milliseconds> tp) {
  const auto day = chr::floor<chr::days>(tp);
  const chr::year_month_day ymd{day};
  const chr::hh_mm_ss hms{tp - day};
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) return std::nullopt;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", year,
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return std::string(buf);
}

}  // namespace

std::string CanonicalAuditBytes(const AuditEvent& e) {
  std::string out;
  out.reserve(256 + e.detail.size());
  AppendCanonicalAuditBytes(out, e);
  return out;
}

std::string ComputeAuditHash(const AuditEvent& e) {
  // One context and one buffer per thread, not two allocations per event.
  thread_local Sha256 h;
  thread_local std::string bytes;
  bytes.clear();
  AppendCanonicalAuditBytes(bytes, e);
  h.reset();
  h.update(e.prev_hash);
  h.update(bytes);
  if (bytes.capacity() > (64u << 10)) std::string().swap(bytes);  // after a large detail
  return h.hex_digest();
}

std::string FormatAuditTime(chr::sys_time<chr::milliseconds> t) {
  thread_local chr::sys_seconds cached_second{chr::seconds{-1}};
  thread_local std::string prefix;  // "YYYY-MM-DDTHH:MM:SS.", 20 characters
  const auto second = chr::floor<chr::seconds>(t);
  if (second != cached_second || prefix.size() != 20) {
    auto full = FormatMillis(second);
    if (!full) throw std::out_of_range("audit time outside the years 0000-9999");
    prefix = full->substr(0, 20);
    cached_second = second;
  }
  const auto millis = static_cast<int>((t - second).count());
  std::string out;
  out.reserve(24);
  out = prefix;
  out += static_cast<char>('0' + millis / 100);
  out += static_cast<char>('0' + millis / 10 % 10);
  out += static_cast<char>('0' + millis % 10);
  out += 'Z';
  return out;
}

std::string UtcNowRfc3339() { return FormatAuditTime(chr::floor<chr::milliseconds>(chr::system_clock::now())); }

std::optional<std::string> NormaliseAuditTime(std::string_view t, bool end_of_period) {
  int y = 0, mo = 0, d = 0;
  if (!Digits(t, 0, 4, y) || t.size() < 10 || t[4] != '-' || !Digits(t, 5, 2, mo) || t[7] != '-' ||
      !Digits(t, 8, 2, d))
    return std::nullopt;
  const chr::year_month_day ymd{chr::year{y}, chr::month{static_cast<unsigned>(mo)},
                                chr::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  const chr::sys_time<chr::milliseconds> midnight{chr::sys_days{ymd}};
  if (t.size() == 10)
    return FormatMillis(end_of_period ? midnight + chr::days{1} - chr::milliseconds{1} : midnight);

  int h = 0, mi = 0, s = 0;
  if ((t[10] != 'T' && t[10] != 't' && t[10] != ' ') || !Digits(t, 11, 2, h) || t.size() < 19 ||
      t[13] != ':' || !Digits(t, 14, 2, mi) || t[16] != ':' || !Digits(t, 17, 2, s) || h > 23 ||
      mi > 59 || s > 59)
    return std::nullopt;
  std::size_t pos = 19;
  int millis = 0, precision = 0;  // precision: fraction digits written
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      if (precision < 3) millis = millis * 10 + (t[pos] - '0');
      ++precision;
      ++pos;
    }
    if (precision == 0) return std::nullopt;
    for (int i = precision; i < 3; ++i) millis *= 10;
  }
  if (end_of_period && precision < 3) millis += precision == 0 ? 999 : precision == 1 ? 99 : 9;

  int offset_minutes = 0;
  if (pos >= t.size()) return std::nullopt;  // RFC 3339 requires Z or an offset
  if (t[pos] == 'Z' || t[pos] == 'z') {
    ++pos;
  } else if (t[pos] == '+' || t[pos] == '-') {
    int oh = 0, om = 0;
    if (!Digits(t, pos + 1, 2, oh) || pos + 3 >= t.size() || t[pos + 3] != ':' ||
        !Digits(t, pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_minutes = (oh * 60 + om) * (t[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  return FormatMillis(midnight + chr::hours{h} + chr::minutes{mi} + chr::seconds{s} +
                      chr::milliseconds{millis} - chr::minutes{offset_minutes});
}

}  // namespace caregate::audit
