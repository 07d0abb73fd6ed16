// File: testing/internal/run_command.h
// -----------------------------------------------------------------------------
//
// For the harness's own end-to-end tests: run a test binary (or any shell
// command) as a user or CI would, in a clean environment, and capture what it
// printed and how it exited. Shared by every test that runs subprocesses
// (harness_integration_test, strategy_integration_test, ...).
//
// Example:
//
//   using simsched::testing::test_internal::RunCommand;
//   const std::string out = TempDir("shard_0");
//   Result r = RunCommand(absl::StrCat("TEST_UNDECLARED_OUTPUTS_DIR=", out),
//                         Runfile("testing/examples/bank_sim_test"));
//   EXPECT_NE(r.exit_code, 0) << r.output;

#ifndef SIMSCHED_TESTING_INTERNAL_RUN_COMMAND_H_
#define SIMSCHED_TESTING_INTERNAL_RUN_COMMAND_H_

#include <string>

namespace simsched::testing::test_internal {

// The absolute path of a data dependency of the running test, given
// workspace-relative (e.g. "testing/examples/bank_sim_test").
std::string Runfile(const std::string& path);

// A fresh, empty directory `name` under the test's TEST_TMPDIR (removed and
// recreated if it exists); returns its path.
std::string TempDir(const std::string& name);

// What a command printed (stdout and stderr, interleaved) and its exit code;
// -1 when it did not exit normally (killed by a signal) or could not start.
struct Result {
  int exit_code = -1;
  std::string output;
};

// Runs `command` through the shell in `cwd`, with `env` ("NAME=value ...",
// may be empty) prepended. None of the running test's own Bazel or simsched
// variables leak into the child: it must not write this test's XML report or
// shard files, nor inherit a seed, iteration count or strategy.
Result RunCommand(const std::string& env, const std::string& command,
                  const std::string& cwd = ".");

}  // namespace simsched::testing::test_internal

#endif  // SIMSCHED_TESTING_INTERNAL_RUN_COMMAND_H_
