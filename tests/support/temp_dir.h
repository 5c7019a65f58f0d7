#pragma once
// A directory of its own for each test (named after the suite, the test, the process and
// a counter, so parallel ctest runs never share one), removed with everything in it
// when the test ends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace caregate::testing {

class TempDir {
 public:
  // Under `parent` (the system's temporary directory unless a test needs a particular
  // file system).
  explicit TempDir(const std::filesystem::path& parent = std::filesystem::temp_directory_path()) {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "caregate-";
    if (info) name += std::string(info->test_suite_name()) + "-" + info->name() + "-";
    name += std::to_string(::getpid()) + "-" + std::to_string(counter++);
    for (char& c : name)
      if (c == '/') c = '_';  // parameterised tests: "Suite/Test/Param"
    path_ = parent / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace caregate::testing
