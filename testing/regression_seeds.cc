#include "testing/regression_seeds.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "testing/sweep_config.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_join.h"

namespace simsched::testing {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool ReadFile(const std::string& path, std::string& contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  contents = buffer.str();
  return true;
}

std::string RunfilesRoot() {
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    const char* workspace = std::getenv("TEST_WORKSPACE");
    return absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "simsched");
  }
  // Run directly (not by `bazel test`): <binary>.runfiles/<workspace>.
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  exe[n] = '\0';
  return absl::StrCat(exe, ".runfiles/simsched");
}

}  // namespace

absl::StatusOr<std::vector<uint64_t>> ParseRegressionSeeds(std::string_view contents,
                                                           std::string_view file_name,
                                                           std::string_view test_name) {
  std::vector<uint64_t> seeds;
  int line_number = 0;
  while (!contents.empty()) {
    ++line_number;
    const size_t end = contents.find('\n');
    std::string_view line = contents.substr(0, end);
    contents = end == std::string_view::npos ? std::string_view() : contents.substr(end + 1);
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = Trim(line);
    if (line.empty()) continue;
    const size_t space = line.find_first_of(" \t");
    auto error = [&](std::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(file_name), ":", line_number, ": ", std::string(what), " in \"",
          std::string(line), "\"; expected \"<Suite.Name> <seed>\", e.g. "
          "\"BankTest.TransfersNeverOverdraw 137\", with an optional # comment"));
    };
    if (space == std::string_view::npos) return error("missing seed");
    const std::string_view name = line.substr(0, space);
    const std::string_view seed_text = Trim(line.substr(space));
    if (name.find('.') == std::string_view::npos) return error("test name without a dot");
    std::optional<uint64_t> seed = ParseUint64(seed_text);
    if (!seed.has_value()) return error("the seed is not a whole number from 0 to 2^64-1");
    if (name == test_name) seeds.push_back(*seed);
  }
  return seeds;
}

absl::StatusOr<std::vector<uint64_t>> LoadRegressionSeeds(
    const std::string& path, std::string_view test_name,
    const std::vector<std::string>& known_tests) {
  std::string contents;
  std::string found = path;
  for (const std::string& candidate : {path, absl::StrCat(RunfilesRoot(), "/", path)}) {
    struct stat info;
    if (!path.empty() && stat(candidate.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "regression seed file \"", path, "\" is a directory; give the path of a seed file "
          "(for example <target>.seeds) in SIMSCHED_REGRESSION_SEEDS or "
          "SimTestOptions::regression_seeds_file"));
    }
  }
  if (!ReadFile(found, contents)) {
    found = absl::StrCat(RunfilesRoot(), "/", path);
    if (path.empty() || path[0] == '/' || !ReadFile(found, contents)) {
      return absl::NotFoundError(absl::StrCat(
          "regression seed file \"", path,
          "\" was not found (looked in the working directory and the test's runfiles); "
          "list it in the test's data, or fix SIMSCHED_REGRESSION_SEEDS"));
    }
  }
  absl::StatusOr<std::vector<uint64_t>> seeds = ParseRegressionSeeds(contents, path, test_name);
  if (!seeds.ok() || known_tests.empty()) return seeds;
  // Every name in the file must be a test of this binary: a typo would
  // otherwise silently run no regression seed at all.
  std::string_view rest = contents;
  int line_number = 0;
  while (!rest.empty()) {
    ++line_number;
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    const std::string_view name = line.substr(0, line.find_first_of(" \t"));
    if (std::find(known_tests.begin(), known_tests.end(), name) == known_tests.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", line_number, ": no test named \"", std::string(name),
          "\" in this binary; its tests are: ", absl::StrJoin(known_tests, ", ")));
    }
  }
  return seeds;
}

}  // namespace simsched::testing
