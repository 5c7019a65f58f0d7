#include "caregate/mapping/csv.h"

#include <fstream>
#include <sstream>

#include "caregate/core/text.h"

namespace caregate::mapping {

int CsvTable::Column(std::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

const std::string& CsvTable::Cell(const CsvRow& row, int column) const {
  static const std::string kEmpty;
  if (column < 0 || static_cast<size_t>(column) >= row.cells.size()) return kEmpty;
  return row.cells[static_cast<size_t>(column)];
}

Expected<CsvTable> ParseCsv(std::string_view text, const std::string& file) {
  CsvTable table;
  table.file = file;
  if (!IsValidUtf8(text)) return FieldError{file, "not valid UTF-8"};
  // A table saved by a spreadsheet (Excel's "CSV UTF-8") starts with a byte order mark;
  // it is no part of the first column's name.
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  size_t i = 0;
  int line = 1;
  bool have_header = false;
  while (i < text.size()) {
    // Skip comment and blank lines.
    size_t eol = text.find('\n', i);
    std::string_view raw = text.substr(i, eol == std::string_view::npos ? std::string_view::npos : eol - i);
    if (Trim(raw).empty() || Trim(raw).front() == '#') {
      i = eol == std::string_view::npos ? text.size() : eol + 1;
      ++line;
      continue;
    }
    CsvRow row;
    row.line = line;
    std::string cell;
    bool quoted = false, was_quoted = false;
    for (;;) {
      if (i >= text.size()) {
        if (quoted) return FieldError{file + ":" + std::to_string(row.line), "unterminated quoted field"};
        row.cells.push_back(was_quoted ? cell : std::string(Trim(cell)));
        break;
      }
      char c = text[i++];
      if (quoted) {
        if (c == '"') {
          if (i < text.size() && text[i] == '"') {
            cell += '"';
            ++i;
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') ++line;
          cell += c;
        }
      } else if (c == '"' && Trim(cell).empty()) {
        quoted = was_quoted = true;
        cell.clear();
      } else if (c == ',') {
        row.cells.push_back(was_quoted ? cell : std::string(Trim(cell)));
        cell.clear();
        was_quoted = false;
      } else if (c == '\n') {
        row.cells.push_back(was_quoted ? cell : std::string(Trim(cell)));
        ++line;
        break;
      } else if (c != '\r') {
        cell += c;
      }
    }
    if (!have_header) {
      table.header = std::move(row.cells);
      table.header_line = row.line;
      have_header = true;
    } else {
      if (row.cells.size() > table.header.size())
        return FieldError{file + ":" + std::to_string(row.line),
                          "row has " + std::to_string(row.cells.size()) + " cells but the header has " +
                              std::to_string(table.header.size())};
      table.rows.push_back(std::move(row));
    }
  }
  if (!have_header) return FieldError{file, "empty table: no header row"};
  return table;
}

Expected<CsvTable> ReadCsvFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FieldError{path, "cannot open for reading"};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ParseCsv(ss.str(), path);
}

}  // namespace caregate::mapping
