#include "caregate/adapters/cis/cis_adapter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "caregate/core/line_reader.h"
#include "caregate/core/text.h"
#include "caregate/format/json.h"
#include "caregate/format/sinks.h"

namespace caregate::adapters {

namespace {

// NDJSON: one record per non-blank line. A document whose first non-blank line, trimmed,
// is exactly "{" (what pretty printers write: json.dumps(indent=...),
// JSON.stringify(x, null, 2), jq) is a single pretty-printed record and is read whole;
// anything else is NDJSON, so a first line cut short is one bad record and the lines
// after it are still read. Lines come from
// core's LineReader: a BOM at the start is skipped, and neither an over-long line nor a
// whole document over the JSON size limit is ever held in memory.
class NdjsonStream : public RecordStream {
 public:
  explicit NdjsonStream(std::unique_ptr<LineReader> lines) : lines_(std::move(lines)) {}
  bool Next(StreamRecord& out) override {
    LineReader::Line line;
    out.read_failed = false;
    for (;;) {
      if (!lines_->Next(line)) {
        if (lines_->error() != 0 && !reported_failure_) {
          reported_failure_ = true;
          out.index = ++count_;
          out.line = 0;  // not a line's fault
          out.read_failed = true;
          out.tree = FieldError{"", std::string("read error: ") + std::strerror(lines_->error())};
          return true;
        }
        if (whole_mode_) {
          whole_mode_ = false;
          out.index = ++count_;
          out.line = whole_start_;
          out.tree = whole_too_big_ ? Expected<SourceNode>(FieldError{"", "JSON document larger than the limit of " +
                                                                              std::to_string(kMaxBytes) + " bytes"})
                                    : format::ParseJson(whole_);
          whole_.clear();
          return true;
        }
        return false;
      }
      if (whole_mode_) {
        Gather(line);
        continue;
      }
      if (line.too_long) {
        out.index = ++count_;
        out.line = line.number;
        out.tree = FieldError{"", LineReader::TooLongProblem(kMaxBytes)};
        return true;
      }
      std::string_view t = Trim(line.text);
      if (t.empty()) continue;
      if (count_ == 0 && t == "{") {
        whole_mode_ = true;
        whole_start_ = line.number;
        Gather(line);
        continue;
      }
      out.index = ++count_;
      out.line = line.number;
      out.tree = format::ParseJson(line.text);
      return true;
    }
  }

 private:
  static constexpr std::size_t kMaxBytes = format::JsonLimits{}.max_bytes;
  // One more line of a whole document, until it passes the size limit: then only the
  // fact that it did is kept.
  void Gather(const LineReader::Line& line) {
    if (whole_too_big_) return;
    if (line.too_long || whole_.size() + line.text.size() + 1 > kMaxBytes) {
      whole_too_big_ = true;
      whole_.clear();
      whole_.shrink_to_fit();
      return;
    }
    whole_ += line.text;
    whole_ += '\n';
  }

  std::unique_ptr<LineReader> lines_;
  std::size_t count_ = 0, whole_start_ = 0;
  bool whole_mode_ = false, whole_too_big_ = false, reported_failure_ = false;
  std::string whole_;
};

class CisAdapter : public Adapter {
 public:
  CisAdapter() {
    profile_.name = "cis";
    profile_.display_name = "CIS";
    profile_.path_style = mapping::PathStyle::kJsonPointer;
    profile_.emit_nulls = true;
    profile_.record_id_field = "person.cis_id";
  }
  const mapping::SystemProfile& profile() const override { return profile_; }
  std::string_view media_type() const override { return "application/json"; }
  Expected<SourceNode> Parse(std::string_view bytes) const override { return format::ParseJson(bytes); }
  FieldErrors ParseEvents(std::string_view bytes, TreeSink& sink) const override {
    if (auto error = format::ParseJsonEvents(bytes, sink)) return {std::move(*error)};
    return {};
  }

  Expected<std::unique_ptr<RecordStream>> OpenFile(const std::string& path) const override {
    const int fd = path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return FieldError{path, std::string("cannot open for reading: ") + std::strerror(errno)};
    auto lines = std::make_unique<LineReader>(fd, format::JsonLimits{}.max_bytes);
    return std::unique_ptr<RecordStream>(std::make_unique<NdjsonStream>(std::move(lines)));
  }
  Expected<std::unique_ptr<RecordStream>> OpenBuffer(std::string bytes) const override {
    auto lines = std::make_unique<LineReader>(std::move(bytes), format::JsonLimits{}.max_bytes);
    return std::unique_ptr<RecordStream>(std::make_unique<NdjsonStream>(std::move(lines)));
  }
  void AppendRecord(std::string& out, const SourceNode& tree, bool /*in_batch*/) const override {
    format::AppendJson(out, tree);
    out += '\n';
  }
  void AppendStreamed(std::string& out, bool /*in_batch*/, const std::function<void(TreeSink&)>& write) const override {
    format::JsonTextSink sink(out);
    sink.Open("");
    write(sink);
    sink.Close();
    out += '\n';
  }
  std::string BatchBegin() const override { return {}; }
  std::string BatchEnd() const override { return {}; }

 private:
  mapping::SystemProfile profile_;
};

}  // namespace

std::unique_ptr<Adapter> MakeCisAdapter() { return std::make_unique<CisAdapter>(); }

}  // namespace caregate::adapters
