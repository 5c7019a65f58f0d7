#pragma once
#include <charconv>
#include <concepts>
#include <string>
#include <string_view>
#include <vector>

namespace caregate {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);
std::string_view Trim(std::string_view s);
std::vector<std::string_view> Split(std::string_view s, char sep);
std::string ToUpper(std::string_view s);
std::string ToLower(std::string_view s);
// `s` on one line and safe for a terminal or a log (an error or log line that quotes
// data, whatever the data holds): line feeds and carriage returns become spaces, and
// every other control character is written out, C0 and DEL as `\xNN`, C1 (U+0080-U+009F)
// as `\u00NN`, so that no escape sequence reaches the terminal. Tabs and other text stay.
std::string OneLine(std::string s);
// Escapes for XML text and attribute values (&, <, >, ", ').
void AppendXmlEscaped(std::string& out, std::string_view s);
// JSON string body escaping (no quotes added).
void AppendJsonEscaped(std::string& out, std::string_view s);
// A JSON string: quotes and the escaped body.
void AppendJsonString(std::string& out, std::string_view s);
// `s` escaped for XML or HTML text (AppendXmlEscaped into a string of its own).
std::string XmlEscaped(std::string_view s);
// RFC 4180 field: quoted when it contains comma, quote, CR or LF; a control byte other
// than TAB, CR and LF becomes U+FFFD (as in XML text).
void AppendCsvField(std::string& out, std::string_view s);
// The same field written into raw room of at least CsvFieldMax(s) bytes; returns the
// end of what was written.
constexpr std::size_t CsvFieldMax(std::string_view s) { return 3 * s.size() + 2; }
char* WriteCsvField(char* out, std::string_view s);
// The decimal text of `n`, without a string of its own (std::to_chars).
template <std::integral Int>
void AppendDecimal(std::string& out, Int n) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
}

}  // namespace caregate
