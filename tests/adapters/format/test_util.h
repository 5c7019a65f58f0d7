#pragma once
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "caregate/core/error.h"

namespace caregate::format::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string SpecExample(const std::string& name) {
  return ReadFile(std::string(CAREGATE_SPEC_DIR) + "/examples/" + name);
}

// The single problem text of a failed Expected ("" if it succeeded).
template <typename T>
std::string Problem(const Expected<T>& e) {
  if (e.ok() || e.errors().empty()) return "";
  return e.errors().front().problem;
}
template <typename T>
std::string ErrorPath(const Expected<T>& e) {
  if (e.ok() || e.errors().empty()) return "<ok>";
  return e.errors().front().path;
}

class Stopwatch {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace caregate::format::testing
