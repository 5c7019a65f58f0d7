#pragma once
// Byte tests on 8 bytes at once ("SIMD within a register"), for the escaping loops of the
// output writers: most values have nothing to escape, and a whole word of plain bytes is
// passed with a few integer operations instead of eight table lookups.
//
// Each test is exact about whether *some* byte of the word matches; which byte it was is
// for the caller's byte loop to find.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace caregate::swar {

inline constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

inline std::uint64_t Load(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}
// Nonzero iff some byte of w is zero.
constexpr std::uint64_t AnyZero(std::uint64_t w) { return (w - kOnes) & ~w & kHighs; }
// Nonzero iff some byte of w equals c.
constexpr std::uint64_t AnyEqual(std::uint64_t w, unsigned char c) { return AnyZero(w ^ (kOnes * c)); }
// Nonzero iff some byte of w is below n (n <= 128).
constexpr std::uint64_t AnyBelow(std::uint64_t w, unsigned char n) { return (w - kOnes * n) & ~w & kHighs; }

// Nonzero iff some byte of w is ',', '"', CR or LF (what makes an RFC 4180 field quoted).
constexpr std::uint64_t AnyCsvSpecial(std::uint64_t w) {
  return AnyEqual(w, ',') | AnyEqual(w, '"') | AnyEqual(w, '\r') | AnyEqual(w, '\n');
}

// True when `s` needs no RFC 4180 quoting.
inline bool CsvPlain(std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8)
    if (AnyCsvSpecial(Load(s.data() + i))) return false;
  for (; i < s.size(); ++i)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n') return false;
  return true;
}

// Nonzero iff some byte of w may need attention in XML text (any control byte, '&', '<',
// '>', or 0xEF, which starts U+FFFE/U+FFFF) or, with `attribute`, also '"'.
template <bool attribute>
constexpr std::uint64_t AnyXmlSpecial(std::uint64_t w) {
  std::uint64_t m = AnyBelow(w, 0x20) | AnyEqual(w, '&') | AnyEqual(w, '<') | AnyEqual(w, '>') | AnyEqual(w, 0xEF);
  if constexpr (attribute) m |= AnyEqual(w, '"');
  return m;
}

}  // namespace caregate::swar
