#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "caregate/engine/engine.h"
#include "caregate/mapping/mapping_plan.h"

namespace fs = std::filesystem;
using caregate::FieldErrors;
using caregate::mapping::MappingPlan;

namespace {

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A private copy of the shipped tables that a test may break.
class BrokenTables : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("caregate-mappings-" + std::to_string(std::random_device{}()));
    fs::copy(fs::path(CAREGATE_SOURCE_DIR) / "mappings", dir_, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Replace(const std::string& file, const std::string& from, const std::string& to) {
    std::string text = Slurp(dir_ / file);
    auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
    std::ofstream(dir_ / file, std::ios::binary | std::ios::trunc) << text;
  }
  FieldErrors Compile() {
    caregate::adapters::AdapterRegistry reg;
    caregate::adapters::RegisterBuiltinAdapters(reg);
    auto plan = MappingPlan::Compile(dir_.string(), reg.profiles());
    return plan.ok() ? FieldErrors{} : plan.errors();
  }
  static bool Mentions(const FieldErrors& errors, const std::string& where, const std::string& what) {
    for (const auto& e : errors)
      if (e.path.find(where) != std::string::npos && e.problem.find(what) != std::string::npos) return true;
    return false;
  }
  fs::path dir_;
};

}  // namespace

TEST(MappingPlan, ShippedTablesCompile) {
  auto engine = caregate::engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  EXPECT_EQ(engine->plan().systems().size(), 2u);
  EXPECT_EQ(engine->plan().version().size(), 64u);
  EXPECT_GT(engine->plan().Rules("systmone").size(), 50u);
  EXPECT_GT(engine->plan().Rules("cis").size(), 40u);
}

TEST_F(BrokenTables, CleanCopyCompiles) { EXPECT_TRUE(Compile().empty()); }

TEST_F(BrokenTables, UnknownCanonicalFieldNamesFileAndLine) {
  Replace("cis.csv", "CIS-013,person.family_name,", "CIS-013,person.surname,");
  auto errors = Compile();
  EXPECT_TRUE(Mentions(errors, "cis.csv:", "unknown canonical field 'person.surname'")) << errors.size();
  std::string line = std::to_string([&] {
    std::istringstream in(Slurp(dir_ / "cis.csv"));
    std::string l;
    int n = 0;
    while (std::getline(in, l)) {
      ++n;
      if (l.rfind("CIS-013", 0) == 0) return n;
    }
    return -1;
  }());
  EXPECT_TRUE(Mentions(errors, "cis.csv:" + line, "unknown canonical field"));
}

TEST_F(BrokenTables, CodeMissingFromSetIsRefused) {
  Replace("codesets/gender.csv", "unknown,U,X,", "unknown,U,,");
  EXPECT_TRUE(Mentions(Compile(), "gender.csv:", "code missing from the set: 'unknown' has no cis value"));
}

TEST_F(BrokenTables, TwoRulesForOneTargetAreRefused) {
  Replace("cis.csv", "CIS-012,person.middle_names,", "CIS-012,person.given_name,");
  EXPECT_TRUE(Mentions(Compile(), "cis.csv:", "two rules for one target"));
}

TEST_F(BrokenTables, LossyRuleNotMarkedLossyIsRefused) {
  Replace("systmone.csv", "code:ethnicity,both,yes", "code:ethnicity,both,no");
  EXPECT_TRUE(Mentions(Compile(), "systmone.csv:", "lossy rule not marked lossy"));
}

TEST_F(BrokenTables, AmbiguousSharedValueIsRefused) {
  Replace("codesets/ethnicity.csv", "white_other,C,White: Any other White background,no",
          "white_other,C,White: Any other White background,yes");
  EXPECT_TRUE(Mentions(Compile(), "ethnicity.csv:", "mark all but one lossy_to_systmone"));
}

TEST_F(BrokenTables, UnknownTransformAndDirectionAreRefused) {
  Replace("cis.csv", "CIS-014,person.birth_date,Date_of_Birth,date,both", "CIS-014,person.birth_date,Date_of_Birth,dat,sideways");
  auto errors = Compile();
  EXPECT_TRUE(Mentions(errors, "cis.csv:", "direction must be both, in or out"));
  EXPECT_TRUE(Mentions(errors, "cis.csv:", "unknown transform 'dat'"));
}

// A path mapped as a value and also run through by later rules (Address as a value, then
// Address/Line_1) is refused whichever rule comes first (the value first was accepted,
// and every CIS record was then refused, or the SystmOne address silently not carried).
TEST_F(BrokenTables, APathThatIsAValueAndAContainerIsRefusedInEitherOrder) {
  Replace("cis.csv", "CIS-011,person.given_name,First_Name,", "CIS-011,person.given_name,Address,");
  EXPECT_TRUE(Mentions(Compile(), "cis.csv:", "a path cannot be both a value and a container"));
}
TEST_F(BrokenTables, APathThatIsAContainerAndThenAValueIsRefused) {
  Replace("cis.csv", "CIS-023,person.address.town,Address/Town,", "CIS-023,person.address.town,Address/County/X,");
  EXPECT_TRUE(Mentions(Compile(), "cis.csv:", "both a value and a container"));
}

// A problem with a header names the header's line, after the comments before it.
TEST_F(BrokenTables, AHeaderProblemNamesTheHeadersLine) {
  Replace("cis.csv", "rule,canonical,path,transform,direction,lossy,purpose",
          "# a second comment\nrule,canonical,path,transform,direction,lossy,aim");
  const std::string text = Slurp(dir_ / "cis.csv");
  int header_line = 1;
  for (std::size_t at = 0; (at = text.find('\n', at)) < text.find("rule,canonical"); ++at) ++header_line;
  EXPECT_TRUE(Mentions(Compile(), "cis.csv:" + std::to_string(header_line), "missing column 'purpose'"));
}

// Tables an edit left empty or ambiguous are refused, not loaded to refuse every record:
// a code set of no codes, a system table of no rules, a const: without a value, and one
// rule id in two tables (lineage and reports name rules by id).
TEST_F(BrokenTables, EmptyTablesEmptyConstsAndARuleIdInTwoTablesAreRefused) {
  {
    const std::string text = Slurp(dir_ / "codesets" / "gender.csv");
    std::ofstream(dir_ / "codesets" / "gender.csv", std::ios::binary | std::ios::trunc)
        << text.substr(0, text.find('\n', text.find("code,")) + 1);
  }
  EXPECT_TRUE(Mentions(Compile(), "gender.csv:", "the code set has no codes"));
  fs::remove_all(dir_);
  SetUp();
  Replace("cis.csv", "const:CIS_Client", "const:");
  EXPECT_TRUE(Mentions(Compile(), "cis.csv:", "a const: transform needs a value"));
  fs::remove_all(dir_);
  SetUp();
  Replace("cis.csv", "CIS-011,", "S1-001,");
  EXPECT_TRUE(Mentions(Compile(), ".csv:", "rule id 'S1-001' is also used at"));
  fs::remove_all(dir_);
  SetUp();
  {
    const std::string text = Slurp(dir_ / "cis.csv");
    std::ofstream(dir_ / "cis.csv", std::ios::binary | std::ios::trunc)
        << text.substr(0, text.find('\n', text.find("rule,canonical")) + 1);
  }
  EXPECT_TRUE(Mentions(Compile(), "cis.csv:", "the table has no rules"));
}

TEST_F(BrokenTables, UnknownCodeSetIsRefused) {
  Replace("cis.csv", "code:gender", "code:genders");
  EXPECT_TRUE(Mentions(Compile(), "cis.csv:", "unknown code set 'genders'"));
}

TEST_F(BrokenTables, EngineLoadThrowsWithEveryProblem) {
  Replace("cis.csv", "CIS-013,person.family_name,", "CIS-013,person.surname,");
  Replace("systmone.csv", "code:ethnicity,both,yes", "code:ethnicity,both,no");
  try {
    caregate::engine::Engine::Load(dir_.string());
    FAIL() << "broken tables were accepted";
  } catch (const caregate::FatalError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("person.surname"), std::string::npos);
    EXPECT_NE(msg.find("lossy rule not marked lossy"), std::string::npos);
  }
}

TEST_F(BrokenTables, VersionChangesWithTableContent) {
  caregate::adapters::AdapterRegistry reg;
  caregate::adapters::RegisterBuiltinAdapters(reg);
  auto before = MappingPlan::Compile(dir_.string(), reg.profiles());
  ASSERT_TRUE(before.ok());
  Replace("cis.csv", "Identification and correspondence", "Identification and letters");
  auto after = MappingPlan::Compile(dir_.string(), reg.profiles());
  ASSERT_TRUE(after.ok());
  EXPECT_NE(before.value()->version(), after.value()->version());
}

// The ids of a refused record, for its audit event: those whose own fields map without a
// problem, whatever else is wrong with the record; read in the same pass as the record
// (CIS streamed, SystmOne through its tree).
TEST(MappingPlan, ReadableIdsAreTheIdsWhoseOwnFieldsMap) {
  auto engine = caregate::engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  auto refused_ids = [&](const char* system, const std::string& text) {
    std::vector<std::string> ids = {"stale"};
    ids.clear();
    auto r = engine->Read(system, text, true, &ids);
    EXPECT_FALSE(r.ok()) << text;
    return ids;
  };
  const std::string bad_date =
      R"({"Record_Type":"CIS_Client","LA_Person_Unique_Identifier":" C-1 ","NHS_Number":"9912003888",)"
      R"("SystmOne_Identifier":"700412","Date_of_Birth":"1950-02-30"})";
  EXPECT_EQ(refused_ids("cis", bad_date), (std::vector<std::string>{"nhs:9912003888", "s1:700412", "cis:C-1"}));
  // The tree path names the same.
  auto tree = engine->adapter("cis").Parse(bad_date);
  ASSERT_TRUE(tree.ok());
  std::vector<std::string> via_tree;
  EXPECT_FALSE(engine->plan().Read("cis", tree.value(), true, &via_tree).ok());
  EXPECT_EQ(via_tree, (std::vector<std::string>{"nhs:9912003888", "s1:700412", "cis:C-1"}));
  // An NHS number failing Modulus 11, and an id that is not a string, are no one's.
  EXPECT_EQ(refused_ids("cis", R"({"LA_Person_Unique_Identifier":"C-1","NHS_Number":"9912003889",)"
                               R"("SystmOne_Identifier":700412})"),
            std::vector<std::string>{"cis:C-1"});
  EXPECT_TRUE(refused_ids("cis", R"({"LA_Person_Unique_Identifier":"C-1")").empty());  // not JSON
  EXPECT_TRUE(refused_ids("cis", R"(["C-1"])").empty());
  const std::string s1 =
      "<ClientIntegrationResponse><Response><Identity><NHSNumber>9912003888</NHSNumber>"
      "<StrategicReportingIdentifier>S-1</StrategicReportingIdentifier></Identity>"
      "<Demographics><DateOfBirth>soon</DateOfBirth></Demographics></Response></ClientIntegrationResponse>";
  EXPECT_EQ(refused_ids("systmone", s1), (std::vector<std::string>{"nhs:9912003888", "s1:S-1"}));
  EXPECT_TRUE(refused_ids("systmone", "<Other><NHSNumber>9912003888</NHSNumber></Other>").empty());
  // A valid record leaves them alone.
  std::vector<std::string> untouched;
  EXPECT_TRUE(engine->Read("cis", R"({"Record_Type":"CIS_Client","LA_Person_Unique_Identifier":"C-1"})", true,
                           &untouched)
                  .ok());
  EXPECT_TRUE(untouched.empty());
}
