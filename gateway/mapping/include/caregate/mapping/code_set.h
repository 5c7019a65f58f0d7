#pragma once
// A code set (mappings/codesets/NAME.csv): canonical codes and each system's value for
// them, with per-value lossy flags. Columns: code, then for each system S a column S and
// optionally lossy_to_S, then meaning.
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
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

// Hash for heterogeneous lookup: find by string_view without building a std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using StringIndex = std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>>;

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
  bool HasCode(std::string_view code) const { return by_code_.find(code) != by_code_.end(); }
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
