// The long measurement behind bugbench_test's OrderDepth3NeedsDepthThree
// (tagged manual: about a minute under -c opt):
//
//   bazel test -c opt //testing/bugbench:order_depth3_measure_test --test_output=all
//
// 100,000 seeds per strategy on the deep depth-3 pattern; checks the issue's
// bar (PCT or POS fail at least 1 seed in 100 where random fails fewer than
// 1 in 10,000) and prints the rates.

#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "testing/bugbench/patterns.h"

namespace simsched::bugbench {
namespace {

TEST(OrderDepth3MeasureTest, PctAndPosFindWhatRandomAndDepthTwoCannot) {
  const BugPattern* pattern = FindPattern("order_depth3");
  ASSERT_NE(pattern, nullptr);
  const std::string k = std::to_string(CalibratedRunLength(*pattern, false));
  constexpr uint64_t kSeeds = 100000;
  const uint64_t random = CountFailures(*pattern, false, "random", 0, kSeeds);
  const uint64_t pct2 = CountFailures(*pattern, false, "pct:2:k=" + k, 0, kSeeds);
  const uint64_t pct3 = CountFailures(*pattern, false, "pct:3:k=" + k, 0, kSeeds);
  const uint64_t pos = CountFailures(*pattern, false, "pos", 0, kSeeds);
  const uint64_t mix = CountFailures(*pattern, false, "mix:k=" + k, 0, kSeeds);
  std::printf("order_depth3, k=%s, %llu seeds: random %llu, pct:2 %llu, pct:3 %llu, pos %llu, "
              "mix %llu\n",
              k.c_str(), static_cast<unsigned long long>(kSeeds),
              static_cast<unsigned long long>(random), static_cast<unsigned long long>(pct2),
              static_cast<unsigned long long>(pct3), static_cast<unsigned long long>(pos),
              static_cast<unsigned long long>(mix));
  EXPECT_LT(random, kSeeds / 10000);
  EXPECT_EQ(pct2, 0u) << "one change point cannot open both windows";
  EXPECT_GE(pct3, kSeeds / 100);
  EXPECT_GE(pos, kSeeds / 100);
  EXPECT_GT(mix, 0u);
}

}  // namespace
}  // namespace simsched::bugbench
