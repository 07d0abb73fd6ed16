// The main job: a seed sweep over the bundled bank example (bank.h).
//
//   bazel run //testing/examples:bank_sweep                 # 300 seeds
//   bazel run //testing/examples:bank_sweep -- --seed=137   # replay one seed
//
// Each seed runs the same scenario under a TestScheduler; the interleaving
// (and so whether the planted overdraft race fires) is a function of the seed.

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "scheduler/test_scheduler.h"
#include "testing/examples/bank.h"

ABSL_FLAG(uint64_t, seeds, 300, "How many seeds to sweep.");
ABSL_FLAG(uint64_t, start_seed, 0, "First seed of the sweep.");
ABSL_FLAG(int64_t, seed, -1, "Run exactly this seed (replay), with its trace.");
ABSL_FLAG(bool, fixed, false, "Run the corrected transfer instead of the buggy one.");

namespace {

struct SeedResult {
  absl::Status status;
  uint64_t steps;
  uint64_t trace_hash;
  std::string trace;
};

SeedResult RunSeed(uint64_t seed, bool fixed, bool record_trace) {
  simsched::TestScheduler scheduler({.seed = seed, .record_trace = record_trace});
  simsched::examples::Bank bank(scheduler, {.accounts = 3, .initial_balance = 100, .fixed = fixed});
  absl::Status status = simsched::examples::RunBankScenario(scheduler, bank, /*transfers=*/6);
  std::string trace;
  for (const simsched::TraceEntry& entry : scheduler.trace()) {
    trace += "  " + entry.DebugString() + "\n";
  }
  return {status, scheduler.step_count(), scheduler.TraceHash(), trace};
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const bool fixed = absl::GetFlag(FLAGS_fixed);
  const char* variant = fixed ? "fixed" : "buggy";

  if (absl::GetFlag(FLAGS_seed) >= 0) {
    const uint64_t seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
    SeedResult result = RunSeed(seed, fixed, /*record_trace=*/true);
    std::printf("replaying seed %llu of the %s bank example:\n%s",
                static_cast<unsigned long long>(seed), variant, result.trace.c_str());
    std::printf("seed %llu: %s (%llu steps, trace hash 0x%016llx)\n",
                static_cast<unsigned long long>(seed),
                result.status.ok() ? "passed" : std::string(result.status.message()).c_str(),
                static_cast<unsigned long long>(result.steps),
                static_cast<unsigned long long>(result.trace_hash));
    return result.status.ok() ? 0 : 1;
  }

  const uint64_t start = absl::GetFlag(FLAGS_start_seed);
  const uint64_t count = absl::GetFlag(FLAGS_seeds);
  std::printf("sweeping seeds %llu..%llu of the %s bank example (6 concurrent transfers "
              "between 3 accounts each)\n",
              static_cast<unsigned long long>(start),
              static_cast<unsigned long long>(start + count - 1), variant);
  uint64_t failures = 0;
  int64_t first_failure = -1;
  for (uint64_t seed = start; seed < start + count; ++seed) {
    SeedResult result = RunSeed(seed, fixed, /*record_trace=*/false);
    if (!result.status.ok()) {
      if (failures == 0) first_failure = static_cast<int64_t>(seed);
      if (failures < 5) {
        std::printf("seed %llu FAILED: %s (%llu steps, trace hash 0x%016llx)\n",
                    static_cast<unsigned long long>(seed),
                    std::string(result.status.message()).c_str(),
                    static_cast<unsigned long long>(result.steps),
                    static_cast<unsigned long long>(result.trace_hash));
      }
      ++failures;
    }
  }
  std::printf("%llu of %llu seeds failed\n", static_cast<unsigned long long>(failures),
              static_cast<unsigned long long>(count));
  if (failures > 0) {
    std::printf("replay the first failing seed with:\n  bazel run //testing/examples:bank_sweep -- "
                "--seed=%lld%s\n",
                static_cast<long long>(first_failure), fixed ? " --fixed" : "");
  }
  return 0;
}
