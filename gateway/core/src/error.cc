#include "caregate/core/error.h"

namespace caregate {

const ProblemInfo& Describe(Problem p) {
  static const ProblemInfo kTable[] = {
#define CAREGATE_PROBLEM(id, slug, http, exit_code, title) {slug, http, exit_code, title},
#include "caregate/core/problems.def"
#undef CAREGATE_PROBLEM
  };
  return kTable[static_cast<int>(p)];
}

std::string FormatError(const FieldError& e) { return (e.path.empty() ? std::string("(record)") : e.path) + ": " + e.problem; }

std::string FormatErrors(const FieldErrors& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += "; ";
    out += FormatError(e);
  }
  return out;
}

}  // namespace caregate
