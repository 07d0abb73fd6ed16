// bugbench_report: how well each scheduling strategy finds the planted bugs
// of testing/bugbench/patterns.h.
//
// For every pattern and strategy it runs `--sweeps` sweeps of `--seeds`
// seeds (sweep j runs seeds j*seeds .. (j+1)*seeds-1) and prints the
// fraction of failing seeds and the median, over sweeps, of the seeds run
// until the first failure (">N" when at least half the sweeps found none).
// The fixed twins (negative controls) run one sweep per strategy and must
// never fail. PCT's k is calibrated per pattern as the harness does it.
//
// Usage:
//   bazel run -c opt //testing/bugbench:bugbench_report -- --sweeps=20 --seeds=10000
//   bazel run -c opt //testing/bugbench:bugbench_report -- --patterns=pipeline_100

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "scheduler/strategy.h"
#include "testing/bugbench/patterns.h"

namespace {

using simsched::bugbench::AllPatterns;
using simsched::bugbench::BugPattern;
using simsched::bugbench::CalibratedRunLength;
using simsched::bugbench::RunPattern;

bool Flag(const char* arg, const char* name, std::string& value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  value = arg + n + 1;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t sweeps = 20, seeds = 10000;
  std::string patterns_filter, strategies_filter;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    if (Flag(argv[i], "--sweeps", value)) {
      sweeps = std::strtoull(value.c_str(), nullptr, 10);
    } else if (Flag(argv[i], "--seeds", value)) {
      seeds = std::strtoull(value.c_str(), nullptr, 10);
    } else if (Flag(argv[i], "--patterns", value)) {
      patterns_filter = "," + value + ",";
    } else if (Flag(argv[i], "--strategies", value)) {
      strategies_filter = "," + value + ",";
    } else {
      std::fprintf(stderr,
                   "usage: bugbench_report [--sweeps=N] [--seeds=N] [--patterns=a,b] "
                   "[--strategies=random,pct:2,pct:3,pos,mix]\n");
      return 2;
    }
  }
  if (sweeps == 0 || seeds == 0) {
    std::fprintf(stderr, "bugbench_report: --sweeps and --seeds must be positive\n");
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  std::printf("bugbench: %llu sweeps x %llu seeds per pattern and strategy; controls: 1 sweep\n",
              static_cast<unsigned long long>(sweeps), static_cast<unsigned long long>(seeds));
  std::printf("%-16s %-4s %-12s %12s %14s %9s %9s\n", "pattern", "k", "strategy",
              "fail rate", "median first", "sweeps", "control");
  bool controls_ok = true;
  for (const BugPattern& pattern : AllPatterns()) {
    if (!patterns_filter.empty() &&
        patterns_filter.find("," + pattern.name + ",") == std::string::npos) {
      continue;
    }
    const uint64_t k = CalibratedRunLength(pattern, false);
    for (std::string strategy : {"random", "pct:2", "pct:3", "pos", "mix"}) {
      if (!strategies_filter.empty() &&
          strategies_filter.find("," + strategy + ",") == std::string::npos) {
        continue;
      }
      const std::string spec =
          strategy.rfind("pct", 0) == 0 || strategy == "mix"
              ? strategy + ":k=" + std::to_string(k)
              : strategy;
      uint64_t failures = 0;
      std::vector<uint64_t> first;  // per sweep; seeds + 1 when none
      for (uint64_t sweep = 0; sweep < sweeps; ++sweep) {
        uint64_t first_failure = seeds + 1;
        for (uint64_t i = 0; i < seeds; ++i) {
          if (RunPattern(pattern, false, sweep * seeds + i, spec).failed) {
            ++failures;
            first_failure = std::min(first_failure, i + 1);
          }
        }
        first.push_back(first_failure);
      }
      uint64_t control_failures = 0;
      for (uint64_t i = 0; i < seeds; ++i) {
        control_failures += RunPattern(pattern, true, i, spec).failed ? 1 : 0;
      }
      controls_ok &= control_failures == 0;
      std::sort(first.begin(), first.end());
      const uint64_t median = first[(first.size() - 1) / 2];
      const uint64_t found =
          static_cast<uint64_t>(std::count_if(first.begin(), first.end(),
                                              [&](uint64_t f) { return f <= seeds; }));
      const std::string median_text =
          median > seeds ? ">" + std::to_string(seeds) : std::to_string(median);
      std::printf("%-16s %-4llu %-12s %12.6f %14s %5llu/%-3llu %9llu\n", pattern.name.c_str(),
                  static_cast<unsigned long long>(k), strategy.c_str(),
                  static_cast<double>(failures) / static_cast<double>(sweeps * seeds),
                  median_text.c_str(), static_cast<unsigned long long>(found),
                  static_cast<unsigned long long>(sweeps),
                  static_cast<unsigned long long>(control_failures));
      std::fflush(stdout);
    }
  }
  std::printf("bugbench: %.0fs; controls %s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              controls_ok ? "never failed" : "FAILED");
  return controls_ok ? 0 : 1;
}
