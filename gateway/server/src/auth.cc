#include "caregate/server/auth.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"
#include "caregate/core/text.h"

namespace caregate::server {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kHealth: return "health";
    case Role::kCouncil: return "council";
    case Role::kIg: return "ig";
    case Role::kService: return "service";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kHealth, Role::kCouncil, Role::kIg, Role::kService})
    if (RoleName(r) == name) return r;
  return std::nullopt;
}

std::string_view OrganisationOf(Role role) {
  switch (role) {
    case Role::kHealth: return "health";
    case Role::kCouncil: return "council";
    case Role::kIg:
    case Role::kService: return "caregate";
  }
  return "caregate";
}

namespace {

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Fields separated by runs of spaces or tabs.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

void TokenStore::Add(std::string_view sha256_hex, Role role, std::string user_id) {
  if (sha256_hex.size() != 64)
    throw FatalError(Problem::kMalformed, fmt::format("the digest has {} hex digits, not 64", sha256_hex.size()));
  Entry e{};
  for (std::size_t i = 0; i < 64; ++i) {
    char c = sha256_hex[i];
    if (!IsHex(c)) throw FatalError(Problem::kMalformed, "the digest is not hexadecimal");
    e.digest_hex[i] = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (user_id.empty() || user_id.find_first_of(" \t\r\n") != std::string::npos || !IsValidUtf8(user_id))
    throw FatalError(Problem::kMalformed, "the user id must be one word of UTF-8 text");
  for (const auto& other : entries_)
    if (CRYPTO_memcmp(other.digest_hex, e.digest_hex, 64) == 0)
      throw FatalError(Problem::kMalformed, fmt::format("the digest is already given for user {}", other.user_id));
  e.role = role;
  e.user_id = std::move(user_id);
  entries_.push_back(std::move(e));
}

TokenStore TokenStore::Parse(std::string_view text, std::string_view source) {
  TokenStore store;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view trimmed = Trim(line);
    if (trimmed.empty() || trimmed.front() == '#') {
      if (end == text.size()) break;
      continue;
    }
    auto fail = [&](std::string_view why) {
      return FatalError(Problem::kMalformed, fmt::format("{}:{}: {} (expected `sha256:<64 hex> <role> <user-id>`)",
                                                         source, line_no, why));
    };
    auto fields = Fields(trimmed);
    if (fields.size() != 3) throw fail(fmt::format("{} fields instead of 3", fields.size()));
    constexpr std::string_view kPrefix = "sha256:";
    if (fields[0].substr(0, kPrefix.size()) != kPrefix) throw fail("the digest does not start with `sha256:`");
    auto role = ParseRole(fields[1]);
    // Never echo the digest field: it is not a secret, but keep logs free of it anyway.
    if (!role) throw fail(fmt::format("unknown role `{}` (health, council, ig or service)", fields[1]));
    try {
      store.Add(fields[0].substr(kPrefix.size()), *role, std::string(fields[2]));
    } catch (const FatalError& e) {
      throw fail(e.what());
    }
    if (end == text.size()) break;
  }
  return store;
}

TokenStore TokenStore::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FatalError(Problem::kIoFailure, fmt::format("{}: cannot open the tokens file", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw FatalError(Problem::kIoFailure, fmt::format("{}: cannot read the tokens file", path));
  return Parse(text.str(), path);
}

std::optional<Principal> TokenStore::Authenticate(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  const std::string digest = Sha256Hex(token);
  // Visit every entry and select without branching on the comparison result, so the
  // time taken is the same wherever (and whether) the digest is found.
  std::size_t found = entries_.size();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const std::size_t equal = static_cast<std::size_t>(CRYPTO_memcmp(entries_[i].digest_hex, digest.data(), 64) == 0);
    const std::size_t mask = 0 - equal;  // all ones when equal
    found = (i & mask) | (found & ~mask);
  }
  if (found == entries_.size()) return std::nullopt;
  const Entry& e = entries_[found];
  return Principal{e.user_id, e.role, std::string(OrganisationOf(e.role))};
}

std::vector<Role> TokenStore::Roles() const {
  std::vector<Role> out;
  for (const Role r : {Role::kHealth, Role::kCouncil, Role::kIg, Role::kService})
    if (std::any_of(entries_.begin(), entries_.end(), [r](const Entry& e) { return e.role == r; })) out.push_back(r);
  return out;
}

std::vector<std::pair<std::string, Role>> TokenStore::Principals() const {
  std::vector<std::pair<std::string, Role>> out;
  for (const auto& e : entries_) out.emplace_back(e.user_id, e.role);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace caregate::server
