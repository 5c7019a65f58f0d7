// Golden files: tests/golden/<case>/input.* beside expected.* for every direction.
// CAREGATE_UPDATE_GOLDEN=1 rewrites the expected files; review the diff like code.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "test_support.h"

namespace fs = std::filesystem;
using namespace caregate;

namespace {
struct GoldenCase {
  const char* name;
  const char* from;
  const char* to;
  const char* input;     // under tests/golden/<name>/, or "spec:<example>"
  const char* expected;  // under tests/golden/<name>/
};

const GoldenCase kCases[] = {
    {"spec-s1-to-cis", "systmone", "cis", "spec:systmone-record.xml", "expected.json"},
    {"spec-s1-to-canonical", "systmone", "canonical", "spec:systmone-record.xml", "expected.json"},
    {"spec-cis-to-s1", "cis", "systmone", "spec:cis-record.json", "expected.xml"},
    {"spec-cis-to-canonical", "cis", "canonical", "spec:cis-record.json", "expected.json"},
    {"tpp-response-to-cis", "systmone", "cis", "input.xml", "expected.json"},
    {"tpp-response-to-canonical", "systmone", "canonical", "input.xml", "expected.json"},
    {"awkward-cis-to-s1", "cis", "systmone", "input.json", "expected.xml"},
};

class Golden : public ::testing::TestWithParam<GoldenCase> {};
}  // namespace

TEST_P(Golden, OutputMatchesExpectedFile) {
  const auto& c = GetParam();
  fs::path dir = fs::path(CAREGATE_TEST_DATA) / "golden" / c.name;
  std::string in = std::string(c.input).rfind("spec:", 0) == 0 ? caregate::testing::SpecExample(c.input + 5)
                                                               : caregate::testing::Slurp(dir / c.input);
  ASSERT_FALSE(in.empty()) << "missing input for " << c.name;
  auto rec = caregate::testing::TheEngine().Read(c.from, in);
  ASSERT_TRUE(rec.ok()) << FormatErrors(rec.errors());
  std::string out = caregate::testing::Render(rec.value(), c.to);
  fs::path expected = dir / c.expected;
  if (std::getenv("CAREGATE_UPDATE_GOLDEN")) {
    fs::create_directories(dir);
    std::ofstream(expected, std::ios::binary | std::ios::trunc) << out;
    GTEST_SKIP() << "rewrote " << expected;
  }
  ASSERT_TRUE(fs::exists(expected)) << expected << " missing: run with CAREGATE_UPDATE_GOLDEN=1 and review";
  EXPECT_EQ(out, caregate::testing::Slurp(expected)) << "golden mismatch for " << c.name;
}

INSTANTIATE_TEST_SUITE_P(Translation, Golden, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) {
                           std::string n = param_info.param.name;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });
