#include "caregate/adapters/systmone/systmone_adapter.h"

#include "caregate/format/sinks.h"
#include "caregate/format/xml.h"

namespace caregate::adapters {
namespace {

constexpr std::string_view kRecordRoot = "ClientIntegrationResponse";
constexpr std::string_view kBatchRoot = "ClientIntegrationBatch";

class XmlRecordStream : public RecordStream {
 public:
  explicit XmlRecordStream(std::unique_ptr<format::XmlStreamReader> reader, std::string owned = {})
      : owned_(std::move(owned)), reader_(std::move(reader)) {}
  bool batch() const override { return reader_->is_batch(); }
  bool Next(StreamRecord& out) override {
    out.read_failed = false;
    if (done_) return false;
    if (!started_) {
      started_ = true;
      if (reader_->read_failed()) {  // before the root element: nothing else to say
        Expected<SourceNode> rec = FieldErrors{};
        reader_->Next(rec);
        out.index = 1;
        out.line = 0;
        out.read_failed = true;
        out.tree = std::move(rec);
        done_ = true;
        return true;
      }
      const std::string& root = reader_->root_name();
      if (root != kRecordRoot && root != kBatchRoot) {
        out.index = 1;
        out.tree = FieldError{"/" + root, "expected a ClientIntegrationResponse or ClientIntegrationBatch root element"};
        done_ = true;
        return true;
      }
    }
    Expected<SourceNode> rec = FieldErrors{};
    if (!reader_->Next(rec)) {
      done_ = true;
      return false;
    }
    out.index = ++count_;
    out.line = rec.ok() ? rec->line : 0;
    out.read_failed = !rec.ok() && reader_->read_failed();
    if (rec.ok() && rec->name != kRecordRoot) {
      out.tree = FieldError{"/" + std::string(kBatchRoot) + "/" + rec->name + "[" + std::to_string(count_) + "]",
                            "a batch may only hold ClientIntegrationResponse elements"};
      return true;
    }
    out.tree = std::move(rec);
    if (!reader_->is_batch() && out.tree.ok()) {
      // A single document is one record, and the whole document must be well-formed
      // (spec 3): a fault after its root element (trailing bytes, a second root) refuses
      // the record, where it used to be yielded and the fault reported as a record 2.
      Expected<SourceNode> after = FieldErrors{};
      if (reader_->Next(after)) {
        out.read_failed = !after.ok() && reader_->read_failed();
        out.tree = after.ok() ? Expected<SourceNode>(FieldError{"/", "not well-formed XML: more than one root element"})
                              : std::move(after);
      }
      done_ = true;
    }
    return true;
  }

 private:
  std::string owned_;  // keeps an in-memory document alive for the reader
  std::unique_ptr<format::XmlStreamReader> reader_;
  bool started_ = false, done_ = false;
  std::size_t count_ = 0;
};

class SystmOneAdapter : public Adapter {
 public:
  SystmOneAdapter() {
    profile_.name = "systmone";
    profile_.display_name = "SystmOne";
    profile_.path_style = mapping::PathStyle::kXPath;
    profile_.root_name = std::string(kRecordRoot);
    profile_.emit_nulls = false;
    profile_.record_id_field = "person.s1_id";
  }
  const mapping::SystemProfile& profile() const override { return profile_; }
  std::string_view media_type() const override { return "application/xml"; }

  Expected<SourceNode> Parse(std::string_view bytes) const override { return format::ParseXml(bytes); }

  Expected<std::unique_ptr<RecordStream>> OpenFile(const std::string& path) const override {
    // A batch file streams, and each record is capped by the XML parser's limits (4 MiB,
    // 64 levels; an HTTP body is capped at 1 MiB by the server before it is parsed): a
    // record over the cap is refused by name and the batch goes on.
    auto reader = format::XmlStreamReader::OpenFile(path, format::XmlLimits{});
    if (!reader) return reader.errors();
    return std::unique_ptr<RecordStream>(std::make_unique<XmlRecordStream>(std::move(reader.value())));
  }

  Expected<std::unique_ptr<RecordStream>> OpenBuffer(std::string bytes) const override {
    auto reader = format::XmlStreamReader::OpenMemory(bytes);
    if (!reader) return reader.errors();
    return std::unique_ptr<RecordStream>(
        std::make_unique<XmlRecordStream>(std::move(reader.value())));  // the reader copies the bytes
  }

  void AppendRecord(std::string& out, const SourceNode& tree, bool in_batch) const override {
    if (in_batch) {
      format::AppendXml(out, tree, 1, true);
    } else {
      out += format::WriteXmlDocument(tree, true);
    }
  }
  void AppendStreamed(std::string& out, bool in_batch, const std::function<void(TreeSink&)>& write) const override {
    if (!in_batch) out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    format::XmlTextSink sink(out, in_batch ? 1 : 0);
    sink.Open(kRecordRoot);
    write(sink);
    sink.Close();
  }
  std::string BatchBegin() const override {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ClientIntegrationBatch>\n";
  }
  std::string BatchEnd() const override { return "</ClientIntegrationBatch>\n"; }

 private:
  mapping::SystemProfile profile_;
};

}  // namespace

std::unique_ptr<Adapter> MakeSystmOneAdapter() { return std::make_unique<SystmOneAdapter>(); }

}  // namespace caregate::adapters
