// Internal, for the harness's own tests: run a RunSimTest (or any code) and
// look at the GoogleTest failures it reported, and set environment variables
// for one scope.
//
//   std::vector<std::string> failures = CaptureFailures([&] {
//     RunSimTest("Direct.X", body, SimTestOptions{}, "", "", SourceLocation::current());
//   });

#ifndef SIMSCHED_TESTING_INTERNAL_CAPTURE_FAILURES_H_
#define SIMSCHED_TESTING_INTERNAL_CAPTURE_FAILURES_H_

#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace simsched::testing {

// Sets environment variables for one scope.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
      setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) {
      if (old.has_value()) {
        setenv(name.c_str(), old->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Runs `f` and returns the messages of the failures it reported.
inline std::vector<std::string> CaptureFailures(const std::function<void()>& f) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    f();
  }
  std::vector<std::string> messages;
  for (int i = 0; i < results.size(); ++i) {
    if (results.GetTestPartResult(i).failed()) {
      messages.push_back(results.GetTestPartResult(i).message());
    }
  }
  return messages;
}

}  // namespace simsched::testing

#endif  // SIMSCHED_TESTING_INTERNAL_CAPTURE_FAILURES_H_
