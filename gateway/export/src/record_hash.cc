#include "record_hash.h"

#include <new>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace caregate::exporter {
namespace {

ContentHash Bytes(XXH128_hash_t h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);  // big-endian, the same bytes on every machine
  ContentHash out;
  static_assert(sizeof c.digest == sizeof(ContentHash));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = c.digest[i];
  return out;
}

// A seed per purpose, derived from the database's seed and the tables' version.
std::uint64_t Derive(std::uint64_t seed, std::string_view purpose, std::string_view version) {
  std::string s(purpose);
  s += '\x1e';
  s += version;
  return XXH3_64bits_withSeed(s.data(), s.size(), seed);
}

}  // namespace

RecordHasher::RecordHasher(std::uint64_t seed, std::string_view version)
    : line_seed_(Derive(seed, "line", version)),
      linked_seed_(Derive(seed, "linked line", version)),
      content_seed_(Derive(seed, "content", version)),
      state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
}

RecordHasher::~RecordHasher() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

ContentHash RecordHasher::Line(std::string_view line) const {
  return Bytes(XXH3_128bits_withSeed(line.data(), line.size(), line_seed_));
}

ContentHash RecordHasher::LineLinked(std::string_view line, std::string_view s1_id) const {
  // The id picks the seed: "" gives a seed of its own too.
  const std::uint64_t seed = XXH3_64bits_withSeed(s1_id.data(), s1_id.size(), linked_seed_);
  return Bytes(XXH3_128bits_withSeed(line.data(), line.size(), seed));
}

void RecordHasher::Begin() { XXH3_128bits_reset_withSeed(static_cast<XXH3_state_t*>(state_), content_seed_); }

void RecordHasher::Part(std::string_view bytes) {
  auto* st = static_cast<XXH3_state_t*>(state_);
  // The part's length first (8 bytes, little-endian), so no bytes can move from one part
  // to the next unnoticed, whatever the parts hold.
  unsigned char len[8];
  std::uint64_t n = bytes.size();
  for (auto& b : len) {
    b = static_cast<unsigned char>(n & 0xff);
    n >>= 8;
  }
  XXH3_128bits_update(st, len, sizeof len);
  XXH3_128bits_update(st, bytes.data(), bytes.size());
}

ContentHash RecordHasher::Finish() { return Bytes(XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_))); }

}  // namespace caregate::exporter
