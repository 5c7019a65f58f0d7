#pragma once
// Expected failures on the data path are values (FieldError lists, Status), never
// exceptions; exceptions are reserved for the truly fatal (a database that cannot be
// opened, broken mapping tables at start).
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace caregate {

enum class Problem {
#define CAREGATE_PROBLEM(id, slug, http, exit_code, title) id,
#include "caregate/core/problems.def"
#undef CAREGATE_PROBLEM
};

struct ProblemInfo {
  std::string_view slug;
  int http_status;
  int exit_code;
  std::string_view title;
};

const ProblemInfo& Describe(Problem p);

// One problem with one field: `path` is an XPath (SystmOne) or a JSON Pointer (CIS)
// into the source document, `problem` says what is wrong in plain words.
struct FieldError {
  std::string path;
  std::string problem;
  friend bool operator==(const FieldError&, const FieldError&) = default;
};
using FieldErrors = std::vector<FieldError>;

std::string FormatError(const FieldError& e);         // "path: problem" ("(record)" for no path)
std::string FormatErrors(const FieldErrors& errors);  // "path: problem; path: problem"

// A value or the list of everything wrong with the input.
template <typename T>
class Expected {
 public:
  // By reference, not by value: a record moved in is moved once (a CareRecord is a
  // hundred strings, and moving an inline string copies its bytes).
  Expected(const T& value) : v_(value) {}                          // NOLINT
  Expected(T&& value) : v_(std::move(value)) {}                    // NOLINT
  Expected(FieldErrors errors) : v_(std::move(errors)) {}          // NOLINT
  Expected(FieldError error) : v_(FieldErrors{std::move(error)}) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const FieldErrors& errors() const { return std::get<1>(v_); }

 private:
  std::variant<T, FieldErrors> v_;
};

// Fatal error: raised only where carrying on is impossible.
class FatalError : public std::exception {
 public:
  FatalError(Problem p, std::string message) : problem_(p), message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  Problem problem() const { return problem_; }

 private:
  Problem problem_;
  std::string message_;
};

}  // namespace caregate
