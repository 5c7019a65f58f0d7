#include "caregate/mapping/values.h"

#include <array>

#include "caregate/core/text.h"

namespace caregate::mapping {
namespace {
bool Digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}
int Num(std::string_view s) {
  int n = 0;
  for (char c : s) n = n * 10 + (c - '0');
  return n;
}
bool IsLetter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
}  // namespace

std::string CheckNhsNumber(std::string_view s) {
  if (s.size() != 10 || !Digits(s)) return "NHS number must be exactly 10 digits";
  int sum = 0;
  for (int i = 0; i < 9; ++i) sum += (s[static_cast<size_t>(i)] - '0') * (10 - i);
  int check = 11 - sum % 11;
  if (check == 11) check = 0;
  if (check == 10) return "NHS number fails the Modulus 11 check (check digit would be 10)";
  if (check != s[9] - '0') return "NHS number fails the Modulus 11 check";
  return {};
}

std::string CheckDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !Digits(s.substr(0, 4)) || !Digits(s.substr(5, 2)) ||
      !Digits(s.substr(8, 2)))
    return "not a date in the form YYYY-MM-DD";
  int y = Num(s.substr(0, 4)), m = Num(s.substr(5, 2)), d = Num(s.substr(8, 2));
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  // Every real date of the four-digit years 0001-9999 (proleptic Gregorian); no year 0000.
  if (y < 1 || m < 1 || m > 12 || d < 1) return "not a real calendar date";
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  int max = kDays[static_cast<size_t>(m - 1)] + (m == 2 && leap ? 1 : 0);
  if (d > max) return "not a real calendar date";
  return {};
}

std::string CheckDateTime(std::string_view s) {
  if (s.size() < 16 || s[10] != 'T') return "not an ISO 8601 date-time (YYYY-MM-DDThh:mm[:ss][offset])";
  if (auto e = CheckDate(s.substr(0, 10)); !e.empty()) return e;
  std::string_view t = s.substr(11);
  auto two = [](std::string_view v, int max) { return v.size() >= 2 && Digits(v.substr(0, 2)) && Num(v.substr(0, 2)) <= max; };
  if (!two(t, 23) || t.size() < 5 || t[2] != ':' || !two(t.substr(3), 59))
    return "not an ISO 8601 date-time (bad time of day)";
  t = t.substr(5);
  if (!t.empty() && t[0] == ':') {
    if (!two(t.substr(1), 59)) return "not an ISO 8601 date-time (bad seconds)";
    t = t.substr(3);
    if (!t.empty() && t[0] == '.') {
      size_t n = 1;
      while (n < t.size() && t[n] >= '0' && t[n] <= '9') ++n;
      if (n == 1) return "not an ISO 8601 date-time (bad fraction)";
      t = t.substr(n);
    }
  }
  if (t.empty() || t == "Z") return {};
  if ((t[0] == '+' || t[0] == '-') && t.size() == 6 && t[3] == ':' && two(t.substr(1), 23) && two(t.substr(4), 59))
    return {};
  return "not an ISO 8601 date-time (bad offset)";
}

std::string CheckDecimal(std::string_view s) {
  size_t i = 0;
  if (!s.empty() && s[0] == '-') return "must not be negative";
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t frac = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac;
    if (frac == 0) return "not a decimal number";
  }
  if (digits == 0 || i != s.size()) return "not a decimal number";
  return {};
}

std::string CheckOffsetDateTime(std::string_view s) {
  if (auto e = CheckDateTime(s); !e.empty()) return e;
  char last = s.back();
  if (last != 'Z' && !(s.size() >= 6 && (s[s.size() - 6] == '+' || s[s.size() - 6] == '-')))
    return "date-time has no offset (expected e.g. +01:00 or Z)";
  return {};
}

std::string CheckInteger(std::string_view s) {
  if (!Digits(s) || WithoutLeadingZeros(s).size() > 9) return "not a whole number";
  return {};
}
std::string_view WithoutLeadingZeros(std::string_view number) {
  std::size_t i = 0;
  while (i + 1 < number.size() && number[i] == '0' && number[i + 1] >= '0' && number[i + 1] <= '9') ++i;
  return number.substr(i);
}

namespace {
// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
long DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const long yoe = y - era * 400;
  const long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}
void CivilFromDays(long z, int& y, int& m, int& d) {
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097;
  const long doe = z - era * 146097;
  const long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yoe + era * 400 + (m <= 2));
}
long LastSundayUtcMinutes(int y, int m) {  // 01:00 UTC on the last Sunday of month m
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  long last = DaysFromCivil(y, m, kDays[m - 1]);
  long weekday = (last + 4) % 7;  // 1970-01-01 was a Thursday (4); 0 = Sunday
  return (last - weekday) * 1440 + 60;
}
bool InBst(long utc_minutes, int year) {
  return utc_minutes >= LastSundayUtcMinutes(year, 3) && utc_minutes < LastSundayUtcMinutes(year, 10);
}
struct Parsed {
  int y, mo, d, h, mi;
  std::string_view seconds;  // ":ss[.fff]" or ""
  int offset_minutes;
  bool has_offset;
};
Parsed ParseDateTime(std::string_view s) {
  Parsed p{};
  p.y = Num(s.substr(0, 4));
  p.mo = Num(s.substr(5, 2));
  p.d = Num(s.substr(8, 2));
  p.h = Num(s.substr(11, 2));
  p.mi = Num(s.substr(14, 2));
  std::string_view rest = s.substr(16);
  size_t end = 0;
  while (end < rest.size() && rest[end] != 'Z' && rest[end] != '+' && rest[end] != '-') ++end;
  p.seconds = rest.substr(0, end);
  rest = rest.substr(end);
  if (rest == "Z") {
    p.has_offset = true;
  } else if (rest.size() == 6) {
    p.has_offset = true;
    p.offset_minutes = (rest[0] == '-' ? -1 : 1) * (Num(rest.substr(1, 2)) * 60 + Num(rest.substr(4, 2)));
  }
  return p;
}
// The day of a minute count since 1970-01-01 (rounded down, before 1970 too).
long DayOf(long minutes) { return minutes >= 0 ? minutes / 1440 : -((-minutes + 1439) / 1440); }
// A parsed date-time with an offset as UK wall-clock minutes since 1970-01-01.
long UkLocalMinutes(const Parsed& p) {
  const long utc = DaysFromCivil(p.y, p.mo, p.d) * 1440 + p.h * 60 + p.mi - p.offset_minutes;
  return utc + (InBst(utc, p.y) ? 60 : 0);
}
// Into `out` (replacing what it held): a caller that keeps `out` allocates nothing.
void FormatInto(long minutes, std::string_view seconds, std::string& out) {
  long days = DayOf(minutes);
  long rem = minutes - days * 1440;
  int y, m, d;
  CivilFromDays(days, y, m, d);
  out.clear();
  out.reserve(16 + seconds.size());
  if (y < 0 || y > 9999) {  // out of the 4-digit range only by an extreme offset
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02ld:%02ld", y, m, d, rem / 60, rem % 60);
    out = buf;
  } else {
    // By hand: snprintf was a tenth of the CIS -> SystmOne translation's profile.
    char buf[16] = {char('0' + y / 1000), char('0' + y / 100 % 10), char('0' + y / 10 % 10), char('0' + y % 10),
                    '-', char('0' + m / 10), char('0' + m % 10), '-', char('0' + d / 10), char('0' + d % 10),
                    'T', char('0' + rem / 600), char('0' + rem / 60 % 10), ':', char('0' + rem % 60 / 10),
                    char('0' + rem % 10)};
    out.assign(buf, 16);
  }
  out += seconds;
}

}  // namespace

std::string UkLocalToOffset(std::string_view local) {
  Parsed p = ParseDateTime(local);
  if (p.has_offset) return std::string(local);
  long local_min = DaysFromCivil(p.y, p.mo, p.d) * 1440 + p.h * 60 + p.mi;
  // Local time in BST is UTC+1: try BST first, fall back to GMT.
  bool bst = InBst(local_min - 60, p.y);
  return std::string(local) + (bst ? "+01:00" : "+00:00");
}

std::string OffsetToUkLocal(std::string_view datetime) {
  std::string out;
  OffsetToUkLocal(datetime, out);
  return out;
}

void OffsetToUkLocal(std::string_view datetime, std::string& out) {
  Parsed p = ParseDateTime(datetime);
  if (!p.has_offset) {
    out.assign(datetime);
    return;
  }
  FormatInto(UkLocalMinutes(p), p.seconds, out);
}

namespace {
// The bytes of the white space that starts at s[i] (0: none): ASCII blanks and line
// ends, and the Unicode spaces a form or a spreadsheet leaves in a postcode (no-break
// space U+00A0, U+1680, U+2000-U+200B, U+2028-U+2029, U+202F, U+205F, U+3000, U+FEFF).
std::size_t SpaceAt(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const unsigned c = b(0);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  if (c == 0xC2 && b(1) == 0xA0) return 2;
  if (c == 0xE1 && b(1) == 0x9A && b(2) == 0x80) return 3;
  if (c == 0xE2 && b(1) == 0x80 && (b(2) <= 0x8B || b(2) == 0xA8 || b(2) == 0xA9 || b(2) == 0xAF) && b(2) >= 0x80)
    return 3;
  if (c == 0xE2 && b(1) == 0x81 && b(2) == 0x9F) return 3;
  if (c == 0xE3 && b(1) == 0x80 && b(2) == 0x80) return 3;
  if (c == 0xEF && b(1) == 0xBB && b(2) == 0xBF) return 3;
  return 0;
}
}  // namespace

std::string CheckUkLocalRange(std::string_view datetime) {
  // Only the first and the last day of the range can leave it by an offset (at most a
  // day); every other value is in range without parsing it again.
  if (!datetime.starts_with("0001-01-01") && !datetime.starts_with("9999-12-31")) return {};
  Parsed p = ParseDateTime(datetime);
  if (!p.has_offset) return {};
  int y, m, d;
  CivilFromDays(DayOf(UkLocalMinutes(p)), y, m, d);
  if (y < 1 || y > 9999) return "date-time falls outside 0001-01-01 to 9999-12-31 in UK time";
  return {};
}

std::string NormalisePostcode(std::string_view s) {
  std::string compact;
  compact.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (const std::size_t n = SpaceAt(s, i)) {
      i += n;
    } else {
      compact += s[i++];
    }
  }
  compact = ToUpper(compact);  // ASCII letters only: a UTF-8 sequence is left whole
  // The inward code is the last three characters, not bytes: a value that is no UK
  // postcode (a foreign one, a typing slip) must stay valid UTF-8.
  std::size_t inward = compact.size();
  for (int chars = 0; chars < 3 && inward > 0; ++chars) {
    --inward;
    while (inward > 0 && (static_cast<unsigned char>(compact[inward]) & 0xC0) == 0x80) --inward;
  }
  if (inward == 0) return compact;
  // Built by appending rather than compact.insert(): GCC 12 at -O3 reports a false
  // -Wrestrict on string::insert here, which broke Release builds under -Werror.
  std::string out;
  out.reserve(compact.size() + 1);
  out.append(compact, 0, inward);
  out += ' ';
  out.append(compact, inward);
  return out;
}

namespace {
// A letter of any alphabet at the start of `s`: an ASCII letter, or a UTF-8 sequence whose
// lead byte opens a block of letters (Latin-1 and Latin Extended from U+00C0, Greek,
// Cyrillic, ..., CJK). Not U+0080-U+00BF (C1 controls, no-break space, ½, £), not the
// punctuation and symbol blocks under E2 (dashes, arrows, maths), not EF (specials, the
// BOM) and not the 4-byte planes (emoji).
bool StartsWithLetter(std::string_view s) {
  const auto c = static_cast<unsigned char>(s[0]);
  return IsLetter(s[0]) || (c >= 0xC3 && c <= 0xE1) || (c >= 0xE3 && c <= 0xEE);
}
// "1st", "2nd", "3rd", "4th", "21st" ... followed by a space or the end.
bool StartsWithOrdinal(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0 || i + 2 > s.size()) return false;
  const std::string suffix = ToLower(s.substr(i, 2));
  if (suffix != "st" && suffix != "nd" && suffix != "rd" && suffix != "th") return false;
  return i + 2 == s.size() || s[i + 2] == ' ';
}

// "12 Mill Lane", "12A Mill Lane", "12-14 Mill Lane": number, then words.
bool SplitNumbered(std::string_view line, std::string& number, std::string& road) {
  line = Trim(line);
  size_t i = 0;
  auto num_part = [&]() {
    size_t start = i;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
    if (i == start) return false;
    if (i < line.size() && IsLetter(line[i]) && (i + 1 == line.size() || line[i + 1] == ' ' || line[i + 1] == '-'))
      ++i;
    return true;
  };
  if (!num_part()) return false;
  if (i < line.size() && line[i] == '-') {
    ++i;
    if (!num_part()) return false;
  }
  if (i >= line.size() || line[i] != ' ') return false;
  std::string_view rest = Trim(line.substr(i));
  // "Followed by words" (spec 4.3): the rest starts with a letter of any alphabet
  // ("Élan Close", "Ŵyn Road") or an ordinal ("1st Avenue", "2nd Street"). Not a bracket
  // or a quote: "3 (Annexe)" is SystmOne's house name written back as a line, and must
  // read back as one. "12 34" and "12 ½" have no words.
  if (rest.empty() || !(StartsWithLetter(rest) || StartsWithOrdinal(rest))) return false;
  number = std::string(line.substr(0, i));
  road = std::string(rest);
  return true;
}
}  // namespace

StructuredAddress SplitAddressLines(std::string_view l1, std::string_view l2, std::string_view l3,
                                    AddressLineSources* sources) {
  std::array<std::string_view, 3> lines = {Trim(l1), Trim(l2), Trim(l3)};
  StructuredAddress a;
  AddressLineSources from;
  int numbered = -1;
  for (int i = 0; i < 3 && numbered < 0; ++i)
    if (SplitNumbered(lines[i], a.house_number, a.road)) numbered = i;
  if (numbered < 0) {  // positional: nothing can be lost
    for (int i = 0; i < 3; ++i) {
      std::string& part = i == 0 ? a.house_name : i == 1 ? a.road : a.locality;
      unsigned& mask = i == 0 ? from.house_name : i == 1 ? from.road : from.locality;
      part = std::string(lines[i]);
      if (!part.empty()) mask = 1u << i;
    }
  } else {
    a.house_name.clear();
    a.locality.clear();
    from.house_number = from.road = 1u << numbered;
    // The lines before the numbered one are the house name, the lines after it the
    // locality. Blank lines between them count for nothing; two lines on one side (a
    // shape SystmOne's structure cannot hold) are joined with ", ", so nothing is lost,
    // and the part is marked as joined.
    for (int i = 0; i < 3; ++i) {
      if (i == numbered || lines[i].empty()) continue;
      std::string& part = i < numbered ? a.house_name : a.locality;
      unsigned& mask = i < numbered ? from.house_name : from.locality;
      if (!part.empty()) part += ", ";
      part += lines[i];
      mask |= 1u << i;
    }
  }
  if (sources) *sources = from;
  return a;
}

void JoinAddressLines(const StructuredAddress& a, std::string& l1, std::string& l2, std::string& l3,
                      std::array<std::pair<AddressPart, AddressPart>, 3>* sources) {
  std::array<std::string, 3> parts;
  std::array<std::pair<AddressPart, AddressPart>, 3> from{};
  size_t n = 0;
  if (!a.house_name.empty()) {
    from[n] = {AddressPart::kHouseName, AddressPart::kNone};
    parts[n++] = a.house_name;
  }
  std::string numbered = a.house_number;
  if (!a.road.empty()) numbered += (numbered.empty() ? "" : " ") + a.road;
  if (!numbered.empty()) {
    from[n] = {a.house_number.empty() ? AddressPart::kRoad : AddressPart::kHouseNumber,
               a.house_number.empty() || a.road.empty() ? AddressPart::kNone : AddressPart::kRoad};
    parts[n++] = numbered;
  }
  if (!a.locality.empty()) {
    from[n] = {AddressPart::kLocality, AddressPart::kNone};
    parts[n++] = a.locality;
  }
  l1 = parts[0];
  l2 = parts[1];
  l3 = parts[2];
  if (sources) *sources = from;
}

}  // namespace caregate::mapping
