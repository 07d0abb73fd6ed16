// The bug-finding benchmark, small enough for CI (the full measurement is
// //testing/bugbench:bugbench_report; docs/strategies.md has its table).
//
//   * mix finds every planted bug within 10,000 seeds (it stops at the first);
//   * the fixed twins never fail, under every strategy;
//   * on the deep patterns PCT or POS fails at least 1 seed in 100, while
//     random fails none of the same 1,000 seeds.

#include <string>

#include "gtest/gtest.h"
#include "testing/bugbench/patterns.h"

namespace simsched::bugbench {
namespace {

std::string WithK(const std::string& strategy, uint64_t k) {
  return strategy == "random" || strategy == "pos" ? strategy
                                                   : strategy + ":k=" + std::to_string(k);
}

TEST(BugbenchTest, ThereAreAtLeastTwelvePatternsAndSomeAreDeep) {
  EXPECT_GE(AllPatterns().size(), 12u);
  int deep = 0;
  for (const BugPattern& pattern : AllPatterns()) deep += pattern.deep ? 1 : 0;
  EXPECT_GE(deep, 3);
}

TEST(BugbenchTest, MixFindsEveryPlantedBugWithinTenThousandSeeds) {
  for (const BugPattern& pattern : AllPatterns()) {
    const std::string mix = WithK("mix", CalibratedRunLength(pattern, false));
    uint64_t first = 0;
    for (uint64_t seed = 0; seed < 10000 && first == 0; ++seed) {
      if (RunPattern(pattern, false, seed, mix).failed) first = seed + 1;
    }
    EXPECT_NE(first, 0u) << pattern.name << ": mix found nothing in 10,000 seeds";
  }
}

TEST(BugbenchTest, FixedTwinsNeverFailUnderAnyStrategy) {
  for (const BugPattern& pattern : AllPatterns()) {
    const uint64_t k = CalibratedRunLength(pattern, true);
    for (const char* strategy : {"random", "fifo", "pct:2", "pct:3", "pos", "mix"}) {
      const std::string spec = std::string(strategy) == "fifo" ? "fifo" : WithK(strategy, k);
      for (uint64_t seed = 0; seed < 150; ++seed) {
        ASSERT_FALSE(RunPattern(pattern, true, seed, spec).failed)
            << pattern.name << " (fixed) failed under " << spec << " seed " << seed;
      }
    }
  }
}

TEST(BugbenchTest, OnDeepPatternsPctOrPosFindWhatRandomDoesNot) {
  constexpr uint64_t kSeeds = 1000;
  for (const BugPattern& pattern : AllPatterns()) {
    if (!pattern.deep) continue;
    const uint64_t k = CalibratedRunLength(pattern, false);
    uint64_t random_failures = 0, best = 0;
    std::string best_strategy;
    for (const char* strategy : {"random", "pct:2", "pct:3", "pos"}) {
      const std::string spec = WithK(strategy, k);
      uint64_t failures = 0;
      for (uint64_t seed = 0; seed < kSeeds; ++seed) {
        failures += RunPattern(pattern, false, seed, spec).failed ? 1 : 0;
      }
      if (std::string(strategy) == "random") {
        random_failures = failures;
      } else if (failures > best) {
        best = failures;
        best_strategy = spec;
      }
    }
    EXPECT_EQ(random_failures, 0u) << pattern.name;
    EXPECT_GE(best, kSeeds / 100) << pattern.name << ": best was " << best_strategy;
    std::printf("%-16s random %llu/%llu, best %s %llu/%llu\n", pattern.name.c_str(),
                static_cast<unsigned long long>(random_failures),
                static_cast<unsigned long long>(kSeeds), best_strategy.c_str(),
                static_cast<unsigned long long>(best), static_cast<unsigned long long>(kSeeds));
  }
}

// order_depth3 is deep in PCT's sense: two change points (one inside each
// window) and C ranked below A and B. pct:2 cannot produce it at all, random
// almost never; pct:3 fails about 1.4 seeds in 100 (docs/strategies.md).
// The long measurement is //testing/bugbench:order_depth3_measure_test.
TEST(BugbenchTest, OrderDepth3NeedsDepthThree) {
  const BugPattern* pattern = FindPattern("order_depth3");
  ASSERT_NE(pattern, nullptr);
  const std::string k = std::to_string(CalibratedRunLength(*pattern, false));
  constexpr uint64_t kSeeds = 4000;
  EXPECT_EQ(CountFailures(*pattern, false, "random", 0, kSeeds), 0u);
  EXPECT_EQ(CountFailures(*pattern, false, "pct:2:k=" + k, 0, kSeeds), 0u);
  EXPECT_GE(CountFailures(*pattern, false, "pct:3:k=" + k, 0, kSeeds), kSeeds / 100);
  EXPECT_GE(CountFailures(*pattern, false, "pos", 0, kSeeds), kSeeds / 100);
}

}  // namespace
}  // namespace simsched::bugbench
