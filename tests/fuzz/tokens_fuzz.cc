// Fuzz target for the tokens file (server/auth.h, spec section 8): any text either loads
// or is refused with FatalError(kMalformed) naming the file and line; a loaded store
// authenticates nothing it was not given: no empty token, no digest text used as a token,
// and every principal it returns has a role and a user id without blanks.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "caregate/core/error.h"
#include "caregate/server/auth.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using caregate::fuzz::Check;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  caregate::server::TokenStore store;
  try {
    store = caregate::server::TokenStore::Parse(text, "tokens.txt");
  } catch (const caregate::FatalError& e) {
    Check(e.problem() == caregate::Problem::kMalformed, "refused with the wrong problem", e.what());
    Check(std::string_view(e.what()).find("tokens.txt:") != std::string_view::npos, "error does not name file:line",
          e.what());
    return 0;
  }
  Check(!store.Authenticate("").has_value(), "the empty token authenticates");
  // Each line's second word, were it a token itself (a digest must never work as one).
  std::size_t lines = 0;
  for (std::size_t p = 0; p < text.size() && lines < 64; ++lines) {
    std::size_t e = text.find('\n', p);
    std::string_view line = text.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p);
    p = e == std::string_view::npos ? text.size() : e + 1;
    const std::string_view first = line.substr(0, line.find(' '));
    for (std::string_view word : {first, first.substr(std::min<std::size_t>(7, first.size()))}) {
      auto who = store.Authenticate(word);
      if (!who) continue;
      Check(!who->user_id.empty() && who->user_id.find_first_of(" \t\r\n") == std::string::npos,
            "principal with an empty or blank-containing user id", who->user_id);
    }
  }
  return 0;
}
