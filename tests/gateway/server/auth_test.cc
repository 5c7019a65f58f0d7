#include "caregate/server/auth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "caregate/core/error.h"
#include "caregate/core/hash.h"
#include "caregate/core/text.h"

namespace caregate::server {
namespace {

std::string Line(std::string_view token, std::string_view role, std::string_view user) {
  return "sha256:" + Sha256Hex(token) + " " + std::string(role) + " " + std::string(user) + "\n";
}

std::string ErrorOf(std::string_view text) {
  try {
    TokenStore::Parse(text, "tokens.txt");
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kMalformed);
    return e.what();
  }
  return "no error";
}

TEST(TokenStore, ParsesLinesCommentsAndBlankLines) {
  std::string text = "# caregate tokens\n\n" + Line("t-health", "health", "alice") + "   \n" +
                     "  # indented comment\r\n" + Line("t-council", "council", "bob") +
                     Line("t-ig", "ig", "carol") + "sha256:" + ToUpper(Sha256Hex("t-svc")) +
                     "\tservice\t export-job\r\n";
  TokenStore store = TokenStore::Parse(text, "tokens.txt");
  EXPECT_EQ(store.size(), 4u);
  auto p = store.Authenticate("t-health");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->user_id, "alice");
  EXPECT_EQ(p->role, Role::kHealth);
  EXPECT_EQ(p->organisation, "health");
  p = store.Authenticate("t-council");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->organisation, "council");
  p = store.Authenticate("t-ig");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->role, Role::kIg);
  EXPECT_EQ(p->organisation, "caregate");
  p = store.Authenticate("t-svc");  // upper-case hex in the file
  ASSERT_TRUE(p);
  EXPECT_EQ(p->user_id, "export-job");
  EXPECT_EQ(p->role, Role::kService);
}

TEST(TokenStore, RejectsUnknownAndEmptyTokens) {
  TokenStore store = TokenStore::Parse(Line("secret", "ig", "carol"), "t");
  EXPECT_FALSE(store.Authenticate("Secret"));
  EXPECT_FALSE(store.Authenticate("secret "));
  EXPECT_FALSE(store.Authenticate(""));
  EXPECT_FALSE(TokenStore().Authenticate("secret"));
  // The digest itself is not a token.
  EXPECT_FALSE(store.Authenticate(Sha256Hex("secret")));
}

TEST(TokenStore, MalformedLineNamesFileAndLine) {
  const std::string good = Line("a", "health", "alice");
  EXPECT_EQ(ErrorOf(good + "sha256:abc health bob\n").rfind("tokens.txt:2: ", 0), 0u);
  EXPECT_EQ(ErrorOf("\n\n" + good + "md5:" + Sha256Hex("b") + " health bob\n").rfind("tokens.txt:4: ", 0), 0u);
  EXPECT_EQ(ErrorOf("sha256:" + Sha256Hex("b") + " health\n").rfind("tokens.txt:1: 2 fields", 0), 0u);
  EXPECT_EQ(ErrorOf("sha256:" + Sha256Hex("b") + " health bob extra\n").rfind("tokens.txt:1: 4 fields", 0), 0u);
  std::string not_hex = Sha256Hex("b");
  not_hex[10] = 'g';
  EXPECT_EQ(ErrorOf("sha256:" + not_hex + " health bob").rfind("tokens.txt:1: ", 0), 0u);
}

TEST(TokenStore, UnknownRoleIsFatal) {
  std::string e = ErrorOf(Line("a", "health", "alice") + Line("b", "admin", "mallory"));
  EXPECT_EQ(e.rfind("tokens.txt:2: unknown role `admin`", 0), 0u) << e;
  EXPECT_NE(ErrorOf(Line("b", "Health", "x")).find("unknown role"), std::string::npos);
}

TEST(TokenStore, RepeatedDigestIsFatal) {
  std::string e = ErrorOf(Line("a", "health", "alice") + Line("a", "ig", "carol"));
  EXPECT_EQ(e.rfind("tokens.txt:2: ", 0), 0u) << e;
}

TEST(TokenStore, LoadFileReadsAndNamesThePath) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("caregate-tokens-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "tokens").string();
  {
    std::ofstream out(path);
    out << "# test\n" << Line("tok", "council", "bob") << "sha256:zz council bob\n";
  }
  try {
    TokenStore::LoadFile(path);
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const FatalError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":3: ", 0), 0u) << e.what();
  }
  {
    std::ofstream out(path);
    out << Line("tok", "council", "bob");
  }
  EXPECT_EQ(TokenStore::LoadFile(path).Authenticate("tok")->user_id, "bob");
  try {
    TokenStore::LoadFile((dir / "missing").string());
    ADD_FAILURE() << "opened a missing file";
  } catch (const FatalError& e) {
    EXPECT_EQ(e.problem(), Problem::kIoFailure);
  }
  std::filesystem::remove_all(dir);
}

TEST(TokenStore, RolesAndOrganisations) {
  EXPECT_EQ(ParseRole("health"), Role::kHealth);
  EXPECT_EQ(ParseRole("council"), Role::kCouncil);
  EXPECT_EQ(ParseRole("ig"), Role::kIg);
  EXPECT_EQ(ParseRole("service"), Role::kService);
  EXPECT_EQ(ParseRole("root"), std::nullopt);
  EXPECT_EQ(OrganisationOf(Role::kService), "caregate");
  EXPECT_EQ(RoleName(Role::kCouncil), "council");
}

// An early-exit lookup would answer a token stored first far faster than one stored
// last (or absent). With many entries the difference is hundreds of times; the lookup
// must take about the same time for all three.
TEST(TokenStore, LookupTimeDoesNotDependOnWhereTheTokenIs) {
  TokenStore store;
  constexpr int kEntries = 5000;
  for (int i = 0; i < kEntries; ++i) store.Add(Sha256Hex("token-" + std::to_string(i)), Role::kHealth, "u" + std::to_string(i));
  volatile int sink = 0;  // keeps the calls from being optimised away
  auto median_ns = [&](const std::string& token) {
    std::vector<double> samples;
    for (int rep = 0; rep < 31; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      auto p = store.Authenticate(token);
      auto t1 = std::chrono::steady_clock::now();
      sink = sink + (p.has_value() ? 1 : 0);
      samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
    std::nth_element(samples.begin(), samples.begin() + 15, samples.end());
    return samples[15];
  };
  const double first = median_ns("token-0");
  const double last = median_ns("token-" + std::to_string(kEntries - 1));
  const double absent = median_ns("no-such-token");
  EXPECT_TRUE(store.Authenticate("token-0"));
  EXPECT_TRUE(store.Authenticate("token-4999"));
  const double lo = std::min({first, last, absent}), hi = std::max({first, last, absent});
  EXPECT_LT(hi / lo, 3.0) << "first " << first << " ns, last " << last << " ns, absent " << absent << " ns";
}

}  // namespace
}  // namespace caregate::server
