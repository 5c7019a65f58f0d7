#pragma once
// The export's internal change-detection hashes (line hash, content hash): keyed 128-bit
// XXH3 (xxHash). They never leave the state database and only decide whether a record is
// sent again, so they need speed and a negligible chance of an accidental match, not a
// published algorithm: SHA-256 of them (~1.2 GB/s here) was ~7% of the export's CPU.
// The key is a random 64-bit seed kept in the state database (migration 202), so nobody who
// can write a CIS record can craft a changed line that hashes like the stored one
// without first reading that database. Everything an outsider sees (the manifest's
// input and output hashes) stays SHA-256.
#include <array>
#include <cstdint>
#include <string_view>

namespace caregate::exporter {

using ContentHash = std::array<unsigned char, 16>;

class RecordHasher {
 public:
  // `seed`: the state database's; `version`: the mapping tables' version, so a change
  // of tables changes every hash.
  RecordHasher(std::uint64_t seed, std::string_view version);
  ~RecordHasher();
  RecordHasher(const RecordHasher&) = delete;
  RecordHasher& operator=(const RecordHasher&) = delete;

  // The line hash of one extract line.
  ContentHash Line(std::string_view line) const;
  // The line hash of a line whose record gets `s1_id` from the store's links (the
  // export, when its database is the gateway's store; "" when none is known): never
  // equal to Line's, and different for every id, so that a stored line hash also says
  // which id was filled in.
  ContentHash LineLinked(std::string_view line, std::string_view s1_id) const;

  // The content hash, fed in parts: Begin, then Part for each (a part boundary is
  // hashed, so bytes cannot move from one part to the next unnoticed), then Finish.
  void Begin();
  void Part(std::string_view bytes);
  ContentHash Finish();

 private:
  std::uint64_t line_seed_, linked_seed_, content_seed_;
  void* state_;  // XXH3_state_t*
};

}  // namespace caregate::exporter
