// Fuzz target for the mapping-table CSV reader: never crashes, and an accepted table has
// a header, rows no wider than it, and increasing line numbers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "caregate/mapping/csv.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using caregate::fuzz::Check;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto t = caregate::mapping::ParseCsv(text, "fuzz.csv");
  if (!t.ok()) {
    Check(!t.errors().empty() && t.errors()[0].path.rfind("fuzz.csv", 0) == 0, "error does not name the file");
    return 0;
  }
  int last = 0;
  for (const auto& row : t->rows) {
    Check(row.cells.size() <= t->header.size(), "row wider than header");
    Check(row.line > last, "line numbers not increasing");
    last = row.line;
  }
  return 0;
}
