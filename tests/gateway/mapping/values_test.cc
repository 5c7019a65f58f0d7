#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "caregate/core/text.h"
#include "caregate/mapping/values.h"

using namespace caregate::mapping;
using caregate::IsValidUtf8;

TEST(NhsNumber, AcceptsValidModulus11) {
  EXPECT_EQ(CheckNhsNumber("9912003888"), "");
  EXPECT_EQ(CheckNhsNumber("9434765919"), "");
}

TEST(NhsNumber, RejectsWrongCheckDigit) {
  EXPECT_NE(CheckNhsNumber("9912003880").find("Modulus 11"), std::string::npos);
}

TEST(NhsNumber, RejectsCheckDigitTen) {
  // 1000000060: weights give sum 10*1 + 6*... -> find a number whose check would be 10.
  // 0000000010: sum = 1*2 = 2 -> 11-2 = 9; construct directly: digits 100000001 -> sum 10+2=12 -> 11-1=10.
  EXPECT_NE(CheckNhsNumber("1000000010").find("would be 10"), std::string::npos);
}

TEST(NhsNumber, RejectsWrongLengthAndLetters) {
  EXPECT_NE(CheckNhsNumber("991200388"), "");
  EXPECT_NE(CheckNhsNumber("99120038889"), "");
  EXPECT_NE(CheckNhsNumber("99120A3888"), "");
  EXPECT_NE(CheckNhsNumber("991 200 3888"), "");
}

TEST(CalendarDate, KnowsLeapYears) {
  EXPECT_EQ(CheckDate("2024-02-29"), "");
  EXPECT_EQ(CheckDate("2000-02-29"), "");
  EXPECT_NE(CheckDate("2023-02-29"), "");
  EXPECT_NE(CheckDate("1900-02-29"), "");
  EXPECT_NE(CheckDate("2024-04-31"), "");
  EXPECT_NE(CheckDate("2024-13-01"), "");
  EXPECT_NE(CheckDate("2024-1-01"), "");
  EXPECT_NE(CheckDate("14/03/1941"), "");
}

// Spec 3 rejects only a date that "is not a real calendar date": every real date of the
// four-digit years 0001-9999 is accepted (a y < 1800 check refused 1799-12-31 and the
// like); year 0000 and impossible days are not. Checked against std::chrono over the
// leap-year edges, as the schemas are (tests/schemas).
TEST(CalendarDate, EveryRealDateFromYear1To9999) {
  EXPECT_EQ(CheckDate("0001-01-01"), "");
  EXPECT_EQ(CheckDate("1799-12-31"), "");
  EXPECT_EQ(CheckDate("1752-09-03"), "");  // proleptic Gregorian: no gap for the 1752 reform
  EXPECT_EQ(CheckDate("1600-02-29"), "");
  EXPECT_EQ(CheckDate("9999-12-31"), "");
  EXPECT_EQ(CheckDate("0000-01-01"), "not a real calendar date");
  EXPECT_EQ(CheckDate("1700-02-29"), "not a real calendar date");
  EXPECT_EQ(CheckDate("0004-02-30"), "not a real calendar date");
  int checked = 0;
  for (int y : {0, 1, 4, 100, 400, 1582, 1600, 1700, 1752, 1799, 1800, 1900, 2000, 2024, 2100, 9996, 9999})
    for (int m = 0; m <= 13; ++m)
      for (int d = 0; d <= 32; ++d) {
        char date[40];  // room for any int, as -Wformat-truncation counts it (ASan build, -O1)
        std::snprintf(date, sizeof date, "%04d-%02d-%02d", y, m, d);
        using namespace std::chrono;
        const bool real = y >= 1 && m >= 1 && m <= 12 && d >= 1 &&
                          year_month_day{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}}.ok();
        EXPECT_EQ(CheckDate(date).empty(), real) << date;
        EXPECT_EQ(CheckDateTime(std::string(date) + "T10:15:00Z").empty(), real) << date;
        ++checked;
      }
  EXPECT_EQ(checked, 17 * 14 * 33);
}

TEST(DateTime, AcceptsIso8601WithAndWithoutOffset) {
  EXPECT_EQ(CheckDateTime("2024-07-02T11:05:00+01:00"), "");
  EXPECT_EQ(CheckDateTime("2024-07-02T11:05:00Z"), "");
  EXPECT_EQ(CheckDateTime("2024-07-02T11:05"), "");
  EXPECT_EQ(CheckDateTime("2024-07-02T11:05:00.123-05:00"), "");
  EXPECT_NE(CheckDateTime("2024-07-02 11:05:00"), "");
  EXPECT_NE(CheckDateTime("2024-07-02T25:05:00"), "");
  EXPECT_NE(CheckDateTime("2024-02-30T10:00:00"), "");
}

TEST(UkLocalTime, AddsSummerAndWinterOffsets) {
  EXPECT_EQ(UkLocalToOffset("2024-07-02T09:30:00"), "2024-07-02T09:30:00+01:00");
  EXPECT_EQ(UkLocalToOffset("2024-01-15T09:30:00"), "2024-01-15T09:30:00+00:00");
  // BST 2024 starts 31 March 01:00 UTC and ends 27 October 01:00 UTC.
  EXPECT_EQ(UkLocalToOffset("2024-03-31T00:30:00"), "2024-03-31T00:30:00+00:00");
  EXPECT_EQ(UkLocalToOffset("2024-03-31T03:00:00"), "2024-03-31T03:00:00+01:00");
  EXPECT_EQ(UkLocalToOffset("2024-10-27T03:00:00"), "2024-10-27T03:00:00+00:00");
  EXPECT_EQ(UkLocalToOffset("2024-07-02T09:30:00+02:00"), "2024-07-02T09:30:00+02:00");
}

TEST(UkLocalTime, ConvertsOffsetsBackToWallClock) {
  EXPECT_EQ(OffsetToUkLocal("2024-07-02T11:05:00+01:00"), "2024-07-02T11:05:00");
  EXPECT_EQ(OffsetToUkLocal("2024-07-02T10:05:00Z"), "2024-07-02T11:05:00");
  EXPECT_EQ(OffsetToUkLocal("2024-12-31T23:30+00:00"), "2024-12-31T23:30");
  EXPECT_EQ(OffsetToUkLocal("2025-01-01T01:30:00+02:00"), "2024-12-31T23:30:00");
  EXPECT_EQ(OffsetToUkLocal("2024-07-02T11:05:00"), "2024-07-02T11:05:00");
}

TEST(UkLocalTime, EveryDigitOfTheWallClockIsWritten) {
  // The formatting is done by hand: every position of every field, and the years at
  // the edges of the four-digit range.
  EXPECT_EQ(OffsetToUkLocal("1987-11-29T19:48:07.125Z"), "1987-11-29T19:48:07.125");
  EXPECT_EQ(OffsetToUkLocal("2000-02-29T23:59:59+00:00"), "2000-02-29T23:59:59");
  EXPECT_EQ(OffsetToUkLocal("0001-01-01T00:00:00+00:00"), "0001-01-01T00:00:00");
  EXPECT_EQ(OffsetToUkLocal("0001-01-01T00:30:00+01:00"), "0000-12-31T23:30:00");
  EXPECT_EQ(OffsetToUkLocal("9999-12-31T23:30:00-01:00"), "10000-01-01T00:30:00");
  EXPECT_EQ(OffsetToUkLocal("2024-08-10T06:09-02:00"), "2024-08-10T09:09");
}

TEST(Numbers, LeadingZerosOfTheWholePartGo) {
  EXPECT_EQ(WithoutLeadingZeros("007"), "7");
  EXPECT_EQ(WithoutLeadingZeros("00.5"), "0.5");
  EXPECT_EQ(WithoutLeadingZeros("000"), "0");
  EXPECT_EQ(WithoutLeadingZeros("0"), "0");
  EXPECT_EQ(WithoutLeadingZeros("0.05"), "0.05");
  EXPECT_EQ(WithoutLeadingZeros("10.50"), "10.50");
  EXPECT_EQ(WithoutLeadingZeros("100"), "100");
}

// A value with an offset must also be a date from 0001 to 9999 once in UK time, where
// SystmOne holds it.
TEST(DateTimes, UkLocalTimeMustStayWithinTheContractsYears) {
  EXPECT_EQ(CheckUkLocalRange("9999-12-31T22:59:59-01:00"), "");
  EXPECT_NE(CheckUkLocalRange("9999-12-31T23:59:59-01:00"), "");
  EXPECT_EQ(CheckUkLocalRange("0001-01-01T00:00:00Z"), "");
  EXPECT_EQ(CheckUkLocalRange("0001-01-01T01:00:00+01:00"), "");
  EXPECT_NE(CheckUkLocalRange("0001-01-01T00:00:00+01:00"), "");
  EXPECT_EQ(CheckUkLocalRange("9999-12-31T23:59:59"), "");  // no offset: already UK local
  EXPECT_EQ(CheckUkLocalRange("2024-07-02T11:05:00+01:00"), "");
  EXPECT_EQ(CheckUkLocalRange("9999-12-30T23:59:59-14:00"), "");
}

TEST(Numbers, AWholeNumbersLimitCountsItsDigitsNotItsLeadingZeros) {
  EXPECT_EQ(CheckInteger("0000000045"), "");
  EXPECT_EQ(CheckInteger("999999999"), "");
  EXPECT_NE(CheckInteger("1000000000"), "");
}

TEST(Postcode, NormalisesCaseAndSpacing) {
  EXPECT_EQ(NormalisePostcode("ls12 2ab"), "LS12 2AB");
  EXPECT_EQ(NormalisePostcode("LS122AB"), "LS12 2AB");
  EXPECT_EQ(NormalisePostcode(" ls1  4dy "), "LS1 4DY");
  EXPECT_EQ(NormalisePostcode("M11AE"), "M1 1AE");
}

// The inward code is three characters, not three bytes, and the spaces a form or a
// spreadsheet leaves (no-break space, thin space, a BOM) go with the ASCII ones: the
// result is always valid UTF-8.
TEST(Postcode, CountsCharactersAndDropsUnicodeSpaces) {
  EXPECT_EQ(NormalisePostcode("LS12 2AB\u00a0"), "LS12 2AB");
  EXPECT_EQ(NormalisePostcode("\ufeffls12\u20092ab\u3000"), "LS12 2AB");
  EXPECT_EQ(NormalisePostcode("ls12 \u00e1\u00e1"), "LS1 2\u00e1\u00e1");  // á kept: ASCII is upper-cased
  EXPECT_EQ(NormalisePostcode("l\u00e9s12\u00e1b"), "L\u00e9S1 2\u00e1B");
  EXPECT_EQ(NormalisePostcode("\u00e1\u00e1\u00e1"), "\u00e1\u00e1\u00e1");
  EXPECT_EQ(NormalisePostcode("\u5317\u4eac\u5e02\u4e1c"), "\u5317 \u4eac\u5e02\u4e1c");
  EXPECT_EQ(NormalisePostcode("\u00a0\t\n"), "");
  EXPECT_EQ(NormalisePostcode("m1\r\n1ae"), "M1 1AE");
  for (const char* v : {"ls12 \u00e1\u00e1", "\u00e1\u00e1\u00e1\u00e1", "x\U0001F600yz", "LS12 2AB\u00a0"})
    EXPECT_TRUE(IsValidUtf8(NormalisePostcode(v))) << v;
}

TEST(AddressLines, NumberedLineSplitsIntoNumberAndRoad) {
  auto a = SplitAddressLines("Rose Cottage", "12A Mill Lane", "Armley");
  EXPECT_EQ(a.house_name, "Rose Cottage");
  EXPECT_EQ(a.house_number, "12A");
  EXPECT_EQ(a.road, "Mill Lane");
  EXPECT_EQ(a.locality, "Armley");
  auto b = SplitAddressLines("12-14 Bridge Road", "Beeston", "");
  EXPECT_EQ(b.house_name, "");
  EXPECT_EQ(b.house_number, "12-14");
  EXPECT_EQ(b.road, "Bridge Road");
  EXPECT_EQ(b.locality, "Beeston");
}

// "Followed by words": a road in any alphabet, or one that starts with a digit or a
// bracket, still splits; a number followed by no word does not.
TEST(AddressLines, AnyWordAfterTheNumberSplits) {
  for (const auto& [line, number, road] : std::vector<std::array<std::string, 3>>{
           {"22 \u00c9lan Close", "22", "\u00c9lan Close"},
           {"22 \u0174yn Road", "22", "\u0174yn Road"},
           {"22 1st Avenue", "22", "1st Avenue"},
           {"7 2ND STREET", "7", "2ND STREET"},
           {"22 \u0391\u03b8\u03b7\u03bd\u03ac\u03c2", "22", "\u0391\u03b8\u03b7\u03bd\u03ac\u03c2"},
           {"12A \u00d8sterbro", "12A", "\u00d8sterbro"}}) {
    auto a = SplitAddressLines("Rose Cottage", line, "Armley");
    EXPECT_EQ(a.house_number, number) << line;
    EXPECT_EQ(a.road, road) << line;
    EXPECT_EQ(a.house_name, "Rose Cottage") << line;
    EXPECT_EQ(a.locality, "Armley") << line;
  }
  for (const char* line : {"12 34", "12 - 14", "22", "12 3/4", "3 (Annexe)", "22 'The Grove'", "12 \u00bd",
                           "12 \u2013 Mill Lane", "12 \U0001F3E0 Lane", "12 1stop Shop"}) {
    auto a = SplitAddressLines("Rose Cottage", line, "Armley");
    EXPECT_EQ(a.house_number, "") << line;
    EXPECT_EQ(a.road, line) << line;
  }
  // And back: SystmOne -> CIS -> SystmOne gives the same address (spec 4.3), also for a
  // house name that starts with a number and a bracket.
  for (const StructuredAddress& a : std::vector<StructuredAddress>{{"", "22", "\u00c9lan Close", "Armley"},
                                                                   {"3 (Annexe)", "", "Mill Lane", "Armley"},
                                                                   {"", "22", "1st Avenue", ""}}) {
    std::string l1, l2, l3;
    JoinAddressLines(a, l1, l2, l3);
    auto back = SplitAddressLines(l1, l2, l3);
    EXPECT_EQ(back.house_name, a.house_name) << l1;
    EXPECT_EQ(back.house_number, a.house_number) << l1;
    EXPECT_EQ(back.road, a.road) << l1;
    EXPECT_EQ(back.locality, a.locality) << l1;
  }
}

TEST(AddressLines, WithoutNumberedLineLinesAreNameRoadLocality) {
  auto a = SplitAddressLines("The Old Vicarage", "Church Street", "Headingley");
  EXPECT_EQ(a.house_name, "The Old Vicarage");
  EXPECT_EQ(a.house_number, "");
  EXPECT_EQ(a.road, "Church Street");
  EXPECT_EQ(a.locality, "Headingley");
}

TEST(AddressLines, JoinSkipsEmptyPartsAndRoundTrips) {
  std::string l1, l2, l3;
  JoinAddressLines({"", "22", "Mill Lane", "Armley"}, l1, l2, l3);
  EXPECT_EQ(l1, "22 Mill Lane");
  EXPECT_EQ(l2, "Armley");
  EXPECT_EQ(l3, "");
  auto back = SplitAddressLines(l1, l2, l3);
  EXPECT_EQ(back.house_number, "22");
  EXPECT_EQ(back.road, "Mill Lane");
  EXPECT_EQ(back.locality, "Armley");
  JoinAddressLines({"Flat 3, Ash Court", "7", "Tong Road", ""}, l1, l2, l3);
  EXPECT_EQ(l1, "Flat 3, Ash Court");
  EXPECT_EQ(l2, "7 Tong Road");
  auto back2 = SplitAddressLines(l1, l2, l3);
  EXPECT_EQ(back2.house_name, "Flat 3, Ash Court");
  EXPECT_EQ(back2.house_number, "7");
}

// Lineage names the line or element each derived part was made from.
TEST(AddressLines, SplitSaysWhichLinesEachPartCameFrom) {
  AddressLineSources from;
  SplitAddressLines("Rose Cottage", "12A Mill Lane", "Armley", &from);
  EXPECT_EQ(from.house_name, 1u);
  EXPECT_EQ(from.house_number, 2u);
  EXPECT_EQ(from.road, 2u);
  EXPECT_EQ(from.locality, 4u);
  SplitAddressLines("", "", "12 Bridge Road", &from);  // the line before is empty
  EXPECT_EQ(from.house_name, 0u);
  EXPECT_EQ(from.house_number, 4u);
  EXPECT_EQ(from.road, 4u);
  EXPECT_EQ(from.locality, 0u);
  SplitAddressLines("The Old Vicarage", "", "Headingley", &from);
  EXPECT_EQ(from.house_name, 1u);
  EXPECT_EQ(from.house_number, 0u);
  EXPECT_EQ(from.road, 0u);
  EXPECT_EQ(from.locality, 4u);
}

// Spec 4.3: "a line before it is HouseName, a line after it is Locality". A blank line
// between does not lose the line after it, and two lines on one side (which SystmOne's
// one element cannot hold apart) are joined rather than dropped.
TEST(AddressLines, NoLineIsDropped) {
  AddressLineSources from;
  auto a = SplitAddressLines("22 Mill Lane", "", "Armley", &from);
  EXPECT_EQ(a.house_number, "22");
  EXPECT_EQ(a.road, "Mill Lane");
  EXPECT_EQ(a.locality, "Armley");
  EXPECT_EQ(from.locality, 4u);
  a = SplitAddressLines("Flat 3", "Rose Court", "22 Mill Lane", &from);
  EXPECT_EQ(a.house_name, "Flat 3, Rose Court");
  EXPECT_EQ(a.house_number, "22");
  EXPECT_EQ(from.house_name, 3u);
  a = SplitAddressLines("22 Mill Lane", "Armley", "Upper Armley", &from);
  EXPECT_EQ(a.locality, "Armley, Upper Armley");
  EXPECT_EQ(from.locality, 6u);
  a = SplitAddressLines("Rose Cottage", "", "22 Mill Lane", &from);
  EXPECT_EQ(a.house_name, "Rose Cottage");
  EXPECT_EQ(a.locality, "");
}

TEST(AddressLines, JoinSaysWhichPartsEachLineWasMadeOf) {
  using P = AddressPart;
  std::string l1, l2, l3;
  std::array<std::pair<AddressPart, AddressPart>, 3> from;
  JoinAddressLines({"", "22", "Mill Lane", "Armley"}, l1, l2, l3, &from);
  EXPECT_EQ(from[0], std::make_pair(P::kHouseNumber, P::kRoad));
  EXPECT_EQ(from[1], std::make_pair(P::kLocality, P::kNone));
  EXPECT_EQ(from[2], std::make_pair(P::kNone, P::kNone));
  JoinAddressLines({"Ty Gwyn", "", "Tong Road", "Armley"}, l1, l2, l3, &from);
  EXPECT_EQ(from[0], std::make_pair(P::kHouseName, P::kNone));
  EXPECT_EQ(from[1], std::make_pair(P::kRoad, P::kNone));
  EXPECT_EQ(from[2], std::make_pair(P::kLocality, P::kNone));
  JoinAddressLines({"", "7", "", ""}, l1, l2, l3, &from);
  EXPECT_EQ(l1, "7");
  EXPECT_EQ(from[0], std::make_pair(P::kHouseNumber, P::kNone));
}

TEST(DateTime, RejectsSixtySecondsAndRequiresOffsetWhereAsked) {
  EXPECT_NE(CheckDateTime("2024-07-02T11:05:60"), "");
  EXPECT_EQ(CheckOffsetDateTime("2024-07-02T11:05:00+01:00"), "");
  EXPECT_EQ(CheckOffsetDateTime("2024-07-02T11:05:00Z"), "");
  EXPECT_NE(CheckOffsetDateTime("2024-07-02T11:05:00").find("no offset"), std::string::npos);
}

TEST(Decimal, RejectsNegativeQuantities) {
  EXPECT_EQ(CheckDecimal("24.5"), "");
  EXPECT_EQ(CheckDecimal("7"), "");
  EXPECT_NE(CheckDecimal("-1"), "");
  EXPECT_NE(CheckDecimal("1."), "");
  EXPECT_NE(CheckDecimal("1e3"), "");
}
