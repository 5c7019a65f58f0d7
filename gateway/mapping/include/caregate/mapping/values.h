#pragma once
// Value rules of the contract (spec sections 3 and 4.3): NHS numbers, calendar dates,
// date-times, postcodes and the address-line split.
#include <array>
#include <string>
#include <string_view>

namespace caregate::mapping {

// Empty string when valid, else the problem in plain words.
std::string CheckNhsNumber(std::string_view s);
std::string CheckDate(std::string_view s);      // YYYY-MM-DD, a real calendar date
std::string CheckDateTime(std::string_view s);  // YYYY-MM-DDThh:mm[:ss[.f+]][Z|+hh:mm]
std::string CheckOffsetDateTime(std::string_view s);  // as CheckDateTime, and the offset is required
std::string CheckDecimal(std::string_view s);  // a non-negative decimal (quantities, costs)
std::string CheckInteger(std::string_view s);
// A number that passed CheckDecimal or CheckInteger, without the leading zeros of its
// whole part ("007" -> "7", "00.5" -> "0.5", "000" -> "0"): SystmOne's XML may carry
// them, a JSON number may not (RFC 8259), and the value is the same.
std::string_view WithoutLeadingZeros(std::string_view number);
// A date-time with an offset (that passed CheckDateTime) whose UK local time falls
// outside 0001-01-01 to 9999-12-31, the dates the contract holds ("9999-12-31T23:30-01:00"
// is 10000-01-01 in UK time): the problem in plain words; empty otherwise, and for a
// value without an offset. SystmOne holds UK local times, so such a value could not be
// written there.
std::string CheckUkLocalRange(std::string_view datetime);
// SystmOne records wall-clock times in UK local time without an offset; CIS carries an
// offset. "2024-07-02T09:30:00" -> "2024-07-02T09:30:00+01:00" (BST rules: last Sunday of
// March 01:00 UTC to last Sunday of October 01:00 UTC); a value with an offset is kept.
std::string UkLocalToOffset(std::string_view local);
// Any ISO 8601 date-time -> UK wall-clock time without offset (seconds kept if given).
std::string OffsetToUkLocal(std::string_view datetime);
// The same into `out`, reusing its storage; `datetime` must not point into `out`.
void OffsetToUkLocal(std::string_view datetime, std::string& out);
std::string NormalisePostcode(std::string_view s);  // upper case, one space before the inward code

struct StructuredAddress {
  std::string house_name, house_number, road, locality;
};
// The parts of an address, in StructuredAddress's order: where a value came from (lineage).
enum class AddressPart { kNone, kHouseName, kHouseNumber, kRoad, kLocality };
// Which lines each part came from: bit i for Line_(i+1); 0 for a part left empty. A part
// made of two lines (see SplitAddressLines) has two bits.
struct AddressLineSources {
  unsigned house_name = 0, house_number = 0, road = 0, locality = 0;
};
// CIS Line_1..3 -> SystmOne structure (spec 4.3): the first line that starts with a house
// number splits into HouseNumber and Road, the non-blank lines before it are HouseName and
// those after it Locality (two on one side are joined with ", ": SystmOne has one
// element for them); with no numbered line, Line_1..3 are HouseName, Road, Locality.
StructuredAddress SplitAddressLines(std::string_view l1, std::string_view l2, std::string_view l3,
                                    AddressLineSources* sources = nullptr);
// SystmOne structure -> CIS lines: non-empty HouseName, "HouseNumber Road", Locality in order.
// `sources`, when given, gets the parts each line was made of (kNone for an empty line;
// "HouseNumber Road" is both, a line of one of them is that one).
void JoinAddressLines(const StructuredAddress& a, std::string& l1, std::string& l2, std::string& l3,
                      std::array<std::pair<AddressPart, AddressPart>, 3>* sources = nullptr);

}  // namespace caregate::mapping
