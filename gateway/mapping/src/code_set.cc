#include "caregate/mapping/code_set.h"

#include <cstring>
#include <unordered_map>

#include "caregate/mapping/csv.h"

namespace caregate::mapping {

Expected<std::shared_ptr<const CodeSet>> CodeSet::Load(const std::string& name, const std::string& path) {
  auto table = ReadCsvFile(path);
  if (!table) return table.errors();
  auto set = std::make_shared<CodeSet>();
  set->name_ = name;
  set->file_ = path;
  FieldErrors errors;
  auto where = [&](int line) { return path + ":" + std::to_string(line); };
  int code_col = table->Column("code");
  int meaning_col = table->Column("meaning");
  if (code_col != 0) errors.push_back({where(table->header_line), "the first column must be 'code'"});
  for (size_t c = 1; c < table->header.size(); ++c) {
    const std::string& h = table->header[c];
    if (h == "meaning" || h.rfind("lossy_to_", 0) == 0) continue;
    set->systems_.push_back(h);
  }
  for (size_t c = 1; c < table->header.size(); ++c) {
    const std::string& h = table->header[c];
    if (h.rfind("lossy_to_", 0) == 0 && table->Column(h.substr(9)) < 0)
      errors.push_back({where(table->header_line), "column '" + h + "' names no system column"});
  }
  for (const auto& row : table->rows) {
    CodeEntry e;
    e.code = table->Cell(row, code_col);
    e.meaning = table->Cell(row, meaning_col);
    e.line = row.line;
    if (e.code.empty()) {
      errors.push_back({where(row.line), "empty canonical code"});
      continue;
    }
    if (set->by_code_.Contains(e.code)) {
      errors.push_back({where(row.line), "canonical code '" + e.code + "' is listed twice"});
      continue;
    }
    for (const auto& sys : set->systems_) {
      CodeValue v;
      v.value = table->Cell(row, table->Column(sys));
      const std::string& lossy = table->Cell(row, table->Column("lossy_to_" + sys));
      if (lossy != "" && lossy != "yes" && lossy != "no")
        errors.push_back({where(row.line), "lossy_to_" + sys + " must be yes, no or empty, not '" + lossy + "'"});
      v.lossy = lossy == "yes";
      if (v.value.empty()) {
        errors.push_back({where(row.line), "code missing from the set: '" + e.code + "' has no " + sys + " value"});
        continue;
      }
      e.systems.emplace(sys, v);
    }
    set->by_code_.Emplace(e.code, set->entries_.size());
    set->entries_.push_back(std::move(e));
  }
  // A set of no codes refuses every value of every field that uses it.
  if (table->rows.empty()) errors.push_back({where(table->header_line), "the code set has no codes"});
  // Inbound maps: each system value must come back to exactly one canonical code; where
  // several codes share a value, all but one must be marked lossy towards that system.
  set->inbound_.resize(set->systems_.size());
  set->outbound_.resize(set->systems_.size());
  for (size_t si = 0; si < set->systems_.size(); ++si) {
    const std::string& sys = set->systems_[si];
    auto& inbound = set->inbound_[si];
    for (const auto& e : set->entries_) {
      auto it = e.systems.find(sys);
      set->outbound_[si].push_back(it == e.systems.end() ? nullptr : &it->second);
    }
    std::unordered_map<std::string, std::vector<size_t>> users;
    for (size_t i = 0; i < set->entries_.size(); ++i) {
      auto it = set->entries_[i].systems.find(sys);
      if (it != set->entries_[i].systems.end()) users[it->second.value].push_back(i);
    }
    for (auto& [value, idx] : users) {
      std::vector<size_t> exact;
      for (size_t i : idx)
        if (!set->entries_[i].systems.at(sys).lossy) exact.push_back(i);
      if (idx.size() == 1) {
        inbound.Emplace(value, idx[0]);
      } else if (exact.size() == 1) {
        inbound.Emplace(value, exact[0]);
      } else {
        errors.push_back({where(set->entries_[idx.back()].line),
                          sys + " value '" + value + "' is shared by " + std::to_string(idx.size()) +
                              " codes: mark all but one lossy_to_" + sys + " = yes"});
      }
    }
  }
  if (!errors.empty()) return errors;
  return std::shared_ptr<const CodeSet>(std::move(set));
}

std::uint64_t StringIndex::Hash(std::string_view key) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  std::uint64_t h = key.size() * kMul;
  std::size_t i = 0;
  for (; i + 8 <= key.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, key.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 32;
  }
  if (i < key.size()) {
    std::uint64_t w = 0;
    std::memcpy(&w, key.data() + i, key.size() - i);
    h = (h ^ w) * kMul;
    h ^= h >> 32;
  }
  return h;
}

const std::size_t* StringIndex::Find(std::string_view key) const {
  if (slots_.empty()) return nullptr;
  const std::uint64_t h = Hash(key);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (!s.used) return nullptr;
    if (s.hash == h && s.key == key) return &s.value;
  }
}

bool StringIndex::Emplace(std::string key, std::size_t value) {
  if (Contains(key)) return false;
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  const std::uint64_t h = Hash(key);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = h & mask;
  while (slots_[i].used) i = (i + 1) & mask;
  slots_[i] = Slot{h, value, std::move(key), true};
  ++size_;
  return true;
}

void StringIndex::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
  const std::size_t mask = slots_.size() - 1;
  for (Slot& s : old) {
    if (!s.used) continue;
    std::size_t i = s.hash & mask;
    while (slots_[i].used) i = (i + 1) & mask;
    slots_[i] = std::move(s);
  }
}

bool CodeSet::HasSystem(std::string_view system) const {
  for (const auto& s : systems_)
    if (s == system) return true;
  return false;
}

bool CodeSet::HasLossyTo(std::string_view system) const {
  for (const auto& e : entries_) {
    auto it = e.systems.find(system);
    if (it != e.systems.end() && it->second.lossy) return true;
  }
  return false;
}

int CodeSet::SystemIndex(std::string_view system) const {
  for (size_t i = 0; i < systems_.size(); ++i)
    if (systems_[i] == system) return static_cast<int>(i);
  return -1;
}

const std::string* CodeSet::ToCanonical(int system, std::string_view value) const {
  if (system < 0) return nullptr;
  const std::size_t* i = inbound_[static_cast<size_t>(system)].Find(value);
  return i ? &entries_[*i].code : nullptr;
}

const CodeValue* CodeSet::FromCanonical(int system, std::string_view code) const {
  if (system < 0) return nullptr;
  const std::size_t* i = by_code_.Find(code);
  return i ? outbound_[static_cast<size_t>(system)][*i] : nullptr;
}

const std::string* CodeSet::ToCanonical(std::string_view system, std::string_view value) const {
  return ToCanonical(SystemIndex(system), value);
}

const CodeValue* CodeSet::FromCanonical(std::string_view system, std::string_view code) const {
  return FromCanonical(SystemIndex(system), code);
}

std::string CodeSet::ValuesFor(std::string_view system) const {
  std::string out;
  for (const auto& e : entries_) {
    auto it = e.systems.find(system);
    if (it == e.systems.end()) continue;
    if (out.find("'" + it->second.value + "'") != std::string::npos) continue;
    if (!out.empty()) out += ", ";
    out += "'" + it->second.value + "'";
  }
  return out;
}

}  // namespace caregate::mapping
