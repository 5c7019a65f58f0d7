// Fuzz target for the nightly export's per-record work (gateway/export/src/pipeline.cc):
// the input is a piece of a CIS NDJSON extract, cut into lines by the extract reader,
// and run through one worker's RecordProcessor as one batch.
//
// What must hold (spec section 7, docs/export.md):
//   - one result per non-blank line, in order, with its line number;
//   - a refused line gets a reject line: JSON with that line number, the person id as a
//     string or null, and at least one error, each with a path and a problem;
//   - a line is refused exactly when the translation path (Engine::Read) refuses it:
//     the export and the HTTP API accept the same records;
//   - an exported record's warehouse rows are RFC 4180 rows with their table's columns,
//     each starting with the record's person key, and its SystmOne fragment reads back
//     through the SystmOne adapter without an error;
//   - the outputs are a function of the input: a second processor gives the same bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <rapidjson/document.h>

#include "caregate/core/text.h"
#include "caregate/engine/engine.h"
#include "caregate/export/warehouse.h"
#include "caregate/format/json.h"
#include "fuzz_util.h"
#include "extract_reader.h"
#include "pipeline.h"

namespace {

using caregate::fuzz::Check;
using caregate::fuzz::Fail;
namespace exporter = caregate::exporter;

const caregate::engine::Engine& TheEngine() {
  static auto e = caregate::engine::Engine::Load(CAREGATE_MAPPINGS_FOR_FUZZ);
  return *e;
}

// The input cut into lines by the export's own reader (ExtractReader, through an
// in-memory file) and its own batch filling, so the target sees exactly what a worker
// would: a leading BOM skipped, CRLF, over-long lines reduced to their head.
exporter::Batch Cut(std::string_view text) {
  const int fd = ::memfd_create("export-fuzz", MFD_CLOEXEC);
  Check(fd >= 0, "memfd_create failed");
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    Check(n > 0, "write to the memfd failed");
    done += static_cast<std::size_t>(n);
  }
  exporter::Batch b;
  b.Reset(exporter::WarehouseTables().size());
  {
    exporter::ExtractReader reader("/proc/self/fd/" + std::to_string(fd), caregate::format::JsonLimits{}.max_bytes);
    Check(!exporter::FillBatch(reader, b, SIZE_MAX, SIZE_MAX), "the reader stopped before the end");
    Check(reader.consumed() == text.size(), "the reader did not consume every byte");
  }
  ::close(fd);
  return b;
}

rapidjson::Document ParseJson(std::string_view text) {
  std::string padded(text);
  padded.append(16, '\0');  // RapidJSON's SSE2 scan reads aligned blocks past the end
  rapidjson::Document d;
  d.Parse(padded.c_str(), text.size());
  Check(!d.HasParseError(), "reject line is not JSON", std::string(text));
  return d;
}

// Splits RFC 4180 text into rows of fields; fails on a malformed quote.
std::vector<std::vector<std::string>> CsvRows(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  std::size_t i = 0;
  bool at_field_start = true;
  while (i < text.size()) {
    char c = text[i];
    if (at_field_start && c == '"') {
      ++i;
      for (;;) {
        Check(i < text.size(), "unterminated quoted CSV field", std::string(text));
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
      Check(i < text.size() && (text[i] == ',' || text[i] == '\r'), "text after a closing quote", std::string(text));
      at_field_start = false;
      continue;
    }
    if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      at_field_start = true;
      ++i;
    } else if (c == '\r') {
      Check(i + 1 < text.size() && text[i + 1] == '\n', "CR not followed by LF", std::string(text));
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      at_field_start = true;
      i += 2;
    } else {
      Check(c != '"' && c != '\n', "quote or LF in an unquoted CSV field", std::string(text));
      field += c;
      at_field_start = false;
      ++i;
    }
  }
  Check(row.empty() && field.empty() && at_field_start, "CSV text does not end with CRLF", std::string(text));
  return rows;
}

std::size_t Columns(const std::string& header) { return CsvRows(header).at(0).size(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& engine = TheEngine();
  const auto& tables = exporter::WarehouseTables();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  exporter::Batch batch = Cut(text);
  exporter::Batch again = Cut(text);
  {
    exporter::RecordProcessor first(engine, engine.plan().version(), 42);
    first.Process(batch);
    exporter::RecordProcessor second(engine, engine.plan().version(), 42);
    second.Process(again);
  }
  Check(batch.s1 == again.s1 && batch.keys == again.keys && batch.rejects == again.rejects && batch.csv == again.csv,
        "two processors gave different outputs for the same lines", std::string(text));

  std::size_t r = 0;
  for (const auto& ref : batch.lines) {
    std::string_view line(batch.input.data() + ref.offset, ref.length);
    bool blank = !ref.too_long && line.find_first_not_of(" \t\r") == std::string_view::npos;
    if (blank) continue;
    Check(r < batch.records.size(), "a non-blank line has no result");
    const exporter::RecordOut& rec = batch.records[r];
    Check(rec.line == ref.number, "result out of order");
    std::string_view reject = batch.Slice(batch.rejects, batch.reject_end, r);
    std::string_view key = batch.Slice(batch.keys, batch.key_end, r);
    std::string_view s1 = batch.Slice(batch.s1.view(), batch.s1_end, r);
    if (!ref.too_long) {
      auto read = engine.Read("cis", line);
      Check(read.ok() == !rec.rejected, "the export and Engine::Read disagree on whether a line is valid",
            std::string(line) + "\n" + std::string(reject));
      // The plain scan behind the line shortcut on a shared store reads the ids as the
      // mapping does, whenever it claims to (kString, kNull, kAbsent).
      if (read.ok()) {
        const auto& person = read.value().person;
        for (auto [member, mapped, trimmed] : {std::tuple{"NHS_Number", &person.nhs_number, false},
                                               std::tuple{"SystmOne_Identifier", &person.s1_id, true}}) {
          std::string_view v;
          switch (exporter::ScanTopLevelMember(line, member, &v)) {
            case exporter::TopLevel::kString:
              Check(*mapped == (trimmed ? caregate::Trim(v) : v), "the top-level scan misread a member",
                    std::string(member) + " in " + std::string(line));
              break;
            case exporter::TopLevel::kNull:
            case exporter::TopLevel::kAbsent:
              Check(mapped->empty(), "the top-level scan missed a member", std::string(member) + " in " +
                                                                               std::string(line));
              break;
            case exporter::TopLevel::kOther: break;
          }
        }
      }
    }
    if (rec.rejected) {
      Check(!reject.empty() && reject.back() == '\n', "reject line missing or not a line", std::string(reject));
      Check(s1.empty() && key.empty(), "a refused line produced output");
      rapidjson::Document d = ParseJson(reject.substr(0, reject.size() - 1));
      Check(d.IsObject() && d.HasMember("line") && d["line"].IsUint64() && d["line"].GetUint64() == ref.number,
            "reject line without its line number", std::string(reject));
      Check(d.HasMember("person_id") && (d["person_id"].IsNull() || d["person_id"].IsString()),
            "reject line's person_id is neither a string nor null", std::string(reject));
      Check(d.HasMember("errors") && d["errors"].IsArray() && !d["errors"].Empty(), "reject line without errors",
            std::string(reject));
      for (const auto& e : d["errors"].GetArray())
        Check(e.IsObject() && e.HasMember("path") && e["path"].IsString() && e.HasMember("problem") &&
                  e["problem"].IsString() && e["problem"].GetStringLength() > 0,
              "reject error without a path and a problem", std::string(reject));
    } else {
      Check(reject.empty(), "an exported record has a reject line", std::string(reject));
      Check(key.rfind("cis:", 0) == 0 || key.rfind("s1:", 0) == 0 || key.rfind("nhs:", 0) == 0,
            "person key without its system prefix", std::string(key));
      for (std::size_t t = 0; t < tables.size(); ++t) {
        std::string_view rows = batch.Slice(batch.csv[t].view(), batch.csv_end, r, tables.size(), t);
        const std::size_t columns = Columns(tables[t].header);
        for (const auto& row : CsvRows(rows)) {
          Check(row.size() == columns, "warehouse row with the wrong number of columns",
                tables[t].name + ": " + std::string(rows));
          Check(row[0] == key, "warehouse row does not start with the person key", std::string(rows));
        }
      }
      if (rec.withheld) {
        Check(s1.empty(), "a record withheld by consent has a SystmOne fragment", std::string(s1));
      } else {
        Check(!s1.empty() && s1.back() == '\n', "exported record without its SystmOne fragment");
        auto back = engine.Read("systmone", s1.substr(0, s1.size() - 1));
        Check(back.ok(), "the SystmOne fragment does not read back",
              (back.ok() ? std::string() : caregate::FormatErrors(back.errors())) + "\n" + std::string(s1));
      }
    }
    ++r;
  }
  Check(r == batch.records.size(), "more results than non-blank lines");
  return 0;
}
