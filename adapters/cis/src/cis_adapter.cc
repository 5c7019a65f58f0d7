#include "caregate/adapters/cis/cis_adapter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "caregate/core/text.h"
#include "caregate/format/json.h"
#include "caregate/format/sinks.h"

namespace caregate::adapters {

Expected<std::unique_ptr<NdjsonLineReader>> NdjsonLineReader::OpenFile(const std::string& path) {
  int fd = path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FieldError{path, std::string("cannot open for reading: ") + std::strerror(errno)};
  std::unique_ptr<NdjsonLineReader> r(new NdjsonLineReader());
  r->fd_ = fd;
  return r;
}

std::unique_ptr<NdjsonLineReader> NdjsonLineReader::FromBuffer(std::string bytes) {
  std::unique_ptr<NdjsonLineReader> r(new NdjsonLineReader());
  r->buf_ = std::move(bytes);
  r->eof_ = true;
  return r;
}

NdjsonLineReader::~NdjsonLineReader() {
  if (fd_ >= 0) ::close(fd_);
}

bool NdjsonLineReader::Fill() {
  if (eof_) return false;
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  size_t old = buf_.size();
  buf_.resize(old + (1 << 20));
  ssize_t n;
  do {
    n = ::read(fd_, buf_.data() + old, 1 << 20);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    failed_ = true;
    n = 0;
  }
  buf_.resize(old + static_cast<size_t>(n));
  if (n == 0) eof_ = true;
  return n > 0;
}

bool NdjsonLineReader::Next(std::string& line, std::size_t& line_number) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      line.assign(buf_, pos_, nl - pos_);
      offset_ += nl - pos_ + 1;
      pos_ = nl + 1;
      break;
    }
    if (!Fill()) {
      if (pos_ >= buf_.size()) return false;
      line.assign(buf_, pos_, std::string::npos);
      offset_ += buf_.size() - pos_;
      pos_ = buf_.size();
      break;
    }
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  line_number = ++line_;
  return true;
}

namespace {

// NDJSON: one record per non-blank line. A document whose first non-blank line does not
// end with '}' is a single pretty-printed record and is read whole.
class NdjsonStream : public RecordStream {
 public:
  explicit NdjsonStream(std::unique_ptr<NdjsonLineReader> lines) : lines_(std::move(lines)) {}
  bool Next(StreamRecord& out) override {
    std::string line;
    std::size_t number = 0;
    for (;;) {
      if (!lines_->Next(line, number)) {
        if (lines_->failed() && !reported_failure_) {
          reported_failure_ = true;
          out.index = ++count_;
          out.tree = FieldError{"", "read error"};
          return true;
        }
        if (!whole_.empty()) {
          out.index = ++count_;
          out.line = whole_start_;
          out.tree = format::ParseJson(whole_);
          whole_.clear();
          return true;
        }
        return false;
      }
      if (whole_mode_) {
        whole_ += line;
        whole_ += '\n';
        continue;
      }
      std::string_view t = Trim(line);
      if (t.empty()) continue;
      if (count_ == 0 && t.back() != '}') {
        whole_mode_ = true;
        whole_start_ = number;
        whole_ = line + "\n";
        continue;
      }
      out.index = ++count_;
      out.line = number;
      out.tree = format::ParseJson(line);
      return true;
    }
  }

 private:
  std::unique_ptr<NdjsonLineReader> lines_;
  std::size_t count_ = 0, whole_start_ = 0;
  bool whole_mode_ = false, reported_failure_ = false;
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
    auto lines = NdjsonLineReader::OpenFile(path);
    if (!lines) return lines.errors();
    return std::unique_ptr<RecordStream>(std::make_unique<NdjsonStream>(std::move(lines.value())));
  }
  Expected<std::unique_ptr<RecordStream>> OpenBuffer(std::string bytes) const override {
    return std::unique_ptr<RecordStream>(std::make_unique<NdjsonStream>(NdjsonLineReader::FromBuffer(std::move(bytes))));
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
