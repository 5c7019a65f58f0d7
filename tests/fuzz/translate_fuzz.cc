// Fuzz target for the whole translation path (parse, validate, map, write): any input
// either is rejected with at least one error naming a field or problem, or translates;
// and whatever translates into the other system must read back there without errors
// (caregate never writes a record it would itself refuse). CIS input is also read through
// the tree, which must give exactly what the streaming reader gave. The ids a refusal's audit
// event would name are checked against the record's. The first byte picks the
// source format: even -> CIS JSON, odd -> SystmOne XML.
#include <cstddef>
#include <cstdint>
#include <string>

#include "caregate/engine/engine.h"
#include "caregate/format/json.h"
#include "caregate/model/canonical_json.h"
#include "fuzz_util.h"

namespace {
const caregate::engine::Engine& TheEngine() {
  static auto e = caregate::engine::Engine::Load(CAREGATE_MAPPINGS_FOR_FUZZ);
  return *e;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using caregate::fuzz::Check;
  if (size == 0) return 0;
  const char* from = (data[0] & 1) ? "systmone" : "cis";
  const char* to = (data[0] & 1) ? "cis" : "systmone";
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto& e = TheEngine();
  std::vector<std::string> ids;
  auto rec = e.Read(from, text, true, &ids);
  if (!(data[0] & 1)) {
    // CIS is read by mapping parser events directly; the tree path must agree exactly.
    auto tree = caregate::format::ParseJson(text);
    std::vector<std::string> tree_ids;
    auto via_tree = tree ? e.plan().Read("cis", tree.value(), true, &tree_ids)
                         : caregate::Expected<caregate::model::CareRecord>(tree.errors());
    Check(tree_ids == ids, "streaming and tree readers name different ids for a refused record");
    Check(via_tree.ok() == rec.ok(), "streaming and tree readers disagree on validity");
    if (rec.ok())
      Check(caregate::model::ToCanonicalJson(rec.value()) == caregate::model::ToCanonicalJson(via_tree.value()),
            "streaming and tree readers read different records");
    else
      Check(caregate::FormatErrors(rec.errors()) == caregate::FormatErrors(via_tree.errors()),
            "streaming and tree readers report different errors");
  }
  // The ids a refusal's audit event names: given only for a refused record, prefixed,
  // valid UTF-8; for CIS the same through the tree as streamed.
  for (const auto& id : ids)
    Check(!rec.ok() && (id.starts_with("nhs:") || id.starts_with("s1:") || id.starts_with("cis:")) &&
              caregate::IsValidUtf8(id),
          "a readable id for a valid record, without its prefix, or not UTF-8", id);
  if (!rec.ok()) {
    Check(!rec.errors().empty(), "rejected without an error");
    for (const auto& err : rec.errors()) Check(!err.problem.empty(), "error without a problem", err.path);
    return 0;
  }
  std::string out;
  e.Render(out, rec.value(), to, false);
  auto back = e.Read(to, out);
  Check(back.ok(), "translated output does not read back", back.ok() ? std::string() : caregate::FormatErrors(back.errors()) + "\n" + out);
  std::string canonical;
  e.Render(canonical, rec.value(), "canonical", false);
  Check(caregate::IsValidUtf8(canonical), "canonical output is not UTF-8");
  return 0;
}
