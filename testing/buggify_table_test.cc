// SIMSCHED_BUGGIFY points in the sweep's property table (sim/buggify.h,
// testing/internal/property_tally.h): each point reached is a row of kind
// "buggify" (seeds that reached it, seeds where it fired, the first seed that
// fired it), one that never fired is marked "never fired" but fails nothing,
// and the rows survive the summary file's JSON.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/buggify.h"
#include "sim/world.h"
#include "testing/internal/capture_failures.h"
#include "testing/internal/property_tally.h"
#include "testing/sim_test.h"

namespace simsched::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using test_internal::CaptureFailures;

// Every point enabled; "hot" fires about half the time, "cold" is only
// evaluated once firing has stopped (as in a liveness phase).
void Body(Sim& sim) {
  World world(sim.scheduler(), {.buggify_enable_probability = 1.0,
                                .buggify_fire_probability = 0.5});
  for (int i = 0; i < 8; ++i) (void)SIMSCHED_BUGGIFY("table.hot");
  world.StopFaults();
  (void)SIMSCHED_BUGGIFY("table.cold");
}

TEST(BuggifyTableTest, FiredAndNeverFiredPointsAreRowsOfTheSweepTable) {
  ::testing::internal::CaptureStdout();
  std::vector<std::string> failures = CaptureFailures([&] {
    RunSimTest("Buggify.Table", Body, SimTestOptions{.iterations = 10}, "", "",
               SourceLocation::current());
  });
  std::fflush(stdout);
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_TRUE(failures.empty()) << "a point that never fired fails nothing: " << failures[0];
  EXPECT_THAT(out, ContainsRegex("\"table.hot\" +buggify +10 +10  0 +[^ ]*buggify_table_test.cc:"));
  EXPECT_THAT(out, ContainsRegex("\"table.cold\" +buggify +10 +0  - +[^\n]*never fired"));
}

TEST(BuggifyTableTest, RowsRoundTripThroughTheSummaryJson) {
  properties_internal::PropertyTable table;
  properties_internal::SeedPropertyRecorder seed3([](std::string, SourceLocation) {});
  seed3.OnProperty(PropertyKind::kBuggify, false, "p", "SIMSCHED_BUGGIFY",
                   SourceLocation::current());
  seed3.OnProperty(PropertyKind::kBuggify, true, "p", "SIMSCHED_BUGGIFY",
                   SourceLocation::current());
  seed3.OnProperty(PropertyKind::kBuggify, false, "q", "SIMSCHED_BUGGIFY",
                   SourceLocation::current());
  table.AddSeed(3, seed3.results());
  const std::string json = table.ToJson();
  EXPECT_THAT(json, HasSubstr("{\"name\": \"p\", \"kind\": \"buggify\""));
  properties_internal::PropertyTable merged;
  ASSERT_TRUE(merged.MergeJsonLine(absl::StrCat("{\"properties\": ", json, "}")).ok());
  ASSERT_EQ(merged.rows().count("q"), 1u);
  EXPECT_EQ(merged.rows().at("p").kind, PropertyKind::kBuggify);
  EXPECT_EQ(merged.rows().at("p").first_seed, 3u);
  EXPECT_EQ(merged.rows().at("q").seeds_held, 0u);
  EXPECT_TRUE(merged.Unsatisfied().empty()) << "never fired is not unsatisfied";
  EXPECT_THAT(merged.Format(), ContainsRegex("\"q\" +buggify +1 +0  - +[^\n]*never fired"));
  EXPECT_THAT(merged.Format(), Not(ContainsRegex("\"p\"[^\n]*never fired")));
}

}  // namespace
}  // namespace simsched::testing
