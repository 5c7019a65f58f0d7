#pragma once
// RFC 4180 CSV as the mapping tables use it: header row, quoted fields, '#' comment
// lines and blank lines skipped. Each row remembers its line for error messages.
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/error.h"

namespace caregate::mapping {

struct CsvRow {
  int line = 0;
  std::vector<std::string> cells;
};

struct CsvTable {
  std::string file;  // path as given, for messages
  std::vector<std::string> header;
  int header_line = 1;  // where the header row is (comment and blank lines come first)
  std::vector<CsvRow> rows;
  int Column(std::string_view name) const;  // -1 if absent
  const std::string& Cell(const CsvRow& row, int column) const;  // "" for absent columns
};

// Parses text; errors carry "file:line" as their path.
Expected<CsvTable> ParseCsv(std::string_view text, const std::string& file);
Expected<CsvTable> ReadCsvFile(const std::string& path);

}  // namespace caregate::mapping
