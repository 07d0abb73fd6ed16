// Internal: makes a crash during a seed name its seed.
//
// A fatal signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) or
// `std::terminate` while a SIM_TEST seed runs prints, async-signal-safely,
// the test, seed, strategy, step, virtual time and both replay commands, then
// hands the signal to whatever handled it before (the default action, or a
// sanitizer's report) so the process dies as it would have.
//
// The harness calls `BeginTest` once per test and `BeginSeed`/`EndSeed`
// around each seed; everything the handler prints is prepared there, so the
// handler only copies bytes and formats integers.
//
//   InstallCrashHandlers();                       // sim_test_main, RunSimTest
//   CrashReporter::BeginTest("Bank.Overdraw", "//x:bank_sim_test", "bazel-bin/x/bank_sim_test");
//   CrashReporter::BeginSeed(seed, "random", &scheduler);
//   ...
//   CrashReporter::EndSeed();

#ifndef SIMSCHED_TESTING_INTERNAL_CRASH_REPORTER_H_
#define SIMSCHED_TESTING_INTERNAL_CRASH_REPORTER_H_

#include <cstdint>
#include <string_view>

namespace simsched {
class TestScheduler;
}

namespace simsched::sim_test_internal {

// Installs the signal and terminate handlers (once per process; later calls
// do nothing). Keeps the previous handlers to chain to.
void InstallCrashHandlers();

class CrashReporter {
 public:
  // The test about to run its seeds. `bazel_target` may be empty (no Bazel
  // replay line then).
  static void BeginTest(std::string_view test_name, std::string_view bazel_target,
                        std::string_view binary_path);
  // A seed starts running on `scheduler` (read for step and virtual time).
  // `strategy` must be a string literal.
  static void BeginSeed(uint64_t seed, const char* strategy, const TestScheduler* scheduler);
  // The seed is over: a crash now is not attributed to it.
  static void EndSeed();
  // Writes the report for `what` ("SIGSEGV", "std::terminate") to stderr if a
  // seed is running. Async-signal-safe. Returns whether it wrote.
  static bool Report(const char* what);
};

}  // namespace simsched::sim_test_internal

#endif  // SIMSCHED_TESTING_INTERNAL_CRASH_REPORTER_H_
