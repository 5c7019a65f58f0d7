#pragma once
// A code set (mappings/codesets/NAME.csv): canonical codes and each system's value for
// them, with per-value lossy flags. Columns: code, then for each system S a column S and
// optionally lossy_to_S, then meaning.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/error.h"

namespace caregate::mapping {

struct CodeValue {
  std::string value;
  bool lossy = false;  // canonical -> system loses information for this code
};

struct CodeEntry {
  std::string code;
  std::string meaning;
  int line = 0;
  std::map<std::string, CodeValue, std::less<>> systems;  // system -> value
};

// String -> index, looked up by string_view without building a string: open addressing
// (linear probing, at most half full) with a hash that reads 8 bytes at a time. Code
// values are looked up for every coded field of every record read or written, where
// std::unordered_map's per-byte hash, prime modulus and node chasing were ~4% of the
// export's worker CPU.
class StringIndex {
 public:
  // Adds key -> value unless the key is present; false then (the first value stays).
  bool Emplace(std::string key, std::size_t value);
  const std::size_t* Find(std::string_view key) const;
  bool Contains(std::string_view key) const { return Find(key) != nullptr; }
  std::size_t size() const { return size_; }
  static std::uint64_t Hash(std::string_view key);

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::size_t value = 0;
    std::string key;
    bool used = false;
  };
  void Grow();
  std::vector<Slot> slots_;  // size: a power of two, or 0
  std::size_t size_ = 0;
};

class CodeSet {
 public:
  // Validating factory: a set that exists is consistent (see Compile's checks).
  static Expected<std::shared_ptr<const CodeSet>> Load(const std::string& name, const std::string& path);

  const std::string& name() const { return name_; }
  const std::string& file() const { return file_; }
  bool HasSystem(std::string_view system) const;
  bool HasLossyTo(std::string_view system) const;
  const std::vector<CodeEntry>& entries() const { return entries_; }
  // system value -> canonical code (the non-lossy entry when several share the value)
  const std::string* ToCanonical(std::string_view system, std::string_view value) const;
  // canonical code -> system value
  const CodeValue* FromCanonical(std::string_view system, std::string_view code) const;
  // The same by system index (SystemIndex), for hot paths: no allocation, no name lookup.
  int SystemIndex(std::string_view system) const;
  const std::string* ToCanonical(int system, std::string_view value) const;
  const CodeValue* FromCanonical(int system, std::string_view code) const;
  bool HasCode(std::string_view code) const { return by_code_.Contains(code); }
  // All values a system accepts, for messages ("one of: M, F, I, U").
  std::string ValuesFor(std::string_view system) const;

 private:
  std::string name_, file_;
  std::vector<std::string> systems_;
  std::vector<CodeEntry> entries_;
  StringIndex by_code_;
  std::vector<StringIndex> inbound_;                   // per system: value -> entry
  std::vector<std::vector<const CodeValue*>> outbound_;  // per system: entry -> value
};

}  // namespace caregate::mapping
