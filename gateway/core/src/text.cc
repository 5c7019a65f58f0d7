#include "caregate/core/text.h"

#include <cstdint>
#include <cstring>

#include "caregate/core/swar.h"

namespace caregate {

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // Runs of ASCII, 16 bytes at a time.
    while (end - p >= 16) {
      std::uint64_t a, b;
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + 8, 8);
      if ((a | b) & 0x8080808080808080ULL) break;
      p += 16;
    }
    if (p == end) break;
    unsigned char c = *p;
    if (c < 0x80) { ++p; continue; }
    int n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) { out.push_back(s.substr(start)); break; }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  return out;
}

std::string ToUpper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string OneLine(std::string s) {
  const auto control = [](unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7F || c == 0xC2; };
  std::size_t i = 0;
  while (i < s.size() && !control(static_cast<unsigned char>(s[i]))) ++i;
  if (i == s.size()) return s;  // the usual case: nothing to change
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out(s, 0, i);
  out.reserve(s.size() + 8);
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (c == '\n' || c == '\r') {
      out += ' ';
    } else if ((c < 0x20 && c != '\t') || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {  // a C1 control, U+0080-U+009F
      out += "\\u00";
      out += kHex[next >> 4];
      out += kHex[next & 15];
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void AppendXmlEscaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#13;"; break;
      default: out += c;
    }
  }
}

void AppendJsonEscaped(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  AppendJsonEscaped(out, s);
  out += '"';
}

std::string XmlEscaped(std::string_view s) {
  std::string out;
  AppendXmlEscaped(out, s);
  return out;
}

namespace {
// The careful path of a CSV field: quoted when it holds a comma, quote, CR or LF (RFC
// 4180), quotes doubled; a control byte other than TAB, CR and LF becomes U+FFFD, as in
// the XML writer: a NUL in a warehouse table is refused by loaders (PostgreSQL's COPY).
bool CsvNeedsQuotes(std::string_view s) {
  for (char c : s)
    if (c == ',' || c == '"' || c == '\r' || c == '\n') return true;
  return false;
}
bool CsvReplaced(char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r' && c != '\n'; }
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
}  // namespace

char* WriteCsvField(char* out, std::string_view s) {
  if (swar::CsvPlain(s)) {
    swar::CopyBytes(out, s.data(), s.size());
    return out + s.size();
  }
  const bool quoted = CsvNeedsQuotes(s);
  if (quoted) *out++ = '"';
  for (char c : s) {
    if (CsvReplaced(c)) {
      std::memcpy(out, kReplacement.data(), kReplacement.size());
      out += kReplacement.size();
      continue;
    }
    if (c == '"') *out++ = '"';
    *out++ = c;
  }
  if (quoted) *out++ = '"';
  return out;
}

void AppendCsvField(std::string& out, std::string_view s) {
  if (swar::CsvPlain(s)) {  // the common case, checked 8 bytes at a time
    out += s;
    return;
  }
  const std::size_t at = out.size();  // the careful path is WriteCsvField's, into room
  out.resize(at + CsvFieldMax(s));
  out.resize(static_cast<std::size_t>(WriteCsvField(out.data() + at, s) - out.data()));
}

}  // namespace caregate
