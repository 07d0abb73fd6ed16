// main() for simulation tests (the `sim_test` Bazel macro links it).
//
// Bazel's shard_count makes GoogleTest split *tests* across shards. A sweep
// should instead split *seeds*: every shard runs every SIM_TEST, each over
// its share of the seeds. So the shard variables move to SIMSCHED_* names
// before GoogleTest reads them, and the shard status file Bazel checks for is
// touched here (it tells Bazel the binary understood sharding).
//
// It also installs the crash handlers that make a fatal signal or
// std::terminate during a seed print the seed and its replay commands.

#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"
#include "testing/internal/crash_reporter.h"
#include "testing/sweep_config.h"

namespace {

// Empty counts as unset, as for every SIMSCHED_* variable (sweep_config.h).
void MoveVariable(const char* from, const char* to) {
  if (const char* value = simsched::testing::EnvironmentValue(from)) {
    setenv(to, value, /*overwrite=*/1);
    unsetenv(from);
  }
}

}  // namespace

int main(int argc, char** argv) {
  MoveVariable("GTEST_TOTAL_SHARDS", "SIMSCHED_TOTAL_SHARDS");
  MoveVariable("GTEST_SHARD_INDEX", "SIMSCHED_SHARD_INDEX");
  if (simsched::testing::EnvironmentValue("SIMSCHED_TOTAL_SHARDS") == nullptr) {
    if (const char* total = simsched::testing::EnvironmentValue("TEST_TOTAL_SHARDS")) {
      setenv("SIMSCHED_TOTAL_SHARDS", total, 1);
      if (const char* index = simsched::testing::EnvironmentValue("TEST_SHARD_INDEX")) {
        setenv("SIMSCHED_SHARD_INDEX", index, 1);
      }
    }
  }
  if (const char* status_file = std::getenv("TEST_SHARD_STATUS_FILE")) {
    if (FILE* f = std::fopen(status_file, "a")) std::fclose(f);
  }
  simsched::sim_test_internal::InstallCrashHandlers();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
