#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "caregate/engine/engine.h"

namespace caregate::testing {

inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline const engine::Engine& TheEngine() {
  static auto e = engine::Engine::Load(std::string(CAREGATE_SOURCE_DIR) + "/mappings");
  return *e;
}

inline std::string SpecExample(const char* name) {
  return Slurp(std::filesystem::path(CAREGATE_SPEC_DIR) / "examples" / name);
}

// Render a record for a system in single-record form.
inline std::string Render(const model::CareRecord& r, std::string_view to, mapping::WriteReport* report = nullptr) {
  std::string out;
  TheEngine().Render(out, r, to, false, report);
  return out;
}

inline bool HasError(const FieldErrors& errors, const std::string& path, const std::string& what) {
  for (const auto& e : errors)
    if (e.path == path && e.problem.find(what) != std::string::npos) return true;
  return false;
}

inline std::string Dump(const FieldErrors& errors) { return FormatErrors(errors); }

}  // namespace caregate::testing
