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
// Copies n bytes (non-overlapping). Most copies in the writers are field values and tag
// names of a few bytes, where a call to memcpy costs more than the copy: up to 16 bytes
// are moved inline with two loads and two stores that may overlap each other (never
// touching a byte outside either range), longer ones by memcpy.
inline void CopyBytes(char* dst, const char* src, std::size_t n) {
  if (n >= 8) {
    if (n > 16) {
      std::memcpy(dst, src, n);
      return;
    }
    std::uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n > 0) {
    const char first = src[0], middle = src[n / 2], last = src[n - 1];
    dst[0] = first;
    dst[n / 2] = middle;
    dst[n - 1] = last;
  }
}

// Nonzero iff some byte of w is zero.
constexpr std::uint64_t AnyZero(std::uint64_t w) { return (w - kOnes) & ~w & kHighs; }
// Nonzero iff some byte of w equals c.
constexpr std::uint64_t AnyEqual(std::uint64_t w, unsigned char c) { return AnyZero(w ^ (kOnes * c)); }
// Nonzero iff some byte of w is below n (n <= 128).
constexpr std::uint64_t AnyBelow(std::uint64_t w, unsigned char n) { return (w - kOnes * n) & ~w & kHighs; }

// Nonzero iff some byte of w is ',', '"' or a control byte (CR and LF make an RFC 4180
// field quoted; the other controls are replaced, TAB kept).
constexpr std::uint64_t AnyCsvSpecial(std::uint64_t w) {
  return AnyEqual(w, ',') | AnyEqual(w, '"') | AnyBelow(w, 0x20);
}

// True when `s` can be written as it is: no RFC 4180 quoting (comma, quote, CR, LF) and
// no control byte (the writer replaces them); a TAB also takes the careful path.
inline bool CsvPlain(std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8)
    if (AnyCsvSpecial(Load(s.data() + i))) return false;
  for (; i < s.size(); ++i)
    if (s[i] == ',' || s[i] == '"' || static_cast<unsigned char>(s[i]) < 0x20) return false;
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
