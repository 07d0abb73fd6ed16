#include "testing/model_sweep.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/internal/capture_failures.h"

namespace simsched::testing {
namespace {

using test_internal::CaptureFailures;
using test_internal::ScopedEnv;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SweepModelSeedsTest, RunsTheDefaultSeedsAndPassesWhenNothingIsWrong) {
  std::vector<uint64_t> ran;
  int failures = -1;
  EXPECT_THAT(CaptureFailures([&] {
                failures =
                    SweepModelSeeds("SIMSCHED_TEST_MS", {.default_count = 4, .default_start = 7},
                                    [&](uint64_t seed) {
                                      ran.push_back(seed);
                                      return std::string();
                                    });
              }),
              ElementsAre());
  EXPECT_EQ(failures, 0);
  EXPECT_THAT(ran, ElementsAre(7, 8, 9, 10));
}

TEST(SweepModelSeedsTest, ReportsEachFailingSeedWithItsReplayLineAndStops) {
  int ran = 0;
  int failures = 0;
  const std::vector<std::string> reported = CaptureFailures([&] {
    failures = SweepModelSeeds("SIMSCHED_TEST_MS", {.default_count = 100, .max_failures = 2},
                               [&](uint64_t seed) {
                                 ++ran;
                                 return seed % 3 == 0 ? absl::StrCat("bad ", seed) : "";
                               });
  });
  EXPECT_EQ(failures, 2);
  EXPECT_EQ(ran, 6);  // seeds 1..6: 3 and 6 fail, then it stops
  ASSERT_EQ(reported.size(), 2u);
  EXPECT_THAT(reported[0], HasSubstr("seed 3 (replay: SIMSCHED_TEST_MS_SEED=3): bad 3"));
  EXPECT_THAT(reported[1], HasSubstr("seed 6 (replay: SIMSCHED_TEST_MS_SEED=6): bad 6"));
}

TEST(SweepModelSeedsTest, TheReplayVariableRunsOneSeed) {
  ScopedEnv env{{"SIMSCHED_TEST_MS_SEED", "42"}};
  std::vector<uint64_t> ran;
  SweepModelSeeds("SIMSCHED_TEST_MS", {}, [&](uint64_t seed) {
    ran.push_back(seed);
    return std::string();
  });
  EXPECT_THAT(ran, ElementsAre(42));
}

TEST(SweepModelSeedsTest, AMalformedVariableIsAFailureNotASilentDefault) {
  ScopedEnv env{{"SIMSCHED_TEST_MS_SEEDS", "many"}};
  int ran = 0;
  int failures = 0;
  const std::vector<std::string> reported = CaptureFailures([&] {
    failures = SweepModelSeeds("SIMSCHED_TEST_MS", {}, [&](uint64_t) {
      ++ran;
      return std::string();
    });
  });
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(ran, 0);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_THAT(reported[0], HasSubstr("SIMSCHED_TEST_MS_SEEDS"));
}

}  // namespace
}  // namespace simsched::testing
