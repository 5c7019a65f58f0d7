#pragma once
// Shared checks for the fuzz targets: any violated invariant aborts, so libFuzzer
// (or the replay driver under ctest) reports it as a crash.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "caregate/core/source_tree.h"
#include "caregate/core/text.h"
#include "caregate/format/compare.h"

namespace caregate::fuzz {

[[noreturn]] inline void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n%s\n", what, detail.c_str());
  std::abort();
}

inline void Check(bool ok, const char* what, const std::string& detail = {}) {
  if (!ok) Fail(what, detail);
}

// Every name and value a reader produces must be valid UTF-8.
inline void CheckUtf8(const SourceNode& n) {
  Check(IsValidUtf8(n.name), "name is not valid UTF-8", n.name);
  Check(IsValidUtf8(n.value), "value is not valid UTF-8", n.value);
  for (const auto& c : n.children) CheckUtf8(c);
}

inline void CheckSame(const SourceNode& a, const SourceNode& b, const char* what, const std::string& text) {
  std::string diff = format::FirstDifference(a, b);
  if (!diff.empty()) Fail(what, diff + "\n--- written text ---\n" + text);
}

}  // namespace caregate::fuzz
