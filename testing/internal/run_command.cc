#include "testing/internal/run_command.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace simsched::testing::test_internal {

std::string Runfile(const std::string& path) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"), "/", path);
}

std::string TempDir(const std::string& name) {
  std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str());
  return dir;
}

Result RunCommand(const std::string& env, const std::string& command, const std::string& cwd) {
  const std::string full = absl::StrCat(
      "cd '", cwd, "' && env -u TEST_BINARY -u TEST_TARGET -u XML_OUTPUT_FILE -u GTEST_OUTPUT "
      "-u TEST_PREMATURE_EXIT_FILE -u GTEST_TOTAL_SHARDS -u GTEST_SHARD_INDEX "
      "-u TEST_TOTAL_SHARDS -u TEST_SHARD_INDEX -u TEST_SHARD_STATUS_FILE "
      "-u TEST_UNDECLARED_OUTPUTS_DIR -u SIMSCHED_ITERATIONS -u SIMSCHED_SEED "
      "-u SIMSCHED_STRATEGY ",
      env, " ", command, " 2>&1");
  Result result;
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace simsched::testing::test_internal
