// File: testing/regression_seeds.h
// -----------------------------------------------------------------------------
//
// Regression seeds: seeds that once failed, checked into the repository next
// to the test, so they run first on every run, before the sweep. The file
// format is one seed per line for a named test:
//
//   # <Suite.Name> <seed>   [# comment]
//   BankTest.TransfersNeverOverdraw 137   # overdraft race, fixed in a1b2c3
//   BankTest.TransfersNeverOverdraw 2024
//
// Blank lines and `#` comments are ignored. A malformed line is an error
// naming the file and line and the expected form.
//
// This header defines:
//   * `simsched::testing::ParseRegressionSeeds()`
//   * `simsched::testing::LoadRegressionSeeds()`
//
// Example:
//
//   absl::StatusOr<std::vector<uint64_t>> seeds =
//       LoadRegressionSeeds("testing/examples/bank_sim_test.seeds",
//                           "BankTest.TransfersNeverOverdraw");

#ifndef SIMSCHED_TESTING_REGRESSION_SEEDS_H_
#define SIMSCHED_TESTING_REGRESSION_SEEDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace simsched::testing {

// ParseRegressionSeeds()
//
// Returns the seeds listed for `test_name` in `contents`, in file order.
// `file_name` is only used in error messages.
absl::StatusOr<std::vector<uint64_t>> ParseRegressionSeeds(std::string_view contents,
                                                           std::string_view file_name,
                                                           std::string_view test_name);

// LoadRegressionSeeds()
//
// Reads `path` (absolute, relative to the working directory, or relative to
// the test's Bazel runfiles) and parses it. NotFound if no such file exists.
//
// With `known_tests` (every "Suite.Name" in the test binary), a line naming
// a test that is not among them (a typo) is an error listing the known
// tests. A directory given as `path` is an error too.
absl::StatusOr<std::vector<uint64_t>> LoadRegressionSeeds(
    const std::string& path, std::string_view test_name,
    const std::vector<std::string>& known_tests = {});

}  // namespace simsched::testing

#endif  // SIMSCHED_TESTING_REGRESSION_SEEDS_H_
