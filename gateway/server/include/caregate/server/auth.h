#pragma once
// Who is calling: roles, principals and the bearer-token store.
//
// The tokens file holds one line per token, `sha256:<64 hex> <role> <user-id>`, so the
// file never contains a usable secret. A presented token is hashed and compared against
// every stored digest with CRYPTO_memcmp, without stopping at the first match, so the
// time taken does not depend on how much of a digest matched or where it sits.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace caregate::server {

enum class Role : std::uint8_t { kHealth, kCouncil, kIg, kService };

std::string_view RoleName(Role role);                      // "health", "council", "ig", "service"
std::optional<Role> ParseRole(std::string_view name);      // exact, lower case

// The organisation a role acts for. A record's own organisation is "health" (SystmOne)
// or "council" (CIS); IG officers and service jobs act for the gateway operator,
// "caregate", which is never a record's own organisation, so consent rules that admit
// only the owning organisation admit neither of them.
std::string_view OrganisationOf(Role role);

struct Principal {
  std::string user_id;
  Role role = Role::kService;
  std::string organisation;  // OrganisationOf(role)
};

class TokenStore {
 public:
  TokenStore() = default;

  // Reads a tokens file. Blank lines and lines starting with `#` are skipped. Throws
  // FatalError(kIoFailure) when the file cannot be read and FatalError(kMalformed)
  // naming `path:line` for a malformed line, an unknown role or a repeated digest.
  static TokenStore LoadFile(const std::string& path);
  // Same, from text already in memory; `source` names it in error messages.
  static TokenStore Parse(std::string_view text, std::string_view source);

  // Adds one digest (64 hex digits, either case). Throws FatalError(kMalformed) on a
  // bad digest, an empty or blank-containing user id, or a repeated digest.
  void Add(std::string_view sha256_hex, Role role, std::string user_id);

  // The principal whose digest equals SHA-256(token), or nullopt. Every stored digest
  // is compared in constant time; an empty token never matches.
  std::optional<Principal> Authenticate(std::string_view token) const;

  std::size_t size() const { return entries_.size(); }
  // The roles that at least one token has, each once, in Role order.
  std::vector<Role> Roles() const;
  // Who the tokens let in: each (user id, role) once, sorted; never a digest.
  std::vector<std::pair<std::string, Role>> Principals() const;

 private:
  struct Entry {
    char digest_hex[64];  // lower case, as caregate::Sha256Hex writes it
    Role role;
    std::string user_id;
  };
  std::vector<Entry> entries_;
};

}  // namespace caregate::server
