#pragma once
// The interface every external system's adapter implements, and the registry that
// holds them. Adapters are registered explicitly (RegisterBuiltinAdapters), never by
// static initialisers: adding a system is one new folder and one registration line.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/error.h"
#include "caregate/core/source_tree.h"
#include "caregate/core/tree_sink.h"
#include "caregate/mapping/mapping_plan.h"

namespace caregate::adapters {

// One record read from a stream: its parsed tree or everything wrong with it.
struct StreamRecord {
  Expected<SourceNode> tree = FieldErrors{};
  std::size_t index = 0;  // 1-based position in the stream
  std::size_t line = 0;   // 1-based line where the record starts, when known
  // The input could not be read any further (an I/O error such as EIO, not a bad
  // record): `tree` holds the error, and the stream ends after this one. Callers exit 1
  // for it (spec 6: other failure), not 65.
  bool read_failed = false;
};

class RecordStream {
 public:
  virtual ~RecordStream() = default;
  // False at the end of the stream. A fatal stream error (unreadable file, a batch that
  // stops being well-formed) is returned once as a record with errors, then false.
  virtual bool Next(StreamRecord& out) = 0;
  // The input is a batch by its form (a SystmOne ClientIntegrationBatch), whatever the
  // number of records in it. NDJSON has no such form: a one-line file is one record.
  virtual bool batch() const { return false; }
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual const mapping::SystemProfile& profile() const = 0;
  const std::string& name() const { return profile().name; }
  virtual std::string_view media_type() const = 0;
  // One record from bytes.
  virtual Expected<SourceNode> Parse(std::string_view bytes) const = 0;
  // The same record as a stream of events into `sink` (see TreeSink), for readers that
  // map as they go. The default parses the tree and replays it; a streaming parser
  // overrides it. Returns what Parse would have refused the bytes for (empty: parsed);
  // after a failure the sink has seen part of the record, or nothing.
  virtual FieldErrors ParseEvents(std::string_view bytes, TreeSink& sink) const {
    auto tree = Parse(bytes);
    if (!tree) return tree.errors();
    ReplayTree(tree.value(), sink);
    return {};
  }
  // A single record or a batch (S1 ClientIntegrationBatch, CIS NDJSON), streamed.
  virtual Expected<std::unique_ptr<RecordStream>> OpenFile(const std::string& path) const = 0;
  virtual Expected<std::unique_ptr<RecordStream>> OpenBuffer(std::string bytes) const = 0;
  // Serialisation of one record tree, alone or as one member of a batch.
  virtual void AppendRecord(std::string& out, const SourceNode& tree, bool in_batch) const = 0;
  // Streams one record into `out` (a single document, or a batch member): the adapter
  // opens the record's root on a text sink, `write` emits its contents.
  virtual void AppendStreamed(std::string& out, bool in_batch, const std::function<void(TreeSink&)>& write) const = 0;
  virtual std::string BatchBegin() const = 0;
  virtual std::string BatchEnd() const = 0;
};

class AdapterRegistry {
 public:
  void Register(std::unique_ptr<Adapter> adapter) { adapters_.push_back(std::move(adapter)); }
  const Adapter* Find(std::string_view name) const {
    for (const auto& a : adapters_)
      if (a->name() == name) return a.get();
    return nullptr;
  }
  std::vector<mapping::SystemProfile> profiles() const {
    std::vector<mapping::SystemProfile> out;
    for (const auto& a : adapters_) out.push_back(a->profile());
    return out;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& a : adapters_) out.push_back(a->name());
    return out;
  }

 private:
  std::vector<std::unique_ptr<Adapter>> adapters_;
};

// The one place built-in adapters are registered (adapters/registry/src/builtin.cc).
void RegisterBuiltinAdapters(AdapterRegistry& registry);

}  // namespace caregate::adapters
