// ScanTopLevelMember (pipeline.h): the plain scan behind the export's line shortcut on a
// shared store reads a top-level member as the mapping would, or says it cannot.
#include <gtest/gtest.h>

#include <string_view>

#include "pipeline.h"

namespace caregate::exporter {
namespace {

struct Scan {
  TopLevel kind;
  std::string_view value;
};
Scan Of(std::string_view line, std::string_view key = "NHS_Number") {
  std::string_view v = "(unset)";
  TopLevel k = ScanTopLevelMember(line, key, &v);
  return {k, k == TopLevel::kString ? v : std::string_view()};
}

TEST(TopLevelScan, ReadsAPlainStringNullOrAbsence) {
  EXPECT_EQ(Of(R"({"NHS_Number":"9912003888","X":1})").kind, TopLevel::kString);
  EXPECT_EQ(Of(R"({"NHS_Number":"9912003888","X":1})").value, "9912003888");
  EXPECT_EQ(Of(R"({ "a" : 1 , "NHS_Number" : "99" })").value, "99");  // spaces around the colon
  EXPECT_EQ(Of(R"({"NHS_Number":null})").kind, TopLevel::kNull);
  EXPECT_EQ(Of(R"({"Surname":"Smith"})").kind, TopLevel::kAbsent);
  EXPECT_EQ(Of(R"({"NHS_Number":""})").value, "");
  EXPECT_EQ(Of(R"({"NHS_Number":""})").kind, TopLevel::kString);
}

TEST(TopLevelScan, NeverTakesANestedMemberOrAValueForTheKey) {
  // Nested under an object or inside an array: not the record's.
  EXPECT_EQ(Of(R"({"Carer":{"NHS_Number":"1"},"Surname":"S"})").kind, TopLevel::kAbsent);
  EXPECT_EQ(Of(R"({"Carers":[{"NHS_Number":"1"}],"NHS_Number":"2"})").value, "2");
  // The key's text as a value, and inside another string (with brackets and quotes).
  EXPECT_EQ(Of(R"({"Note":"NHS_Number","NHS_Number":"3"})").value, "3");
  EXPECT_EQ(Of(R"({"Note":"{\"NHS_Number\":\"4\"}","NHS_Number":"5"})").value, "5");
  EXPECT_EQ(Of(R"({"Note":"}]]","NHS_Number":"6"})").value, "6");
}

TEST(TopLevelScan, SaysWhatItCannotVouchFor) {
  EXPECT_EQ(Of(R"({"NHS_Number":"99\u0031"})").kind, TopLevel::kOther);  // escapes in the value
  EXPECT_EQ(Of(R"({"NHS\u005fNumber":"99"})").kind, TopLevel::kOther);  // a key with escapes
  EXPECT_EQ(Of(R"({"NHS_Number":9912003888})").kind, TopLevel::kOther);  // not a string
  EXPECT_EQ(Of(R"({"NHS_Number":"99)").kind, TopLevel::kOther);          // unterminated
  EXPECT_EQ(Of(R"({"Note":"abc)").kind, TopLevel::kOther);
}

}  // namespace
}  // namespace caregate::exporter
